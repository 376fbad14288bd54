//! View "access": grants and role requests. Manage Access, the pending queue,
//! organization users, one role request, and the grants at a past instant.

use std::collections::BTreeMap;

use access_domain::identifiers::{
    OrganizationId, OrganizationKind, PersonId, RoleRequestId, TicketNumber,
};
use access_domain::roles::{RequestState, Role};
use access_domain::{Organization, OrganizationEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;

use crate::error::Error;
use crate::events::Envelope;
use crate::read::{limit, Page, Views};
use crate::remembered::PendingKey;
use crate::sql::{
    code, fetch, from_code, params, parse_id, parse_time, time_text, Cells, Param, Tx,
};
use crate::view::Target;

pub(crate) const GRANTS: &str = "view_grants";
pub(crate) const REQUESTS: &str = "view_role_requests";

/// A role held in an organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub organization: OrganizationId,
    pub person: PersonId,
    pub role: Role,
    pub granted_at: DateTime<Utc>,
}

/// A role request as its requester and the Security Officials see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleRequest {
    /// Carries the organization.
    pub id: RoleRequestId,
    pub person: PersonId,
    pub role: Role,
    pub state: RequestState,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<PersonId>,
    pub reason: Option<String>,
    /// Failed proofs since the request opened or was last unblocked.
    pub failed_attempts: u8,
    /// The request's latest help-desk ticket ([`Views::support_ticket`] has it in full).
    pub ticket: Option<TicketNumber>,
}

/// A person's Manage Access page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManageAccess {
    /// One tab per organization type the person holds a role in, in the order of
    /// `OrganizationKind::ALL`; Clinician roles on APM Entities and Virtual Groups are
    /// not here but in `performance_feedback_organizations`.
    pub tabs: Vec<ManageAccessTab>,
    /// Proof rejected, pending or in manual review; oldest first.
    pub open_requests: Vec<RoleRequest>,
    pub performance_feedback_organizations: Vec<OrganizationId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManageAccessTab {
    pub kind: OrganizationKind,
    /// By organization id.
    pub connections: Vec<Connection>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub organization: OrganizationId,
    pub role: Role,
    pub granted_at: DateTime<Utc>,
    /// Only for a Security Official.
    pub users: Option<UserCounts>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserCounts {
    /// Everyone holding a role in the organization, the viewer included.
    pub connected: i64,
    /// Requests waiting for a Security Official there.
    pub pending: i64,
}

/// One page of a Security Official's queue.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingRequests {
    pub page: Page<RoleRequest>,
    /// Every pending request the filter matches, across pages.
    pub total_count: i64,
}

/// Applies a batch of events in a few statements whatever its size: the rows the batch
/// needs are read at once, every event is folded into them in memory, in log order, and
/// the rows that changed are written back by multi-row statements. One statement per
/// event made the view the slowest to rebuild by far.
pub(crate) async fn apply_batch(
    target: Target,
    tx: &mut Tx<'_>,
    envelopes: &[Envelope],
) -> Result<(), Error> {
    let changes: Vec<Change> = envelopes.iter().map(Change::of).collect();
    let requests_table = target.table(REQUESTS);
    let grants_table = target.table(GRANTS);
    let mut requests = Rows::<RequestRow>::load(
        tx,
        &requests_table,
        changes.iter().filter_map(|change| match change {
            Change::Opened { key, .. } => Some((key.clone(), false)),
            Change::Request { key, .. } => Some((key.clone(), true)),
            Change::Grant { .. } | Change::Nothing => None,
        }),
    )
    .await?;
    let mut grants = Rows::<GrantRow>::load(
        tx,
        &grants_table,
        changes.iter().filter_map(|change| match change {
            Change::Grant { key, change } => Some((
                key.clone(),
                matches!(change, GrantChange::RoleChanged { .. }),
            )),
            Change::Opened { .. } | Change::Request { .. } | Change::Nothing => None,
        }),
    )
    .await?;
    for change in changes {
        match change {
            Change::Opened { key, row } => {
                let request = requests.row(&key);
                if request.is_some() {
                    // The log opens a request the view already has: the view is not the
                    // log's (an INSERT of the row fails on its key, too).
                    return Err(Error::Corrupt {
                        table: REQUESTS,
                        column: "id",
                    });
                }
                *request = Some(row);
            }
            Change::Request { key, change } => {
                if let Some(request) = requests.row(&key) {
                    change.apply(request);
                }
            }
            Change::Grant { key, change } => change.apply(grants.row(&key)),
            Change::Nothing => {}
        }
    }
    requests.store(tx, &requests_table).await?;
    grants.store(tx, &grants_table).await
}

/// What one event does to the view.
enum Change<'a> {
    /// A proof-path request is decided by the next event of the same commit, which the
    /// same transaction applies, so nobody sees it pending.
    Opened { key: String, row: RequestRow },
    /// Changes nothing when the view has no row of the request, as an UPDATE matching
    /// no row did.
    Request {
        key: String,
        change: RequestChange<'a>,
    },
    Grant {
        key: (String, String),
        change: GrantChange,
    },
    /// Recorded for support and the auditors; nobody's access changed.
    Nothing,
}

enum RequestChange<'a> {
    ProofRejected,
    Blocked {
        ticket: &'a TicketNumber,
    },
    SentForApproval {
        role: Role,
    },
    /// Back to "proof rejected", with fresh attempts.
    Unblocked,
    Decided(Decision<'a>),
}

enum GrantChange {
    /// A new grant replaces any earlier one of the person there, as in the aggregate.
    Granted {
        role: Role,
        at: DateTime<Utc>,
    },
    /// The grant keeps its date: the person has been connected since then.
    RoleChanged {
        to: Role,
    },
    Ended,
}

impl<'a> Change<'a> {
    fn of(envelope: &'a Envelope) -> Change<'a> {
        use OrganizationEvent::*;
        let request = |request_id: &uuid::Uuid, change| Change::Request {
            key: envelope.request_key(request_id),
            change,
        };
        let grant = |person: &PersonId, change| Change::Grant {
            key: (envelope.organization.to_string(), person.to_string()),
            change,
        };
        match &envelope.event {
            RoleRequested {
                request_id,
                person,
                role,
                at,
                ..
            } => Change::Opened {
                key: envelope.request_key(request_id),
                row: RequestRow {
                    organization: envelope.organization.to_string(),
                    person: person.to_string(),
                    role: code(role),
                    state: code(&RequestState::Pending),
                    submitted_at: time_text(*at),
                    decided_at: None,
                    decided_by: None,
                    reason: None,
                    failed_attempts: 0,
                    ticket: None,
                },
            },
            ProofRejected { request_id, .. } => request(request_id, RequestChange::ProofRejected),
            RequesterBlocked {
                request_id, ticket, ..
            } => request(request_id, RequestChange::Blocked { ticket }),
            RoleRequestSentForApproval {
                request_id, role, ..
            } => request(request_id, RequestChange::SentForApproval { role: *role }),
            RequesterUnblocked { request_id, .. } => request(request_id, RequestChange::Unblocked),
            ProofAccepted { request_id, at, .. } => {
                let decision = Decision::new(RequestState::Approved, *at);
                request(request_id, RequestChange::Decided(decision))
            }
            RoleRequestApproved {
                request_id,
                approver,
                at,
                ..
            } => {
                let decision = Decision::new(RequestState::Approved, *at).by(approver);
                request(request_id, RequestChange::Decided(decision))
            }
            RoleRequestDenied {
                request_id,
                approver,
                reason,
                at,
                ..
            } => {
                let decision = Decision::new(RequestState::Denied, *at)
                    .by(approver)
                    .because(reason);
                request(request_id, RequestChange::Decided(decision))
            }
            RoleRequestWithdrawn { request_id, at, .. } => {
                let decision = Decision::new(RequestState::Withdrawn, *at);
                request(request_id, RequestChange::Decided(decision))
            }
            TicketResolved {
                request_id,
                approved,
                by,
                note,
                at,
                ..
            } => {
                let state = if *approved {
                    RequestState::Approved
                } else {
                    RequestState::Denied
                };
                let decision = Decision::new(state, *at).by(by).because(note);
                request(request_id, RequestChange::Decided(decision))
            }
            RoleGranted {
                person, role, at, ..
            } => grant(
                person,
                GrantChange::Granted {
                    role: *role,
                    at: *at,
                },
            ),
            ClinicianRoleGranted { person, at, .. } => grant(
                person,
                GrantChange::Granted {
                    role: Role::Clinician,
                    at: *at,
                },
            ),
            StaffUserRevoked { person, .. } | SecurityOfficialRemoved { person, .. } => {
                grant(person, GrantChange::Ended)
            }
            RoleChanged { person, to, .. } => grant(person, GrantChange::RoleChanged { to: *to }),
            ClinicianClaimRefused { .. } => Change::Nothing,
        }
    }
}

impl RequestChange<'_> {
    fn apply(self, request: &mut RequestRow) {
        match self {
            RequestChange::ProofRejected => {
                request.state = code(&RequestState::ProofRejected);
                request.failed_attempts += 1;
            }
            RequestChange::Blocked { ticket } => {
                request.state = code(&RequestState::ManualReview);
                request.ticket = Some(ticket.to_string());
            }
            RequestChange::SentForApproval { role } => {
                request.state = code(&RequestState::Pending);
                request.role = code(&role);
            }
            RequestChange::Unblocked => {
                request.state = code(&RequestState::ProofRejected);
                request.failed_attempts = 0;
            }
            RequestChange::Decided(decision) => decision.record(request),
        }
    }
}

impl GrantChange {
    fn apply(self, grant: &mut Option<GrantRow>) {
        match self {
            GrantChange::Granted { role, at } => {
                *grant = Some(GrantRow {
                    role: code(&role),
                    granted_at: time_text(at),
                });
            }
            GrantChange::RoleChanged { to } => {
                if let Some(grant) = grant {
                    grant.role = code(&to);
                }
            }
            GrantChange::Ended => *grant = None,
        }
    }
}

/// The end of a request: every way of closing one sets the same four columns.
struct Decision<'a> {
    state: RequestState,
    at: DateTime<Utc>,
    by: Option<&'a PersonId>,
    reason: Option<&'a str>,
}

impl<'a> Decision<'a> {
    fn new(state: RequestState, at: DateTime<Utc>) -> Self {
        Decision {
            state,
            at,
            by: None,
            reason: None,
        }
    }

    fn by(self, person: &'a PersonId) -> Self {
        Decision {
            by: Some(person),
            ..self
        }
    }

    fn because(self, reason: &'a Option<String>) -> Self {
        Decision {
            reason: reason.as_deref(),
            ..self
        }
    }

    fn record(self, request: &mut RequestRow) {
        request.state = code(&self.state);
        request.decided_at = Some(time_text(self.at));
        request.decided_by = self.by.map(PersonId::to_string);
        request.reason = self.reason.map(str::to_owned);
    }
}

/// A table of the view as a batch reads and writes it: its rows by primary key.
trait Table: Clone + PartialEq + Sized {
    type Key: Ord + Clone;
    /// The primary key's columns.
    const KEY: &'static str;
    /// The other columns, in the order of `values`.
    const COLUMNS: &'static [&'static str];
    /// What the first change of a row the batch did not read does to a row there may
    /// be: a grant replaces it, while a new request needs there is none (its INSERT fails
    /// on the key otherwise, as it did one event at a time).
    const REPLACES: bool;
    fn key_values(key: &Self::Key) -> Vec<Param>;
    fn values(self) -> Vec<Param>;
    /// A row selected as `KEY, COLUMNS`.
    fn read(row: &dyn Cells) -> Result<(Self::Key, Self), Error>;
}

/// A role request's row but its id.
#[derive(Clone, PartialEq)]
struct RequestRow {
    organization: String,
    person: String,
    role: String,
    state: String,
    submitted_at: String,
    decided_at: Option<String>,
    decided_by: Option<String>,
    reason: Option<String>,
    failed_attempts: i64,
    ticket: Option<String>,
}

impl Table for RequestRow {
    /// `<organization id>/<uuid>`.
    type Key = String;
    const KEY: &'static str = "id";
    const REPLACES: bool = false;
    const COLUMNS: &'static [&'static str] = &[
        "organization_id",
        "person_id",
        "role",
        "state",
        "submitted_at",
        "decided_at",
        "decided_by",
        "reason",
        "failed_attempts",
        "ticket",
    ];

    fn key_values(key: &String) -> Vec<Param> {
        vec![Param::from(key.as_str())]
    }

    fn values(self) -> Vec<Param> {
        vec![
            Param::from(self.organization),
            Param::from(self.person),
            Param::from(self.role),
            Param::from(self.state),
            Param::from(self.submitted_at),
            Param::from(self.decided_at),
            Param::from(self.decided_by),
            Param::from(self.reason),
            Param::from(self.failed_attempts),
            Param::from(self.ticket),
        ]
    }

    fn read(row: &dyn Cells) -> Result<(String, RequestRow), Error> {
        Ok((
            row.text(0)?,
            RequestRow {
                organization: row.text(1)?,
                person: row.text(2)?,
                role: row.text(3)?,
                state: row.text(4)?,
                submitted_at: row.text(5)?,
                decided_at: row.opt_text(6)?,
                decided_by: row.opt_text(7)?,
                reason: row.opt_text(8)?,
                failed_attempts: row.int(9)?,
                ticket: row.opt_text(10)?,
            },
        ))
    }
}

/// A grant's row but its key.
#[derive(Clone, PartialEq)]
struct GrantRow {
    role: String,
    granted_at: String,
}

impl Table for GrantRow {
    /// (organization, person).
    type Key = (String, String);
    const KEY: &'static str = "organization_id, person_id";
    const REPLACES: bool = true;
    const COLUMNS: &'static [&'static str] = &["role", "granted_at"];

    fn key_values((organization, person): &(String, String)) -> Vec<Param> {
        vec![
            Param::from(organization.as_str()),
            Param::from(person.as_str()),
        ]
    }

    fn values(self) -> Vec<Param> {
        vec![Param::from(self.role), Param::from(self.granted_at)]
    }

    fn read(row: &dyn Cells) -> Result<((String, String), GrantRow), Error> {
        Ok((
            (row.text(0)?, row.text(1)?),
            GrantRow {
                role: row.text(2)?,
                granted_at: row.text(3)?,
            },
        ))
    }
}

/// A row before the batch.
enum Before<R> {
    /// As read (`None`: there was none).
    Read(Option<R>),
    /// Not read: the batch's first change of the row sets it whatever it was.
    Unread,
}

/// The rows of one table a batch changes, by key: before the batch, and as its events
/// leave them.
struct Rows<R: Table> {
    rows: BTreeMap<R::Key, (Before<R>, Option<R>)>,
}

impl<R: Table> Rows<R> {
    /// The rows of the keys of `changes`, given in log order with whether the change
    /// depends on the row as it was. A row is read when its first change does: in a
    /// rebuild, where nearly every row is new in the batch that changes it, few are.
    async fn load(
        tx: &mut Tx<'_>,
        table: &str,
        changes: impl Iterator<Item = (R::Key, bool)>,
    ) -> Result<Self, Error> {
        let mut rows = BTreeMap::new();
        for (key, reads) in changes {
            rows.entry(key).or_insert_with(|| {
                let before = if reads {
                    Before::Read(None)
                } else {
                    Before::Unread
                };
                (before, None)
            });
        }
        let keys = rows
            .iter()
            .filter(|(_, (before, _))| matches!(before, Before::Read(_)))
            .map(|(key, _)| R::key_values(key))
            .collect();
        let found = tx
            .fetch_rows(
                keys,
                |keys| {
                    format!(
                        "SELECT {}, {} FROM {table} WHERE ({}) IN ({keys})",
                        R::KEY,
                        R::COLUMNS.join(", "),
                        R::KEY
                    )
                },
                R::read,
            )
            .await?;
        for (key, row) in found {
            rows.insert(key, (Before::Read(Some(row.clone())), Some(row)));
        }
        Ok(Rows { rows })
    }

    /// The row of a key given to [`Rows::load`].
    fn row(&mut self, key: &R::Key) -> &mut Option<R> {
        &mut self
            .rows
            .get_mut(key)
            .expect("every key a batch changes is loaded first")
            .1
    }

    /// Writes the rows that changed: new requests by multi-row INSERTs, other rows there
    /// are by multi-row upserts, rows there no longer are by a multi-row DELETE.
    async fn store(self, tx: &mut Tx<'_>, table: &str) -> Result<(), Error> {
        let (mut inserted, mut upserted, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
        for (key, (before, after)) in self.rows {
            let rows = match (before, &after) {
                (Before::Read(before), after) if before.as_ref() == after.as_ref() => continue,
                (Before::Unread, Some(_)) if !R::REPLACES => &mut inserted,
                (_, Some(_)) => &mut upserted,
                (_, None) => &mut deleted,
            };
            let mut values = R::key_values(&key);
            values.extend(after.into_iter().flat_map(R::values));
            rows.push(values);
        }
        let columns = format!("{}, {}", R::KEY, R::COLUMNS.join(", "));
        tx.execute_rows(inserted, |rows| {
            format!("INSERT INTO {table} ({columns}) {rows}")
        })
        .await?;
        let updates: Vec<String> = R::COLUMNS
            .iter()
            .map(|column| format!("{column} = excluded.{column}"))
            .collect();
        tx.execute_rows(upserted, |rows| {
            format!(
                "INSERT INTO {table} ({columns}) {rows} \
                 ON CONFLICT ({}) DO UPDATE SET {}",
                R::KEY,
                updates.join(", ")
            )
        })
        .await?;
        tx.execute_rows(deleted, |keys| {
            format!("DELETE FROM {table} WHERE ({}) IN ({keys})", R::KEY)
        })
        .await
    }
}

const REQUEST_COLUMNS: &str = "r.id, r.person_id, r.role, r.state, r.submitted_at, \
     r.decided_at, r.decided_by, r.reason, r.failed_attempts, r.ticket";

fn role_request(row: &dyn Cells) -> Result<RoleRequest, Error> {
    let corrupt = |column| Error::Corrupt {
        table: REQUESTS,
        column,
    };
    Ok(RoleRequest {
        id: RoleRequestId::parse(&row.text(0)?).map_err(|_| corrupt("id"))?,
        person: parse_id(&row.text(1)?, REQUESTS, "person_id")?,
        role: from_code(row.text(2)?, REQUESTS, "role")?,
        state: from_code(row.text(3)?, REQUESTS, "state")?,
        submitted_at: parse_time(&row.text(4)?, REQUESTS, "submitted_at")?,
        decided_at: row
            .opt_text(5)?
            .map(|at| parse_time(&at, REQUESTS, "decided_at"))
            .transpose()?,
        decided_by: row
            .opt_text(6)?
            .map(|by| parse_id(&by, REQUESTS, "decided_by"))
            .transpose()?,
        reason: row.opt_text(7)?,
        failed_attempts: u8::try_from(row.int(8)?).map_err(|_| corrupt("failed_attempts"))?,
        ticket: row
            .opt_text(9)?
            .map(|ticket| parse_id(&ticket, REQUESTS, "ticket"))
            .transpose()?,
    })
}

fn grant_row(row: &dyn Cells) -> Result<Grant, Error> {
    Ok(Grant {
        organization: parse_id(&row.text(0)?, GRANTS, "organization_id")?,
        person: parse_id(&row.text(1)?, GRANTS, "person_id")?,
        role: from_code(row.text(2)?, GRANTS, "role")?,
        granted_at: parse_time(&row.text(3)?, GRANTS, "granted_at")?,
    })
}

/// Pending-queue cursors: the sort key of the last item, so a page boundary stays put
/// when requests are decided or added.
fn queue_cursor(request: &RoleRequest) -> String {
    format!("{}|{}", time_text(request.submitted_at), request.id)
}

fn parse_queue_cursor(cursor: &str) -> Result<(String, String), Error> {
    let (submitted_at, id) = cursor.split_once('|').ok_or(Error::InvalidCursor)?;
    DateTime::parse_from_rfc3339(submitted_at).map_err(|_| Error::InvalidCursor)?;
    RoleRequestId::parse(id).map_err(|_| Error::InvalidCursor)?;
    Ok((submitted_at.to_owned(), id.to_owned()))
}

impl Views {
    /// The person's connections grouped by organization type, their open requests and
    /// the organizations they see performance feedback of as a clinician.
    pub async fn manage_access(&self, person: &PersonId) -> Result<ManageAccess, Error> {
        if let Some(page) = self.remembered.manage_access(person) {
            return Ok(page);
        }
        let ticket = self.remembered.ticket();
        let page = self.read_manage_access(person).await?;
        if let Some(ticket) = ticket {
            self.remembered.keep_manage_access(ticket, person, &page);
        }
        Ok(page)
    }

    async fn read_manage_access(&self, person: &PersonId) -> Result<ManageAccess, Error> {
        let sql = format!(
            "SELECT g.organization_id, g.role, g.granted_at, \
                    (SELECT COUNT(*) FROM {GRANTS} c WHERE c.organization_id = g.organization_id), \
                    (SELECT COUNT(*) FROM {REQUESTS} r \
                      WHERE r.organization_id = g.organization_id AND r.state = $2) \
               FROM {GRANTS} g WHERE g.person_id = $1 ORDER BY g.organization_id"
        );
        let connections = fetch(
            &self.database,
            &sql,
            params![person.as_str(), code(&RequestState::Pending)],
            |row| {
                let role: Role = from_code(row.text(1)?, GRANTS, "role")?;
                Ok(Connection {
                    organization: parse_id(&row.text(0)?, GRANTS, "organization_id")?,
                    role,
                    granted_at: parse_time(&row.text(2)?, GRANTS, "granted_at")?,
                    users: match role {
                        Role::SecurityOfficial => Some(UserCounts {
                            connected: row.int(3)?,
                            pending: row.int(4)?,
                        }),
                        Role::StaffUser | Role::Clinician => None,
                    },
                })
            },
        )
        .await?;
        let mut tabs = BTreeMap::<OrganizationKind, Vec<Connection>>::new();
        let mut performance_feedback_organizations = Vec::new();
        for connection in connections {
            let kind = connection.organization.kind();
            let feedback_only = connection.role == Role::Clinician
                && matches!(
                    kind,
                    OrganizationKind::ApmEntity | OrganizationKind::VirtualGroup
                );
            if feedback_only {
                performance_feedback_organizations.push(connection.organization);
            } else {
                tabs.entry(kind).or_default().push(connection);
            }
        }
        let open = [
            RequestState::ProofRejected,
            RequestState::Pending,
            RequestState::ManualReview,
        ];
        let open_requests = fetch(
            &self.database,
            &format!(
                "SELECT {REQUEST_COLUMNS} FROM {REQUESTS} r \
                  WHERE r.person_id = $1 AND r.state IN ($2, $3, $4) \
                  ORDER BY r.submitted_at, r.id"
            ),
            params![
                person.as_str(),
                code(&open[0]),
                code(&open[1]),
                code(&open[2])
            ],
            role_request,
        )
        .await?;
        Ok(ManageAccess {
            tabs: tabs
                .into_iter()
                .map(|(kind, connections)| ManageAccessTab { kind, connections })
                .collect(),
            open_requests,
            performance_feedback_organizations,
        })
    }

    /// The pending requests of every organization `security_official` is Security
    /// Official of (or of `organization` only), oldest first, `first` at a time after the
    /// cursor `after`.
    ///
    /// # Errors
    /// [`Error::InvalidCursor`] when `after` is not a cursor of this query.
    pub async fn pending_requests(
        &self,
        security_official: &PersonId,
        organization: Option<&OrganizationId>,
        first: usize,
        after: Option<&str>,
    ) -> Result<PendingRequests, Error> {
        let key = PendingKey {
            organization: organization.cloned(),
            first,
            after: after.map(str::to_owned),
        };
        if let Some(page) = self.remembered.pending(security_official, &key) {
            return Ok(page);
        }
        let ticket = self.remembered.ticket();
        let page = self
            .read_pending_requests(security_official, organization, first, after)
            .await?;
        if let Some(ticket) = ticket {
            let official_of = self.security_official_of(security_official).await?;
            self.remembered
                .keep_pending(ticket, security_official, key, &page, official_of);
        }
        Ok(page)
    }

    async fn security_official_of(&self, person: &PersonId) -> Result<Vec<OrganizationId>, Error> {
        fetch(
            &self.database,
            &format!("SELECT organization_id FROM {GRANTS} WHERE person_id = $1 AND role = $2"),
            params![person.as_str(), code(&Role::SecurityOfficial)],
            |row| parse_id(&row.text(0)?, GRANTS, "organization_id"),
        )
        .await
    }

    async fn read_pending_requests(
        &self,
        security_official: &PersonId,
        organization: Option<&OrganizationId>,
        first: usize,
        after: Option<&str>,
    ) -> Result<PendingRequests, Error> {
        // The empty strings sort before any stored value: no cursor, from the start.
        let (after_time, after_id) = match after {
            Some(cursor) => parse_queue_cursor(cursor)?,
            None => (String::new(), String::new()),
        };
        let filter = format!(
            "FROM {REQUESTS} r \
             WHERE r.state = $2 \
               AND r.organization_id IN (SELECT g.organization_id FROM {GRANTS} g \
                                          WHERE g.person_id = $1 AND g.role = $3) \
               AND ($4 IS NULL OR r.organization_id = $4)"
        );
        let organization = organization.map(ToString::to_string);
        let requests = fetch(
            &self.database,
            &format!(
                "SELECT {REQUEST_COLUMNS} {filter} \
                   AND (r.submitted_at > $5 OR (r.submitted_at = $5 AND r.id > $6)) \
                 ORDER BY r.submitted_at, r.id LIMIT $7"
            ),
            params![
                security_official.as_str(),
                code(&RequestState::Pending),
                code(&Role::SecurityOfficial),
                organization.as_deref(),
                after_time,
                after_id,
                limit(first),
            ],
            role_request,
        )
        .await?;
        let total_count = fetch(
            &self.database,
            &format!("SELECT COUNT(*) {filter}"),
            params![
                security_official.as_str(),
                code(&RequestState::Pending),
                code(&Role::SecurityOfficial),
                organization.as_deref(),
            ],
            |row| row.int(0),
        )
        .await?
        .into_iter()
        .sum();
        Ok(PendingRequests {
            page: Page::of(requests, first, queue_cursor),
            total_count,
        })
    }

    /// Everyone holding a role in the organization, longest-connected first.
    pub async fn organization_users(
        &self,
        organization: &OrganizationId,
    ) -> Result<Vec<Grant>, Error> {
        fetch(
            &self.database,
            &format!(
                "SELECT organization_id, person_id, role, granted_at FROM {GRANTS} \
                  WHERE organization_id = $1 ORDER BY granted_at, person_id"
            ),
            params![organization.to_string()],
            grant_row,
        )
        .await
    }

    pub async fn role_request(&self, id: &RoleRequestId) -> Result<Option<RoleRequest>, Error> {
        let found = fetch(
            &self.database,
            &format!("SELECT {REQUEST_COLUMNS} FROM {REQUESTS} r WHERE r.id = $1"),
            params![id.to_string()],
            role_request,
        )
        .await?;
        Ok(found.into_iter().next())
    }

    /// The grants in force in the organization at instant `at`, by person: its events up
    /// to `at` folded by the aggregate itself, so the answer is what Manage Access showed
    /// then, whatever the views have done since.
    pub async fn access_as_of(
        &self,
        organization: &OrganizationId,
        at: DateTime<Utc>,
    ) -> Result<Vec<Grant>, Error> {
        let stored = self
            .database
            .events_of(Organization::TYPE, &organization.to_string())
            .await?;
        let mut state = Organization::default();
        for stored in stored {
            let Some(envelope) = Envelope::decode(stored)? else {
                continue;
            };
            // A stream's events are in time order; the first one after `at` ends the
            // prefix that was in force (applying a later one alone could name a request
            // the prefix never opened).
            if envelope.event.at() > at {
                break;
            }
            state.apply(envelope.event);
        }
        Ok(state
            .grants()
            .map(|(person, grant)| Grant {
                organization: organization.clone(),
                person: person.clone(),
                role: grant.role,
                granted_at: grant.granted_at,
            })
            .collect())
    }
}
