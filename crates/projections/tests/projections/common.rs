//! A real Organization aggregate on a fresh database, with stub services; the views'
//! rows as text; and the same rows computed independently by folding the event history.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use access_domain::identifiers::{Npi, OrganizationId, PersonId, TicketNumber, Tin};
use access_domain::proof::{ProofMismatch, ProofVerdict, SecurityOfficialProof};
use access_domain::roles::Role;
use access_domain::services::{
    Clock, OrganizationServices, ReferenceLookup, ServiceError, TicketNumbers,
};
use access_domain::{AccessError, Organization, OrganizationCommand, OrganizationEvent};
use access_projections::{AuditFilter, Projector, ProjectorOptions, Views};
use access_store::testing::{fresh_databases, TestDatabase};
use access_store::{AggregateStore, Committed, Database, Pool, StoredEvent};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use cqrs_es::{Aggregate, AggregateError};
use uuid::Uuid;

/// The TIN every proof must carry to be accepted.
pub const GOOD_TIN: &str = "123456789";

/// One organization of each type.
pub const ORGANIZATIONS: [&str; 4] = [
    "practice:111111111",
    "apm-entity:A1234",
    "virtual-group:VG-00001",
    "registry:222222222",
];

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Proofs;

impl ReferenceLookup for Proofs {
    fn check_proof(&self, _: &OrganizationId, proof: &SecurityOfficialProof) -> ProofVerdict {
        match &proof.tin {
            Some(tin) if tin.as_str() == GOOD_TIN => ProofVerdict::Accepted,
            _ => ProofVerdict::Mismatch(ProofMismatch::TinDoesNotMatchOrganization),
        }
    }
}

pub struct Tickets(pub Database);

#[async_trait]
impl TicketNumbers for Tickets {
    async fn next_ticket_number(&self) -> Result<TicketNumber, ServiceError> {
        let serial = self
            .0
            .next_ticket_serial()
            .await
            .map_err(|error| ServiceError(error.to_string()))?;
        TicketNumber::from_serial(serial).map_err(|error| ServiceError(error.to_string()))
    }
}

/// One second per command, from a fixed instant with a nanosecond part, so that times
/// are distinct, known in advance and exercise the views' full precision.
pub struct SteppingClock(AtomicI64);

impl SteppingClock {
    pub fn instant(step: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap()
            + chrono::Duration::seconds(step)
            + chrono::Duration::nanoseconds(123_456_789)
    }

    /// The instant the last command was stamped with.
    pub fn last(&self) -> DateTime<Utc> {
        Self::instant(self.0.load(Ordering::SeqCst))
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> DateTime<Utc> {
        Self::instant(self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// The organization aggregate on one fresh database.
pub struct Harness {
    pub label: &'static str,
    pub url: String,
    pub database: Database,
    pub store: AggregateStore<Organization>,
    pub clock: Arc<SteppingClock>,
    _database: TestDatabase,
}

pub async fn harnesses() -> Vec<Harness> {
    let mut harnesses = Vec::new();
    for test_database in fresh_databases().await {
        let database = Database::connect(&test_database.url).await.unwrap();
        let clock = Arc::new(SteppingClock(AtomicI64::new(0)));
        let services = OrganizationServices {
            reference: Arc::new(Proofs),
            tickets: Arc::new(Tickets(database.clone())),
            clock: clock.clone(),
        };
        harnesses.push(Harness {
            label: test_database.label,
            url: test_database.url.clone(),
            store: AggregateStore::new(&database, services),
            database,
            clock,
            _database: test_database,
        });
    }
    harnesses
}

/// Tests wake the projector by commits only: a poll this slow never fires during one.
pub fn options() -> ProjectorOptions {
    ProjectorOptions {
        batch_size: 7,
        poll_interval: Duration::from_secs(60),
        retry_interval: Duration::from_millis(200),
        ..ProjectorOptions::default()
    }
}

impl Harness {
    pub fn projector(&self) -> Projector {
        Projector::start(self.database.clone(), options())
    }

    pub async fn execute(
        &self,
        organization: &str,
        command: OrganizationCommand,
    ) -> Result<Committed<Organization, ()>, AggregateError<AccessError>> {
        self.store
            .execute(organization, command, HashMap::new(), |_, _| ())
            .await
    }

    /// Runs a command that must be accepted.
    pub async fn run(
        &self,
        organization: &str,
        command: OrganizationCommand,
    ) -> Committed<Organization, ()> {
        self.execute(organization, command)
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", self.label))
    }

    pub async fn head(&self) -> i64 {
        self.database.head_position().await.unwrap()
    }

    pub async fn events(&self) -> Vec<StoredEvent> {
        self.database.events_after(0, i64::MAX).await.unwrap()
    }

    /// Fails the test unless every view applied the whole log within [`WAIT`].
    pub async fn caught_up(&self, projector: &Projector) {
        let head = self.head().await;
        projector
            .wait_for(head, WAIT)
            .await
            .unwrap_or_else(|lagging| panic!("{}: {lagging}", self.label));
    }

    /// Every view table and the audit log, as text.
    pub async fn views(&self) -> Tables {
        dump(&self.database).await
    }

    /// Every view table and the audit log as a fold of the history computes them.
    pub async fn expected(&self) -> Tables {
        fold(&self.events().await)
    }
}

pub fn person(name: &str) -> PersonId {
    PersonId::parse(name).unwrap()
}

pub fn organization(id: &str) -> OrganizationId {
    OrganizationId::parse(id).unwrap()
}

/// A valid NPI for each small number.
pub fn npi(number: usize) -> Npi {
    let body = format!("{:09}", 100_000_000 + number);
    Npi::parse(&format!("{body}{}", Npi::check_digit(&body))).unwrap()
}

pub fn request(
    organization: &str,
    requester: &str,
    role: Role,
    proof_tin: Option<&str>,
) -> OrganizationCommand {
    OrganizationCommand::RequestRole {
        organization: self::organization(organization),
        request_id: Uuid::new_v4(),
        requester: person(requester),
        role,
        proof: proof_tin.map(|tin| SecurityOfficialProof {
            tin: Some(Tin::parse(tin).unwrap()),
            ..SecurityOfficialProof::default()
        }),
    }
}

/// The request a command opened or continued.
pub fn request_id(committed: &Committed<Organization, ()>) -> Uuid {
    committed
        .events
        .iter()
        .find_map(|envelope| envelope.payload.request_id())
        .expect("the command named a request")
}

pub fn ticket_of(committed: &Committed<Organization, ()>) -> Option<TicketNumber> {
    committed
        .events
        .iter()
        .find_map(|envelope| match &envelope.payload {
            OrganizationEvent::RequesterBlocked { ticket, .. } => Some(ticket.clone()),
            _ => None,
        })
}

pub type Row = Vec<Option<String>>;
pub type Tables = BTreeMap<&'static str, Vec<Row>>;

/// Every column as text, integers cast in SQL so both databases answer alike.
const DUMPS: [(&str, &str); 4] = [
    (
        "view_grants",
        "SELECT organization_id, person_id, role, granted_at FROM view_grants",
    ),
    (
        "view_role_requests",
        "SELECT id, organization_id, person_id, role, state, submitted_at, decided_at, \
                decided_by, reason, CAST(failed_attempts AS TEXT), ticket FROM view_role_requests",
    ),
    (
        "view_tickets",
        "SELECT number, organization_id, request_id, person_id, opened_at, state FROM view_tickets",
    ),
    (
        "view_failed_proofs",
        "SELECT CAST(position AS TEXT), organization_id, request_id, person_id, \
                CAST(attempt AS TEXT), at, masked_proof, mismatch, ticket FROM view_failed_proofs",
    ),
];

macro_rules! rows {
    ($pool:expr, $sql:expr) => {{
        let rows = sqlx::query($sql).fetch_all($pool).await.unwrap();
        rows.iter()
            .map(|row| {
                (0..sqlx::Row::len(row))
                    .map(|index| sqlx::Row::try_get::<Option<String>, _>(row, index).unwrap())
                    .collect::<Row>()
            })
            .collect::<Vec<Row>>()
    }};
}

pub async fn dump(database: &Database) -> Tables {
    let mut tables = Tables::new();
    for (table, sql) in DUMPS {
        let mut rows = match database.pool() {
            Pool::Sqlite(pool) => rows!(pool, sql),
            Pool::Postgres(pool) => rows!(pool, sql),
        };
        rows.sort();
        tables.insert(table, rows);
    }
    tables.insert(
        "audit log",
        audit_log(database, &AuditFilter::default()).await,
    );
    tables
}

/// The audit log's entries that `filter` lets through, as auditors page through them two
/// at a time, sorted as rows.
pub async fn audit_log(database: &Database, filter: &AuditFilter) -> Vec<Row> {
    let views = Views::new(database.clone());
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = views.audit_log(filter, 2, after.as_deref()).await.unwrap();
        after = page.end_cursor().map(str::to_owned);
        rows.extend(page.edges.into_iter().map(|edge| {
            let entry = edge.node;
            vec![
                text(entry.position),
                text(entry.organization),
                text(entry.sequence),
                text(entry.event_type),
                text(entry.event_version),
                time(entry.occurred_at),
                entry.actor.map(|actor| actor.to_string()),
                entry.subject.map(|subject| subject.to_string()),
                text(entry.payload),
            ]
        }));
        if !page.has_next_page {
            rows.sort();
            return rows;
        }
    }
}

fn text(value: impl ToString) -> Option<String> {
    Some(value.to_string())
}

fn time(at: DateTime<Utc>) -> Option<String> {
    Some(at.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

/// A domain enum's serialized name.
fn name<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .unwrap()
        .as_str()
        .map(str::to_owned)
}

/// The rows every view should hold after `events`, computed without the projector: the
/// aggregate's own fold for grants and requests, the events themselves for the rest.
pub fn fold(events: &[StoredEvent]) -> Tables {
    let mut organizations: BTreeMap<String, (Organization, Vec<Uuid>)> = BTreeMap::new();
    let mut tickets: Vec<Row> = Vec::new();
    let mut failed_proofs: Vec<Row> = Vec::new();
    let mut audit: Vec<Row> = Vec::new();
    for stored in events {
        let event: OrganizationEvent = serde_json::from_value(stored.payload.clone()).unwrap();
        let org = stored.aggregate_id.clone();
        let key = |request: &Uuid| format!("{org}/{request}");
        let body = stored.payload.get(&stored.event_type).unwrap();
        audit.push(vec![
            text(stored.position),
            text(&org),
            text(stored.sequence),
            text(&stored.event_type),
            text(&stored.event_version),
            time(event.at()),
            event.actor().map(|actor| actor.to_string()),
            body.get("person")
                .and_then(|person| person.as_str())
                .map(str::to_owned),
            text(&stored.payload),
        ]);
        match &event {
            OrganizationEvent::ProofRejected {
                request_id,
                person,
                attempt,
                masked_proof,
                mismatch,
                at,
                ..
            } => failed_proofs.push(vec![
                text(stored.position),
                text(&org),
                text(key(request_id)),
                text(person),
                text(attempt),
                time(*at),
                text(masked_proof),
                name(mismatch),
                None,
            ]),
            OrganizationEvent::RequesterBlocked {
                request_id,
                person,
                ticket,
                at,
            } => {
                for proof in failed_proofs.iter_mut() {
                    if proof[2] == text(key(request_id)) && proof[8].is_none() {
                        proof[8] = text(ticket);
                    }
                }
                // Closed when support unblocks or resolves: see below.
                tickets.push(vec![
                    text(ticket),
                    text(&org),
                    text(key(request_id)),
                    text(person),
                    time(*at),
                    text("OPEN"),
                ]);
            }
            _ => {}
        }
        let (state, requests) = organizations.entry(org.clone()).or_default();
        if let OrganizationEvent::RoleRequested { request_id, .. } = &event {
            requests.push(*request_id);
        }
        state.apply(event);
    }

    let mut grants = Vec::new();
    let mut requests = Vec::new();
    let mut latest_tickets = HashMap::new();
    for (org, (state, ids)) in &organizations {
        for (person, grant) in state.grants() {
            grants.push(vec![
                text(org),
                text(person),
                name(&grant.role),
                time(grant.granted_at),
            ]);
        }
        for id in ids {
            let request = state.request(id).unwrap();
            if let Some(ticket) = &request.ticket {
                latest_tickets.insert(ticket.number.to_string(), name(&ticket.state));
            }
            requests.push(vec![
                text(format!("{org}/{id}")),
                text(org),
                text(&request.person),
                name(&request.role),
                name(&request.state),
                time(request.submitted_at),
                request.decided_at.and_then(time),
                request.decided_by.as_ref().map(ToString::to_string),
                request.reason.clone(),
                text(request.failed_attempts),
                request
                    .ticket
                    .as_ref()
                    .map(|ticket| ticket.number.to_string()),
            ]);
        }
    }
    // The aggregate keeps a request's latest ticket; an earlier one was closed when
    // support unblocked the person.
    for ticket in &mut tickets {
        ticket[5] = latest_tickets
            .get(ticket[0].as_deref().unwrap())
            .cloned()
            .unwrap_or_else(|| text("RESOLVED_DENIED"));
    }

    let mut tables = Tables::new();
    for (table, mut rows) in [
        ("view_grants", grants),
        ("view_role_requests", requests),
        ("view_tickets", tickets),
        ("view_failed_proofs", failed_proofs),
        ("audit log", audit),
    ] {
        rows.sort();
        tables.insert(table, rows);
    }
    tables
}

/// Polls `condition` until it holds; false after [`WAIT`].
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// One event as stored: organization, sequence, type, version, payload JSON.
pub type LogRow = (String, i64, String, String, String);

/// Rows per INSERT while filling the log.
const ROWS_PER_INSERT: usize = 1000;

/// Writes `rows` straight into the log, as a server stopped meanwhile would find them.
pub async fn append_to_log(database: &Database, rows: &[LogRow]) {
    // PostgreSQL's columns are json; SQLite's are text.
    let json = |value: String| match database.pool() {
        Pool::Postgres(_) => format!("CAST({value} AS json)"),
        Pool::Sqlite(_) => value,
    };
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|row| {
                let n = row * 5;
                format!(
                    "('{}', ${}, ${}, ${}, ${}, {}, {})",
                    Organization::TYPE,
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    json(format!("${}", n + 5)),
                    json("'{}'".to_owned()),
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES {}",
            values.join(", ")
        );
        macro_rules! insert {
            ($pool:expr) => {{
                let mut query = sqlx::query(&sql);
                for (id, sequence, event_type, version, payload) in chunk {
                    query = query
                        .bind(id)
                        .bind(*sequence)
                        .bind(event_type)
                        .bind(version)
                        .bind(payload);
                }
                query.execute($pool).await.unwrap();
            }};
        }
        match database.pool() {
            Pool::Sqlite(pool) => insert!(pool),
            Pool::Postgres(pool) => insert!(pool),
        }
    }
}
