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
    /// The organization type this tab lists.
    #[graphql(name = "type")]
    pub kind: OrganizationType,
    /// The organizations of that type the person holds a role in.
    pub connections: Vec<ManageAccessConnection>,
}

/// A connected organization and the viewer's role there.
#[derive(SimpleObject)]
pub struct ManageAccessConnection {
    /// The connected organization.
    pub organization: Organization,
    /// The person's role there.
    pub role: Role,
    /// Everyone holding a role there, the viewer included; only for a Security Official.
    pub connected_users: Option<i32>,
    /// Only for a Security Official.
    pub pending_users: Option<i32>,
}

/// A person's Manage Access page.
#[derive(SimpleObject)]
pub struct ManageAccess {
    /// Connected organizations, one tab per organization type.
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

/// Where a page ends, for asking the next one.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether more items follow this page.
    pub has_next_page: bool,
    /// Pass as `after` for the next page; null on an empty page.
    pub end_cursor: Option<String>,
}

/// One role request of a page, with its cursor.
#[derive(SimpleObject)]
pub struct RoleRequestEdge {
    /// Stable: pages after it stay put while requests arrive.
    pub cursor: String,
    /// The request.
    pub node: RoleRequest,
}

/// A page of role requests, oldest first.
#[derive(SimpleObject)]
pub struct RoleRequestConnection {
    /// The requests of this page, oldest first.
    pub edges: Vec<RoleRequestEdge>,
    /// Where this page ends.
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

/// A person blocked from proving their connection to an organization, and their ticket.
#[Object]
impl BlockedAccount {
    /// Who is blocked.
    async fn person(&self) -> Person {
        Person::known_by_id(&self.0.person)
    }

    /// Where.
    async fn organization(&self, ctx: &Context<'_>) -> GqlResult<Organization> {
        Ok(ctx
            .data_unchecked::<AccessService>()
            .organization(&self.0.organization)?)
    }

    /// When the third failed proof blocked them.
    async fn blocked_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }

    /// The help-desk ticket, with the masked failed proofs.
    async fn ticket(&self) -> SupportTicket {
        SupportTicket(self.0.clone())
    }
}

/// One stored event, as auditors read it.
#[derive(SimpleObject)]
pub struct AuditEvent {
    /// Global, strictly increasing in commit order.
    pub position: String,
    /// The organization whose stream holds the event.
    pub organization_id: ID,
    /// Per organization.
    pub sequence: i32,
    /// e.g. `RoleGranted` (docs/events.md lists them all).
    pub event_type: String,
    /// The shape of the payload, e.g. `1.0`.
    pub event_version: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Who acted; null for an automatic approval.
    pub actor: Option<Person>,
    /// JSON text, never carrying SSNs or full proof values.
    pub payload: String,
}

/// One event of a page, with its cursor.
#[derive(SimpleObject)]
pub struct AuditEventEdge {
    /// The event's position: stable while events keep arriving.
    pub cursor: String,
    /// The event.
    pub node: AuditEvent,
}

/// A page of the audit log, in commit order.
#[derive(SimpleObject)]
pub struct AuditEventConnection {
    /// The events of this page.
    pub edges: Vec<AuditEventEdge>,
    /// Where this page ends.
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
    /// Only this organization's events.
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
    /// Whether the capability is allowed.
    pub allowed: bool,
    /// The role the person holds in the organization, if any.
    pub role: Option<Role>,
    /// Why, in plain words.
    pub reason: String,
}

/// The clinician of the eligibility data whose name matches the caller's.
#[derive(SimpleObject)]
pub struct ClinicianMatch {
    /// The clinician's NPI.
    pub npi: String,
    /// First and last name, as the eligibility data has them.
    pub display_name: String,
    /// The practices, APM Entities and virtual groups the clinician is associated with.
    pub organizations: Vec<Organization>,
}

/// Manual clinician verification: NPI, SSN and one PTAN.
#[derive(InputObject)]
pub struct ClinicianManualInput {
    /// The clinician's NPI.
    pub npi: Option<String>,
    /// Used to verify and never kept; dashes and spaces allowed.
    pub ssn: Option<String>,
    /// The PTAN of any one of the clinician's practices.
    pub ptan: Option<String>,
}

/// The Clinician role granted on every associated practice.
#[derive(SimpleObject)]
pub struct ClinicianConnection {
    /// The NPI connected.
    pub npi: String,
    /// The Clinician roles the person now holds.
    pub grants: Vec<Grant>,
}

/// Something that happened to the person, shown on screen.
#[derive(SimpleObject)]
pub struct Notification {
    /// Pass to markNotificationRead.
    pub id: ID,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened, e.g. `REQUEST_APPROVED`.
    pub kind: String,
    /// The message, in plain words.
    pub message: String,
    /// Whether the person marked it read.
    pub read: bool,
}
