//! `loadgen <workload> [options]`: see README.md and `loadgen help`.

use std::path::PathBuf;
use std::process::ExitCode;

use access_loadgen::db::Kind;
use access_loadgen::harness::{markdown, Harness, Options, Row};

const USAGE: &str = "\
usage: loadgen WORKLOAD [options]

Starts target/release/access-server as a child process on a fresh database and
generated reference data, drives it over HTTP/GraphQL and prints, per operation:
count, errors by code, ops/s and p50/p95/p99/max latency. Build first:
    cargo build --release && cargo run --release -p access-loadgen -- all

workloads:
  all            everything below (SQLite spread included) plus the baselines,
                 then one markdown table: workload | figure | baseline | ratio | target | met
  baselines      pgbench one-row INSERT (TPS) and the trivial axum handler (HTTP ceiling)
  spread         (a) first-SO requests, staff requests and approvals over many organizations;
                 on PostgreSQL, pgbench before and after it, the ratio against their mean
  hot            (b) one registry, thousands of users, one writer per Security Official (PostgreSQL)
  reads          (c) manageAccess, pendingRequests, authorize closed loop; authorize at a constant rate,
                 in turns with the trivial handler at that rate (its p99 beside authorize's)
  long-history   (d) a command on a 100,000-event organization vs a fresh one
  rebuild        (e) `access-server rebuild all` over 1,000,000 events, then (f) idle RSS on them
  start-up       (f) spawn to /readyz with 100,000 organizations and 500,000 clinicians, RSS
  soak           staff requests (approved, denied, revoked again) and the reads of (c)
                 at --rate for --minutes, reported every minute (p99 per operation,
                 server RSS, projector lag)

options (defaults in brackets):
  --seconds N              measured time of each phase [10]
  --clients N              concurrent closed-loop clients [32]
  --database postgres|sqlite   database of spread/hot/reads/start-up/soak [postgres]
                           (hot, long-history and rebuild are PostgreSQL only)
  --postgres URL           admin URL where databases are created and dropped
                           [postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
  --server PATH            the server binary [target/release/access-server]
  --organizations N        organizations of spread [1000]
  --hot-users N            users of the hot registry before measuring [2000]
  --rate R                 authorize requests/s in reads [5000]; soak's total rate [250]
  --history-events N       events of the long-history organization [100000]
  --rebuild-events N       events stored for rebuild [1000000]
  --startup-organizations N, --startup-clinicians N   start-up's data [100000, 500000]
  --minutes M              soak duration [30]
  --report-every S         soak report interval in seconds [60]
  --cache-events N         the server's ACCESS_CACHE_EVENTS [its default, 250000]
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::FAILURE;
    };
    if matches!(command.as_str(), "help" | "--help" | "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    if command == "trivial-server" {
        let listen = std::env::var("ACCESS_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
        return match runtime.block_on(access_loadgen::trivial::serve(&listen)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("trivial-server: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match parse(command, rest) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("loadgen: {error}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let harness = match Harness::new(options) {
        Ok(harness) => harness,
        Err(error) => {
            eprintln!("loadgen: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("({})", access_loadgen::process::machine_load());
    let result = runtime.block_on(run(&harness, command));
    println!("({})", access_loadgen::process::machine_load());
    harness.cleanup();
    match result {
        Ok(rows) => {
            println!("\n{}", markdown(&rows));
            if rows.iter().any(|row| row.figure.starts_with("FAILED")) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(harness: &Harness, command: &str) -> Result<Vec<Row>, String> {
    let kind = harness.options.database;
    match command {
        "baselines" => {
            let mut rows = harness.pgbench().await?.1;
            rows.extend(harness.http_ceiling().await?.1);
            Ok(rows)
        }
        "spread" => {
            let tps = match kind {
                Kind::Postgres => Some(harness.pgbench().await?.0),
                Kind::Sqlite => None,
            };
            harness.spread(kind, tps).await
        }
        "hot" => harness.hot().await,
        "reads" => {
            let ceiling = harness.http_ceiling().await?.0;
            harness.reads(Some(ceiling)).await
        }
        "long-history" => harness.long_history().await,
        "rebuild" => harness.rebuild().await,
        "start-up" => harness.start_up().await,
        "soak" => harness.soak().await,
        "all" => Ok(all(harness).await),
        other => Err(format!("unknown workload {other:?}")),
    }
}

/// Every workload; a failing one becomes a FAILED row and the run goes on.
async fn all(harness: &Harness) -> Vec<Row> {
    let mut rows = Vec::new();
    let started = std::time::Instant::now();
    // pgbench last, right before (a), which runs it again after itself.
    let ceiling = match harness.http_ceiling().await {
        Ok((ceiling, more)) => {
            rows.extend(more);
            Some(ceiling)
        }
        Err(error) => {
            rows.push(Row::failed_row("baseline: HTTP ceiling", &error));
            None
        }
    };
    let tps = match harness.pgbench().await {
        Ok((tps, more)) => {
            rows.extend(more);
            Some(tps)
        }
        Err(error) => {
            rows.push(Row::failed_row("baseline: pgbench", &error));
            None
        }
    };
    let load = || println!("  ({})", access_loadgen::process::machine_load());
    let record = |rows: &mut Vec<Row>, name: &str, outcome: Result<Vec<Row>, String>| {
        match outcome {
            Ok(more) => rows.extend(more),
            Err(error) => {
                println!("\n{name} FAILED: {error}");
                rows.push(Row::failed_row(name, &error));
            }
        }
        load();
    };
    load();
    record(
        &mut rows,
        "(a) spread (PostgreSQL)",
        harness.spread(Kind::Postgres, tps).await,
    );
    record(
        &mut rows,
        "(a) spread (SQLite)",
        harness.spread(Kind::Sqlite, None).await,
    );
    record(&mut rows, "(b) hot registry", harness.hot().await);
    record(&mut rows, "(c) reads", harness.reads(ceiling).await);
    record(&mut rows, "(d) long history", harness.long_history().await);
    record(
        &mut rows,
        "(e) rebuild / (f) idle RSS",
        harness.rebuild().await,
    );
    record(&mut rows, "(f) start-up", harness.start_up().await);
    println!(
        "\nall workloads in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    rows
}

fn parse(command: &str, rest: &[String]) -> Result<Options, String> {
    let mut options = Options::defaults(default_server());
    if command == "soak" {
        options.rate = options.soak_rate;
    }
    let mut args = rest.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || -> Result<usize, String> {
            value
                .replace('_', "")
                .parse()
                .map_err(|_| format!("{flag}: expected a whole number, got {value:?}"))
        };
        match flag.as_str() {
            "--seconds" => options.seconds = number()? as u64,
            "--clients" => options.clients = number()?.max(1),
            "--database" => {
                options.database = match value.as_str() {
                    "postgres" | "postgresql" => Kind::Postgres,
                    "sqlite" => Kind::Sqlite,
                    other => {
                        return Err(format!(
                            "--database: expected postgres or sqlite, got {other:?}"
                        ))
                    }
                }
            }
            "--postgres" => options.postgres = value.clone(),
            "--server" => options.server = PathBuf::from(value),
            "--organizations" => options.organizations = number()?.max(1),
            "--hot-users" => options.hot_users = number()?,
            "--rate" => {
                options.rate = value
                    .parse()
                    .map_err(|_| format!("--rate: expected a number, got {value:?}"))?
            }
            "--history-events" => options.history_events = number()?.max(10),
            "--rebuild-events" => options.rebuild_events = number()?.max(10),
            "--startup-organizations" => options.startup_organizations = number()?,
            "--startup-clinicians" => options.startup_clinicians = number()?,
            "--minutes" => {
                options.minutes = value
                    .parse()
                    .map_err(|_| format!("--minutes: expected a number, got {value:?}"))?
            }
            "--report-every" => options.report_every = number()? as u64,
            "--cache-events" => options.cache_events = Some(number()?),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if command == "soak" {
        options.soak_rate = options.rate;
    }
    Ok(options)
}

/// `access-server` next to this binary (both are in target/release), else
/// target/release/access-server under the current directory.
fn default_server() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let sibling = dir.join("access-server");
            if sibling.exists() {
                return sibling;
            }
        }
    }
    PathBuf::from("target/release/access-server")
}
