//! A cheap end-to-end check of the harness's own machinery: the trivial server
//! as a child process, found by its announced address, driven for a second by
//! the closed-loop and open-loop drivers with the real GraphQL client. No
//! timing assertions: only that requests were sent, answered and recorded.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use access_loadgen::client::TRIVIAL;
use access_loadgen::drive::{closed_loop, open_loop};
use access_loadgen::process::ServerProcess;
use access_loadgen::stats::Recorder;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_the_trivial_server_closed_and_open_loop() {
    let server = ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_loadgen")),
        &["trivial-server"],
        &[("ACCESS_LISTEN", "127.0.0.1:0".to_string())],
        Duration::from_secs(20),
    )
    .await
    .expect("the trivial server starts");
    let gql = server.gql();

    let (recorder, elapsed) = closed_loop(4, Duration::from_millis(700), |_, deadline| {
        let gql = gql.clone();
        async move {
            let mut recorder = Recorder::new();
            while Instant::now() < deadline {
                gql.timed(&mut recorder, "trivial", None, TRIVIAL, Value::Null)
                    .await;
            }
            recorder
        }
    })
    .await;
    let data = gql.call(None, TRIVIAL, Value::Null).await.unwrap();
    assert_eq!(data["__typename"], "Query");
    let stats = recorder.op("trivial");
    assert!(stats.count() > 0);
    assert_eq!(stats.error_count(), 0);
    assert!(elapsed >= Duration::from_millis(700));
    assert!(recorder.table(elapsed).contains("trivial"));

    let open = Arc::new(Mutex::new(Recorder::new()));
    let op_gql = gql.clone();
    open_loop(200.0, Duration::from_millis(300), open.clone(), move |_| {
        let gql = op_gql.clone();
        async move { ("open", gql.call(None, TRIVIAL, Value::Null).await.err()) }
    })
    .await;
    let open = open.lock().unwrap().op("open");
    assert_eq!(open.count(), 60, "every scheduled request is recorded");
    assert_eq!(open.error_count(), 0);

    // Not a server: /readyz is a 405 or 404, and the harness says so.
    assert!(gql.get("/readyz").await.is_ok());
    server.stop(Duration::from_secs(5)).await.unwrap();
}
