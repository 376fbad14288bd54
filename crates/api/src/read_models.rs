//! Contract types answered from the views (Manage Access, the pending queue,
//! the support desk, the audit log) and the clinician and notification types.

use access_domain::identifiers::{OrganizationId, PersonId};
use access_projections as views;
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult, GqlResult};
use crate::service::AccessService;
use crate::types::{
    Grant, Organization, OrganizationType, Person, Role, RoleRequest, SupportTicket,
};

/// One tab of Manage Access: the connections of one organization type.
#[derive(SimpleObject)]
pub struct ManageAccessTab {
    #[graphql(name = "type")]
    pub kind: OrganizationType,
    pub connections: Vec<ManageAccessConnection>,
}

/// A connected organization and the viewer's role there.
#[derive(SimpleObject)]
pub struct ManageAccessConnection {
    pub organization: Organization,
    pub role: Role,
    /// Everyone holding a role there, the viewer included; only for a Security Official.
    pub connected_users: Option<i32>,
    /// Only for a Security Official.
    pub pending_users: Option<i32>,
}

/// A person's Manage Access page.
#[derive(SimpleObject)]
pub struct ManageAccess {
    pub tabs: Vec<ManageAccessTab>,
    /// The person's own requests still open (proof rejected, pending, in manual review).
    pub open_requests: Vec<RoleRequest>,
    /// APM Entities and virtual groups reached through the Clinician role.
    pub performance_feedback_organizations: Vec<Organization>,
}

impl ManageAccess {
    pub fn from_view(service: &AccessService, page: views::ManageAccess) -> ApiResult<Self> {
        let tabs = page
            .tabs
            .into_iter()
            .map(|tab| {
                let connections = tab
                    .connections
                    .into_iter()
                    .map(|connection| {
                        Ok(ManageAccessConnection {
                            organization: service.organization(&connection.organization)?,
                            role: connection.role.into(),
                            connected_users: connection.users.map(|users| count(users.connected)),
                            pending_users: connection.users.map(|users| count(users.pending)),
                        })
                    })
                    .collect::<ApiResult<Vec<_>>>()?;
                Ok(ManageAccessTab {
                    kind: tab.kind.into(),
                    connections,
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(ManageAccess {
            tabs,
            open_requests: page.open_requests.into_iter().map(RoleRequest).collect(),
            performance_feedback_organizations: page
                .performance_feedback_organizations
                .iter()
                .map(|id| service.organization(id))
                .collect::<ApiResult<Vec<_>>>()?,
        })
    }
}

fn count(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct RoleRequestEdge {
    pub cursor: String,
    pub node: RoleRequest,
}

/// A page of role requests, oldest first.
#[derive(SimpleObject)]
pub struct RoleRequestConnection {
    pub edges: Vec<RoleRequestEdge>,
    pub page_info: PageInfo,
    /// Every request the query matches, across pages.
    pub total_count: i32,
}

impl RoleRequestConnection {
    pub fn from_view(pending: views::PendingRequests) -> Self {
        RoleRequestConnection {
            page_info: page_info(&pending.page),
            edges: pending
                .page
                .edges
                .into_iter()
                .map(|edge| RoleRequestEdge {
                    cursor: edge.cursor,
                    node: RoleRequest(edge.node),
                })
                .collect(),
            total_count: count(pending.total_count),
        }
    }
}

fn page_info<T>(page: &views::Page<T>) -> PageInfo {
    PageInfo {
        has_next_page: page.has_next_page,
        end_cursor: page.end_cursor().map(str::to_string),
    }
}

/// A person blocked from proving their connection to an organization.
pub struct BlockedAccount(views::Ticket);

impl BlockedAccount {
    pub fn from_ticket(ticket: views::Ticket) -> Self {
        BlockedAccount(ticket)
    }
}

#[Object]
impl BlockedAccount {
    async fn person(&self) -> Person {
        Person::known_by_id(&self.0.person)
    }

    async fn organization(&self, ctx: &Context<'_>) -> GqlResult<Organization> {
        Ok(ctx
            .data_unchecked::<AccessService>()
            .organization(&self.0.organization)?)
    }

    /// When the third failed proof blocked them.
    async fn blocked_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }

    async fn ticket(&self) -> SupportTicket {
        SupportTicket(self.0.clone())
    }
}

/// One stored event, as auditors read it.
#[derive(SimpleObject)]
pub struct AuditEvent {
    /// Global, strictly increasing in commit order.
    pub position: String,
    pub organization_id: ID,
    /// Per organization.
    pub sequence: i32,
    pub event_type: String,
    pub event_version: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: Option<Person>,
    /// JSON text, never carrying SSNs or full proof values.
    pub payload: String,
}

#[derive(SimpleObject)]
pub struct AuditEventEdge {
    pub cursor: String,
    pub node: AuditEvent,
}

#[derive(SimpleObject)]
pub struct AuditEventConnection {
    pub edges: Vec<AuditEventEdge>,
    pub page_info: PageInfo,
}

impl AuditEventConnection {
    pub fn from_view(page: views::Page<views::AuditEntry>) -> Self {
        AuditEventConnection {
            page_info: page_info(&page),
            edges: page
                .edges
                .into_iter()
                .map(|edge| AuditEventEdge {
                    cursor: edge.cursor,
                    node: AuditEvent {
                        position: edge.node.position.to_string(),
                        organization_id: ID(edge.node.organization.to_string()),
                        sequence: i32::try_from(edge.node.sequence).unwrap_or(i32::MAX),
                        event_type: edge.node.event_type,
                        event_version: edge.node.event_version,
                        occurred_at: edge.node.occurred_at,
                        actor: edge.node.actor.as_ref().map(Person::known_by_id),
                        payload: edge.node.payload,
                    },
                })
                .collect(),
        }
    }
}

/// Narrows the audit log; every given field must match.
#[derive(InputObject)]
pub struct AuditFilter {
    pub organization_id: Option<ID>,
    /// Events the person caused or that are about them.
    pub person_id: Option<ID>,
    /// e.g. ["RoleGranted", "StaffUserRevoked"] (docs/events.md).
    pub event_types: Option<Vec<String>>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Inclusive.
    pub to: Option<DateTime<Utc>>,
}

impl AuditFilter {
    pub fn parse(self) -> ApiResult<views::AuditFilter> {
        let invalid = |field: &str, error| ApiError::invalid(format!("filter.{field}"), error);
        Ok(views::AuditFilter {
            organization: self
                .organization_id
                .map(|id| {
                    OrganizationId::parse(&id).map_err(|error| invalid("organizationId", error))
                })
                .transpose()?,
            person: self
                .person_id
                .map(|id| PersonId::parse(&id).map_err(|error| invalid("personId", error)))
                .transpose()?,
            event_types: self.event_types,
            from: self.from,
            to: self.to,
        })
    }
}

/// The answer to "may this person do this here?", with why.
#[derive(SimpleObject)]
pub struct Decision {
    pub allowed: bool,
    pub role: Option<Role>,
    pub reason: String,
}

/// The clinician of the eligibility data whose name matches the caller's.
#[derive(SimpleObject)]
pub struct ClinicianMatch {
    pub npi: String,
    pub display_name: String,
    pub organizations: Vec<Organization>,
}

/// Manual clinician verification: NPI, SSN and one PTAN.
#[derive(InputObject)]
pub struct ClinicianManualInput {
    pub npi: Option<String>,
    pub ssn: Option<String>,
    pub ptan: Option<String>,
}

/// The Clinician role granted on every associated practice.
#[derive(SimpleObject)]
pub struct ClinicianConnection {
    pub npi: String,
    pub grants: Vec<Grant>,
}

/// Something that happened to the person, shown on screen.
#[derive(SimpleObject)]
pub struct Notification {
    pub id: ID,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
    pub read: bool,
}
