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
use crate::sql::{code, fetch, from_code, params, parse_id, parse_time, time_text, Cells, Tx};
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

pub(crate) async fn apply(target: Target, tx: &mut Tx, envelope: &Envelope) -> Result<(), Error> {
    use OrganizationEvent::*;
    let grants = target.table(GRANTS);
    let requests = target.table(REQUESTS);
    let organization = envelope.organization.to_string();
    match &envelope.event {
        RoleRequested {
            request_id,
            person,
            role,
            at,
            ..
        } => {
            // A proof-path request is decided by the next event of the same commit, which
            // the same transaction applies, so nobody sees it pending.
            tx.execute(
                &format!(
                    "INSERT INTO {requests} (id, organization_id, person_id, role, state, \
                     submitted_at, failed_attempts) VALUES ($1, $2, $3, $4, $5, $6, 0)"
                ),
                params![
                    envelope.request_key(request_id),
                    organization,
                    person.as_str(),
                    code(role),
                    code(&RequestState::Pending),
                    *at,
                ],
            )
            .await
        }
        ProofRejected { request_id, .. } => {
            tx.execute(
                &format!(
                    "UPDATE {requests} SET state = $2, failed_attempts = failed_attempts + 1 \
                     WHERE id = $1"
                ),
                params![
                    envelope.request_key(request_id),
                    code(&RequestState::ProofRejected)
                ],
            )
            .await
        }
        RequesterBlocked {
            request_id, ticket, ..
        } => {
            tx.execute(
                &format!("UPDATE {requests} SET state = $2, ticket = $3 WHERE id = $1"),
                params![
                    envelope.request_key(request_id),
                    code(&RequestState::ManualReview),
                    ticket.as_str(),
                ],
            )
            .await
        }
        RoleRequestSentForApproval {
            request_id, role, ..
        } => {
            tx.execute(
                &format!("UPDATE {requests} SET state = $2, role = $3 WHERE id = $1"),
                params![
                    envelope.request_key(request_id),
                    code(&RequestState::Pending),
                    code(role),
                ],
            )
            .await
        }
        RequesterUnblocked { request_id, .. } => {
            tx.execute(
                &format!("UPDATE {requests} SET state = $2, failed_attempts = 0 WHERE id = $1"),
                params![
                    envelope.request_key(request_id),
                    code(&RequestState::ProofRejected)
                ],
            )
            .await
        }
        ProofAccepted { request_id, at, .. } => {
            let decision = Decision::new(RequestState::Approved, *at);
            decision.record(tx, &requests, envelope, request_id).await
        }
        RoleRequestApproved {
            request_id,
            approver,
            at,
            ..
        } => {
            let decision = Decision::new(RequestState::Approved, *at).by(approver);
            decision.record(tx, &requests, envelope, request_id).await
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
            decision.record(tx, &requests, envelope, request_id).await
        }
        RoleRequestWithdrawn { request_id, at, .. } => {
            let decision = Decision::new(RequestState::Withdrawn, *at);
            decision.record(tx, &requests, envelope, request_id).await
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
            decision.record(tx, &requests, envelope, request_id).await
        }
        RoleGranted {
            person, role, at, ..
        } => grant(tx, &grants, &organization, person, *role, *at).await,
        ClinicianRoleGranted { person, at, .. } => {
            grant(tx, &grants, &organization, person, Role::Clinician, *at).await
        }
        StaffUserRevoked { person, .. } | SecurityOfficialRemoved { person, .. } => {
            tx.execute(
                &format!("DELETE FROM {grants} WHERE organization_id = $1 AND person_id = $2"),
                params![organization, person.as_str()],
            )
            .await
        }
        // Recorded for support and the auditors; nobody's access changed.
        ClinicianClaimRefused { .. } => Ok(()),
        RoleChanged { person, to, .. } => {
            // The grant keeps its date: the person has been connected since then.
            tx.execute(
                &format!(
                    "UPDATE {grants} SET role = $3 WHERE organization_id = $1 AND person_id = $2"
                ),
                params![organization, person.as_str(), code(to)],
            )
            .await
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

    async fn record(
        self,
        tx: &mut Tx,
        requests: &str,
        envelope: &Envelope,
        request: &uuid::Uuid,
    ) -> Result<(), Error> {
        tx.execute(
            &format!(
                "UPDATE {requests} SET state = $2, decided_at = $3, decided_by = $4, reason = $5 \
                 WHERE id = $1"
            ),
            params![
                envelope.request_key(request),
                code(&self.state),
                self.at,
                self.by.map(PersonId::as_str),
                self.reason,
            ],
        )
        .await
    }
}

/// A new grant replaces any earlier one of the person there, as in the aggregate.
async fn grant(
    tx: &mut Tx,
    grants: &str,
    organization: &str,
    person: &PersonId,
    role: Role,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    tx.execute(
        &format!(
            "INSERT INTO {grants} (organization_id, person_id, role, granted_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (organization_id, person_id) \
             DO UPDATE SET role = excluded.role, granted_at = excluded.granted_at"
        ),
        params![organization, person.as_str(), code(&role), at],
    )
    .await
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
