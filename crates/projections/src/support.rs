//! View "support": help-desk tickets and the masked failed proofs behind them. Blocked
//! accounts and one ticket.

use std::collections::HashMap;

use access_domain::identifiers::{OrganizationId, PersonId, RoleRequestId, TicketNumber};
use access_domain::proof::ProofMismatch;
use access_domain::roles::TicketState;
use access_domain::OrganizationEvent;
use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::events::Envelope;
use crate::read::Views;
use crate::sql::{code, fetch, from_code, params, parse_id, parse_time, Cells, Param, Tx};
use crate::view::Target;

pub(crate) const TICKETS: &str = "view_tickets";
pub(crate) const FAILED_PROOFS: &str = "view_failed_proofs";

/// A help-desk ticket: opened when a person failed their third proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub number: TicketNumber,
    /// The aggregate a `ResolveTicket` command goes to.
    pub organization: OrganizationId,
    pub request: RoleRequestId,
    /// The blocked person.
    pub person: PersonId,
    /// When the person was blocked.
    pub opened_at: DateTime<Utc>,
    pub state: TicketState,
    /// The failed proofs that led to it, in order; masked values only.
    pub attempts: Vec<FailedProof>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedProof {
    pub at: DateTime<Utc>,
    /// e.g. `tin *****6789, npi ******7893, ptan ****34`.
    pub masked_proof: String,
    /// `mismatch.message()` is the reason to show.
    pub mismatch: ProofMismatch,
}

pub(crate) async fn apply(
    target: Target,
    tx: &mut Tx<'_>,
    envelope: &Envelope,
) -> Result<(), Error> {
    use OrganizationEvent::*;
    let tickets = target.table(TICKETS);
    let failed_proofs = target.table(FAILED_PROOFS);
    match &envelope.event {
        ProofRejected {
            request_id,
            person,
            attempt,
            masked_proof,
            mismatch,
            at,
            ..
        } => {
            tx.execute(
                &format!(
                    "INSERT INTO {failed_proofs} (position, organization_id, request_id, \
                     person_id, attempt, at, masked_proof, mismatch) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                params![
                    envelope.position,
                    envelope.organization.to_string(),
                    envelope.request_key(request_id),
                    person.as_str(),
                    i64::from(*attempt),
                    *at,
                    masked_proof.as_str(),
                    code(mismatch),
                ],
            )
            .await
        }
        RequesterBlocked {
            request_id,
            person,
            ticket,
            at,
        } => {
            let request = envelope.request_key(request_id);
            tx.execute(
                &format!(
                    "INSERT INTO {tickets} (number, organization_id, request_id, person_id, \
                     opened_at, state) VALUES ($1, $2, $3, $4, $5, $6)"
                ),
                params![
                    ticket.as_str(),
                    envelope.organization.to_string(),
                    request.as_str(),
                    person.as_str(),
                    *at,
                    code(&TicketState::Open),
                ],
            )
            .await?;
            // The attempts since the request opened or was last unblocked.
            tx.execute(
                &format!(
                    "UPDATE {failed_proofs} SET ticket = $2 WHERE request_id = $1 AND ticket IS NULL"
                ),
                params![request, ticket.as_str()],
            )
            .await
        }
        TicketResolved {
            ticket, approved, ..
        } => {
            let state = if *approved {
                TicketState::ResolvedApproved
            } else {
                TicketState::ResolvedDenied
            };
            close(tx, &tickets, ticket, state).await
        }
        // Support let the person try again: the ticket closes unapproved.
        RequesterUnblocked { ticket, .. } => {
            close(tx, &tickets, ticket, TicketState::ResolvedDenied).await
        }
        RoleRequested { .. }
        | ProofAccepted { .. }
        | RoleRequestSentForApproval { .. }
        | RoleRequestApproved { .. }
        | RoleRequestDenied { .. }
        | RoleRequestWithdrawn { .. }
        | RoleGranted { .. }
        | ClinicianRoleGranted { .. }
        | ClinicianClaimRefused { .. }
        | StaffUserRevoked { .. }
        | RoleChanged { .. }
        | SecurityOfficialRemoved { .. } => Ok(()),
    }
}

async fn close(
    tx: &mut Tx<'_>,
    tickets: &str,
    ticket: &TicketNumber,
    state: TicketState,
) -> Result<(), Error> {
    tx.execute(
        &format!("UPDATE {tickets} SET state = $2 WHERE number = $1"),
        params![ticket.as_str(), code(&state)],
    )
    .await
}

impl Views {
    /// Every person blocked from proving their connection, with their open ticket, the
    /// longest-waiting first. A person is blocked in an organization exactly while their
    /// ticket there is open.
    pub async fn blocked_accounts(&self) -> Result<Vec<Ticket>, Error> {
        self.tickets("state = $1", params![code(&TicketState::Open)])
            .await
    }

    pub async fn support_ticket(&self, number: &TicketNumber) -> Result<Option<Ticket>, Error> {
        let found = self
            .tickets("number = $1", params![number.as_str()])
            .await?;
        Ok(found.into_iter().next())
    }

    /// The tickets matching `condition`, oldest first, each with its attempts: two
    /// queries whatever the number of tickets.
    async fn tickets(&self, condition: &str, params: &[Param]) -> Result<Vec<Ticket>, Error> {
        let mut tickets = fetch(
            &self.database,
            &format!(
                "SELECT number, organization_id, request_id, person_id, opened_at, state \
                   FROM {TICKETS} WHERE {condition} ORDER BY opened_at, number"
            ),
            params,
            ticket_row,
        )
        .await?;
        let attempts = fetch(
            &self.database,
            &format!(
                "SELECT ticket, at, masked_proof, mismatch FROM {FAILED_PROOFS} \
                  WHERE ticket IN (SELECT number FROM {TICKETS} WHERE {condition}) \
                  ORDER BY position"
            ),
            params,
            |row| {
                let ticket: TicketNumber = parse_id(&row.text(0)?, FAILED_PROOFS, "ticket")?;
                let attempt = FailedProof {
                    at: parse_time(&row.text(1)?, FAILED_PROOFS, "at")?,
                    masked_proof: row.text(2)?,
                    mismatch: from_code(row.text(3)?, FAILED_PROOFS, "mismatch")?,
                };
                Ok((ticket, attempt))
            },
        )
        .await?;
        let index: HashMap<TicketNumber, usize> = tickets
            .iter()
            .enumerate()
            .map(|(index, ticket)| (ticket.number.clone(), index))
            .collect();
        for (number, attempt) in attempts {
            if let Some(&at) = index.get(&number) {
                tickets[at].attempts.push(attempt);
            }
        }
        Ok(tickets)
    }
}

fn ticket_row(row: &dyn Cells) -> Result<Ticket, Error> {
    Ok(Ticket {
        number: parse_id(&row.text(0)?, TICKETS, "number")?,
        organization: parse_id(&row.text(1)?, TICKETS, "organization_id")?,
        request: RoleRequestId::parse(&row.text(2)?).map_err(|_| Error::Corrupt {
            table: TICKETS,
            column: "request_id",
        })?,
        person: parse_id(&row.text(3)?, TICKETS, "person_id")?,
        opened_at: parse_time(&row.text(4)?, TICKETS, "opened_at")?,
        state: from_code(row.text(5)?, TICKETS, "state")?,
        attempts: Vec::new(),
    })
}
