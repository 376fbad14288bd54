//! Contract types whose resolvers come with the projections, clinician and
//! notification work. They are here so the schema keeps the whole contract.

use async_graphql::{InputObject, SimpleObject, ID};
use chrono::{DateTime, Utc};

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
    pub open_requests: Vec<RoleRequest>,
    /// APM Entities and virtual groups reached through the Clinician role.
    pub performance_feedback_organizations: Vec<Organization>,
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
    pub total_count: i32,
}

/// A person blocked from proving their connection to an organization.
#[derive(SimpleObject)]
pub struct BlockedAccount {
    pub person: Person,
    pub organization: Organization,
    pub blocked_at: DateTime<Utc>,
    pub ticket: SupportTicket,
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

/// Narrows the audit log; every given field must match.
#[derive(InputObject)]
pub struct AuditFilter {
    pub organization_id: Option<ID>,
    pub person_id: Option<ID>,
    pub event_types: Option<Vec<String>>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
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
