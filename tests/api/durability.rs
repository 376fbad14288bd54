//! Acknowledged means durable: a server killed with SIGKILL at random moments
//! under load, and restarted on the same database, has stored every command it
//! acknowledged, and no command twice, however the clients retried.

use std::time::{Duration, Instant};

use access_store::testing::{fresh_databases, TestDatabase};

use crate::helpers::*;
use crate::load::{check_stored, Command, Load};

/// How hard to push.
struct Scale {
    kills: usize,
    /// Milliseconds between two kills, drawn from this range. A command in
    /// flight at a kill waits 20 s for its key to be given up, so kills
    /// closer than that leave fewer clients working each time.
    between_kills: std::ops::Range<u64>,
    requesters: usize,
    practices: usize,
}

/// A few kills for CI; more, spread over minutes, with `ACCESS_LONG_TESTS=1`.
fn scale() -> Scale {
    if long_tests() {
        Scale {
            kills: 12,
            between_kills: 5_000..30_000,
            requesters: 32,
            practices: 16,
        }
    } else {
        Scale {
            kills: 3,
            between_kills: 1_000..3_000,
            requesters: 8,
            practices: 4,
        }
    }
}

async fn kill_under_load(database: TestDatabase) {
    let label = database.label;
    let Scale {
        kills,
        between_kills,
        requesters,
        practices,
    } = scale();
    let mut server = ServerProcess::on(label, &database.url, &[]).await;
    let load = Load::prepare(&server.url, practices).await;
    let clients = load.start(requesters);

    let started = Instant::now();
    let mut kill_times = Vec::new();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(between_kills.clone()))).await;
        let before = load.acknowledged();
        server.kill();
        kill_times.push(format!(
            "{:.1}s ({before} acknowledged)",
            started.elapsed().as_secs_f64()
        ));
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..500))).await;
        server.restart().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ledger = load.finish(clients).await;

    let stored = check_stored(label, &database.url, &ledger).await;
    let count = |command| {
        ledger
            .acknowledged
            .iter()
            .filter(|(acknowledged, _)| *acknowledged == command)
            .count()
    };
    println!(
        "{label}: {kills} SIGKILLs at {kill_times:?}; {requesters} clients on {practices} \
         practices; {} commands acknowledged ({} requests, \
         {} withdrawals), {} of them only after being sent again with their key, {} more \
         run by a server that died before answering, answered ALREADY_APPLIED when retried; \
         {} events, \
         {} requests stored, none twice; {:.0}s in all",
        ledger.acknowledged.len(),
        count(Command::Request),
        count(Command::Withdraw),
        ledger.resent,
        ledger.already_applied,
        stored.events,
        stored.requests,
        started.elapsed().as_secs_f64()
    );
    assert!(
        ledger.resent > 0,
        "{label}: no kill caught a command in flight"
    );
    let internal = ledger
        .attempts
        .iter()
        .filter(|attempt| attempt.outcome == "INTERNAL")
        .count();
    assert_eq!(internal, 0, "{label}: {internal} INTERNAL answers");
    let logs = server.logs();
    assert!(
        !logs.contains("panicked"),
        "{label}: the server panicked:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_at_random_moments_under_load_keeps_every_acknowledged_command_once() {
    let runs = fresh_databases().await.into_iter().map(kill_under_load);
    futures_util::future::join_all(runs).await;
}
