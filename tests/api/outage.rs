//! A database outage under load, without touching the real PostgreSQL: the
//! server reaches it through a TCP proxy that the test cuts (every connection
//! closed, new ones closed on arrival) for ten seconds, then restores. The
//! server answers throughout, with a retryable code while the database is gone,
//! says it is not ready, and recovers by itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use access_store::testing::fresh_databases;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::helpers::*;
use crate::load::{check_stored, Load};

const OUTAGE: Duration = Duration::from_secs(10);

/// A TCP proxy to `upstream` that can be cut (its port closed, so connections
/// are refused, and every connection through it closed) and restored.
struct Proxy {
    address: SocketAddr,
    upstream: String,
    open: Arc<watch::Sender<bool>>,
    accepting: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Proxy {
            address: listener.local_addr().unwrap(),
            upstream: upstream.to_string(),
            open: Arc::new(watch::channel(true).0),
            accepting: None,
        };
        proxy.accept(listener);
        proxy
    }

    fn accept(&mut self, listener: TcpListener) {
        let (upstream, open) = (self.upstream.clone(), self.open.clone());
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, upstream.clone(), open.subscribe()));
            }
        }));
    }

    fn cut(&mut self) {
        self.open.send_replace(false);
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
    }

    /// Listens again on the same port.
    async fn restore(&mut self) {
        self.open.send_replace(true);
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.accept(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn forward(mut client: TcpStream, upstream: String, mut open: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    // A connection accepted just before the cut is closed with the others.
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = open.wait_for(|open| !open) => {}
    }
}

/// `url` split around its host and port: what comes before, host:port, what follows.
fn around_host(url: &str) -> (&str, &str, &str) {
    let authority = url.find("://").unwrap() + 3;
    let path = authority + url[authority..].find('/').unwrap();
    let host = url[authority..path]
        .rfind('@')
        .map_or(authority, |at| authority + at + 1);
    (&url[..host], &url[host..path], &url[path..])
}

/// What a probe sent during the outage got: `/readyz`'s status and a query's
/// error code (`ok` without one), each with when it was sent and answered.
#[derive(Debug)]
struct Probe {
    sent: Instant,
    readiness: (u16, Instant),
    query: (String, Instant),
}

/// Asks whether the server is ready, and for a Security Official's pending queue
/// (a read of the views), at once.
async fn probe(url: String) -> Probe {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let sent = Instant::now();
    let readiness = async {
        let response = client.get(format!("{url}/readyz")).send().await;
        let status = response.expect("/readyz answers").status().as_u16();
        (status, Instant::now())
    };
    let query = async {
        let response = client
            .post(format!("{url}/graphql"))
            .bearer_auth(token("official-0", &[]))
            .json(&serde_json::json!({ "query": "{ pendingRequests(first: 5) { totalCount } }" }))
            .send()
            .await
            .expect("the server answers");
        let answer: serde_json::Value = response.json().await.expect("a JSON answer");
        let code = answer["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("ok")
            .to_string();
        (code, Instant::now())
    };
    let (readiness, query) = tokio::join!(readiness, query);
    Probe {
        sent,
        readiness,
        query,
    }
}

fn errors_logged(server: &ServerProcess) -> String {
    server
        .logs()
        .lines()
        .filter(|line| line.contains("ERROR"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_gets_retryable_answers_and_the_server_recovers_by_itself() {
    let Some(database) = fresh_databases()
        .await
        .into_iter()
        .find(|database| database.label == "postgres")
    else {
        eprintln!("skipping the outage test: it needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    };
    let label = database.label;
    let (before, upstream, after) = around_host(&database.url);
    let mut proxy = Proxy::start(upstream).await;
    let proxied = format!("{before}{}{after}", proxy.address);
    let mut server = ServerProcess::on(label, &proxied, &[]).await;
    let load = Load::prepare(&server.url, 4).await;
    let clients = load.start(8);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = load.acknowledged();
    proxy.cut();
    let cut = Instant::now();
    let mut probes = Vec::new();
    while cut.elapsed() < OUTAGE {
        probes.push(tokio::spawn(probe(server.url.clone())));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    proxy.restore().await;
    let restored = Instant::now();
    let during = load.acknowledged() - before;

    let mut ready = None;
    let mut serving = None;
    let acknowledged_at_restore = load.acknowledged();
    while ready.is_none() || serving.is_none() {
        assert!(
            restored.elapsed() < Duration::from_secs(60),
            "{label}: not ready or not serving a minute after the database came back"
        );
        let ready_now = server
            .get("/readyz")
            .await
            .expect("/readyz answers")
            .status()
            == 200;
        if ready_now && ready.is_none() {
            ready = Some(restored.elapsed());
        }
        if load.acknowledged() > acknowledged_at_restore && serving.is_none() {
            serving = Some(restored.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ledger = load.finish(clients).await;

    let mut probes_answered = Vec::new();
    for probe in probes {
        probes_answered.push(probe.await.expect("every probe is answered"));
    }
    // Answers given while the database was gone, to requests sent while it was.
    let in_outage = |sent: Instant, answered: Instant| sent >= cut && answered <= restored;
    let mut outage_answers: Vec<(&str, Duration)> = ledger
        .attempts
        .iter()
        .filter(|attempt| in_outage(attempt.sent, attempt.answered))
        .map(|attempt| (attempt.outcome.as_str(), attempt.answered - attempt.sent))
        .collect();
    let mut readiness = Vec::new();
    for probe in &probes_answered {
        if in_outage(probe.sent, probe.query.1) {
            outage_answers.push((probe.query.0.as_str(), probe.query.1 - probe.sent));
        }
        if in_outage(probe.sent, probe.readiness.1) {
            readiness.push((probe.readiness.0, probe.readiness.1 - probe.sent));
        }
    }
    assert!(
        !outage_answers.is_empty() && !readiness.is_empty(),
        "{label}: nothing was answered during the outage"
    );
    for (outcome, _) in &outage_answers {
        assert_eq!(
            *outcome,
            "UNAVAILABLE",
            "{label}: an answer during the outage; the server logged:\n{}",
            errors_logged(&server)
        );
    }
    assert!(
        readiness.iter().all(|(status, _)| *status == 503),
        "{label}: /readyz during the outage: {readiness:?}"
    );
    let slowest = outage_answers.iter().map(|(_, took)| *took).max().unwrap();
    let slowest_probe = readiness.iter().map(|(_, took)| *took).max().unwrap();
    assert!(server.is_running(), "{label}: the server died");
    let logs = server.logs();
    assert!(
        !logs.contains("panicked"),
        "{label}: the server panicked:\n{logs}"
    );

    let stored = check_stored(label, &database.url, &ledger).await;
    println!(
        "{label}: {:.1}s outage; {} GraphQL requests answered during it, all UNAVAILABLE, the \
         slowest in {:.1}s; /readyz 503 {} times, the slowest in {:.1}s; {during} commands \
         acknowledged during it (sent before the cut); ready {:.1}s and serving {:.1}s after \
         the restore, without a restart; {} commands acknowledged in all, {} events stored",
        OUTAGE.as_secs_f64(),
        outage_answers.len(),
        slowest.as_secs_f64(),
        readiness.len(),
        slowest_probe.as_secs_f64(),
        ready.unwrap_or_default().as_secs_f64(),
        serving.unwrap_or_default().as_secs_f64(),
        ledger.acknowledged.len(),
        stored.events,
    );
}
