//! GraphQL object types, built from the aggregate's state and the reference
//! data. Enums mirror the domain's so the two cannot drift.

use access_domain::aggregate;
use access_domain::identifiers::{OrganizationId, PersonId, RoleRequestId};
use access_projections as views;
use access_reference::OrganizationRecord;
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::error::{ApiError, GqlResult};
use crate::service::AccessService;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(
    name = "OrganizationType",
    remote = "access_domain::identifiers::OrganizationKind"
)]
/// The four kinds of organization of the QPP access guides.
pub enum OrganizationType {
    Practice,
    ApmEntity,
    Registry,
    VirtualGroup,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "access_domain::proof::ApmModel")]
/// The Alternative Payment Model an APM Entity takes part in.
pub enum ApmModel {
    SharedSavingsProgram,
    NextGenerationAco,
    CpcPlus,
    ComprehensiveEsrdCare,
    OncologyCareModel,
    BpciAdvanced,
    IndependenceAtHome,
    MarylandTcoc,
    VermontAllPayerAco,
    ComprehensiveCareForJointReplacement,
    PrimaryCareFirst,
    DirectContracting,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "access_domain::roles::Role")]
/// A role in one organization.
pub enum Role {
    /// Approves, denies and revokes the organization's users.
    SecurityOfficial,
    StaffUser,
    /// View-only, from clinician verification.
    Clinician,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "access_domain::roles::RequestState")]
/// Where a role request stands.
pub enum RequestState {
    /// A first Security Official's last proof failed; they may try again.
    ProofRejected,
    /// Waiting for a Security Official of the organization.
    Pending,
    Approved,
    Denied,
    Withdrawn,
    /// Blocked after three failed proofs; a support ticket is open.
    ManualReview,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "access_domain::roles::TicketState")]
/// A help-desk ticket's state.
pub enum TicketState {
    Open,
    ResolvedApproved,
    ResolvedDenied,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "access_domain::capabilities::Capability")]
/// What a role lets a person do in an organization (domain.md, "Roles").
pub enum Capability {
    ViewEligibility,
    ViewClaimsMeasures,
    PhysicianComparePreview,
    SubmitData,
    ViewPerformanceFeedback,
    ViewApmIncentive,
    RequestTargetedReview,
    ViewParticipants,
    RegisterWebInterface,
    RegisterCahps,
    DownloadApiToken,
    SelfNomination,
    ManageAccess,
}

/// An organization of the reference data.
pub struct Organization(pub OrganizationRecord);

/// An organization of the reference data: a practice, APM Entity, registry or virtual group.
#[Object]
impl Organization {
    /// Stable id: `practice:<TIN>`, `registry:<TIN>`, `apm-entity:<ID>` or `virtual-group:<ID>`.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Practice, APM Entity, registry or virtual group.
    #[graphql(name = "type")]
    async fn kind(&self) -> OrganizationType {
        self.0.kind.into()
    }

    /// The legal business name, as registered with CMS.
    async fn legal_business_name(&self) -> &str {
        &self.0.legal_business_name
    }

    /// Practices and registries.
    async fn tin(&self) -> Option<&str> {
        self.0.tin.as_ref().map(|tin| tin.as_str())
    }

    /// APM Entities.
    async fn apm_model(&self) -> Option<ApmModel> {
        self.0.apm_model.map(Into::into)
    }

    /// APM Entities.
    async fn apm_entity_id(&self) -> Option<&str> {
        self.0.apm_entity_id.as_ref().map(|id| id.as_str())
    }

    /// Virtual Groups.
    async fn virtual_group_id(&self) -> Option<&str> {
        self.0.virtual_group_id.as_ref().map(|id| id.as_str())
    }

    /// The street address, when the reference data has one.
    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }

    /// False until a first Security Official is approved; until then only a
    /// Security Official request with proof is accepted.
    async fn has_security_official(&self, ctx: &Context<'_>) -> GqlResult<bool> {
        // From the grants view: one indexed read, where the aggregate would
        // replay the organization's whole history for each search result.
        let users = ctx
            .data_unchecked::<AccessService>()
            .views()
            .organization_users(&self.0.id)
            .await
            .map_err(|error| ApiError::internal("reading an organization's users", &error))?;
        Ok(users
            .iter()
            .any(|grant| grant.role == access_domain::roles::Role::SecurityOfficial))
    }
}

/// A person, known by the identity provider's subject. Names and emails are
/// shown only where this server has them (the caller's own token).
#[derive(SimpleObject, Clone)]
pub struct Person {
    /// The identity provider's subject.
    pub id: ID,
    /// As the identity provider names the person; known for the caller only.
    pub display_name: Option<String>,
    /// Known for the caller only.
    pub email: Option<String>,
}

impl Person {
    pub fn known_by_id(person: &PersonId) -> Self {
        Person {
            id: ID(person.to_string()),
            display_name: None,
            email: None,
        }
    }
}

/// A request for a role in one organization.
pub struct RoleRequest(pub views::RoleRequest);

impl RoleRequest {
    /// From the organization's state, as a command left it.
    pub fn from_state(organization: &OrganizationId, request: &aggregate::RoleRequest) -> Self {
        RoleRequest(views::RoleRequest {
            id: RoleRequestId {
                organization: organization.clone(),
                request: request.id,
            },
            person: request.person.clone(),
            role: request.role,
            state: request.state,
            submitted_at: request.submitted_at,
            decided_at: request.decided_at,
            decided_by: request.decided_by.clone(),
            reason: request.reason.clone(),
            failed_attempts: request.failed_attempts,
            ticket: request.ticket.as_ref().map(|ticket| ticket.number.clone()),
        })
    }

    pub fn requester_id(&self) -> &PersonId {
        &self.0.person
    }
}

/// A request for a role in one organization, and where it stands.
#[Object]
impl RoleRequest {
    /// `<organization id>/<uuid>`.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The organization the role is asked for.
    async fn organization(&self, ctx: &Context<'_>) -> GqlResult<Organization> {
        Ok(ctx
            .data_unchecked::<AccessService>()
            .organization(&self.0.id.organization)?)
    }

    /// Who asked.
    async fn requester(&self) -> Person {
        Person::known_by_id(&self.0.person)
    }

    /// The role asked for.
    async fn role(&self) -> Role {
        self.0.role.into()
    }

    /// Where the request stands.
    async fn state(&self) -> RequestState {
        self.0.state.into()
    }

    /// When the request was made.
    async fn submitted_at(&self) -> DateTime<Utc> {
        self.0.submitted_at
    }

    /// When it was approved, denied, withdrawn or resolved by support.
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }

    /// The Security Official or support agent who decided; null for an
    /// automatic approval on a valid proof.
    async fn decided_by(&self) -> Option<Person> {
        self.0.decided_by.as_ref().map(Person::known_by_id)
    }

    /// The denial reason or the support agent's note.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }

    /// Failed proofs since the request opened or was last unblocked.
    async fn failed_attempts(&self) -> i32 {
        i32::from(self.0.failed_attempts)
    }

    /// The help-desk ticket opened when the requester was blocked.
    async fn ticket(&self, ctx: &Context<'_>) -> GqlResult<Option<SupportTicket>> {
        let Some(number) = &self.0.ticket else {
            return Ok(None);
        };
        Ok(ctx.data_unchecked::<AccessService>().ticket(number).await?)
    }
}

/// Outcome of `requestRole`. A failed proof is recorded, so it is data here,
/// not an error.
#[derive(SimpleObject)]
pub struct RequestRolePayload {
    /// The request this call made or continued.
    pub request: RoleRequest,
    /// True when this call's proof failed (and was recorded).
    pub proof_rejected: bool,
    /// Attempts left after a failed proof; null otherwise.
    pub attempts_remaining: Option<i32>,
}

/// A help-desk ticket opened by the third failed proof.
pub struct SupportTicket(pub views::Ticket);

/// A help-desk ticket opened when a first Security Official failed three proofs.
#[Object]
impl SupportTicket {
    /// e.g. CS00000123
    async fn number(&self) -> &str {
        self.0.number.as_str()
    }

    /// Where the person was blocked.
    async fn organization(&self, ctx: &Context<'_>) -> GqlResult<Organization> {
        Ok(ctx
            .data_unchecked::<AccessService>()
            .organization(&self.0.organization)?)
    }

    /// The blocked person.
    async fn person(&self) -> Person {
        Person::known_by_id(&self.0.person)
    }

    /// When the person was blocked.
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }

    /// Open until support resolves it (or unblocks the person).
    async fn state(&self) -> TicketState {
        self.0.state.into()
    }

    /// Masked values of each failed proof; never full values.
    async fn attempts(&self) -> Vec<FailedProof> {
        self.0
            .attempts
            .iter()
            .map(|failed| FailedProof {
                at: failed.at,
                masked_proof: failed.masked_proof.clone(),
                reason: failed.mismatch.message().to_string(),
            })
            .collect()
    }
}

/// One failed proof, masked.
#[derive(SimpleObject)]
pub struct FailedProof {
    /// When the proof was given.
    pub at: DateTime<Utc>,
    /// e.g. `tin *****6789, npi ******7893, ptan ****34`
    pub masked_proof: String,
    /// What did not match, in plain words.
    pub reason: String,
}

/// A person's role in an organization.
pub struct Grant(pub views::Grant);

impl Grant {
    /// From the organization's state, as a command left it.
    pub fn from_state(
        organization: &OrganizationId,
        person: &PersonId,
        grant: &aggregate::Grant,
    ) -> Self {
        Grant(views::Grant {
            organization: organization.clone(),
            person: person.clone(),
            role: grant.role,
            granted_at: grant.granted_at,
        })
    }
}

/// A role a person holds in an organization.
#[Object]
impl Grant {
    /// Where the role is held.
    async fn organization(&self, ctx: &Context<'_>) -> GqlResult<Organization> {
        Ok(ctx
            .data_unchecked::<AccessService>()
            .organization(&self.0.organization)?)
    }

    /// Who holds it.
    async fn person(&self) -> Person {
        Person::known_by_id(&self.0.person)
    }

    /// The role.
    async fn role(&self) -> Role {
        self.0.role.into()
    }

    /// Since when (a role change keeps the first grant time).
    async fn granted_at(&self) -> DateTime<Utc> {
        self.0.granted_at
    }

    /// What the role lets the person do here.
    async fn capabilities(&self) -> Vec<Capability> {
        access_domain::capabilities::capabilities(self.0.role, self.0.organization.kind())
            .iter()
            .map(|capability| (*capability).into())
            .collect()
    }
}
