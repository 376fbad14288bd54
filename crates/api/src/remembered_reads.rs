//! Which GraphQL operations read nothing but the caller's Manage Access page and pending
//! queue, which the process writing the access view remembers (ADR 12), and reference
//! data, which never changes while the server runs; and which ask nothing but `authorize`
//! about the caller, whose answer reads the grants of the organizations asked about. The
//! whole answer to such an operation can be kept as text and sent again until those pages,
//! or a change to those organizations, make the process that writes the access view
//! forget it (docs/adr/13-remembered-answer-texts.md).

use std::collections::HashSet;

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Value, Variables};

type Fields = &'static [(&'static str, Option<&'static str>)];

/// The fields such an answer may hold, by type, each with the type of the object it holds
/// (`None` for a scalar or an enum). A field missing here makes the operation an ordinary
/// one: `Organization.hasSecurityOfficial` reads the organization's grants, which a
/// connection's page does not always depend on, and `RoleRequest.ticket` the support view.
const SHAPES: &[(&str, Fields)] = &[
    (
        "Query",
        &[
            ("manageAccess", Some("ManageAccess")),
            ("pendingRequests", Some("RoleRequestConnection")),
        ],
    ),
    (
        "ManageAccess",
        &[
            ("tabs", Some("ManageAccessTab")),
            ("openRequests", Some("RoleRequest")),
            ("performanceFeedbackOrganizations", Some("Organization")),
        ],
    ),
    (
        "ManageAccessTab",
        &[
            ("type", None),
            ("connections", Some("ManageAccessConnection")),
        ],
    ),
    (
        "ManageAccessConnection",
        &[
            ("organization", Some("Organization")),
            ("role", None),
            ("connectedUsers", None),
            ("pendingUsers", None),
        ],
    ),
    (
        "Organization",
        &[
            ("id", None),
            ("type", None),
            ("legalBusinessName", None),
            ("tin", None),
            ("apmModel", None),
            ("apmEntityId", None),
            ("virtualGroupId", None),
            ("address", None),
        ],
    ),
    (
        "RoleRequest",
        &[
            ("id", None),
            ("organization", Some("Organization")),
            ("requester", Some("Person")),
            ("role", None),
            ("state", None),
            ("submittedAt", None),
            ("decidedAt", None),
            ("decidedBy", Some("Person")),
            ("reason", None),
            ("failedAttempts", None),
        ],
    ),
    // Known by id only in these answers: names and emails come from the caller's token.
    (
        "Person",
        &[("id", None), ("displayName", None), ("email", None)],
    ),
    (
        "RoleRequestConnection",
        &[
            ("edges", Some("RoleRequestEdge")),
            ("pageInfo", Some("PageInfo")),
            ("totalCount", None),
        ],
    ),
    (
        "RoleRequestEdge",
        &[("cursor", None), ("node", Some("RoleRequest"))],
    ),
    ("PageInfo", &[("hasNextPage", None), ("endCursor", None)]),
];

/// The fields of `authorize`'s answer, all read from the grant and the capability matrix.
const DECISION: &[(&str, Fields)] = &[(
    "Decision",
    &[("allowed", None), ("role", None), ("reason", None)],
)];

/// Whether `operation` is a query selecting only fields of [`SHAPES`].
pub(crate) fn reads_remembered_pages_only(
    document: &ExecutableDocument,
    operation: &OperationDefinition,
) -> bool {
    operation.ty == OperationType::Query
        && selects_only(
            document,
            SHAPES,
            "Query",
            &operation.selection_set.node,
            &mut HashSet::new(),
        )
}

/// An `organizationId` argument as the document writes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Written {
    Text(String),
    Variable(Name),
}

impl Written {
    /// Its text, given the request's variables; `None` for a variable not sent (left to
    /// its default) or not a string.
    pub(crate) fn text<'a>(&'a self, variables: &'a Variables) -> Option<&'a str> {
        match self {
            Written::Text(text) => Some(text),
            Written::Variable(name) => match variables.get(name)? {
                Value::String(text) => Some(text),
                _ => None,
            },
        }
    }
}

/// When `operation` is a query of nothing but `authorize` about the caller (without
/// `personId`) and fields of its `Decision`, the `organizationId` each asks about, as
/// written. The answer then depends on the caller's grants in those organizations
/// alone: the same for every token of that person.
pub(crate) fn authorize_about_the_caller_only(
    document: &ExecutableDocument,
    operation: &OperationDefinition,
) -> Option<Vec<Written>> {
    if operation.ty != OperationType::Query {
        return None;
    }
    let mut organizations = Vec::new();
    let only = every_field(
        document,
        "Query",
        &operation.selection_set.node,
        &mut HashSet::new(),
        &mut |field, _| match field.name.node.as_str() {
            "__typename" => true,
            "authorize" => match organization_asked_about(field) {
                Some(organization) => {
                    organizations.push(organization);
                    selects_only(
                        document,
                        DECISION,
                        "Decision",
                        &field.selection_set.node,
                        &mut HashSet::new(),
                    )
                }
                None => false,
            },
            _ => false,
        },
    );
    (only && !organizations.is_empty()).then_some(organizations)
}

/// The `organizationId` of an `authorize` field with no argument but it and the
/// capability: `personId` makes the answer depend on the token's roles.
fn organization_asked_about(field: &Field) -> Option<Written> {
    let mut organization = None;
    for (name, value) in &field.arguments {
        match name.node.as_str() {
            "organizationId" => {
                // Variables are the only way into a value that fails.
                organization = Some(match value.node.clone().into_const_with(Err) {
                    Ok(Value::String(text)) => Written::Text(text),
                    Err(name) => Written::Variable(name),
                    Ok(_) => return None,
                });
            }
            "capability" => {}
            _ => return None,
        }
    }
    organization
}

fn selects_only<'a>(
    document: &'a ExecutableDocument,
    shapes: &[(&str, Fields)],
    type_name: &str,
    selections: &'a SelectionSet,
    spread: &mut HashSet<&'a str>,
) -> bool {
    let Some((_, fields)) = shapes.iter().find(|(name, _)| *name == type_name) else {
        return false;
    };
    every_field(
        document,
        type_name,
        selections,
        spread,
        &mut |field, spread| {
            let name = field.name.node.as_str();
            if name == "__typename" {
                return true;
            }
            match fields.iter().find(|(allowed, _)| *allowed == name) {
                None => false,
                Some((_, None)) => field.selection_set.node.items.is_empty(),
                Some((_, Some(held))) => {
                    selects_only(document, shapes, held, &field.selection_set.node, spread)
                }
            }
        },
    )
}

/// Whether `judge` accepts every field `selections` select on `type_name`, through
/// fragments on that type; a fragment on another type, or unknown, is refused.
fn every_field<'a>(
    document: &'a ExecutableDocument,
    type_name: &str,
    selections: &'a SelectionSet,
    spread: &mut HashSet<&'a str>,
    judge: &mut impl FnMut(&'a Field, &mut HashSet<&'a str>) -> bool,
) -> bool {
    selections
        .items
        .iter()
        .all(|selection| match &selection.node {
            Selection::Field(field) => judge(&field.node, spread),
            Selection::InlineFragment(fragment) => {
                let fragment = &fragment.node;
                fragment
                    .type_condition
                    .as_ref()
                    .is_none_or(|condition| condition.node.on.node.as_str() == type_name)
                    && every_field(
                        document,
                        type_name,
                        &fragment.selection_set.node,
                        spread,
                        judge,
                    )
            }
            Selection::FragmentSpread(fragment) => {
                let name = fragment.node.fragment_name.node.as_str();
                let Some(definition) = document.fragments.get(name) else {
                    return false;
                };
                // A fragment already being looked at is judged there; this must not loop
                // before validation refuses a cycle.
                definition.node.type_condition.node.on.node.as_str() == type_name
                    && (!spread.insert(name)
                        || every_field(
                            document,
                            type_name,
                            &definition.node.selection_set.node,
                            spread,
                            judge,
                        ))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::DocumentOperations;

    fn remembered(query: &str) -> bool {
        let document = parse_query(query).unwrap();
        let operation = match &document.operations {
            DocumentOperations::Single(operation) => operation,
            DocumentOperations::Multiple(named) => named.values().next().unwrap(),
        };
        reads_remembered_pages_only(&document, &operation.node)
    }

    #[test]
    fn the_screens_documents_read_remembered_pages_only() {
        assert!(remembered(
            "{ manageAccess { tabs { type connections { organization { id legalBusinessName tin } \
               role connectedUsers pendingUsers } } openRequests { id state organization { id } } \
               performanceFeedbackOrganizations { id } } }"
        ));
        assert!(remembered(
            "query Queue($org: ID, $after: String) { pendingRequests(organizationId: $org, first: 20, after: $after) { \
               totalCount pageInfo { hasNextPage endCursor } \
               edges { cursor node { id requester { id } organization { id } submittedAt } } } }"
        ));
    }

    #[test]
    fn fragments_on_the_right_types_and_typenames_are_followed() {
        assert!(remembered(
            "query { __typename manageAccess { ...Page } } \
             fragment Page on ManageAccess { __typename openRequests { ... on RoleRequest { ...Request } } } \
             fragment Request on RoleRequest { id requester { id } }"
        ));
    }

    #[test]
    fn a_field_read_from_elsewhere_makes_the_operation_an_ordinary_one() {
        assert!(!remembered(
            "{ manageAccess { tabs { connections { organization { hasSecurityOfficial } } } } }"
        ));
        assert!(!remembered(
            "{ pendingRequests { edges { node { ticket { number } } } } }"
        ));
        assert!(!remembered("{ manageAccess { tabs { type } } me { id } }"));
        assert!(!remembered(
            "{ manageAccess { tabs { type } } __schema { queryType { name } } }"
        ));
    }

    #[test]
    fn a_fragment_spread_hiding_such_a_field_is_looked_into() {
        assert!(!remembered(
            "{ manageAccess { openRequests { ...Request } } } \
             fragment Request on RoleRequest { id ticket { number } }"
        ));
        assert!(!remembered(
            "{ manageAccess { openRequests { ... on RoleRequest { ticket { number } } } } }"
        ));
    }

    #[test]
    fn mutations_unknown_fragments_and_mistyped_fragments_are_ordinary() {
        assert!(!remembered("mutation { manageAccess { tabs { type } } }"));
        assert!(!remembered("{ manageAccess { ...Missing } }"));
        assert!(!remembered(
            "{ manageAccess { ...Elsewhere } } fragment Elsewhere on Query { me { id } }"
        ));
    }

    fn authorizes_in(query: &str) -> Option<Vec<Written>> {
        let document = parse_query(query).unwrap();
        let DocumentOperations::Single(operation) = &document.operations else {
            unreachable!("one operation")
        };
        authorize_about_the_caller_only(&document, &operation.node)
    }

    #[test]
    fn authorize_about_the_caller_names_the_organizations_it_asks_about() {
        assert_eq!(
            authorizes_in(
                "query($org: ID!) { authorize(organizationId: $org, capability: SUBMIT_DATA) { allowed role reason } }"
            ),
            Some(vec![Written::Variable(Name::new("org"))])
        );
        assert_eq!(
            authorizes_in(
                "{ __typename a: authorize(organizationId: \"practice:123456789\", capability: SUBMIT_DATA) { allowed } \
                   ...More } \
                 fragment More on Query { b: authorize(organizationId: \"registry:234567891\", capability: MANAGE_ACCESS) { __typename role } }"
            ),
            Some(vec![
                Written::Text("practice:123456789".into()),
                Written::Text("registry:234567891".into()),
            ])
        );
    }

    #[test]
    fn authorize_about_someone_else_or_beside_other_fields_is_ordinary() {
        assert_eq!(
            authorizes_in(
                "{ authorize(personId: \"bob\", organizationId: \"practice:123456789\", capability: SUBMIT_DATA) { allowed } }"
            ),
            None
        );
        assert_eq!(
            authorizes_in(
                "{ authorize(organizationId: \"practice:123456789\", capability: SUBMIT_DATA) { allowed } me { id } }"
            ),
            None
        );
        assert_eq!(
            authorizes_in(
                "mutation { authorize(organizationId: \"practice:123456789\", capability: SUBMIT_DATA) { allowed } }"
            ),
            None
        );
        assert_eq!(authorizes_in("{ __typename }"), None);
    }

    #[test]
    fn an_organization_written_as_a_variable_is_read_from_the_request() {
        let variables =
            Variables::from_json(serde_json::json!({ "org": "practice:123456789", "n": 1 }));
        assert_eq!(
            Written::Variable(Name::new("org")).text(&variables),
            Some("practice:123456789")
        );
        assert_eq!(Written::Variable(Name::new("n")).text(&variables), None);
        assert_eq!(
            Written::Variable(Name::new("missing")).text(&variables),
            None
        );
    }

    #[test]
    fn a_cycle_of_fragments_is_judged_without_looping() {
        assert!(remembered(
            "{ manageAccess { ...A } } fragment A on ManageAccess { tabs { type } ...B } \
             fragment B on ManageAccess { ...A }"
        ));
    }
}
