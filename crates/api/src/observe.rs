//! One choke point every root field passes through: it counts and times each
//! operation for `/metrics` and applies the per-person mutation rate limit.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use access_domain::identifiers::{OrganizationId, PersonId};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::parse_query;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{PathSegment, Response, ServerError, ServerResult, Variables};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::per_person::PerPerson;
use crate::remembered_reads::{
    authorize_about_the_caller_only, reads_remembered_pages_only, Written,
};
use crate::service::AccessService;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// The server's Prometheus metrics, rendered by hand in the text format: a
/// handful of series does not justify an exporter's dependencies.
#[derive(Default)]
pub struct Metrics {
    outcomes: Mutex<BTreeMap<(String, String), u64>>,
    latencies: Mutex<BTreeMap<String, Histogram>>,
    events_appended: AtomicU64,
    turned_away: AtomicU64,
    answers_sent_as_kept: AtomicU64,
}

impl Metrics {
    fn observe(&self, operation: &str, outcome: &str, elapsed: Duration) {
        *self
            .outcomes
            .lock()
            .expect("metrics lock")
            .entry((operation.to_string(), outcome.to_string()))
            .or_default() += 1;
        self.latencies
            .lock()
            .expect("metrics lock")
            .entry(operation.to_string())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    pub fn events_appended(&self, count: usize) {
        self.events_appended
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts a GraphQL request turned away for want of capacity; answers the count so far.
    pub(crate) fn answer_sent_as_kept(&self) {
        self.answers_sent_as_kept.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn turned_away(&self) -> u64 {
        self.turned_away.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut text = String::new();
        text.push_str("# HELP access_graphql_requests_total GraphQL root fields answered, by operation and outcome (ok or the error code).\n");
        text.push_str("# TYPE access_graphql_requests_total counter\n");
        for ((operation, outcome), count) in self.outcomes.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                text,
                "access_graphql_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        text.push_str("# HELP access_graphql_request_duration_seconds Time to execute the operation holding a GraphQL root field.\n");
        text.push_str("# TYPE access_graphql_request_duration_seconds histogram\n");
        for (operation, histogram) in self.latencies.lock().expect("metrics lock").iter() {
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                let _ = writeln!(
                    text,
                    "access_graphql_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                text,
                "access_graphql_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                text,
                "access_graphql_request_duration_seconds_sum{{operation=\"{operation}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                text,
                "access_graphql_request_duration_seconds_count{{operation=\"{operation}\"}} {}",
                histogram.count
            );
        }
        unlabelled_series(
            &mut text,
            "access_events_appended_total",
            "counter",
            "Events appended to the event store by this process.",
            self.events_appended.load(Ordering::Relaxed),
        );
        unlabelled_series(
            &mut text,
            "access_graphql_requests_turned_away_total",
            "counter",
            "GraphQL requests answered UNAVAILABLE (HTTP 503) unstarted, the process serving ACCESS_MAX_REQUESTS already.",
            self.turned_away.load(Ordering::Relaxed),
        );
        unlabelled_series(
            &mut text,
            "access_graphql_answers_sent_as_kept_total",
            "counter",
            "GraphQL answers sent as kept from an identical earlier read, unchanged since (docs/adr/13-remembered-answer-texts.md).",
            self.answers_sent_as_kept.load(Ordering::Relaxed),
        );
        text
    }
}

/// A series without labels, with its help and type lines, in the text format.
pub(crate) fn unlabelled_series(
    text: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
    let _ = writeln!(text, "{name} {value}");
}

/// Mutations allowed per person: a token bucket refilled at `per_second`,
/// holding at most `burst`. In memory, per process.
pub struct MutationLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<PerPerson<(f64, Instant)>>,
}

impl MutationLimit {
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst,
            buckets: Mutex::new(PerPerson::default()),
        }
    }

    fn take(&self, person: &PersonId) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("limit lock");
        // A bucket refilled to the full burst is the same as none at all.
        let refilled = Duration::from_secs_f64(self.burst / self.per_second);
        buckets.prune_when_grown(|(_, refilled_at)| now.duration_since(*refilled_at) >= refilled);
        let buckets = &mut buckets.entries;
        let (tokens, refilled_at) = buckets.entry(person.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*refilled_at).as_secs_f64() * self.per_second)
            .min(self.burst);
        *refilled_at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::TooManyMutations)
        }
    }
}

/// The operation a GraphQL request runs, by its root fields: what [`Metrics`]
/// counts and [`MutationLimit`] charges. Worked out from the parsed document by
/// the HTTP handler, not by an async-graphql extension: with any extension in the
/// schema, async-graphql wraps every field of every answer in the extensions'
/// hooks, which cost long answers a seventh of their throughput
/// (docs/performance.md, workload c).
pub(crate) struct Operation {
    is_mutation: bool,
    fields: Vec<RootField>,
    /// Whether its whole answer's text may be kept (crates/api/src/remembered_reads.rs).
    pub(crate) reads_remembered_pages_only: bool,
    /// When it asks `authorize` alone, about the caller: the organizations it asks
    /// about, on whose grants its answer's kept text depends.
    authorizes_in: Option<Vec<Written>>,
}

struct RootField {
    /// What `/metrics` counts it under.
    name: String,
    /// Where its errors are in the answer: the alias, or the name.
    key: String,
}

impl Operation {
    /// The operation the schema runs for `name`: the named one, or the only one;
    /// `None` when there is no such operation (the schema then answers why).
    pub(crate) fn of(document: &ExecutableDocument, name: Option<&str>) -> Option<Operation> {
        let definition = match (&document.operations, name) {
            (DocumentOperations::Single(definition), None) => definition,
            (DocumentOperations::Multiple(named), Some(name)) => named.get(name)?,
            (DocumentOperations::Multiple(named), None) if named.len() == 1 => {
                named.values().next()?
            }
            _ => return None,
        };
        let mut fields = Vec::new();
        root_fields(
            document,
            &definition.node.selection_set.node,
            &mut HashSet::new(),
            &mut fields,
        );
        Some(Operation {
            is_mutation: definition.node.ty == OperationType::Mutation,
            fields,
            reads_remembered_pages_only: reads_remembered_pages_only(document, &definition.node),
            authorizes_in: authorize_about_the_caller_only(document, &definition.node),
        })
    }

    /// The organizations an operation asking `authorize` alone about the caller asks
    /// about, with the request's variables; `None` for any other operation, or when one
    /// of them is not an organization's id.
    pub(crate) fn authorizes_in(&self, variables: &Variables) -> Option<Vec<OrganizationId>> {
        self.authorizes_in
            .as_ref()?
            .iter()
            .map(|written| OrganizationId::parse(written.text(variables)?).ok())
            .collect()
    }

    /// Charges an authenticated caller's mutations to their budget, and records the
    /// contact their token gives before the mutations run; refuses when the budget
    /// cannot cover them all, and then none of them runs.
    pub(crate) async fn admit(
        &self,
        service: &AccessService,
        caller: &Caller,
    ) -> Result<(), ApiError> {
        let Caller::Authenticated(identity) = caller else {
            return Ok(());
        };
        if !self.is_mutation {
            return Ok(());
        }
        let refused = self
            .fields
            .iter()
            .map(|_| service.mutation_limit().take(&identity.person))
            .find_map(Result::err);
        if let Some(refusal) = refused {
            return Err(refusal);
        }
        crate::notifications::remember(service, identity);
        Ok(())
    }

    /// The answer to a refused operation: one error per root field.
    pub(crate) fn refused(&self, refusal: ApiError) -> Response {
        let error = refused_operation(refusal);
        Response::from_errors(
            self.fields
                .iter()
                .map(|field| {
                    let mut refused = error.clone();
                    refused.path = vec![PathSegment::Field(field.key.clone())];
                    refused
                })
                .collect(),
        )
    }

    /// Counts each root field under the code of the first error at or under it, or
    /// of the first error of the whole request (validation, limits, timeout), else
    /// `ok`; all of them timed by the operation.
    pub(crate) fn observe(&self, metrics: &Metrics, response: &Response, started: Instant) {
        let elapsed = started.elapsed();
        let whole = response.errors.iter().find(|error| error.path.is_empty());
        for field in &self.fields {
            let outcome = response
                .errors
                .iter()
                .find(|error| {
                    matches!(error.path.first(), Some(PathSegment::Field(key)) if *key == field.key)
                })
                .or(whole)
                .map_or_else(|| "ok".to_string(), error_code);
            metrics.observe(&field.name, &outcome, elapsed);
        }
    }
}

/// Mutations sent over the WebSocket, which the HTTP handler never sees, are
/// charged and remember their sender like the others. Only on the WebSocket's
/// schema: an extension makes async-graphql wrap every field in its hooks.
pub(crate) struct WebSocketMutations;

impl ExtensionFactory for WebSocketMutations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(WebSocketMutations)
    }
}

#[async_trait::async_trait]
impl Extension for WebSocketMutations {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        let operation = parse_query(&request.query)
            .ok()
            .and_then(|document| Operation::of(&document, request.operation_name.as_deref()));
        if let (Some(operation), Some(service), Some(caller)) = (
            operation,
            ctx.data_opt::<AccessService>(),
            ctx.data_opt::<Caller>(),
        ) {
            if let Err(refusal) = operation.admit(service, caller).await {
                return Err(refused_operation(refusal));
            }
        }
        next.run(ctx, request).await
    }
}

/// A refusal before anything ran: its message and code, no place in the document.
fn refused_operation(refusal: ApiError) -> ServerError {
    let error = async_graphql::Error::from(refusal);
    let mut refused = ServerError::new(error.message, None);
    refused.extensions = error.extensions;
    refused
}

fn error_code(error: &ServerError) -> String {
    error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
        .map(|code| code.to_string().trim_matches('"').to_string())
        .unwrap_or_else(|| "INVALID_QUERY".to_string())
}

/// An operation's root fields, through the fragments spread at its root.
fn root_fields<'a>(
    document: &'a ExecutableDocument,
    selections: &'a SelectionSet,
    spread: &mut HashSet<&'a str>,
    fields: &mut Vec<RootField>,
) {
    for selection in &selections.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                // Introspection is not an operation of the product.
                if !field.name.node.starts_with("__") {
                    fields.push(RootField {
                        name: field.name.node.to_string(),
                        key: field.response_key().node.to_string(),
                    });
                }
            }
            Selection::InlineFragment(fragment) => {
                root_fields(document, &fragment.node.selection_set.node, spread, fields);
            }
            Selection::FragmentSpread(fragment) => {
                let name = fragment.node.fragment_name.node.as_str();
                // Validation, which comes later, refuses cycles; this must not loop first.
                if spread.insert(name) {
                    if let Some(definition) = document.fragments.get(name) {
                        root_fields(
                            document,
                            &definition.node.selection_set.node,
                            spread,
                            fields,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::per_person::FIRST_PRUNING_AT;

    fn person(number: usize) -> PersonId {
        PersonId::parse(&format!("person-{number}")).unwrap()
    }

    fn tracked(limit: &MutationLimit) -> usize {
        limit.buckets.lock().unwrap().entries.len()
    }

    fn root_fields_of(query: &str, name: Option<&str>) -> Option<(bool, Vec<(String, String)>)> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        Operation::of(&document, name).map(|operation| {
            let fields = operation
                .fields
                .into_iter()
                .map(|field| (field.name, field.key))
                .collect();
            (operation.is_mutation, fields)
        })
    }

    fn field(name: &str, key: &str) -> (String, String) {
        (name.to_string(), key.to_string())
    }

    const SCREENS_AND_DECIDE: &str =
        "query Screens { me { id } inbox: pendingRequests { totalCount } ...More __typename } \
         fragment More on Query { manageAccess { tabs { type } } ... on Query { authorize(organizationId: \"x\") { allowed } } } \
         mutation Decide { approveRoleRequest(requestId: \"r\") { state } }";

    #[test]
    fn an_operations_root_fields_are_found_under_their_aliases_and_through_fragments() {
        assert_eq!(
            root_fields_of(SCREENS_AND_DECIDE, Some("Screens")),
            Some((
                false,
                vec![
                    field("me", "me"),
                    field("pendingRequests", "inbox"),
                    field("manageAccess", "manageAccess"),
                    field("authorize", "authorize"),
                ]
            ))
        );
        assert_eq!(
            root_fields_of(SCREENS_AND_DECIDE, Some("Decide")),
            Some((
                true,
                vec![field("approveRoleRequest", "approveRoleRequest")]
            ))
        );
    }

    #[test]
    fn the_operation_is_picked_as_the_schema_picks_it() {
        assert!(root_fields_of(SCREENS_AND_DECIDE, None).is_none());
        assert!(root_fields_of(SCREENS_AND_DECIDE, Some("Other")).is_none());
        assert!(root_fields_of("{ me { id } }", Some("Named")).is_none());
        assert_eq!(
            root_fields_of("query Only { me { id } }", None),
            Some((false, vec![field("me", "me")]))
        );
    }

    #[test]
    fn fragments_spread_in_a_cycle_are_followed_once() {
        assert_eq!(
            root_fields_of(
                "{ ...A } fragment A on Query { me { id } ...B } fragment B on Query { ...A }",
                None
            ),
            Some((false, vec![field("me", "me")]))
        );
    }

    #[test]
    fn people_whose_buckets_refilled_are_forgotten_once_many_are_tracked() {
        // Full again a millisecond after each change.
        let limit = MutationLimit::new(1_000.0, 1.0);
        for number in 0..FIRST_PRUNING_AT {
            limit.take(&person(number)).unwrap();
        }
        assert_eq!(tracked(&limit), FIRST_PRUNING_AT);
        std::thread::sleep(Duration::from_millis(5));
        limit.take(&person(FIRST_PRUNING_AT)).unwrap();
        assert_eq!(tracked(&limit), 1);
    }

    #[test]
    fn a_person_who_spent_their_burst_stays_limited_through_a_pruning() {
        // A change a thousand seconds.
        let limit = MutationLimit::new(0.001, 1.0);
        limit.take(&person(0)).unwrap();
        for number in 1..=FIRST_PRUNING_AT {
            limit.take(&person(number)).unwrap();
        }
        assert!(limit.take(&person(0)).is_err());
        assert_eq!(tracked(&limit), FIRST_PRUNING_AT + 1);
    }
}
