//! The GraphQL roots. Resolvers parse their input into domain types (so a
//! malformed field is refused with its name), get the caller's capability,
//! and hand one command to the organization's aggregate.

use access_domain::capabilities::{self, Capability as DomainCapability};
use access_domain::identifiers::{
    ApmEntityId, IdentifierError, Npi, OrganizationId, PersonId, Ptan, RoleRequestId, TicketNumber,
    Tin, VendorId,
};
use access_domain::proof::SecurityOfficialProof as Proof;
use access_domain::roles::Role as DomainRole;
use access_domain::{Organization as OrganizationState, OrganizationCommand, OrganizationEvent};
use access_reference::SearchError;
use async_graphql::{Context, InputObject, Object, Schema, SchemaBuilder, Subscription, ID};
use futures_util::Stream;
use uuid::Uuid;

use crate::auth::{Caller, Identity};
use crate::clinician::{self, ManualProof};
use crate::error::{ApiError, ApiResult, ErrorCode, GqlResult};
use crate::observe::WebSocketMutations;
use crate::read_models::{
    AuditEventConnection, AuditFilter, BlockedAccount, ClinicianConnection, ClinicianManualInput,
    ClinicianMatch, Decision, ManageAccess, Notification, RoleRequestConnection,
};
use crate::service::{AccessService, Executed};
use crate::subscriptions::{self, Audience};
use crate::types::{
    ApmModel, Capability, Grant, Organization, OrganizationType, Person, RequestRolePayload, Role,
    RoleRequest, SupportTicket,
};

pub type AccessSchema = Schema<Query, Mutation, Subscription>;

/// Deepest selection a document may nest: the contract's deepest useful
/// query is about 6 levels.
const MAX_DEPTH: usize = 12;
/// Most fields one document may select, counted by async-graphql.
const MAX_COMPLEXITY: usize = 2_000;

/// The schema; `service` is absent only when exporting the SDL.
pub fn build(service: Option<AccessService>) -> AccessSchema {
    match service {
        Some(service) => builder().data(service).finish(),
        None => builder().finish(),
    }
}

/// The schema the WebSocket serves: the HTTP handler's checks of mutations
/// (docs/operations.md) are an extension there.
pub(crate) fn for_websocket(service: AccessService) -> AccessSchema {
    builder()
        .extension(WebSocketMutations)
        .data(service)
        .finish()
}

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .register_output_type::<ErrorCode>()
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    build(None).sdl()
}

/// Longest free-text reason or note kept in an event.
const MAX_NOTE_CHARS: usize = 1000;
/// Most organizations one search returns.
const MAX_SEARCH_RESULTS: i32 = 100;

fn service<'a>(ctx: &Context<'a>) -> &'a AccessService {
    ctx.data_unchecked::<AccessService>()
}

fn identity<'a>(ctx: &Context<'a>) -> ApiResult<&'a Identity> {
    ctx.data_unchecked::<Caller>().identity()
}

/// Auditors and support staff read the whole history; nobody else.
fn auditor(ctx: &Context<'_>) -> ApiResult<()> {
    if identity(ctx)?.may_read_everything() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only auditors and support staff read the audit history.".into(),
        ))
    }
}

/// Largest page any connection answers.
const MAX_PAGE_SIZE: i32 = 100;

fn page_size(first: Option<i32>, default: i32) -> ApiResult<usize> {
    match first.unwrap_or(default) {
        first @ 1..=MAX_PAGE_SIZE => Ok(first as usize),
        _ => Err(ApiError::InvalidInput {
            field: "first".into(),
            message: format!("must be between 1 and {MAX_PAGE_SIZE}"),
        }),
    }
}

/// A cursor the server never issued is the client's mistake; anything else
/// is logged and hidden.
fn view_error(context: &str, error: access_projections::Error) -> ApiError {
    match error {
        access_projections::Error::InvalidCursor => ApiError::InvalidInput {
            field: "after".into(),
            message: "is not a cursor this query returned".into(),
        },
        other => ApiError::internal(context, &other),
    }
}

fn parse<T>(
    field: &str,
    value: &str,
    parser: fn(&str) -> Result<T, IdentifierError>,
) -> ApiResult<T> {
    parser(value).map_err(|error| ApiError::invalid(field, error))
}

fn optional<T>(
    field: &str,
    value: Option<&str>,
    parser: fn(&str) -> Result<T, IdentifierError>,
) -> ApiResult<Option<T>> {
    value.map(|value| parse(field, value, parser)).transpose()
}

fn note(field: &str, text: Option<String>) -> ApiResult<Option<String>> {
    match text.map(|text| text.trim().to_string()) {
        Some(text) if text.chars().count() > MAX_NOTE_CHARS => Err(ApiError::InvalidInput {
            field: field.into(),
            message: format!("must be at most {MAX_NOTE_CHARS} characters"),
        }),
        Some(text) if text.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Search for organizations to connect to.
#[derive(InputObject)]
pub struct OrganizationSearch {
    /// The kind of organization to look for.
    #[graphql(name = "type")]
    pub kind: OrganizationType,
    /// Name prefix/words, a complete TIN, or an ID.
    pub query: String,
    /// Required when type is APM_ENTITY.
    pub apm_model: Option<ApmModel>,
    /// How many organizations at most (1 to 100).
    #[graphql(default_with = "Some(20)")]
    pub first: Option<i32>,
}

/// The proof a first Security Official gives; which fields are needed depends
/// on the organization's type and APM model. Extra fields are ignored.
#[derive(InputObject)]
#[graphql(name = "SecurityOfficialProof")]
pub struct SecurityOfficialProofInput {
    /// The practice's or registry's TIN (practices, registries, CPC+/CEC/OCM sites); dashes allowed.
    pub tin: Option<String>,
    /// A clinician's NPI (practices, CPC+/CEC/OCM sites).
    pub npi: Option<String>,
    /// That clinician's PTAN for the practice (practices).
    pub ptan: Option<String>,
    /// The registry's CMS Vendor ID (registries).
    pub vendor_id: Option<String>,
    /// The APM Entity ID: ACO ID, Practice Site ID, ESCO ID or OCM ID (APM entities).
    pub apm_entity_id: Option<String>,
    /// TINs of participating practices (virtual groups: 2; ACOs: 2, or 1 for a single-TIN ACO; other models: 1).
    pub participant_tins: Option<Vec<String>>,
}

impl SecurityOfficialProofInput {
    fn parse(&self) -> ApiResult<Proof> {
        let participant_tins = self
            .participant_tins
            .iter()
            .flatten()
            .enumerate()
            .map(|(index, tin)| {
                parse(
                    &format!("input.proof.participantTins[{index}]"),
                    tin,
                    Tin::parse,
                )
            })
            .collect::<ApiResult<Vec<Tin>>>()?;
        Ok(Proof {
            tin: optional("input.proof.tin", self.tin.as_deref(), Tin::parse)?,
            npi: optional("input.proof.npi", self.npi.as_deref(), Npi::parse)?,
            ptan: optional("input.proof.ptan", self.ptan.as_deref(), Ptan::parse)?,
            vendor_id: optional(
                "input.proof.vendorId",
                self.vendor_id.as_deref(),
                VendorId::parse,
            )?,
            apm_entity_id: optional(
                "input.proof.apmEntityId",
                self.apm_entity_id.as_deref(),
                ApmEntityId::parse,
            )?,
            participant_tins,
        })
    }
}

/// A request for a role in one organization.
#[derive(InputObject)]
pub struct RequestRoleInput {
    /// The organization's id, e.g. `practice:123456789`.
    pub organization_id: ID,
    /// SECURITY_OFFICIAL or STAFF_USER.
    pub role: Role,
    /// Needed only by the first Security Official of an organization.
    pub proof: Option<SecurityOfficialProofInput>,
}

pub struct Query;

/// What people and services may read; every field but the organization search needs a token.
#[Object]
impl Query {
    /// The signed-in person, as their token names them.
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<Person> {
        let identity = identity(ctx)?;
        Ok(Person {
            id: ID(identity.person.to_string()),
            display_name: identity.display_name.clone(),
            email: identity.email.clone(),
        })
    }

    /// Find organizations to connect to; answers without a token. Practices and
    /// registries by name or complete TIN (a partial TIN finds nothing), Virtual
    /// Groups by complete ID, APM Entities by model then name or entity ID.
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        search: OrganizationSearch,
    ) -> GqlResult<Vec<Organization>> {
        let first = search.first.unwrap_or(20);
        if !(1..=MAX_SEARCH_RESULTS).contains(&first) {
            return Err(ApiError::InvalidInput {
                field: "search.first".into(),
                message: format!("must be between 1 and {MAX_SEARCH_RESULTS}"),
            }
            .into());
        }
        let found = service(ctx)
            .reference()
            .search(
                search.kind.into(),
                &search.query,
                search.apm_model.map(Into::into),
                first as usize,
            )
            .map_err(|error| {
                let field = match error {
                    SearchError::ApmModelRequired => "search.apmModel",
                    _ => "search.query",
                };
                ApiError::InvalidInput {
                    field: field.into(),
                    message: error.to_string(),
                }
            })?;
        Ok(found.into_iter().cloned().map(Organization).collect())
    }

    /// One organization by id; null when it is not in the reference data.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Organization>> {
        identity(ctx)?;
        let id = parse("id", &id, OrganizationId::parse)?;
        Ok(service(ctx).organization(&id).ok())
    }

    /// The caller's connected organizations in tabs by type, with their role
    /// (and user counts where they are Security Official), their open
    /// requests, and the organizations reached through the Clinician role.
    async fn manage_access(&self, ctx: &Context<'_>) -> GqlResult<ManageAccess> {
        let caller = identity(ctx)?;
        let service = service(ctx);
        let page = service
            .views()
            .manage_access(&caller.person)
            .await
            .map_err(|error| ApiError::internal("reading Manage Access", &error))?;
        ManageAccess::from_view(service, page).map_err(Into::into)
    }

    /// A Security Official's inbox: the pending requests of every organization
    /// the caller is Security Official of, oldest first; organizationId narrows
    /// it to one of them (another organization's id answers an empty page).
    async fn pending_requests(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
        #[graphql(default_with = "Some(50)")] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<RoleRequestConnection> {
        let caller = identity(ctx)?;
        let organization = organization_id
            .map(|id| parse("organizationId", &id, OrganizationId::parse))
            .transpose()?;
        let first = page_size(first, 50)?;
        let pending = service(ctx)
            .views()
            .pending_requests(
                &caller.person,
                organization.as_ref(),
                first,
                after.as_deref(),
            )
            .await
            .map_err(|error| view_error("reading the pending queue", error))?;
        Ok(RoleRequestConnection::from_view(pending))
    }

    /// A role request, visible to its requester, the organization's Security
    /// Officials, support staff and auditors; null for anyone else, so the
    /// answer never reveals that a request exists.
    async fn role_request(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<RoleRequest>> {
        let caller = identity(ctx)?;
        let id = parse("id", &id, RoleRequestId::parse)?;
        let service = service(ctx);
        let (caller_is_security_official, whole, ever_had) = service
            .read(&id.organization, |state| {
                (
                    state
                        .grant_of(&caller.person)
                        .is_some_and(|grant| grant.role == DomainRole::SecurityOfficial),
                    state
                        .request(&id.request)
                        .map(|request| RoleRequest::from_state(&id.organization, request)),
                    state.ever_had_request(&id.request),
                )
            })
            .await?;
        let request = match whole {
            Some(request) => Some(request),
            // Closed long enough ago that the views, not the state, keep it whole.
            None if ever_had => service
                .views()
                .role_request(&id)
                .await
                .map_err(|error| view_error("reading a closed role request", error))?
                .map(RoleRequest),
            None => None,
        };
        Ok(request.filter(|request| {
            request.requester_id() == &caller.person
                || caller.may_read_everything()
                || caller_is_security_official
        }))
    }

    /// Everyone holding a role in the organization: for its Security Officials,
    /// support staff and auditors.
    async fn organization_users(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
    ) -> GqlResult<Vec<Grant>> {
        let caller = identity(ctx)?;
        let id = parse("organizationId", &organization_id, OrganizationId::parse)?;
        let service = service(ctx);
        service.organization(&id)?;
        let users = service
            .read(&id, |state| {
                let is_security_official = state
                    .grant_of(&caller.person)
                    .is_some_and(|grant| grant.role == DomainRole::SecurityOfficial);
                (is_security_official || caller.may_read_everything()).then(|| {
                    state
                        .grants()
                        .map(|(person, grant)| Grant::from_state(&id, person, grant))
                        .collect()
                })
            })
            .await?;
        users.ok_or_else(|| {
            ApiError::Forbidden(
                "Only this organization's Security Officials, support staff and auditors see its users.".into(),
            )
            .into()
        })
    }

    /// Support staff: who is blocked where, with their ticket and masked attempts.
    async fn blocked_accounts(&self, ctx: &Context<'_>) -> GqlResult<Vec<BlockedAccount>> {
        identity(ctx)?.support_agent()?;
        let tickets = service(ctx)
            .views()
            .blocked_accounts()
            .await
            .map_err(|error| ApiError::internal("reading blocked accounts", &error))?;
        Ok(tickets
            .into_iter()
            .map(BlockedAccount::from_ticket)
            .collect())
    }

    /// Support staff: a help-desk ticket by number; null when there is none.
    async fn support_ticket(
        &self,
        ctx: &Context<'_>,
        number: String,
    ) -> GqlResult<Option<SupportTicket>> {
        identity(ctx)?.support_agent()?;
        let number = parse("number", &number, TicketNumber::parse)?;
        Ok(service(ctx).ticket(&number).await?)
    }

    /// Auditors and support: every event ever recorded, in commit order,
    /// filtered; pages stay stable while events keep arriving.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        #[graphql(default_with = "Some(100)")] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<AuditEventConnection> {
        auditor(ctx)?;
        let filter = filter
            .map(AuditFilter::parse)
            .transpose()?
            .unwrap_or_default();
        let first = page_size(first, 100)?;
        let page = service(ctx)
            .views()
            .audit_log(&filter, first, after.as_deref())
            .await
            .map_err(|error| view_error("reading the audit log", error))?;
        Ok(AuditEventConnection::from_view(page))
    }

    /// Auditors and support: who had which role in the organization at a past
    /// instant, answered from its events.
    async fn access_as_of(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        at: chrono::DateTime<chrono::Utc>,
    ) -> GqlResult<Vec<Grant>> {
        auditor(ctx)?;
        let organization = parse("organizationId", &organization_id, OrganizationId::parse)?;
        let service = service(ctx);
        service.organization(&organization)?;
        let grants = service
            .views()
            .access_as_of(&organization, at)
            .await
            .map_err(|error| ApiError::internal("answering accessAsOf", &error))?;
        Ok(grants.into_iter().map(Grant).collect())
    }

    /// May the person do this in the organization, and why. Any caller about
    /// itself (personId omitted or its own); support and auditors about anyone.
    async fn authorize(
        &self,
        ctx: &Context<'_>,
        person_id: Option<ID>,
        organization_id: ID,
        capability: Capability,
    ) -> GqlResult<Decision> {
        let caller = identity(ctx)?;
        let person = match person_id {
            None => caller.person.clone(),
            Some(id) => parse("personId", &id, PersonId::parse)?,
        };
        if person != caller.person && !caller.may_read_everything() {
            return Err(ApiError::Forbidden("You may ask only about yourself.".into()).into());
        }
        let organization = parse("organizationId", &organization_id, OrganizationId::parse)?;
        let service = service(ctx);
        service.organization(&organization)?;
        let role = service
            .read(&organization, |state| {
                state.grant_of(&person).map(|grant| grant.role)
            })
            .await?;
        Ok(decide(&organization, role, capability.into()))
    }

    /// The clinician of the eligibility data whose first and last name match
    /// the caller's name exactly (ignoring case and spacing) and uniquely, with
    /// their NPI and associated organizations; null otherwise.
    async fn clinician_match(&self, ctx: &Context<'_>) -> GqlResult<Option<ClinicianMatch>> {
        let caller = identity(ctx)?;
        let reference = service(ctx).reference();
        let Some(clinician) = caller
            .display_name
            .as_deref()
            .and_then(|name| clinician::unique_name_match(reference, name))
        else {
            return Ok(None);
        };
        let organizations = clinician::associated_organizations(clinician)
            .iter()
            .filter_map(|id| reference.organization(id).cloned().map(Organization))
            .collect();
        Ok(Some(ClinicianMatch {
            npi: clinician.npi.to_string(),
            display_name: clinician::display_name(clinician),
            organizations,
        }))
    }

    /// The caller's notifications, newest first; unreadOnly leaves out those marked read.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] unread_only: Option<bool>,
    ) -> GqlResult<Vec<Notification>> {
        let caller = identity(ctx)?;
        let unread_only = unread_only.unwrap_or(false);
        Ok(crate::notifications::of(service(ctx), &caller.person, unread_only).await?)
    }
}

/// The answer of `authorize`, from the role the person holds (if any) and the
/// capability matrix.
fn decide(
    organization: &OrganizationId,
    role: Option<DomainRole>,
    capability: DomainCapability,
) -> Decision {
    let kind = organization.kind();
    let Some(role) = role else {
        return Decision {
            allowed: false,
            role: None,
            reason: "no role in this organization".into(),
        };
    };
    let allowed = capabilities::allows(role, kind, capability);
    let who = format!(
        "{} of {} {}",
        role.label(),
        kind.label(),
        organization.key_str()
    );
    let reason = match (allowed, role) {
        (true, _) => format!("{who} may {}", capability.name()),
        (false, DomainRole::Clinician) => format!(
            "Clinician role is view-only: {who} may not {}",
            capability.name()
        ),
        (false, _) => format!("{who} may not {}", capability.name()),
    };
    Decision {
        allowed,
        role: Some(role.into()),
        reason,
    }
}

pub struct Mutation;

/// The request a mutation acted on, from its events and the state after them.
fn acted_on(
    organization: &OrganizationId,
    state: &OrganizationState,
    events: &[OrganizationEvent],
) -> ApiResult<RoleRequest> {
    let request_id = events
        .iter()
        .find_map(OrganizationEvent::request_id)
        .ok_or_else(|| {
            ApiError::internal("reading a command's outcome", &"no event named a request")
        })?;
    let request = state.request(&request_id).ok_or_else(|| {
        ApiError::internal(
            "reading a command's outcome",
            &"the request is not in the state",
        )
    })?;
    Ok(RoleRequest::from_state(organization, request))
}

impl Mutation {
    /// Runs `command` for the caller on the request `request_id` names.
    async fn act_on_request(
        &self,
        ctx: &Context<'_>,
        request_id: &str,
        command: impl FnOnce(Uuid, PersonId) -> OrganizationCommand,
    ) -> ApiResult<RoleRequest> {
        let caller = identity(ctx)?;
        let id = parse("requestId", request_id, RoleRequestId::parse)?;
        service(ctx)
            .execute(
                &id.organization,
                command(id.request, caller.person.clone()),
                |state, events| acted_on(&id.organization, state, events),
            )
            .await?
            .outcome
    }

    /// Runs `command` about one person of an organization, for the mutations that
    /// answer only whether it was done.
    async fn change_person(
        &self,
        ctx: &Context<'_>,
        organization_id: &str,
        person_id: &str,
        command: impl FnOnce(PersonId) -> OrganizationCommand,
    ) -> GqlResult<bool> {
        self.act_on_person(ctx, organization_id, person_id, command, |_, _, _| ())
            .await?;
        Ok(true)
    }

    /// Runs `command` about one person of an organization; `read` sees that
    /// person and the organization's state after the command.
    async fn act_on_person<R>(
        &self,
        ctx: &Context<'_>,
        organization_id: &str,
        person_id: &str,
        command: impl FnOnce(PersonId) -> OrganizationCommand,
        mut read: impl FnMut(&OrganizationId, &PersonId, &OrganizationState) -> R,
    ) -> ApiResult<R> {
        let organization = parse("organizationId", organization_id, OrganizationId::parse)?;
        let person = parse("personId", person_id, PersonId::parse)?;
        let executed = service(ctx)
            .execute(&organization, command(person.clone()), |state, _| {
                read(&organization, &person, state)
            })
            .await?;
        Ok(executed.outcome)
    }
}

/// Changes. A refused change writes nothing and says why in extensions.code; an Idempotency-Key header makes a retry safe.
#[Object]
impl Mutation {
    /// Ask for a role in an organization. The first Security Official gives a
    /// proof and is approved at once when it matches; a failed proof is
    /// recorded (see proofRejected) and the third blocks further attempts.
    /// Everyone else waits for a Security Official's decision.
    async fn request_role(
        &self,
        ctx: &Context<'_>,
        input: RequestRoleInput,
    ) -> GqlResult<RequestRolePayload> {
        let caller = identity(ctx)?;
        let organization = parse(
            "input.organizationId",
            &input.organization_id,
            OrganizationId::parse,
        )?;
        let proof = input
            .proof
            .as_ref()
            .map(SecurityOfficialProofInput::parse)
            .transpose()?;
        let service = service(ctx);
        service.organization(&organization)?;
        let command = OrganizationCommand::RequestRole {
            organization: organization.clone(),
            request_id: Uuid::new_v4(),
            requester: caller.person.clone(),
            role: input.role.into(),
            proof,
        };
        let Executed { outcome, events } = service
            .execute(&organization, command, |state, events| {
                acted_on(&organization, state, events)
            })
            .await?;
        let attempts_remaining = events.iter().find_map(|event| match event {
            OrganizationEvent::ProofRejected {
                attempts_remaining, ..
            } => Some(i32::from(*attempts_remaining)),
            _ => None,
        });
        Ok(RequestRolePayload {
            request: outcome?,
            proof_rejected: attempts_remaining.is_some(),
            attempts_remaining,
        })
    }

    /// A Security Official of the organization approves a pending request
    /// (never their own). The first decision wins.
    async fn approve_role_request(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
    ) -> GqlResult<RoleRequest> {
        Ok(self
            .act_on_request(ctx, &request_id, |request_id, approver| {
                OrganizationCommand::ApproveRequest {
                    request_id,
                    approver,
                }
            })
            .await?)
    }

    /// A Security Official of the organization denies a pending request, with
    /// an optional reason the requester will see.
    async fn deny_role_request(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
        reason: Option<String>,
    ) -> GqlResult<RoleRequest> {
        let reason = note("reason", reason)?;
        Ok(self
            .act_on_request(ctx, &request_id, |request_id, approver| {
                OrganizationCommand::DenyRequest {
                    request_id,
                    approver,
                    reason,
                }
            })
            .await?)
    }

    /// The requester withdraws their own pending (or proof-rejected) request.
    async fn withdraw_role_request(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
    ) -> GqlResult<RoleRequest> {
        Ok(self
            .act_on_request(ctx, &request_id, |request_id, requester| {
                OrganizationCommand::WithdrawRequest {
                    request_id,
                    requester,
                }
            })
            .await?)
    }

    /// A Security Official revokes a Staff User of their organization.
    async fn revoke_access(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        person_id: ID,
        reason: Option<String>,
    ) -> GqlResult<bool> {
        let by = identity(ctx)?.person.clone();
        let reason = note("reason", reason)?;
        self.change_person(ctx, &organization_id, &person_id, |person| {
            OrganizationCommand::RevokeStaffUser { person, by, reason }
        })
        .await
    }

    /// Connect as a Clinician: without `manual`, confirm the automatic name
    /// match; with it, verify NPI + SSN + one PTAN. Either grants the view-only
    /// Clinician role on every associated organization at once. Failed manual
    /// verifications are limited per person.
    async fn connect_as_clinician(
        &self,
        ctx: &Context<'_>,
        manual: Option<ClinicianManualInput>,
    ) -> GqlResult<ClinicianConnection> {
        let caller = identity(ctx)?;
        let service = service(ctx);
        let reference = service.reference();
        let (clinician, manual) = match manual {
            None => {
                let clinician = caller
                    .display_name
                    .as_deref()
                    .and_then(|name| clinician::unique_name_match(reference, name))
                    .ok_or(ApiError::ClinicianNotFound)?;
                (clinician, false)
            }
            Some(input) => {
                let proof = ManualProof::parse(
                    input.npi.as_deref(),
                    input.ssn.as_deref(),
                    input.ptan.as_deref(),
                )?;
                service.clinician_failures().check(&caller.person)?;
                match proof.verify(reference) {
                    Some(clinician) => (clinician, true),
                    None => {
                        service.clinician_failures().record_failure(&caller.person);
                        return Err(ApiError::ClinicianNotVerified.into());
                    }
                }
            }
        };
        let organizations = clinician::associated_organizations(clinician);
        let grants = match service
            .connect_clinician(&caller.person, &clinician.npi, &organizations)
            .await
        {
            Err(ApiError::ClinicianNotVerified) if manual => {
                service.clinician_failures().record_failure(&caller.person);
                return Err(ApiError::ClinicianNotVerified.into());
            }
            other => other?,
        };
        let grants = grants
            .iter()
            .map(|(organization, grant)| Ok(Grant::from_state(organization, &caller.person, grant)))
            .collect::<ApiResult<Vec<Grant>>>()?;
        Ok(ClinicianConnection {
            npi: clinician.npi.to_string(),
            grants,
        })
    }

    /// Marks one of the caller's notifications read; another person's id is NOT_FOUND.
    async fn mark_notification_read(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let caller = identity(ctx)?;
        Ok(crate::notifications::mark_read(service(ctx), &caller.person, &id).await?)
    }

    /// Support staff: approve (proof checked by hand) or deny a blocked
    /// request; approving makes the person a Security Official.
    async fn resolve_ticket(
        &self,
        ctx: &Context<'_>,
        number: String,
        approve: bool,
        note: Option<String>,
    ) -> GqlResult<SupportTicket> {
        let agent = identity(ctx)?.support_agent()?;
        let number = parse("number", &number, TicketNumber::parse)?;
        let note = self::note("note", note)?;
        let service = service(ctx);
        let ticket = service
            .ticket(&number)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("No help-desk ticket {number}.")))?;
        let organization = ticket.0.organization.clone();
        let command = OrganizationCommand::ResolveTicket {
            ticket: number.clone(),
            approve,
            by: agent.person().clone(),
            note,
        };
        service.execute(&organization, command, |_, _| ()).await?;
        Ok(service.ticket(&number).await?.ok_or_else(|| {
            ApiError::internal("reading a resolved ticket", &"the ticket left the view")
        })?)
    }

    /// Support staff: let a blocked person try their proof again (three fresh
    /// attempts); the ticket closes unapproved.
    async fn unblock_account(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        person_id: ID,
        note: Option<String>,
    ) -> GqlResult<bool> {
        let by = identity(ctx)?.support_agent()?.person().clone();
        let note = self::note("note", note)?;
        self.change_person(ctx, &organization_id, &person_id, |person| {
            OrganizationCommand::UnblockPerson { person, by, note }
        })
        .await
    }

    /// Support staff: Security Official ↔ Staff User. Demoting the last
    /// Security Official puts the organization back to needing one.
    async fn change_role(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        person_id: ID,
        role: Role,
        note: Option<String>,
    ) -> GqlResult<Grant> {
        let by = identity(ctx)?.support_agent()?.person().clone();
        let note = self::note("note", note)?;
        self.act_on_person(
            ctx,
            &organization_id,
            &person_id,
            |person| OrganizationCommand::ChangeRole {
                person,
                role: role.into(),
                by,
                note,
            },
            |organization, person, state| {
                let grant = state.grant_of(person).ok_or_else(|| {
                    ApiError::internal("reading a role change", &"the grant is not in the state")
                })?;
                Ok::<_, ApiError>(Grant::from_state(organization, person, grant))
            },
        )
        .await?
        .map_err(Into::into)
    }

    /// Support staff: remove a Security Official who left. Removing the last
    /// one puts the organization back to needing one.
    async fn remove_security_official(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        person_id: ID,
        note: Option<String>,
    ) -> GqlResult<bool> {
        let by = identity(ctx)?.support_agent()?.person().clone();
        let note = self::note("note", note)?;
        self.change_person(ctx, &organization_id, &person_id, |person| {
            OrganizationCommand::RemoveSecurityOfficial { person, by, note }
        })
        .await
    }
}

pub struct Subscription;

/// Live updates over graphql-transport-ws at /graphql/ws; send the token in connection_init.
#[Subscription]
impl Subscription {
    /// New, decided or withdrawn requests in organizations the caller is
    /// Security Official of (organizationId narrows it to one), as they happen
    /// through any server.
    async fn pending_requests_changed(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
    ) -> Result<impl Stream<Item = RoleRequest>, async_graphql::Error> {
        let caller = identity(ctx)?.person.clone();
        let organization = organization_id
            .map(|id| parse("organizationId", &id, OrganizationId::parse))
            .transpose()?;
        Ok(subscriptions::request_updates(
            service(ctx).clone(),
            Audience::SecurityOfficial {
                person: caller,
                organization,
            },
        ))
    }

    /// State changes of the caller's own requests, as they happen through any server.
    async fn my_request_updated(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = RoleRequest>, async_graphql::Error> {
        let caller = identity(ctx)?.person.clone();
        Ok(subscriptions::request_updates(
            service(ctx).clone(),
            Audience::Requester(caller),
        ))
    }
}
