//! Rules 1–9 of domain.md as given events / when command / then events or error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use access_domain::aggregate::RECENTLY_CLOSED;
use access_domain::events::DecisionPath;
use access_domain::identifiers::{Npi, OrganizationId, PersonId, TicketNumber, Tin};
use access_domain::proof::{ProofField, ProofMismatch, ProofVerdict, SecurityOfficialProof};
use access_domain::roles::{RequestState, Role};
use access_domain::services::{
    Clock, OrganizationServices, ReferenceLookup, ServiceError, TicketNumbers,
};
use access_domain::{AccessError, Organization, OrganizationCommand, OrganizationEvent};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

const GOOD_TIN: &str = "123456789";
const WRONG_TIN: &str = "987654321";

/// Accepts a proof whose TIN is GOOD_TIN, wants a TIN, and knows two special
/// organizations: one missing from the reference data, one unapproved registry.
struct StubReference;

impl ReferenceLookup for StubReference {
    fn check_proof(
        &self,
        organization: &OrganizationId,
        proof: &SecurityOfficialProof,
    ) -> ProofVerdict {
        match organization.to_string().as_str() {
            "practice:000000000" => return ProofVerdict::UnknownOrganization,
            "registry:999999999" => return ProofVerdict::NotConnectable,
            _ => {}
        }
        match &proof.tin {
            None => {
                ProofVerdict::Incomplete(vec![ProofField::Tin, ProofField::Npi, ProofField::Ptan])
            }
            Some(tin) if tin.as_str() == GOOD_TIN => ProofVerdict::Accepted,
            Some(_) => ProofVerdict::Mismatch(ProofMismatch::TinDoesNotMatchOrganization),
        }
    }
}

struct CountingTickets(AtomicU64);

#[async_trait]
impl TicketNumbers for CountingTickets {
    async fn next_ticket_number(&self) -> Result<TicketNumber, ServiceError> {
        let serial = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TicketNumber::from_serial(serial).unwrap())
    }
}

struct BrokenTickets;

#[async_trait]
impl TicketNumbers for BrokenTickets {
    async fn next_ticket_number(&self) -> Result<TicketNumber, ServiceError> {
        Err(ServiceError("ticket sequence unreachable".into()))
    }
}

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 30, 0).unwrap()
}

fn services() -> OrganizationServices {
    OrganizationServices {
        reference: Arc::new(StubReference),
        tickets: Arc::new(CountingTickets(AtomicU64::new(0))),
        clock: Arc::new(FixedClock),
    }
}

fn org() -> TestFramework<Organization> {
    TestFramework::with(services())
}

fn practice() -> OrganizationId {
    OrganizationId::parse("practice:123456789").unwrap()
}

fn person(name: &str) -> PersonId {
    PersonId::parse(name).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn ticket(serial: u64) -> TicketNumber {
    TicketNumber::from_serial(serial).unwrap()
}

fn proof_with_tin(tin: &str) -> SecurityOfficialProof {
    SecurityOfficialProof {
        tin: Some(Tin::parse(tin).unwrap()),
        ..Default::default()
    }
}

fn request_role(
    request: u128,
    who: &str,
    role: Role,
    proof: Option<SecurityOfficialProof>,
) -> OrganizationCommand {
    OrganizationCommand::RequestRole {
        organization: practice(),
        request_id: id(request),
        requester: person(who),
        role,
        proof,
    }
}

fn ask_first_so(request: u128, who: &str, tin: &str) -> OrganizationCommand {
    request_role(
        request,
        who,
        Role::SecurityOfficial,
        Some(proof_with_tin(tin)),
    )
}

// --- event builders for the "given" sides ---

fn requested(request: u128, who: &str, role: Role, path: DecisionPath) -> OrganizationEvent {
    OrganizationEvent::RoleRequested {
        request_id: id(request),
        person: person(who),
        role,
        path,
        at: now(),
    }
}

fn rejected(request: u128, who: &str, attempt: u8) -> OrganizationEvent {
    OrganizationEvent::ProofRejected {
        request_id: id(request),
        person: person(who),
        attempt,
        attempts_remaining: 3 - attempt,
        masked_proof: "tin *****4321".into(),
        mismatch: ProofMismatch::TinDoesNotMatchOrganization,
        at: now(),
    }
}

fn blocked(request: u128, who: &str, serial: u64) -> OrganizationEvent {
    OrganizationEvent::RequesterBlocked {
        request_id: id(request),
        person: person(who),
        ticket: ticket(serial),
        at: now(),
    }
}

fn granted(request: u128, who: &str, role: Role, by: Option<&str>) -> OrganizationEvent {
    OrganizationEvent::RoleGranted {
        person: person(who),
        role,
        request_id: id(request),
        by: by.map(person),
        at: now(),
    }
}

/// Alice became the first Security Official with an accepted proof.
fn alice_is_security_official() -> Vec<OrganizationEvent> {
    vec![
        requested(1, "alice", Role::SecurityOfficial, DecisionPath::Proof),
        OrganizationEvent::ProofAccepted {
            request_id: id(1),
            person: person("alice"),
            masked_proof: "tin *****6789".into(),
            at: now(),
        },
        granted(1, "alice", Role::SecurityOfficial, None),
    ]
}

/// Alice is Security Official and Bob's Staff User request waits for her.
fn bob_is_pending() -> Vec<OrganizationEvent> {
    let mut events = alice_is_security_official();
    events.push(requested(
        2,
        "bob",
        Role::StaffUser,
        DecisionPath::SecurityOfficialApproval,
    ));
    events
}

fn bob_is_staff_user() -> Vec<OrganizationEvent> {
    let mut events = bob_is_pending();
    events.push(OrganizationEvent::RoleRequestApproved {
        request_id: id(2),
        person: person("bob"),
        approver: person("alice"),
        at: now(),
    });
    events.push(granted(2, "bob", Role::StaffUser, Some("alice")));
    events
}

/// Carol failed her first-SO proof three times and is blocked under CS00000007.
fn carol_is_blocked() -> Vec<OrganizationEvent> {
    vec![
        requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
        rejected(3, "carol", 1),
        rejected(3, "carol", 2),
        rejected(3, "carol", 3),
        blocked(3, "carol", 7),
    ]
}

// --- rule 3: the first Security Official proves the connection ---

#[test]
fn a_first_security_official_with_a_valid_proof_is_approved_automatically() {
    org()
        .given_no_previous_events()
        .when(ask_first_so(1, "alice", GOOD_TIN))
        .then_expect_events(alice_is_security_official());
}

#[test]
fn a_first_security_official_with_a_wrong_proof_gets_a_recorded_failure_with_two_attempts_left() {
    org()
        .given_no_previous_events()
        .when(ask_first_so(3, "carol", WRONG_TIN))
        .then_expect_events(vec![
            requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
            rejected(3, "carol", 1),
        ]);
}

#[test]
fn a_first_security_official_request_without_proof_is_refused_naming_the_missing_fields() {
    org()
        .given_no_previous_events()
        .when(request_role(1, "alice", Role::SecurityOfficial, None))
        .then_expect_error(AccessError::ProofRequired(vec![
            ProofField::Tin,
            ProofField::Npi,
            ProofField::Ptan,
        ]));
}

#[test]
fn the_next_submission_after_a_rejected_proof_is_the_next_attempt_of_the_same_request() {
    org()
        .given(vec![
            requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
            rejected(3, "carol", 1),
        ])
        .when(ask_first_so(99, "carol", WRONG_TIN))
        .then_expect_events(vec![rejected(3, "carol", 2)]);
}

#[test]
fn the_third_failed_proof_blocks_the_person_and_opens_a_help_desk_ticket() {
    org()
        .given(vec![
            requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
            rejected(3, "carol", 1),
            rejected(3, "carol", 2),
        ])
        .when(ask_first_so(99, "carol", WRONG_TIN))
        .then_expect_events(vec![rejected(3, "carol", 3), blocked(3, "carol", 1)]);
}

#[test]
fn a_blocked_person_cannot_try_again_and_is_told_the_ticket() {
    org()
        .given(carol_is_blocked())
        .when(ask_first_so(99, "carol", GOOD_TIN))
        .then_expect_error(AccessError::AccountBlocked(ticket(7)));
}

#[test]
fn a_valid_proof_after_a_failure_approves_the_same_request() {
    org()
        .given(vec![
            requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
            rejected(3, "carol", 1),
        ])
        .when(ask_first_so(99, "carol", GOOD_TIN))
        .then_expect_events(vec![
            OrganizationEvent::ProofAccepted {
                request_id: id(3),
                person: person("carol"),
                masked_proof: "tin *****6789".into(),
                at: now(),
            },
            granted(3, "carol", Role::SecurityOfficial, None),
        ]);
}

#[test]
fn a_block_that_cannot_get_a_ticket_number_records_nothing() {
    let services = OrganizationServices {
        tickets: Arc::new(BrokenTickets),
        ..services()
    };
    let result = TestFramework::<Organization>::with(services)
        .given(vec![
            requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
            rejected(3, "carol", 1),
            rejected(3, "carol", 2),
        ])
        .when(ask_first_so(99, "carol", WRONG_TIN))
        .inspect_result();
    assert!(matches!(result, Err(AccessError::Service(_))), "{result:?}");
}

#[test]
fn an_organization_missing_from_the_reference_data_cannot_be_requested() {
    let command = OrganizationCommand::RequestRole {
        organization: OrganizationId::parse("practice:000000000").unwrap(),
        request_id: id(1),
        requester: person("alice"),
        role: Role::SecurityOfficial,
        proof: Some(proof_with_tin(GOOD_TIN)),
    };
    org()
        .given_no_previous_events()
        .when(command)
        .then_expect_error(AccessError::UnknownOrganization);
}

#[test]
fn a_registry_cms_has_not_approved_cannot_be_connected() {
    let command = OrganizationCommand::RequestRole {
        organization: OrganizationId::parse("registry:999999999").unwrap(),
        request_id: id(1),
        requester: person("alice"),
        role: Role::SecurityOfficial,
        proof: Some(proof_with_tin(GOOD_TIN)),
    };
    org()
        .given_no_previous_events()
        .when(command)
        .then_expect_error(AccessError::OrganizationNotConnectable);
}

#[test]
fn events_carry_only_masked_proof_values() {
    let events = org()
        .given(vec![
            requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
            rejected(3, "carol", 1),
        ])
        .when(ask_first_so(99, "carol", WRONG_TIN))
        .inspect_result()
        .unwrap();
    let stored = serde_json::to_string(&events).unwrap();
    assert!(stored.contains("*****4321"), "{stored}");
    assert!(!stored.contains(WRONG_TIN), "{stored}");
}

// --- rule 2: no Security Official yet ---

#[test]
fn a_staff_user_request_is_refused_while_the_organization_has_no_security_official() {
    org()
        .given_no_previous_events()
        .when(request_role(2, "bob", Role::StaffUser, None))
        .then_expect_error(AccessError::SecurityOfficialRequired);
}

#[test]
fn a_staff_user_retry_of_a_rejected_proof_request_still_needs_a_security_official() {
    org()
        .given(vec![
            requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
            rejected(3, "carol", 1),
        ])
        .when(request_role(99, "carol", Role::StaffUser, None))
        .then_expect_error(AccessError::SecurityOfficialRequired);
}

// --- rule 4: the organization has a Security Official ---

#[test]
fn a_staff_user_request_goes_to_pending_without_proof_once_there_is_a_security_official() {
    org()
        .given(alice_is_security_official())
        .when(request_role(2, "bob", Role::StaffUser, None))
        .then_expect_events(vec![requested(
            2,
            "bob",
            Role::StaffUser,
            DecisionPath::SecurityOfficialApproval,
        )]);
}

#[test]
fn an_additional_security_official_request_goes_to_pending_and_ignores_any_proof() {
    org()
        .given(alice_is_security_official())
        .when(ask_first_so(4, "dave", WRONG_TIN))
        .then_expect_events(vec![requested(
            4,
            "dave",
            Role::SecurityOfficial,
            DecisionPath::SecurityOfficialApproval,
        )]);
}

#[test]
fn a_rejected_proof_request_retried_after_the_organization_got_a_security_official_waits_for_approval(
) {
    let mut given = vec![
        requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
        rejected(3, "carol", 1),
    ];
    given.extend(alice_is_security_official());
    org()
        .given(given)
        .when(request_role(99, "carol", Role::StaffUser, None))
        .then_expect_events(vec![OrganizationEvent::RoleRequestSentForApproval {
            request_id: id(3),
            person: person("carol"),
            role: Role::StaffUser,
            at: now(),
        }]);
}

// --- rules 1 and 6: one open request, one role ---

#[test]
fn asking_again_while_a_request_is_pending_is_a_duplicate() {
    org()
        .given(bob_is_pending())
        .when(request_role(5, "bob", Role::StaffUser, None))
        .then_expect_error(AccessError::DuplicateRequest);
}

#[test]
fn asking_for_a_role_in_an_organization_where_one_is_held_is_refused() {
    org()
        .given(bob_is_staff_user())
        .when(request_role(5, "bob", Role::SecurityOfficial, None))
        .then_expect_error(AccessError::AlreadyConnected(Role::StaffUser));
}

#[test]
fn the_clinician_role_cannot_be_requested() {
    org()
        .given(alice_is_security_official())
        .when(request_role(5, "bob", Role::Clinician, None))
        .then_expect_error(AccessError::RoleNotRequestable);
}

// --- rule 5: decisions ---

#[test]
fn a_security_official_approves_a_pending_request_and_the_role_is_granted() {
    org()
        .given(bob_is_pending())
        .when(OrganizationCommand::ApproveRequest {
            request_id: id(2),
            approver: person("alice"),
        })
        .then_expect_events(vec![
            OrganizationEvent::RoleRequestApproved {
                request_id: id(2),
                person: person("bob"),
                approver: person("alice"),
                at: now(),
            },
            granted(2, "bob", Role::StaffUser, Some("alice")),
        ]);
}

#[test]
fn a_security_official_denies_a_pending_request_with_a_reason() {
    org()
        .given(bob_is_pending())
        .when(OrganizationCommand::DenyRequest {
            request_id: id(2),
            approver: person("alice"),
            reason: Some("not on our staff".into()),
        })
        .then_expect_events(vec![OrganizationEvent::RoleRequestDenied {
            request_id: id(2),
            person: person("bob"),
            approver: person("alice"),
            reason: Some("not on our staff".into()),
            at: now(),
        }]);
}

#[test]
fn nobody_decides_their_own_request() {
    org()
        .given(bob_is_pending())
        .when(OrganizationCommand::ApproveRequest {
            request_id: id(2),
            approver: person("bob"),
        })
        .then_expect_error(AccessError::SelfDecision);
}

#[test]
fn a_staff_user_cannot_decide_requests() {
    let mut given = bob_is_staff_user();
    given.push(requested(
        4,
        "dave",
        Role::StaffUser,
        DecisionPath::SecurityOfficialApproval,
    ));
    org()
        .given(given)
        .when(OrganizationCommand::DenyRequest {
            request_id: id(4),
            approver: person("bob"),
            reason: None,
        })
        .then_expect_error(AccessError::NotSecurityOfficial);
}

#[test]
fn the_first_decision_wins_and_a_second_is_refused() {
    let mut given = alice_is_security_official();
    given.push(requested(
        4,
        "dave",
        Role::SecurityOfficial,
        DecisionPath::SecurityOfficialApproval,
    ));
    given.push(OrganizationEvent::RoleRequestApproved {
        request_id: id(4),
        person: person("dave"),
        approver: person("alice"),
        at: now(),
    });
    given.push(granted(4, "dave", Role::SecurityOfficial, Some("alice")));
    given.push(requested(
        2,
        "bob",
        Role::StaffUser,
        DecisionPath::SecurityOfficialApproval,
    ));
    given.push(OrganizationEvent::RoleRequestApproved {
        request_id: id(2),
        person: person("bob"),
        approver: person("alice"),
        at: now(),
    });
    given.push(granted(2, "bob", Role::StaffUser, Some("alice")));
    org()
        .given(given)
        .when(OrganizationCommand::DenyRequest {
            request_id: id(2),
            approver: person("dave"),
            reason: None,
        })
        .then_expect_error(AccessError::RequestNotPending(RequestState::Approved));
}

#[test]
fn deciding_an_unknown_request_is_not_found() {
    org()
        .given(alice_is_security_official())
        .when(OrganizationCommand::ApproveRequest {
            request_id: id(42),
            approver: person("alice"),
        })
        .then_expect_error(AccessError::RequestNotFound);
}

#[test]
fn a_denied_person_may_submit_a_new_request() {
    let mut given = bob_is_pending();
    given.push(OrganizationEvent::RoleRequestDenied {
        request_id: id(2),
        person: person("bob"),
        approver: person("alice"),
        reason: None,
        at: now(),
    });
    org()
        .given(given)
        .when(request_role(5, "bob", Role::StaffUser, None))
        .then_expect_events(vec![requested(
            5,
            "bob",
            Role::StaffUser,
            DecisionPath::SecurityOfficialApproval,
        )]);
}

// --- rule 7: withdraw ---

#[test]
fn a_requester_withdraws_their_pending_request() {
    org()
        .given(bob_is_pending())
        .when(OrganizationCommand::WithdrawRequest {
            request_id: id(2),
            requester: person("bob"),
        })
        .then_expect_events(vec![OrganizationEvent::RoleRequestWithdrawn {
            request_id: id(2),
            person: person("bob"),
            at: now(),
        }]);
}

#[test]
fn a_requester_may_withdraw_a_request_whose_proof_was_rejected() {
    org()
        .given(vec![
            requested(3, "carol", Role::SecurityOfficial, DecisionPath::Proof),
            rejected(3, "carol", 1),
        ])
        .when(OrganizationCommand::WithdrawRequest {
            request_id: id(3),
            requester: person("carol"),
        })
        .then_expect_events(vec![OrganizationEvent::RoleRequestWithdrawn {
            request_id: id(3),
            person: person("carol"),
            at: now(),
        }]);
}

#[test]
fn nobody_withdraws_someone_elses_request() {
    org()
        .given(bob_is_pending())
        .when(OrganizationCommand::WithdrawRequest {
            request_id: id(2),
            requester: person("alice"),
        })
        .then_expect_error(AccessError::NotRequester);
}

#[test]
fn a_decided_request_cannot_be_withdrawn() {
    org()
        .given(bob_is_staff_user())
        .when(OrganizationCommand::WithdrawRequest {
            request_id: id(2),
            requester: person("bob"),
        })
        .then_expect_error(AccessError::RequestNotPending(RequestState::Approved));
}

#[test]
fn a_blocked_request_cannot_be_withdrawn_while_support_reviews_it() {
    org()
        .given(carol_is_blocked())
        .when(OrganizationCommand::WithdrawRequest {
            request_id: id(3),
            requester: person("carol"),
        })
        .then_expect_error(AccessError::RequestNotPending(RequestState::ManualReview));
}

// --- rule 8: revoke, remove, change role ---

#[test]
fn a_security_official_revokes_a_staff_user() {
    org()
        .given(bob_is_staff_user())
        .when(OrganizationCommand::RevokeStaffUser {
            person: person("bob"),
            by: person("alice"),
            reason: Some("left".into()),
        })
        .then_expect_events(vec![OrganizationEvent::StaffUserRevoked {
            person: person("bob"),
            by: person("alice"),
            reason: Some("left".into()),
            at: now(),
        }]);
}

#[test]
fn a_security_official_cannot_revoke_another_security_official() {
    let mut given = alice_is_security_official();
    given.push(requested(
        4,
        "dave",
        Role::SecurityOfficial,
        DecisionPath::SecurityOfficialApproval,
    ));
    given.push(OrganizationEvent::RoleRequestApproved {
        request_id: id(4),
        person: person("dave"),
        approver: person("alice"),
        at: now(),
    });
    given.push(granted(4, "dave", Role::SecurityOfficial, Some("alice")));
    org()
        .given(given)
        .when(OrganizationCommand::RevokeStaffUser {
            person: person("dave"),
            by: person("alice"),
            reason: None,
        })
        .then_expect_error(AccessError::OnlyStaffUsersRevocable);
}

#[test]
fn a_staff_user_cannot_revoke_anyone() {
    org()
        .given(bob_is_staff_user())
        .when(OrganizationCommand::RevokeStaffUser {
            person: person("bob"),
            by: person("bob"),
            reason: None,
        })
        .then_expect_error(AccessError::NotSecurityOfficial);
}

#[test]
fn revoking_a_person_without_a_role_is_refused() {
    org()
        .given(alice_is_security_official())
        .when(OrganizationCommand::RevokeStaffUser {
            person: person("zoe"),
            by: person("alice"),
            reason: None,
        })
        .then_expect_error(AccessError::NoRole);
}

#[test]
fn support_changes_a_staff_user_into_a_security_official() {
    org()
        .given(bob_is_staff_user())
        .when(OrganizationCommand::ChangeRole {
            person: person("bob"),
            role: Role::SecurityOfficial,
            by: person("support-sam"),
            note: None,
        })
        .then_expect_events(vec![OrganizationEvent::RoleChanged {
            person: person("bob"),
            from: Role::StaffUser,
            to: Role::SecurityOfficial,
            by: person("support-sam"),
            note: None,
            at: now(),
        }]);
}

#[test]
fn a_role_change_to_the_same_role_or_to_clinician_is_refused() {
    for role in [Role::StaffUser, Role::Clinician] {
        org()
            .given(bob_is_staff_user())
            .when(OrganizationCommand::ChangeRole {
                person: person("bob"),
                role,
                by: person("support-sam"),
                note: None,
            })
            .then_expect_error(AccessError::RoleNotChangeable);
    }
}

#[test]
fn support_removes_a_security_official_who_left() {
    org()
        .given(alice_is_security_official())
        .when(OrganizationCommand::RemoveSecurityOfficial {
            person: person("alice"),
            by: person("support-sam"),
            note: None,
        })
        .then_expect_events(vec![OrganizationEvent::SecurityOfficialRemoved {
            person: person("alice"),
            by: person("support-sam"),
            note: None,
            at: now(),
        }]);
}

#[test]
fn removing_someone_who_is_not_a_security_official_is_refused() {
    org()
        .given(bob_is_staff_user())
        .when(OrganizationCommand::RemoveSecurityOfficial {
            person: person("bob"),
            by: person("support-sam"),
            note: None,
        })
        .then_expect_error(AccessError::NotASecurityOfficial);
}

#[test]
fn after_the_last_security_official_is_removed_staff_requests_need_a_security_official_again() {
    let mut given = bob_is_staff_user();
    given.push(OrganizationEvent::SecurityOfficialRemoved {
        person: person("alice"),
        by: person("support-sam"),
        note: None,
        at: now(),
    });
    org()
        .given(given)
        .when(request_role(5, "erin", Role::StaffUser, None))
        .then_expect_error(AccessError::SecurityOfficialRequired);
}

#[test]
fn after_the_last_security_official_is_demoted_a_new_one_must_prove_the_connection() {
    let mut given = bob_is_staff_user();
    given.push(OrganizationEvent::RoleChanged {
        person: person("alice"),
        from: Role::SecurityOfficial,
        to: Role::StaffUser,
        by: person("support-sam"),
        note: None,
        at: now(),
    });
    org()
        .given(given)
        .when(request_role(5, "erin", Role::SecurityOfficial, None))
        .then_expect_error(AccessError::ProofRequired(vec![
            ProofField::Tin,
            ProofField::Npi,
            ProofField::Ptan,
        ]));
}

// --- rule 9: support resolves blocked requests ---

#[test]
fn support_approves_a_blocked_request_and_the_person_becomes_security_official() {
    org()
        .given(carol_is_blocked())
        .when(OrganizationCommand::ResolveTicket {
            ticket: ticket(7),
            approve: true,
            by: person("support-sam"),
            note: Some("proof checked by phone".into()),
        })
        .then_expect_events(vec![
            OrganizationEvent::TicketResolved {
                ticket: ticket(7),
                request_id: id(3),
                person: person("carol"),
                approved: true,
                by: person("support-sam"),
                note: Some("proof checked by phone".into()),
                at: now(),
            },
            granted(3, "carol", Role::SecurityOfficial, Some("support-sam")),
        ]);
}

#[test]
fn support_denies_a_blocked_request() {
    org()
        .given(carol_is_blocked())
        .when(OrganizationCommand::ResolveTicket {
            ticket: ticket(7),
            approve: false,
            by: person("support-sam"),
            note: None,
        })
        .then_expect_events(vec![OrganizationEvent::TicketResolved {
            ticket: ticket(7),
            request_id: id(3),
            person: person("carol"),
            approved: false,
            by: person("support-sam"),
            note: None,
            at: now(),
        }]);
}

#[test]
fn a_resolved_ticket_cannot_be_resolved_again() {
    let mut given = carol_is_blocked();
    given.push(OrganizationEvent::TicketResolved {
        ticket: ticket(7),
        request_id: id(3),
        person: person("carol"),
        approved: false,
        by: person("support-sam"),
        note: None,
        at: now(),
    });
    org()
        .given(given)
        .when(OrganizationCommand::ResolveTicket {
            ticket: ticket(7),
            approve: true,
            by: person("support-sam"),
            note: None,
        })
        .then_expect_error(AccessError::TicketNotOpen(ticket(7)));
}

#[test]
fn the_ticket_an_unblock_closed_stays_closed_after_the_person_is_blocked_again() {
    let mut given = carol_is_blocked();
    given.extend([
        OrganizationEvent::RequesterUnblocked {
            ticket: ticket(7),
            request_id: id(3),
            person: person("carol"),
            by: person("support-sam"),
            note: None,
            at: now(),
        },
        rejected(3, "carol", 1),
        rejected(3, "carol", 2),
        rejected(3, "carol", 3),
        blocked(3, "carol", 8),
    ]);
    org()
        .given(given)
        .when(OrganizationCommand::ResolveTicket {
            ticket: ticket(7),
            approve: false,
            by: person("support-sam"),
            note: None,
        })
        .then_expect_error(AccessError::TicketNotOpen(ticket(7)));
}

#[test]
fn resolving_a_ticket_of_another_organization_is_not_found() {
    org()
        .given(carol_is_blocked())
        .when(OrganizationCommand::ResolveTicket {
            ticket: ticket(8),
            approve: true,
            by: person("support-sam"),
            note: None,
        })
        .then_expect_error(AccessError::TicketNotFound);
}

#[test]
fn support_unblocks_a_person_who_may_then_try_three_more_times() {
    let unblocked = OrganizationEvent::RequesterUnblocked {
        ticket: ticket(7),
        request_id: id(3),
        person: person("carol"),
        by: person("support-sam"),
        note: None,
        at: now(),
    };
    org()
        .given(carol_is_blocked())
        .when(OrganizationCommand::UnblockPerson {
            person: person("carol"),
            by: person("support-sam"),
            note: None,
        })
        .then_expect_events(vec![unblocked.clone()]);

    let mut given = carol_is_blocked();
    given.push(unblocked);
    org()
        .given(given)
        .when(ask_first_so(99, "carol", WRONG_TIN))
        .then_expect_events(vec![rejected(3, "carol", 1)]);
}

#[test]
fn unblocking_a_person_who_is_not_blocked_is_refused() {
    org()
        .given(bob_is_pending())
        .when(OrganizationCommand::UnblockPerson {
            person: person("bob"),
            by: person("support-sam"),
            note: None,
        })
        .then_expect_error(AccessError::NotBlocked);
}

// --- clinician verification grants the view-only role ---

fn laura_npi() -> Npi {
    Npi::parse("1234567893").unwrap()
}

fn laura_is_clinician() -> OrganizationEvent {
    OrganizationEvent::ClinicianRoleGranted {
        person: person("laura"),
        masked_npi: "******7893".into(),
        npi_fingerprint: laura_npi().fingerprint(),
        at: now(),
    }
}

#[test]
fn a_verified_clinician_gets_the_clinician_role_without_approval() {
    org()
        .given_no_previous_events()
        .when(OrganizationCommand::GrantClinicianRole {
            person: person("laura"),
            npi: laura_npi(),
        })
        .then_expect_events(vec![laura_is_clinician()]);
}

#[test]
fn a_person_already_holding_a_role_is_not_granted_the_clinician_role_as_well() {
    org()
        .given(bob_is_staff_user())
        .when(OrganizationCommand::GrantClinicianRole {
            person: person("bob"),
            npi: laura_npi(),
        })
        .then_expect_error(AccessError::AlreadyConnected(Role::StaffUser));
}

#[test]
fn connecting_again_as_the_same_clinician_is_refused_as_already_connected() {
    org()
        .given(vec![laura_is_clinician()])
        .when(OrganizationCommand::GrantClinicianRole {
            person: person("laura"),
            npi: laura_npi(),
        })
        .then_expect_error(AccessError::AlreadyConnected(Role::Clinician));
}

#[test]
fn another_account_claiming_a_connected_npi_is_recorded_for_support_and_granted_nothing() {
    org()
        .given(vec![laura_is_clinician()])
        .when(OrganizationCommand::GrantClinicianRole {
            person: person("mallory"),
            npi: laura_npi(),
        })
        .then_expect_events(vec![OrganizationEvent::ClinicianClaimRefused {
            person: person("mallory"),
            masked_npi: "******7893".into(),
            npi_fingerprint: laura_npi().fingerprint(),
            connected_person: person("laura"),
            at: now(),
        }]);
}

// --- snapshots: the state survives being written down ---

/// Organizations are kept as JSON snapshots (docs/adr/08-snapshots.md); one read back
/// must decide every later command exactly as the one its events built.
#[test]
fn an_organization_read_back_from_json_equals_the_one_its_events_built() {
    let mut built = Organization::default();
    let history = [
        bob_is_staff_user(),
        carol_is_blocked(),
        vec![laura_is_clinician()],
    ];
    for event in history.into_iter().flatten() {
        cqrs_es::Aggregate::apply(&mut built, event);
    }
    let json = serde_json::to_string(&built).unwrap();
    let read_back: Organization = serde_json::from_str(&json).unwrap();
    assert_eq!(read_back, built);
    assert!(read_back.has_security_official());
    assert!(read_back.grant_of(&person("laura")).is_some());
}

// --- closed requests: kept as their outcome, so the state does not grow with history ---

/// Bob's request 2 approved, then `more` Staff User requests (ids 100 on) approved
/// and each of those people revoked again: a busy organization whose membership
/// stays the same.
fn bob_approved_long_ago(more: u128) -> Vec<OrganizationEvent> {
    let mut events = bob_is_staff_user();
    for n in 100..100 + more {
        let who = format!("staff-{n}");
        events.push(requested(
            n,
            &who,
            Role::StaffUser,
            DecisionPath::SecurityOfficialApproval,
        ));
        events.push(OrganizationEvent::RoleRequestApproved {
            request_id: id(n),
            person: person(&who),
            approver: person("alice"),
            at: now(),
        });
        events.push(granted(n, &who, Role::StaffUser, Some("alice")));
        events.push(OrganizationEvent::StaffUserRevoked {
            person: person(&who),
            by: person("alice"),
            reason: None,
            at: now(),
        });
    }
    events
}

fn built_from(events: Vec<OrganizationEvent>) -> Organization {
    let mut built = Organization::default();
    for event in events {
        cqrs_es::Aggregate::apply(&mut built, event);
    }
    built
}

#[test]
fn a_request_closed_long_ago_is_still_refused_with_how_it_ended() {
    let long_ago = bob_approved_long_ago(RECENTLY_CLOSED as u128 + 1);
    assert!(
        built_from(long_ago.clone()).request(&id(2)).is_none(),
        "the request is no longer kept whole"
    );
    org()
        .given(long_ago.clone())
        .when(OrganizationCommand::DenyRequest {
            request_id: id(2),
            approver: person("alice"),
            reason: None,
        })
        .then_expect_error(AccessError::RequestNotPending(RequestState::Approved));
    org()
        .given(long_ago)
        .when(OrganizationCommand::WithdrawRequest {
            request_id: id(2),
            requester: person("bob"),
        })
        .then_expect_error(AccessError::RequestNotPending(RequestState::Approved));
}

#[test]
fn only_a_security_official_learns_how_a_closed_request_ended() {
    org()
        .given(bob_approved_long_ago(RECENTLY_CLOSED as u128 + 1))
        .when(OrganizationCommand::ApproveRequest {
            request_id: id(2),
            approver: person("bob"),
        })
        .then_expect_error(AccessError::NotSecurityOfficial);
}

#[test]
fn the_latest_closed_requests_are_kept_whole_and_older_ones_only_by_outcome() {
    let built = built_from(bob_approved_long_ago(RECENTLY_CLOSED as u128));
    let newest = built
        .request(&id(100 + RECENTLY_CLOSED as u128 - 1))
        .unwrap();
    assert_eq!(newest.state, RequestState::Approved);
    assert_eq!(newest.decided_by, Some(person("alice")));
    assert!(built.request(&id(100)).is_some(), "the oldest still kept");
    assert!(built.request(&id(2)).is_none(), "one past the bound");
    assert!(built.ever_had_request(&id(2)));
    assert!(!built.ever_had_request(&id(42)));
}

/// What a snapshot holds, and so what a reload reads, grows by the outcome of each
/// closed request only, not by the request.
#[test]
fn each_closed_request_adds_only_its_outcome_to_the_state() {
    let size = |closed: u128| {
        serde_json::to_string(&built_from(bob_approved_long_ago(closed)))
            .unwrap()
            .len()
    };
    let (before, after) = (size(1_000), size(2_000));
    let per_closed_request = (after - before) / 1_000;
    assert!(
        per_closed_request <= 60,
        "{per_closed_request} bytes per closed request"
    );
}
