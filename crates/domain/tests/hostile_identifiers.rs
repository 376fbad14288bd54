//! Hostile input at the edge: whatever a client sends, the identifier parsers
//! answer without panicking, refuse what is malformed without echoing it (it
//! may be an SSN), and accept every well-formed value, however it is spaced.

use access_domain::identifiers::{
    ApmEntityId, IdentifierError, Npi, OrganizationId, PersonId, Ptan, RoleRequestId, Ssn,
    TicketNumber, Tin, VendorId, VirtualGroupId,
};
use proptest::prelude::*;

/// Every parser, as the edge calls it; the error's text is what a client sees.
fn parse_everything(input: &str) -> Vec<Result<(), IdentifierError>> {
    vec![
        Tin::parse(input).map(drop),
        Npi::parse(input).map(drop),
        Ptan::parse(input).map(drop),
        Ssn::parse(input).map(drop),
        VirtualGroupId::parse(input).map(drop),
        ApmEntityId::parse(input).map(drop),
        VendorId::parse(input).map(drop),
        PersonId::parse(input).map(drop),
        OrganizationId::parse(input).map(drop),
        RoleRequestId::parse(input).map(drop),
        TicketNumber::parse(input).map(drop),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_text_is_parsed_or_refused_without_echoing_it(input in any::<String>()) {
        for refusal in parse_everything(&input).into_iter().filter_map(Result::err) {
            let message = refusal.to_string();
            prop_assert!(input.trim().len() < 3 || !message.contains(input.trim()), "{message:?} echoes {input:?}");
        }
    }

    #[test]
    fn digits_and_separators_never_panic_and_nine_digit_ssns_are_never_printed(
        digits in "[0-9]{9}",
        separators in proptest::collection::vec(prop_oneof![Just(""), Just("-"), Just(" ")], 9),
    ) {
        let typed: String = digits.chars().zip(&separators).flat_map(|(digit, separator)| [digit.to_string(), separator.to_string()]).collect();
        let ssn = Ssn::parse(&typed).expect("dashes and spaces are tolerated in an SSN");
        prop_assert_eq!(ssn.expose_digits(), digits.as_str());
        let printed = format!("{ssn:?}");
        prop_assert!(!printed.contains(&digits));
        let tin = Tin::parse(&typed).expect("dashes and spaces are tolerated in a TIN");
        prop_assert_eq!(tin.as_str(), digits.as_str());
    }

    #[test]
    fn every_nine_digits_with_their_check_digit_is_an_npi_and_any_other_last_digit_is_not(body in "[0-9]{9}", other in 0u8..10) {
        let check = Npi::check_digit(&body);
        let valid = format!("{body}{check}");
        prop_assert!(Npi::parse(&valid).is_ok());
        if other != check {
            let wrong = format!("{body}{other}");
            prop_assert!(Npi::parse(&wrong).is_err());
        }
    }

    #[test]
    fn organization_ids_round_trip(tin in "[0-9]{9}", id in "[A-Z0-9][A-Z0-9-]{0,20}") {
        for text in [format!("practice:{tin}"), format!("registry:{tin}"), format!("apm-entity:{id}"), format!("virtual-group:{id}")] {
            prop_assert_eq!(OrganizationId::parse(&text).unwrap().to_string(), text);
        }
    }
}
