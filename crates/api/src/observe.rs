//! One choke point every root field passes through: it counts and times each
//! operation for `/metrics` and applies the per-person mutation rate limit.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use access_domain::identifiers::PersonId;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerError, ServerResult, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::per_person::PerPerson;
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
    pub(crate) fn turned_away(&self) -> u64 {
        self.turned_away.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut text = String::new();
        text.push_str("# HELP access_graphql_requests_total GraphQL root fields resolved, by operation and outcome (ok or the error code).\n");
        text.push_str("# TYPE access_graphql_requests_total counter\n");
        for ((operation, outcome), count) in self.outcomes.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                text,
                "access_graphql_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        text.push_str("# HELP access_graphql_request_duration_seconds Time to resolve a GraphQL root field.\n");
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

/// The async-graphql extension behind [`Metrics`] and [`MutationLimit`].
pub struct Observe {
    pub metrics: Arc<Metrics>,
    pub mutation_limit: Arc<MutationLimit>,
}

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveRequest {
            metrics: self.metrics.clone(),
            mutation_limit: self.mutation_limit.clone(),
        })
    }
}

struct ObserveRequest {
    metrics: Arc<Metrics>,
    mutation_limit: Arc<MutationLimit>,
}

#[async_trait::async_trait]
impl Extension for ObserveRequest {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        let operation = info.name.to_string();
        let started = Instant::now();
        let limited = match (info.parent_type, ctx.data_opt::<Caller>()) {
            ("Mutation", Some(Caller::Authenticated(identity))) => {
                let refused = self.mutation_limit.take(&identity.person).err();
                if let (None, Some(service)) = (&refused, ctx.data_opt::<AccessService>()) {
                    crate::notifications::remember(service, identity).await;
                }
                refused
            }
            _ => None,
        };
        let result = match limited {
            Some(refusal) => {
                let error = async_graphql::Error::from(refusal);
                let mut refused = ServerError::new(error.message, None);
                refused.extensions = error.extensions;
                Err(refused)
            }
            None => next.run(ctx, info).await,
        };
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(error) => error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                .map(|code| code.to_string().trim_matches('"').to_string())
                .unwrap_or_else(|| "INVALID_QUERY".to_string()),
        };
        self.metrics
            .observe(&operation, &outcome, started.elapsed());
        result
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
