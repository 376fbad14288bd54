//! Every message the service sends people, on screen and by email: the one place their
//! wording lives.
//!
//! Messages name the organization by its legal business name and the person's role; they
//! never quote a proof value (a TIN, NPI, PTAN, ID or SSN), nor anyone's name or email
//! (those are erasable, the outbox is not). A denial's reason and support's notes are
//! quoted: the person they were written for is the one reading them.

use access_domain::identifiers::TicketNumber;
use access_domain::proof::ProofMismatch;
use access_domain::roles::Role;

/// Something that happened, as the person told sees it.
pub(crate) enum Notice<'a> {
    /// To the requester: their request waits for a Security Official.
    RequestSubmitted {
        role: Role,
    },
    /// To each Security Official of the organization.
    NewPendingRequest {
        role: Role,
    },
    ProofRejected {
        mismatch: ProofMismatch,
        attempts_remaining: u8,
    },
    Blocked {
        ticket: &'a TicketNumber,
    },
    Unblocked {
        ticket: &'a TicketNumber,
    },
    /// `automatically`: a verified proof, no one's decision.
    Approved {
        role: Role,
        automatically: bool,
    },
    Denied {
        reason: Option<&'a str>,
    },
    /// The help desk denied a request it reviewed by hand.
    DeniedOnReview {
        ticket: &'a TicketNumber,
        note: Option<&'a str>,
    },
    Revoked {
        reason: Option<&'a str>,
    },
    RemovedAsSecurityOfficial {
        note: Option<&'a str>,
    },
    RoleChanged {
        from: Role,
        to: Role,
        note: Option<&'a str>,
    },
    ClinicianGranted,
}

/// A notice in words, for one organization.
pub(crate) struct Message {
    /// The contract's `Notification.kind`.
    pub kind: &'static str,
    /// On screen, and the first paragraph of the email.
    pub text: String,
    pub subject: String,
    pub body: String,
}

const FOOTER: &str = "This message was sent by the QPP access management service. \
                      Please do not reply to it.";

impl Notice<'_> {
    /// `organization` is the organization's name as people know it.
    pub(crate) fn render(&self, organization: &str) -> Message {
        let o = organization;
        let (kind, text, subject, next) = match self {
            Notice::RequestSubmitted { role } => (
                "REQUEST_SUBMITTED",
                format!(
                    "Your request to become a {} of {o} was submitted. A Security Official \
                     of {o} will approve or deny it.",
                    role.label()
                ),
                format!("Request submitted: {} of {o}", role.label()),
                "You will receive another email when it is decided. Manage Access shows \
                 the request meanwhile, and lets you withdraw it while it is pending."
                    .to_string(),
            ),
            Notice::NewPendingRequest { role } => (
                "NEW_PENDING_REQUEST",
                format!(
                    "A new request to become a {} of {o} is waiting for your decision.",
                    role.label()
                ),
                format!("New request waiting for your approval: {o}"),
                format!(
                    "As a Security Official of {o}, you can approve or deny it from the \
                     pending requests on your Manage Access page."
                ),
            ),
            Notice::ProofRejected {
                mismatch,
                attempts_remaining,
            } => (
                "PROOF_REJECTED",
                format!(
                    "The information you gave to become the Security Official of {o} could \
                     not be verified: {}. You have {attempts_remaining} attempt(s) left.",
                    mismatch.message()
                ),
                format!("We could not verify your information: {o}"),
                "Check the values against your records and submit the request again. \
                 After three failed attempts the request goes to the QPP Help Desk for \
                 manual review."
                    .to_string(),
            ),
            Notice::Blocked { ticket } => (
                "REQUESTER_BLOCKED",
                format!(
                    "Your request to become the Security Official of {o} could not be \
                     verified after three attempts. It is now under manual review by the \
                     QPP Help Desk, ticket {ticket}."
                ),
                format!("Your request is under manual review: ticket {ticket}"),
                format!(
                    "You cannot submit another attempt for {o} meanwhile. The help desk \
                     will check your request by hand and you will be told of its decision; \
                     quote ticket {ticket} if you contact them."
                ),
            ),
            Notice::Unblocked { ticket } => (
                "REQUESTER_UNBLOCKED",
                format!(
                    "The QPP Help Desk closed ticket {ticket}: you may try again to become \
                     the Security Official of {o}."
                ),
                format!("You may try again: {o}"),
                "Your request has three new attempts. Submit it again from Manage Access \
                 with the values from your records."
                    .to_string(),
            ),
            Notice::Approved {
                role,
                automatically: true,
            } => (
                "REQUEST_APPROVED",
                format!(
                    "Your information was verified: you are now a {} of {o}.",
                    role.label()
                ),
                format!("Request approved: {} of {o}", role.label()),
                approved_next(o),
            ),
            Notice::Approved {
                role,
                automatically: false,
            } => (
                "REQUEST_APPROVED",
                format!(
                    "Your request to become a {} of {o} was approved.",
                    role.label()
                ),
                format!("Request approved: {} of {o}", role.label()),
                approved_next(o),
            ),
            Notice::Denied { reason } => (
                "REQUEST_DENIED",
                with_quote(
                    format!("Your request to join {o} was denied."),
                    "Reason given",
                    *reason,
                ),
                format!("Request denied: {o}"),
                format!(
                    "You may submit a new request. If you think this is a mistake, contact \
                     a Security Official of {o}."
                ),
            ),
            Notice::DeniedOnReview { ticket, note } => (
                "REQUEST_DENIED",
                with_quote(
                    format!(
                        "The QPP Help Desk reviewed your request to join {o} (ticket \
                         {ticket}) and denied it."
                    ),
                    "Note from the help desk",
                    *note,
                ),
                format!("Request denied: {o}"),
                format!(
                    "You may submit a new request. Quote ticket {ticket} if you contact \
                     the help desk."
                ),
            ),
            Notice::Revoked { reason } => (
                "ACCESS_REVOKED",
                with_quote(
                    format!("A Security Official revoked your Staff User access to {o}."),
                    "Reason given",
                    *reason,
                ),
                format!("Access removed: {o}"),
                removed_next(o),
            ),
            Notice::RemovedAsSecurityOfficial { note } => (
                "ACCESS_REVOKED",
                with_quote(
                    format!("The QPP Help Desk removed you as Security Official of {o}."),
                    "Note from the help desk",
                    *note,
                ),
                format!("Access removed: {o}"),
                removed_next(o),
            ),
            Notice::RoleChanged { from, to, note } => (
                "ROLE_CHANGED",
                with_quote(
                    format!(
                        "The QPP Help Desk changed your role in {o} from {} to {}.",
                        from.label(),
                        to.label()
                    ),
                    "Note from the help desk",
                    *note,
                ),
                format!("Your role changed: {o}"),
                "Manage Access shows what your role lets you do now.".to_string(),
            ),
            Notice::ClinicianGranted => (
                "CLINICIAN_ROLE_GRANTED",
                format!("You are now connected to {o} with the Clinician role."),
                format!("Connected as a Clinician: {o}"),
                format!(
                    "You can view your own MIPS feedback, final score, payment adjustment \
                     and eligibility for {o}. The Clinician role is view-only: it cannot \
                     submit data or manage users."
                ),
            ),
        };
        Message {
            kind,
            body: format!(
                "{}\n\n{}\n\n--\n{}\n",
                wrap(&text),
                wrap(&next),
                wrap(FOOTER)
            ),
            text,
            subject,
        }
    }
}

fn approved_next(organization: &str) -> String {
    format!(
        "{organization} is now on your Manage Access page, with what your role lets you do there."
    )
}

fn removed_next(organization: &str) -> String {
    format!(
        "You can no longer act for {organization}. If you still need access, submit a new request."
    )
}

/// Lines of at most 72 characters, as plain-text mail is read (and so sent as written,
/// without a transfer encoding); a longer word keeps its own line.
fn wrap(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= 72 => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

/// `sentence`, then what someone wrote, when they wrote something.
fn with_quote(sentence: String, label: &str, quote: Option<&str>) -> String {
    match quote {
        Some(quote) => format!("{sentence} {label}: \"{quote}\""),
        None => sentence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_quotes_the_reason_and_an_email_ends_with_the_footer() {
        let message = Notice::Denied {
            reason: Some("not our staff"),
        }
        .render("Greenville Medical Clinic");
        assert_eq!(message.kind, "REQUEST_DENIED");
        assert_eq!(
            message.text,
            "Your request to join Greenville Medical Clinic was denied. \
             Reason given: \"not our staff\""
        );
        assert_eq!(message.subject, "Request denied: Greenville Medical Clinic");
        assert!(message.body.starts_with(&wrap(&message.text)));
        assert!(message.body.ends_with(&format!("{}\n", wrap(FOOTER))));
        assert!(message.body.lines().all(|line| line.len() <= 72));
    }

    #[test]
    fn messages_are_plain_ascii_so_that_mail_clients_show_them_as_written() {
        let ticket = TicketNumber::from_serial(123).unwrap();
        let notices = [
            Notice::RequestSubmitted {
                role: Role::StaffUser,
            },
            Notice::NewPendingRequest {
                role: Role::SecurityOfficial,
            },
            Notice::ProofRejected {
                mismatch: ProofMismatch::PtanDoesNotMatchEnrollment,
                attempts_remaining: 2,
            },
            Notice::Blocked { ticket: &ticket },
            Notice::Unblocked { ticket: &ticket },
            Notice::Approved {
                role: Role::SecurityOfficial,
                automatically: true,
            },
            Notice::Approved {
                role: Role::StaffUser,
                automatically: false,
            },
            Notice::Denied { reason: None },
            Notice::DeniedOnReview {
                ticket: &ticket,
                note: None,
            },
            Notice::Revoked { reason: None },
            Notice::RemovedAsSecurityOfficial { note: None },
            Notice::RoleChanged {
                from: Role::StaffUser,
                to: Role::SecurityOfficial,
                note: None,
            },
            Notice::ClinicianGranted,
        ];
        for notice in notices {
            let message = notice.render("Org");
            assert!(
                [&message.text, &message.subject, &message.body]
                    .iter()
                    .all(|text| text.is_ascii()),
                "{}",
                message.kind
            );
        }
    }
}
