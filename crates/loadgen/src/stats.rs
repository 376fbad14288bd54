//! Latencies and errors per operation: a Vec of durations sorted once at the
//! end, which is exact and cheap enough for the few million samples of a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The samples of one operation.
#[derive(Clone, Debug, Default)]
pub struct OpStats {
    /// Latency of every attempt, successful or not.
    pub latencies: Vec<Duration>,
    /// Failed attempts by `extensions.code` (or `HTTP_<status>`, `TRANSPORT`, ...).
    pub errors: BTreeMap<String, u64>,
}

impl OpStats {
    pub fn count(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn ok_count(&self) -> u64 {
        self.count() - self.error_count()
    }

    pub fn merge(&mut self, other: OpStats) {
        self.latencies.extend(other.latencies);
        for (code, count) in other.errors {
            *self.errors.entry(code).or_default() += count;
        }
    }

    pub fn summary(&self) -> Summary {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        Summary {
            count: self.count(),
            errors: self.error_count(),
            p50: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
            p99: percentile(&sorted, 99.0),
            max: sorted.last().copied().unwrap_or_default(),
            mean: mean(&sorted),
        }
    }
}

/// The nearest-rank percentile of sorted samples (0 for none): the smallest
/// sample such that at least `p`% of the samples are at or below it.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn mean(samples: &[Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.iter().sum::<Duration>() / samples.len() as u32
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub count: u64,
    pub errors: u64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// Every operation of one run, by name, plus how long the run lasted.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    pub ops: BTreeMap<String, OpStats>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// One attempt of `op`: its latency and, if it failed, the error code.
    pub fn record(&mut self, op: &str, latency: Duration, error: Option<&str>) {
        let stats = match self.ops.get_mut(op) {
            Some(stats) => stats,
            None => self.ops.entry(op.to_string()).or_default(),
        };
        stats.latencies.push(latency);
        if let Some(code) = error {
            *stats.errors.entry(code.to_string()).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        for (op, stats) in other.ops {
            self.ops.entry(op).or_default().merge(stats);
        }
    }

    pub fn op(&self, op: &str) -> OpStats {
        self.ops.get(op).cloned().unwrap_or_default()
    }

    /// All operations whose name satisfies `pick`, pooled into one.
    pub fn pooled(&self, pick: impl Fn(&str) -> bool) -> OpStats {
        let mut pooled = OpStats::default();
        for (name, stats) in &self.ops {
            if pick(name) {
                pooled.merge(stats.clone());
            }
        }
        pooled
    }

    pub fn total_errors(&self) -> u64 {
        self.ops.values().map(OpStats::error_count).sum()
    }

    /// Errors of every operation, by code.
    pub fn errors_by_code(&self) -> BTreeMap<String, u64> {
        let mut codes = BTreeMap::new();
        for stats in self.ops.values() {
            for (code, count) in &stats.errors {
                *codes.entry(code.clone()).or_default() += count;
            }
        }
        codes
    }

    /// The per-operation table: count, errors by code, throughput over
    /// `elapsed`, p50/p95/p99/max in ms.
    pub fn table(&self, elapsed: Duration) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  {:<28} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}  errors by code",
            "operation", "count", "errors", "ops/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        for (name, stats) in &self.ops {
            let s = stats.summary();
            let codes: Vec<String> = stats
                .errors
                .iter()
                .map(|(code, count)| format!("{code}={count}"))
                .collect();
            let _ = writeln!(
                out,
                "  {:<28} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
                name,
                s.count,
                s.errors,
                s.count as f64 / seconds,
                ms(s.p50),
                ms(s.p95),
                ms(s.p99),
                ms(s.max),
                codes.join(" ")
            );
        }
        out
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted = millis(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
        let one = millis(&[7]);
        assert_eq!(percentile(&one, 1.0), Duration::from_millis(7));
        assert_eq!(percentile(&one, 99.0), Duration::from_millis(7));
    }

    #[test]
    fn summaries_merge_and_count_errors() {
        let mut a = Recorder::new();
        for v in [5, 1, 3] {
            a.record("x", Duration::from_millis(v), None);
        }
        let mut b = Recorder::new();
        b.record("x", Duration::from_millis(10), Some("CONFLICT"));
        b.record("y", Duration::from_millis(2), Some("INTERNAL"));
        a.merge(b);
        let x = a.op("x").summary();
        assert_eq!(x.count, 4);
        assert_eq!(x.errors, 1);
        assert_eq!(x.p50, Duration::from_millis(3));
        assert_eq!(x.max, Duration::from_millis(10));
        assert_eq!(x.mean, Duration::from_nanos(4_750_000));
        assert_eq!(a.total_errors(), 2);
        assert_eq!(a.errors_by_code().get("CONFLICT"), Some(&1));
        assert_eq!(a.pooled(|_| true).count(), 5);
        assert!(a.table(Duration::from_secs(1)).contains("CONFLICT=1"));
    }
}
