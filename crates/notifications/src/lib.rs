//! The email half of the notifications (domain rule 10): a [`Sender`] that drains the
//! outbox the projector fills (`access_projections::Outbox`) through an SMTP server
//! (`ACCESS_SMTP_URL`), or into the log when none is configured.
//!
//! # Guarantees
//!
//! - An email is queued once per event and recipient: the projector writes it in the
//!   transaction that moves its checkpoint, keyed by (position, recipient).
//! - It is sent at least once and recorded once: claimed before the try, recorded after;
//!   a sender that dies leaves its claim to lapse ([`SenderOptions::claim`]), after which
//!   any sender tries again. The only repeat is an email the SMTP server accepted just
//!   before its sender died or lost the connection; it carries the same Message-ID.
//! - A server that is down or answers "try later" gets tries at growing intervals
//!   ([`SenderOptions::first_retry`] doubling up to [`SenderOptions::longest_retry`]);
//!   after [`SenderOptions::max_attempts`] tries, or at once when the server refuses the
//!   email for good, it becomes a dead letter. A recipient with no usable address makes
//!   it undeliverable. Both stay in the outbox for support
//!   (`access_projections::Outbox::undelivered`) and are logged at WARN.
//! - Commands never wait for mail: the sender runs on its own and touches the database
//!   only in single statements of its own, none held open during a send.
//!
//! docs/notifications.md has the whole picture.

mod mail;
mod sender;
#[cfg(feature = "test-support")]
pub mod testing;

pub use mail::{MailSettings, MailSettingsError, SmtpServer, DEFAULT_MAIL_FROM};
#[cfg(feature = "fail-points")]
pub use sender::FailStage;
pub use sender::{Sender, SenderOptions};
