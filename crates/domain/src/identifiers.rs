//! Identifiers parsed at the edge: a value of one of these types is valid by
//! construction, so the rules never re-check formats.
//!
//! Parse errors name what was expected but never echo the input, because the
//! input may be an SSN or a full proof value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why an identifier was refused; `Display` says what is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be {expected}")]
pub struct IdentifierError {
    pub kind: &'static str,
    pub expected: &'static str,
}

fn digits_only(input: &str, strip_separators: bool) -> String {
    input
        .chars()
        .filter(|c| !(strip_separators && (*c == '-' || c.is_whitespace())))
        .collect()
}

fn exactly_digits(
    input: &str,
    count: usize,
    strip_separators: bool,
    error: IdentifierError,
) -> Result<String, IdentifierError> {
    let cleaned = digits_only(input.trim(), strip_separators);
    if cleaned.len() == count && cleaned.bytes().all(|b| b.is_ascii_digit()) {
        Ok(cleaned)
    } else {
        Err(error)
    }
}

/// Replaces all but the last `keep` characters with `*`, e.g. `*****6789`.
pub fn mask_tail(value: &str, keep: usize) -> String {
    let count = value.chars().count();
    let hidden = count.saturating_sub(keep);
    value
        .chars()
        .enumerate()
        .map(|(index, c)| if index < hidden { '*' } else { c })
        .collect()
}

macro_rules! string_identifier {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdentifierError;
            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdentifierError;
            fn try_from(input: String) -> Result<Self, Self::Error> {
                Self::parse(&input)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// Taxpayer Identification Number: 9 digits; dashes and spaces are tolerated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tin(String);
string_identifier!(Tin);

impl Tin {
    pub const EXPECTED: IdentifierError = IdentifierError {
        kind: "TIN",
        expected: "9 digits (dashes and spaces are allowed)",
    };

    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        exactly_digits(input, 9, true, Self::EXPECTED).map(Self)
    }

    pub fn masked(&self) -> String {
        mask_tail(&self.0, 4)
    }
}

/// National Provider Identifier: 10 digits whose last is the Luhn check digit
/// computed over the prefix 80840 and the first nine digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Npi(String);
string_identifier!(Npi);

impl Npi {
    pub const EXPECTED: IdentifierError = IdentifierError {
        kind: "NPI",
        expected: "10 digits with a valid check digit",
    };

    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let digits = exactly_digits(input, 10, false, Self::EXPECTED)?;
        let (body, check) = digits.split_at(9);
        if Self::check_digit(body) == check.as_bytes()[0] - b'0' {
            Ok(Self(digits))
        } else {
            Err(Self::EXPECTED)
        }
    }

    /// The check digit for the first nine digits of an NPI (for generators).
    pub fn check_digit(first_nine: &str) -> u8 {
        let payload = format!("80840{first_nine}");
        // Luhn: double every second digit counting leftwards from the digit that
        // will sit next to the check digit.
        let sum: u32 = payload
            .bytes()
            .rev()
            .enumerate()
            .map(|(index, byte)| {
                let digit = u32::from(byte - b'0');
                if index % 2 == 0 {
                    let doubled = digit * 2;
                    if doubled > 9 {
                        doubled - 9
                    } else {
                        doubled
                    }
                } else {
                    digit
                }
            })
            .sum();
        ((10 - sum % 10) % 10) as u8
    }

    pub fn masked(&self) -> String {
        mask_tail(&self.0, 4)
    }

    /// Lets events say "the same NPI" without storing it as entered: the
    /// first 16 bytes of SHA-256 over a fixed prefix and the digits, in hex.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("access-npi:{}", self.0));
        digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Provider Transaction Access Number: 6 to 10 letters and digits; stored
/// upper-case so comparisons ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ptan(String);
string_identifier!(Ptan);

impl Ptan {
    pub const EXPECTED: IdentifierError = IdentifierError {
        kind: "PTAN",
        expected: "6 to 10 letters and digits",
    };

    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let trimmed = input.trim();
        if (6..=10).contains(&trimmed.len()) && trimmed.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(trimmed.to_ascii_uppercase()))
        } else {
            Err(Self::EXPECTED)
        }
    }

    pub fn masked(&self) -> String {
        mask_tail(&self.0, 2)
    }
}

/// Social Security Number: used once to verify a clinician and never stored,
/// serialized or printed; `Debug` is redacted and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Ssn(String);

impl Ssn {
    pub const EXPECTED: IdentifierError = IdentifierError {
        kind: "SSN",
        expected: "9 digits (dashes and spaces are allowed)",
    };

    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        exactly_digits(input, 9, true, Self::EXPECTED).map(Self)
    }

    /// The digits, for keyed hashing only.
    pub fn expose_digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Ssn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ssn(*********)")
    }
}

/// Identifiers issued by CMS (Virtual Group ID, APM Entity ID, Vendor ID, ...):
/// letters, digits and dashes, at most 32, compared upper-case.
fn issued_id(input: &str, error: IdentifierError) -> Result<String, IdentifierError> {
    let trimmed = input.trim();
    if !trimmed.is_empty()
        && trimmed.len() <= 32
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(trimmed.to_ascii_uppercase())
    } else {
        Err(error)
    }
}

macro_rules! issued_identifier {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);
        string_identifier!($name);

        impl $name {
            pub const EXPECTED: IdentifierError = IdentifierError {
                kind: $kind,
                expected: "letters, digits and dashes as issued (at most 32)",
            };

            pub fn parse(input: &str) -> Result<Self, IdentifierError> {
                issued_id(input, Self::EXPECTED).map(Self)
            }

            pub fn masked(&self) -> String {
                mask_tail(&self.0, 3)
            }
        }
    };
}

issued_identifier!(
    /// Virtual Group ID, e.g. `VG-00123`.
    VirtualGroupId,
    "Virtual Group ID"
);
issued_identifier!(
    /// APM Entity ID: ACO ID, CPC+ Practice Site ID, ESCO ID, OCM ID, ...
    ApmEntityId,
    "APM Entity ID"
);
issued_identifier!(
    /// CMS Vendor ID of a registry, e.g. `V000123`.
    VendorId,
    "Vendor ID"
);

/// The identity provider's subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonId(String);
string_identifier!(PersonId);

impl PersonId {
    pub const EXPECTED: IdentifierError = IdentifierError {
        kind: "person id",
        expected: "1 to 255 printable characters",
    };

    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        if !input.is_empty() && input.len() <= 255 && !input.chars().any(char::is_control) {
            Ok(Self(input.to_string()))
        } else {
            Err(Self::EXPECTED)
        }
    }
}

/// The four kinds of organization a person can connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrganizationKind {
    Practice,
    ApmEntity,
    Registry,
    VirtualGroup,
}

impl OrganizationKind {
    pub const ALL: [OrganizationKind; 4] = [
        OrganizationKind::Practice,
        OrganizationKind::ApmEntity,
        OrganizationKind::Registry,
        OrganizationKind::VirtualGroup,
    ];

    fn prefix(self) -> &'static str {
        match self {
            OrganizationKind::Practice => "practice",
            OrganizationKind::ApmEntity => "apm-entity",
            OrganizationKind::Registry => "registry",
            OrganizationKind::VirtualGroup => "virtual-group",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OrganizationKind::Practice => "Practice",
            OrganizationKind::ApmEntity => "APM Entity",
            OrganizationKind::Registry => "Registry",
            OrganizationKind::VirtualGroup => "Virtual Group",
        }
    }
}

/// The organization's key as issued upstream: TIN for practices and
/// registries, the ID for APM entities and virtual groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrganizationKey {
    Practice(Tin),
    ApmEntity(ApmEntityId),
    Registry(Tin),
    VirtualGroup(VirtualGroupId),
}

/// An organization's id, readable by support staff: `practice:123456789`,
/// `registry:234567891`, `apm-entity:A1234`, `virtual-group:VG-00123`.
/// It is also the aggregate id of the organization's event stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrganizationId(OrganizationKey);

impl OrganizationId {
    pub const EXPECTED: IdentifierError = IdentifierError {
        kind: "organization id",
        expected: "practice:<TIN>, registry:<TIN>, apm-entity:<ID> or virtual-group:<ID>",
    };

    pub fn new(key: OrganizationKey) -> Self {
        Self(key)
    }

    pub fn practice(tin: Tin) -> Self {
        Self(OrganizationKey::Practice(tin))
    }

    pub fn registry(tin: Tin) -> Self {
        Self(OrganizationKey::Registry(tin))
    }

    pub fn apm_entity(id: ApmEntityId) -> Self {
        Self(OrganizationKey::ApmEntity(id))
    }

    pub fn virtual_group(id: VirtualGroupId) -> Self {
        Self(OrganizationKey::VirtualGroup(id))
    }

    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let (prefix, key) = input.trim().split_once(':').ok_or(Self::EXPECTED)?;
        let key = match prefix {
            "practice" => OrganizationKey::Practice(Tin::parse(key)?),
            "registry" => OrganizationKey::Registry(Tin::parse(key)?),
            "apm-entity" => OrganizationKey::ApmEntity(ApmEntityId::parse(key)?),
            "virtual-group" => OrganizationKey::VirtualGroup(VirtualGroupId::parse(key)?),
            _ => return Err(Self::EXPECTED),
        };
        Ok(Self(key))
    }

    pub fn key(&self) -> &OrganizationKey {
        &self.0
    }

    pub fn kind(&self) -> OrganizationKind {
        match self.0 {
            OrganizationKey::Practice(_) => OrganizationKind::Practice,
            OrganizationKey::ApmEntity(_) => OrganizationKind::ApmEntity,
            OrganizationKey::Registry(_) => OrganizationKind::Registry,
            OrganizationKey::VirtualGroup(_) => OrganizationKind::VirtualGroup,
        }
    }

    /// The TIN or issued ID after the prefix.
    pub fn key_str(&self) -> &str {
        match &self.0 {
            OrganizationKey::Practice(tin) | OrganizationKey::Registry(tin) => tin.as_str(),
            OrganizationKey::ApmEntity(id) => id.as_str(),
            OrganizationKey::VirtualGroup(id) => id.as_str(),
        }
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind().prefix(), self.key_str())
    }
}

impl FromStr for OrganizationId {
    type Err = IdentifierError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl TryFrom<String> for OrganizationId {
    type Error = IdentifierError;
    fn try_from(input: String) -> Result<Self, Self::Error> {
        Self::parse(&input)
    }
}

impl From<OrganizationId> for String {
    fn from(value: OrganizationId) -> String {
        value.to_string()
    }
}

/// A role request: the organization it belongs to and a unique part, written
/// `practice:123456789/2f1c…`, so any command on it finds its aggregate
/// without a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleRequestId {
    pub organization: OrganizationId,
    pub request: Uuid,
}

impl RoleRequestId {
    pub const EXPECTED: IdentifierError = IdentifierError {
        kind: "request id",
        expected: "an id returned by requestRole (<organization id>/<uuid>)",
    };

    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let (organization, request) = input.trim().rsplit_once('/').ok_or(Self::EXPECTED)?;
        Ok(Self {
            organization: OrganizationId::parse(organization).map_err(|_| Self::EXPECTED)?,
            request: Uuid::parse_str(request).map_err(|_| Self::EXPECTED)?,
        })
    }
}

impl fmt::Display for RoleRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.organization, self.request)
    }
}

/// Help-desk ticket number: `CS` and 8 digits, e.g. `CS00000123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketNumber(String);
string_identifier!(TicketNumber);

impl TicketNumber {
    pub const EXPECTED: IdentifierError = IdentifierError {
        kind: "ticket number",
        expected: "CS followed by 8 digits",
    };
    pub const MAX_SERIAL: u64 = 99_999_999;

    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let upper = input.trim().to_ascii_uppercase();
        match upper.strip_prefix("CS") {
            Some(digits) if digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Self(upper))
            }
            _ => Err(Self::EXPECTED),
        }
    }

    /// The ticket for a serial number from the system-wide ticket sequence.
    pub fn from_serial(serial: u64) -> Result<Self, IdentifierError> {
        if (1..=Self::MAX_SERIAL).contains(&serial) {
            Ok(Self(format!("CS{serial:08}")))
        } else {
            Err(Self::EXPECTED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tin_tolerates_dashes_and_spaces_and_keeps_only_digits() {
        assert_eq!(Tin::parse(" 12-345 6789 ").unwrap().as_str(), "123456789");
    }

    #[test]
    fn a_tin_of_the_wrong_length_or_with_letters_is_refused() {
        for bad in ["12345678", "1234567890", "12345678A", "", "123.456.789"] {
            assert_eq!(Tin::parse(bad), Err(Tin::EXPECTED), "{bad:?}");
        }
    }

    #[test]
    fn an_npi_with_a_valid_luhn_check_digit_is_accepted() {
        for good in ["1234567893", "1245319599", "1003000126"] {
            assert!(Npi::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn an_npi_with_a_wrong_check_digit_or_format_is_refused() {
        for bad in [
            "1234567890",
            "123456789",
            "12345678931",
            "123-456-7893",
            "abcdefghij",
        ] {
            assert_eq!(Npi::parse(bad), Err(Npi::EXPECTED), "{bad:?}");
        }
    }

    #[test]
    fn an_npi_fingerprint_is_stable_distinct_and_not_the_npi() {
        let npi = Npi::parse("1234567893").unwrap();
        let other = Npi::parse("1245319599").unwrap();
        assert_eq!(npi.fingerprint(), npi.fingerprint());
        assert_ne!(npi.fingerprint(), other.fingerprint());
        assert_eq!(npi.fingerprint().len(), 32);
        assert!(!npi.fingerprint().contains("1234567893"));
    }

    #[test]
    fn the_npi_check_digit_makes_any_nine_digits_valid() {
        for body in ["000000000", "999999999", "123456789", "100300012"] {
            let npi = format!("{body}{}", Npi::check_digit(body));
            assert!(Npi::parse(&npi).is_ok(), "{npi}");
        }
    }

    #[test]
    fn a_ptan_is_six_to_ten_letters_or_digits_compared_upper_case() {
        assert_eq!(Ptan::parse("ab1234").unwrap().as_str(), "AB1234");
        for bad in ["AB123", "AB12345678X", "AB-1234", ""] {
            assert_eq!(Ptan::parse(bad), Err(Ptan::EXPECTED), "{bad:?}");
        }
    }

    #[test]
    fn an_ssn_never_shows_its_digits_when_debug_printed() {
        let ssn = Ssn::parse("123-45-6789").unwrap();
        assert_eq!(ssn.expose_digits(), "123456789");
        assert!(!format!("{ssn:?}").contains("6789"));
    }

    #[test]
    fn issued_ids_are_letters_digits_and_dashes_compared_upper_case() {
        assert_eq!(
            VirtualGroupId::parse("vg-00123").unwrap().as_str(),
            "VG-00123"
        );
        assert!(ApmEntityId::parse("A1234").is_ok());
        for bad in ["", "VG 001", "A/1", &"X".repeat(33)] {
            assert_eq!(VendorId::parse(bad), Err(VendorId::EXPECTED), "{bad:?}");
        }
    }

    #[test]
    fn organization_ids_round_trip_through_their_text_form() {
        for text in [
            "practice:123456789",
            "registry:234567891",
            "apm-entity:A1234",
            "virtual-group:VG-00123",
        ] {
            assert_eq!(OrganizationId::parse(text).unwrap().to_string(), text);
        }
        assert!(OrganizationId::parse("practice:12345").is_err());
        assert!(OrganizationId::parse("clinic:123456789").is_err());
    }

    #[test]
    fn a_role_request_id_carries_its_organization() {
        let id = RoleRequestId {
            organization: OrganizationId::parse("practice:123456789").unwrap(),
            request: Uuid::nil(),
        };
        let parsed = RoleRequestId::parse(&id.to_string()).unwrap();
        assert_eq!(parsed, id);
        assert!(RoleRequestId::parse("practice:123456789").is_err());
    }

    #[test]
    fn ticket_numbers_are_cs_and_eight_digits() {
        assert_eq!(
            TicketNumber::from_serial(123).unwrap().as_str(),
            "CS00000123"
        );
        assert!(TicketNumber::from_serial(0).is_err());
        assert!(TicketNumber::from_serial(100_000_000).is_err());
        assert_eq!(
            TicketNumber::parse("cs00000123").unwrap().as_str(),
            "CS00000123"
        );
        assert!(TicketNumber::parse("CS123").is_err());
    }

    #[test]
    fn masking_keeps_only_the_tail() {
        assert_eq!(Tin::parse("123456789").unwrap().masked(), "*****6789");
        assert_eq!(Ptan::parse("AB1234").unwrap().masked(), "****34");
    }
}
