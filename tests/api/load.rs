//! Clients that keep a server busy with keyed mutations, retry whatever got no
//! usable answer with the same `Idempotency-Key`, and record what was
//! acknowledged; and the check that the event store and the views hold exactly
//! that. For the crash and outage tests.
//!
//! Each requester opens a Staff User request at one of a few demo practices
//! and withdraws it, over and over; the practices spread the requesters, as
//! real people are spread over organizations. A command whose server died after
//! committing it and before keeping its answer is answered `ALREADY_APPLIED` when
//! its key is retried, and never run twice (docs/reliability.md, "Retries after a
//! crash").

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use access_domain::identifiers::RoleRequestId;
use access_domain::roles::RequestState;
use access_domain::OrganizationEvent;
use access_projections::Views;
use access_reference::{ReferenceFile, DEMO_JSON};
use access_store::Database;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// Answers that say "try again", which a client retries with the same key.
const RETRYABLE: [&str; 5] = [
    "CONFLICT",
    "UNAVAILABLE",
    "INTERNAL",
    "TIMEOUT",
    "RATE_LIMITED",
];

/// Longest a command may go without a final answer: a key left in progress by a
/// killed server is taken over after 20 s (docs/api.md), plus slack for restarts.
const GIVE_UP_AFTER: Duration = Duration::from_secs(150);

const RETRY_PAUSE: Duration = Duration::from_millis(150);

/// Longest a requester pauses between two commands, as people do: a kill then
/// finds some of them between commands, who carry on once the server is back.
const THINK_TIME_MS: u64 = 300;

const REQUEST_ROLE: &str =
    "mutation($input: RequestRoleInput!) { requestRole(input: $input) { request { id state } } }";
const WITHDRAW: &str = "mutation($id: ID!) { withdrawRoleRequest(requestId: $id) { state } }";

/// One HTTP attempt and what it got: `ok`, an error code, or `no answer`.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub sent: Instant,
    pub answered: Instant,
    pub outcome: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Request,
    Withdraw,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Commands answered with success, and the request each was about.
    pub acknowledged: Vec<(Command, String)>,
    pub attempts: Vec<Attempt>,
    /// Request keys each person sent: no more requests may exist for them.
    pub request_keys: HashMap<String, usize>,
    /// Commands that got no answer at first (a dead server, a dropped
    /// connection) and were sent again with their key.
    pub resent: usize,
    /// Commands a server ran and died before answering, whose retry was
    /// answered `ALREADY_APPLIED`.
    pub already_applied: usize,
}

pub struct Load {
    url: String,
    /// The practices the requesters are spread over.
    practices: Vec<String>,
    client: reqwest::Client,
    ledger: Mutex<Ledger>,
    stop: AtomicBool,
}

impl Load {
    /// Clients of the server at `url`, which keeps its address across restarts,
    /// on `practices` demo practices, each given a Security Official first.
    pub async fn prepare(url: &str, practices: usize) -> Arc<Load> {
        let proofs = practice_proofs(practices);
        let load = Arc::new(Load {
            url: url.to_string(),
            practices: proofs.iter().map(|(id, _)| id.clone()).collect(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            ledger: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        for (index, (practice, proof)) in proofs.iter().enumerate() {
            let official = token(&format!("official-{index}"), &[]);
            let input = json!({ "input": { "organizationId": practice, "role": "SECURITY_OFFICIAL", "proof": proof } });
            let approved = load
                .send(&official, Some("first"), REQUEST_ROLE, input)
                .await
                .expect("the first Security Official is approved");
            assert_eq!(approved["requestRole"]["request"]["state"], "APPROVED");
        }
        load
    }

    pub fn start(self: &Arc<Self>, requesters: usize) -> Vec<JoinHandle<()>> {
        (0..requesters)
            .map(|index| tokio::spawn(self.clone().request_and_withdraw(index)))
            .collect()
    }

    /// Stops the clients after the command each has in hand, which they see to
    /// a final answer, and returns what they saw.
    pub async fn finish(&self, clients: Vec<JoinHandle<()>>) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.expect("a client finishes");
        }
        std::mem::take(&mut *self.ledger.lock().unwrap())
    }

    pub fn acknowledged(&self) -> usize {
        self.ledger.lock().unwrap().acknowledged.len()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn acknowledge(&self, command: Command, request: &str) {
        let mut ledger = self.ledger.lock().unwrap();
        ledger.acknowledged.push((command, request.to_string()));
    }

    async fn request_and_withdraw(self: Arc<Self>, index: usize) {
        let person = format!("client-{index}");
        let bearer = token(&person, &[]);
        let practice = &self.practices[index % self.practices.len()];
        let input = json!({ "input": { "organizationId": practice, "role": "STAFF_USER" } });
        let mut step = 0;
        while !self.stopping() {
            *self
                .ledger
                .lock()
                .unwrap()
                .request_keys
                .entry(person.clone())
                .or_default() += 1;
            let key = format!("{person}/{step}/request");
            let request = match self
                .send(&bearer, Some(&key), REQUEST_ROLE, input.clone())
                .await
            {
                Ok(data) => {
                    let id = data["requestRole"]["request"]["id"].as_str().unwrap();
                    self.acknowledge(Command::Request, id);
                    id.to_string()
                }
                // A server ran it and died before keeping its answer.
                Err(code) if code == "ALREADY_APPLIED" => {
                    self.ledger.lock().unwrap().already_applied += 1;
                    self.open_request(&bearer).await
                }
                Err(code) => panic!("{person}: requesting: {code}"),
            };
            let key = format!("{person}/{step}/withdraw");
            match self
                .send(&bearer, Some(&key), WITHDRAW, json!({ "id": request }))
                .await
            {
                Ok(_) => self.acknowledge(Command::Withdraw, &request),
                // As above: a server withdrew it and died before answering.
                Err(code) if code == "ALREADY_APPLIED" => {
                    self.ledger.lock().unwrap().already_applied += 1;
                }
                Err(code) => panic!("{person}: withdrawing {request}: {code}"),
            }
            step += 1;
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..THINK_TIME_MS))).await;
        }
    }

    /// The caller's open request.
    async fn open_request(&self, bearer: &str) -> String {
        let page = self
            .send(
                bearer,
                None,
                "{ manageAccess { openRequests { id state } } }",
                json!({}),
            )
            .await
            .expect("Manage Access answers");
        page["manageAccess"]["openRequests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|request| request["state"] == "PENDING")
            .and_then(|request| request["id"].as_str())
            .expect("the request that was run is open")
            .to_string()
    }

    /// Sends until the answer is final: the data, or the code of a refusal.
    async fn send(
        &self,
        bearer: &str,
        key: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, String> {
        let started = Instant::now();
        let mut unanswered = false;
        loop {
            assert!(
                started.elapsed() < GIVE_UP_AFTER,
                "no final answer to {key:?} within {GIVE_UP_AFTER:?}"
            );
            let mut request = self
                .client
                .post(format!("{}/graphql", self.url))
                .bearer_auth(bearer)
                .json(&json!({ "query": query, "variables": variables }));
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            let sent = Instant::now();
            let answer = match request.send().await {
                Ok(response) => response.json::<Value>().await.ok(),
                Err(_) => None,
            };
            let code = answer.as_ref().map(|answer| {
                answer["errors"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("ok")
                    .to_string()
            });
            self.ledger.lock().unwrap().attempts.push(Attempt {
                sent,
                answered: Instant::now(),
                outcome: code.clone().unwrap_or_else(|| "no answer".into()),
            });
            match (answer, code.as_deref()) {
                (Some(answer), Some("ok")) => {
                    if unanswered {
                        self.ledger.lock().unwrap().resent += 1;
                    }
                    return Ok(answer["data"].clone());
                }
                (Some(_), Some(code)) if !RETRYABLE.contains(&code) => return Err(code.into()),
                (None, _) => unanswered = true,
                _ => {}
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// The first `count` demo practices and a valid first-Security-Official proof of
/// each: its TIN, and the NPI and PTAN of a clinician enrolled there.
fn practice_proofs(count: usize) -> Vec<(String, Value)> {
    let file: ReferenceFile = serde_json::from_str(DEMO_JSON).unwrap();
    file.practices
        .iter()
        .filter_map(|practice| {
            file.clinicians.iter().find_map(|clinician| {
                let enrollment = clinician
                    .enrollments
                    .iter()
                    .find(|enrollment| enrollment.tin == practice.tin)?;
                let proof = json!({
                    "tin": practice.tin.as_str(),
                    "npi": clinician.npi.as_str(),
                    "ptan": enrollment.ptan.as_str(),
                });
                Some((format!("practice:{}", practice.tin), proof))
            })
        })
        .take(count)
        .collect()
}

/// What the store held at the end.
#[derive(Debug)]
pub struct Stored {
    pub events: usize,
    pub requests: usize,
}

/// Every acknowledged command is in the event store and, once the views have
/// caught up, in the views; no request was made twice by one key, and none was
/// withdrawn or decided twice.
pub async fn check_stored(label: &str, database_url: &str, ledger: &Ledger) -> Stored {
    let events = stored_events(database_url).await;
    let mut requests: HashMap<String, Vec<OrganizationEvent>> = HashMap::new();
    for event in &events {
        let decoded: OrganizationEvent = serde_json::from_value(event.payload.clone()).unwrap();
        if let Some(request) = decoded.request_id() {
            requests
                .entry(format!("{}/{request}", event.aggregate_id))
                .or_default()
                .push(decoded);
        }
    }
    let mut requests_per_person: HashMap<String, usize> = HashMap::new();
    for (request, events) in &requests {
        let opened: Vec<_> = events
            .iter()
            .filter_map(|event| match event {
                OrganizationEvent::RoleRequested { person, .. } => Some(person.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(opened.len(), 1, "{label}: {request} opened twice");
        *requests_per_person.entry(opened[0].clone()).or_default() += 1;
        let closed = events
            .iter()
            .filter(|event| {
                matches!(
                    event,
                    OrganizationEvent::RoleRequestWithdrawn { .. }
                        | OrganizationEvent::RoleRequestDenied { .. }
                        | OrganizationEvent::RoleRequestApproved { .. }
                )
            })
            .count();
        assert!(closed <= 1, "{label}: {request} closed {closed} times");
    }
    for (person, keys) in &ledger.request_keys {
        let made = requests_per_person.get(person).copied().unwrap_or(0);
        assert!(
            made <= *keys,
            "{label}: {person} sent {keys} request keys and has {made} requests"
        );
    }
    for (command, request) in &ledger.acknowledged {
        let events = requests.get(request).unwrap_or_else(|| {
            panic!("{label}: acknowledged {command:?} of {request} is not stored")
        });
        let stored = events.iter().any(|event| match command {
            Command::Request => matches!(event, OrganizationEvent::RoleRequested { .. }),
            Command::Withdraw => matches!(event, OrganizationEvent::RoleRequestWithdrawn { .. }),
        });
        assert!(
            stored,
            "{label}: acknowledged {command:?} of {request} is not stored"
        );
    }

    let database = Database::connect(database_url).await.unwrap();
    caught_up(label, &database).await;
    let views = Views::new(database);
    for (request, events) in &requests {
        let expected = events
            .iter()
            .rev()
            .find_map(|event| match event {
                OrganizationEvent::RoleRequestWithdrawn { .. } => Some(RequestState::Withdrawn),
                OrganizationEvent::RoleRequestDenied { .. } => Some(RequestState::Denied),
                OrganizationEvent::RoleGranted { .. } => Some(RequestState::Approved),
                _ => None,
            })
            .unwrap_or(RequestState::Pending);
        let id = RoleRequestId::parse(request).unwrap();
        let shown = views.role_request(&id).await.unwrap().map(|row| row.state);
        assert_eq!(
            shown,
            Some(expected),
            "{label}: the views show {request} wrong"
        );
    }
    Stored {
        events: events.len(),
        requests: requests.len(),
    }
}

/// Waits until every view has applied the whole log.
async fn caught_up(label: &str, database: &Database) {
    let started = Instant::now();
    loop {
        let head = database.head_position().await.unwrap();
        let checkpoints = access_projections::checkpoints(database).await.unwrap();
        if checkpoints.iter().all(|(_, position)| *position >= head) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{label}: the views stay behind the log: {checkpoints:?} of {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
