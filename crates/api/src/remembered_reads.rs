//! Which GraphQL operations read nothing but the caller's Manage Access page and pending
//! queue, which the process writing the access view remembers (ADR 12), and reference
//! data, which never changes while the server runs. The whole answer to such an operation
//! can be kept as text and sent again until those pages are forgotten
//! (docs/adr/13-remembered-answer-texts.md).

use std::collections::HashSet;

use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
};

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

/// Whether `operation` is a query selecting only fields of [`SHAPES`].
pub(crate) fn reads_remembered_pages_only(
    document: &ExecutableDocument,
    operation: &OperationDefinition,
) -> bool {
    operation.ty == OperationType::Query
        && selects_only(
            document,
            "Query",
            &operation.selection_set.node,
            &mut HashSet::new(),
        )
}

fn selects_only<'a>(
    document: &'a ExecutableDocument,
    type_name: &str,
    selections: &'a SelectionSet,
    spread: &mut HashSet<&'a str>,
) -> bool {
    let Some((_, fields)) = SHAPES.iter().find(|(name, _)| *name == type_name) else {
        return false;
    };
    selections
        .items
        .iter()
        .all(|selection| match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                let name = field.name.node.as_str();
                if name == "__typename" {
                    return true;
                }
                match fields.iter().find(|(allowed, _)| *allowed == name) {
                    None => false,
                    Some((_, None)) => field.selection_set.node.items.is_empty(),
                    Some((_, Some(held))) => {
                        selects_only(document, held, &field.selection_set.node, spread)
                    }
                }
            }
            Selection::InlineFragment(fragment) => {
                let fragment = &fragment.node;
                fragment
                    .type_condition
                    .as_ref()
                    .is_none_or(|condition| condition.node.on.node.as_str() == type_name)
                    && selects_only(document, type_name, &fragment.selection_set.node, spread)
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
                        || selects_only(
                            document,
                            type_name,
                            &definition.node.selection_set.node,
                            spread,
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

    #[test]
    fn a_cycle_of_fragments_is_judged_without_looping() {
        assert!(remembered(
            "{ manageAccess { ...A } } fragment A on ManageAccess { tabs { type } ...B } \
             fragment B on ManageAccess { ...A }"
        ));
    }
}
