//! async-graphql's own refusals of input quote the value refused: an enum value that
//! does not exist, a value of the wrong type (an object, with everything in it). A
//! client may have put a proof value or an SSN there, and an answer kept for an
//! idempotent retry is stored for a day. These messages keep the field and the type
//! and drop the value, which the client has anyway.

/// Where a quoted value starts in each of async-graphql's messages that carry one, and
/// what is said instead.
const QUOTING: [(&str, &str); 3] = [
    // Validation of a literal: `enumeration type "Role" does not contain the value "X"`.
    (
        " does not contain the value ",
        " does not contain the value sent",
    ),
    // Parsing a variable: `Failed to parse "Role": Enumeration type does not contain value "X".`
    (
        " does not contain value ",
        " does not contain the value sent.",
    ),
    // Any type: `Expected input type "String", found {ssn: "…"}.`
    (", found ", "; it was sent another type."),
];

/// What async-graphql may append after the value, which names a type, not a value.
const AFTER_THE_VALUE: &str = " (occurred while parsing \"";

/// `message` with the value it quotes replaced by a plain statement.
pub(crate) fn without_values(message: &str) -> String {
    let Some((start, instead)) = QUOTING
        .iter()
        .filter_map(|(marker, instead)| message.find(marker).map(|at| (at, *instead)))
        .min()
    else {
        return message.to_string();
    };
    format!(
        "{}{instead}{}",
        &message[..start],
        type_suffixes(&message[start..])
    )
}

/// The ` (occurred while parsing "Type")` suffixes that end `text`, each naming a type
/// (a GraphQL name, so never a value of digits); empty when `text` ends otherwise. Read
/// from the end, since the value before them may contain anything.
fn type_suffixes(text: &str) -> &str {
    let mut start = text.len();
    while let Some(body) = text[..start].strip_suffix("\")") {
        let Some(at) = body.rfind(AFTER_THE_VALUE) else {
            break;
        };
        let name = &body[at + AFTER_THE_VALUE.len()..];
        let is_type_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_type_name {
            break;
        }
        start = at;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn an_unknown_enum_value_is_not_quoted_back_whether_typed_inline_or_sent_as_a_variable() {
        assert_eq!(
            without_values(
                "Invalid value for argument \"input.role\", enumeration type \"Role\" does not contain the value \"SSN_123456789\""
            ),
            "Invalid value for argument \"input.role\", enumeration type \"Role\" does not contain the value sent"
        );
        assert_eq!(
            without_values(
                "Failed to parse \"Role\": Enumeration type does not contain value \"123-45-6789\". (occurred while parsing \"RequestRoleInput\")"
            ),
            "Failed to parse \"Role\": Enumeration type does not contain the value sent. (occurred while parsing \"RequestRoleInput\")"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_not_quoted_back_even_when_it_mimics_the_suffix() {
        assert_eq!(
            without_values("Expected input type \"String\", found {ssn: \"123-45-6789\"}."),
            "Expected input type \"String\"; it was sent another type."
        );
        assert_eq!(
            without_values(
                "Expected input type \"String\", found \"x (occurred while parsing \\\"123456789\". (occurred while parsing \"ProofInput\")"
            ),
            "Expected input type \"String\"; it was sent another type. (occurred while parsing \"ProofInput\")"
        );
    }

    #[test]
    fn a_value_imitating_a_type_suffix_is_dropped_with_the_rest_of_the_value() {
        assert_eq!(
            without_values(
                "Failed to parse \"Role\": Enumeration type does not contain value \"x (occurred while parsing \"123456789\")"
            ),
            "Failed to parse \"Role\": Enumeration type does not contain the value sent."
        );
    }

    #[test]
    fn messages_without_a_value_are_left_as_they_are() {
        let message = "Unknown field \"secret\" on type \"Query\".";
        assert_eq!(without_values(message), message);
    }
}
