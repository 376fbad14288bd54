//! Word lists the generator draws names and addresses from.

pub const PLACES: &[&str] = &[
    "Lakeside", "Oak Ridge", "Maple Grove", "Cedar Falls", "Springfield", "Fairview", "Hillcrest",
    "Brookside", "Pinecrest", "Westfield", "Northgate", "Southpoint", "Eastwood", "Franklin",
    "Clinton", "Madison", "Georgetown", "Salem", "Bristol", "Ashland", "Dover", "Milford",
    "Oxford", "Auburn", "Burlington", "Chester", "Clayton", "Dayton", "Easton", "Hudson",
    "Jackson", "Kingston", "Lebanon", "Marion", "Newport", "Plymouth", "Richmond", "Shelby",
    "Troy", "Vernon", "Warren", "Summit", "Valley View", "Bayview", "Harbor", "Prairie", "Sunrise",
    "Meadowbrook", "Willow Creek", "Stone Ridge", "Blue Ridge", "Silver Lake", "Crystal Springs",
    "Elmwood", "Highland", "Parkside", "Bridgeport", "Centerville", "Mount Vernon", "Lincoln",
    "Hamilton", "Monroe", "Jefferson", "Canton", "Columbia", "Piedmont", "Sycamore", "Heritage",
    "Lakewood", "Northside",
];

pub const SPECIALTIES: &[&str] = &[
    "Family", "Family Medicine", "Internal Medicine", "Pediatric", "Cardiology", "Orthopedic",
    "Dermatology", "Women's Health", "OB/GYN", "Oncology", "Neurology", "Gastroenterology",
    "Urology", "Pulmonary", "Endocrinology", "Rheumatology", "Eye", "Ear, Nose & Throat",
    "Allergy & Asthma", "Primary Care", "Medical", "Surgical", "Sports Medicine",
    "Behavioral Health", "Physical Therapy", "Podiatry", "Nephrology", "Radiology", "Wound Care",
    "Pain Management", "Geriatric", "Vascular",
];

pub const PRACTICE_SUFFIXES: &[&str] = &[
    "Clinic", "Practice", "Associates", "Group", "Partners", "Center", "Physicians", "Specialists",
    "Care", "Medical Group",
];

pub const LEGAL_SUFFIXES: &[&str] = &[", LLC", ", PC", ", PLLC", ", PA", ", Inc."];

pub const REGISTRY_FIELDS: &[&str] = &[
    "Cardiology", "Dermatology", "Oncology", "Anesthesiology", "Radiology", "Emergency Physicians",
    "Surgeons", "Physical Therapy", "Pathology", "Rheumatology", "Neurology", "Ophthalmology",
    "Gastroenterology", "Urology", "Nephrology", "Quality Measurement", "Clinical Outcomes",
    "Rural Health", "Primary Care", "Behavioral Health", "Podiatric Medicine", "Wound Care",
];

pub const REGIONS: &[&str] = &[
    "Great Lakes", "Gulf Coast", "High Plains", "Mid-Atlantic", "Pacific Northwest",
    "Hudson Valley", "Central Texas", "Rocky Mountain", "Finger Lakes", "Upper Midwest",
    "Tidewater", "Ozark", "Delta", "Cascade", "Sierra", "Chesapeake", "Twin Cities", "Appalachian",
    "Desert Southwest", "New England", "Lowcountry", "Bluegrass", "Heartland", "Panhandle",
    "Inland Empire", "Treasure Valley", "Red River", "Coastal Carolina",
];

pub const CITIES: &[(&str, &str, &str)] = &[
    ("Columbus", "OH", "432"), ("Dayton", "OH", "454"), ("Toledo", "OH", "436"),
    ("Indianapolis", "IN", "462"), ("Louisville", "KY", "402"), ("Lexington", "KY", "405"),
    ("Nashville", "TN", "372"), ("Knoxville", "TN", "379"), ("Charlotte", "NC", "282"),
    ("Raleigh", "NC", "276"), ("Richmond", "VA", "232"), ("Norfolk", "VA", "235"),
    ("Pittsburgh", "PA", "152"), ("Harrisburg", "PA", "171"), ("Albany", "NY", "122"),
    ("Syracuse", "NY", "132"), ("Hartford", "CT", "061"), ("Worcester", "MA", "016"),
    ("Portland", "ME", "041"), ("Burlington", "VT", "054"), ("Baltimore", "MD", "212"),
    ("Wilmington", "DE", "198"), ("Atlanta", "GA", "303"), ("Savannah", "GA", "314"),
    ("Birmingham", "AL", "352"), ("Jackson", "MS", "392"), ("Little Rock", "AR", "722"),
    ("Tulsa", "OK", "741"), ("Wichita", "KS", "672"), ("Omaha", "NE", "681"),
    ("Des Moines", "IA", "503"), ("Madison", "WI", "537"), ("Grand Rapids", "MI", "495"),
    ("Minneapolis", "MN", "554"), ("Fargo", "ND", "581"), ("Boise", "ID", "837"),
    ("Spokane", "WA", "992"), ("Eugene", "OR", "974"), ("Sacramento", "CA", "958"),
    ("Fresno", "CA", "937"), ("Reno", "NV", "895"), ("Tucson", "AZ", "857"),
    ("Albuquerque", "NM", "871"), ("El Paso", "TX", "799"), ("San Antonio", "TX", "782"),
    ("Baton Rouge", "LA", "708"), ("Tampa", "FL", "336"), ("Orlando", "FL", "328"),
    ("Denver", "CO", "802"), ("Salt Lake City", "UT", "841"),
];

pub const STREETS: &[&str] = &[
    "Main", "Oak", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Pine", "Church",
    "Manchester", "Jefferson", "Highland", "Sunset", "Ridge", "Walnut", "Spring", "Center", "Mill",
    "Medical Center", "University", "Riverview", "Commerce",
];

pub const STREET_TYPES: &[&str] = &["St", "Ave", "Blvd", "Rd", "Ln", "Dr", "Pkwy", "Ct", "Way"];

pub const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy",
    "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed",
    "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez",
    "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Chen", "Wang",
    "Singh", "Kumar", "Shah", "Cohen", "Schwartz", "Novak", "Kowalski", "Sullivan", "O'Brien",
    "McCarthy", "Whitaker", "Lindqvist", "Haddad", "Nakamura", "Tanaka", "Ivanova", "Mensah",
    "Adeyemi", "Van Buren", "De La Cruz",
];

/// State-wide models are named after places in their state.
pub const VERMONT_PLACES: &[&str] = &[
    "Burlington", "Rutland", "Montpelier", "Brattleboro", "St. Albans", "Bennington", "Middlebury",
    "Green Mountain",
];

pub const MARYLAND_PLACES: &[&str] = &[
    "Baltimore", "Annapolis", "Frederick", "Hagerstown", "Salisbury", "Rockville", "Towson",
    "Chesapeake",
];

pub const REGISTRY_SOCIETIES: &[&str] = &[
    "American College of", "American Society of", "National Association of",
    "American Academy of", "Alliance for", "Institute for", "Society of",
];

pub const FIRST_NAMES: &[&str] = &[
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
    "Sarah", "Christopher", "Karen", "Charles", "Lisa", "Daniel", "Nancy", "Matthew", "Betty",
    "Anthony", "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew",
    "Emily", "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda",
    "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca",
    "Jason", "Sharon", "Edward", "Cynthia", "Jeffrey", "Kathleen", "Ryan", "Amy", "Jacob",
    "Angela", "Gary", "Shirley", "Nicholas", "Brenda", "Eric", "Emma", "Jonathan", "Anna",
    "Priya", "Wei", "Mei", "Raj", "Ana", "Carlos", "Sofia", "Miguel", "Fatima", "Omar",
    "Aisha", "Hiroshi", "Yuki", "Olga", "Ivan", "Grace", "Samuel", "Hannah", "Noah", "Chloe",
    "Ethan", "Olivia", "Lucas", "Ava", "Benjamin", "Mia", "Nathan", "Zoe", "Isaac", "Leah",
];
