//! Where emails go (`ACCESS_SMTP_URL`, or the log) and whom they come from
//! (`ACCESS_MAIL_FROM`), and the one function that hands an outbox email over.

use std::fmt;
use std::time::Duration;

use access_projections::PendingEmail;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, SMTP_PORT};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::sender::SenderOptions;

pub const DEFAULT_MAIL_FROM: &str = "no-reply@localhost";

/// Each message names its setting first, as every start-up refusal does. The URL itself
/// is never echoed: it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum MailSettingsError {
    #[error("ACCESS_SMTP_URL: expected smtp://host:port (plain SMTP to a relay): {0}")]
    SmtpUrl(String),
    #[error("ACCESS_MAIL_FROM: expected an email address such as no-reply@example.org, got {0:?}")]
    MailFrom(String),
}

/// How notifications are emailed.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// `ACCESS_SMTP_URL`; without it emails are written to the log and count as sent.
    pub smtp: Option<SmtpServer>,
    /// `ACCESS_MAIL_FROM`.
    pub from: Mailbox,
    /// Retries, claims and polling: not environment settings; tests shorten them.
    pub sender: SenderOptions,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            smtp: None,
            from: DEFAULT_MAIL_FROM
                .parse()
                .expect("the default sender address is valid"),
            sender: SenderOptions::default(),
        }
    }
}

impl MailSettings {
    /// Checks the values of `ACCESS_SMTP_URL` and `ACCESS_MAIL_FROM` (absent: the log,
    /// and [`DEFAULT_MAIL_FROM`]).
    pub fn parse(
        smtp_url: Option<&str>,
        mail_from: Option<&str>,
    ) -> Result<MailSettings, MailSettingsError> {
        let smtp = smtp_url.map(SmtpServer::parse).transpose()?;
        let from = match mail_from {
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| MailSettingsError::MailFrom(text.to_string()))?,
            None => MailSettings::default().from,
        };
        Ok(MailSettings {
            smtp,
            from,
            sender: SenderOptions::default(),
        })
    }
}

/// A checked `ACCESS_SMTP_URL`.
#[derive(Clone)]
pub struct SmtpServer(AsyncSmtpTransportBuilder);

impl SmtpServer {
    /// `smtp://host[:port]`, port 25 by default. No TLS and so no credentials either: the
    /// server is a relay next to this one (which may add both).
    fn parse(url: &str) -> Result<SmtpServer, MailSettingsError> {
        let invalid = |reason: &str| MailSettingsError::SmtpUrl(reason.to_string());
        let authority = url
            .trim()
            .strip_prefix("smtp://")
            .ok_or_else(|| invalid("the scheme must be smtp:// (TLS is not built in)"))?;
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains(['@', '/', '?', '#']) {
            return Err(invalid(
                "only a host and a port are accepted: no user, path or query",
            ));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, rest) = bracketed
                    .split_once(']')
                    .ok_or_else(|| invalid("an IPv6 address lacks its closing bracket"))?;
                (host, rest.strip_prefix(':'))
            }
            None => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(invalid("the host is missing"));
        }
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| invalid("the port must be a number from 0 to 65535"))?,
            None => SMTP_PORT,
        };
        Ok(SmtpServer(
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port),
        ))
    }
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpServer(ACCESS_SMTP_URL)")
    }
}

/// Why an email did not go out.
pub(crate) enum Failure {
    /// No address, or one that is not an address: trying again cannot help.
    Undeliverable(String),
    /// The SMTP server refused it for good (a 5xx answer).
    Refused(String),
    /// The server is down, slow or answered "try later".
    Transient(String),
}

pub(crate) enum Mailer {
    Log,
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        timeout: Duration,
    },
}

impl Mailer {
    pub(crate) fn new(settings: &MailSettings) -> Mailer {
        match &settings.smtp {
            None => Mailer::Log,
            Some(SmtpServer(builder)) => Mailer::Smtp {
                transport: Box::new(
                    builder
                        .clone()
                        .timeout(Some(settings.sender.smtp_timeout))
                        .build(),
                ),
                from: settings.from.clone(),
                timeout: settings.sender.smtp_timeout,
            },
        }
    }

    /// Hands `email` over; answers how (`smtp` or `log`).
    pub(crate) async fn send(&self, email: &PendingEmail) -> Result<&'static str, Failure> {
        let (transport, from, timeout) = match self {
            Mailer::Log => {
                tracing::info!(
                    recipient = %email.recipient,
                    kind = %email.kind,
                    subject = %email.subject,
                    "email logged, not sent: ACCESS_SMTP_URL is not set"
                );
                return Ok("log");
            }
            Mailer::Smtp {
                transport,
                from,
                timeout,
            } => (transport, from, *timeout),
        };
        let address = email
            .email
            .as_deref()
            .ok_or_else(|| {
                Failure::Undeliverable("no email address is known for this person".into())
            })?
            .trim()
            .parse::<Address>()
            .map_err(|_| {
                Failure::Undeliverable("the email address on file is not a valid address".into())
            })?;
        let message = Message::builder()
            .from(from.clone())
            .to(Mailbox::new(email.display_name.clone(), address))
            .subject(email.subject.as_str())
            .message_id(Some(message_id(email, from)))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|error| {
                Failure::Refused(without_addresses(&format!(
                    "the message cannot be built: {error}"
                )))
            })?;
        // The transport's own timeout bounds connecting only: a server that accepts the
        // connection and then stops answering would hold the sender, and its claimed
        // emails, for good.
        let Ok(sent) = tokio::time::timeout(timeout, transport.send(message)).await else {
            return Err(Failure::Transient(format!(
                "the SMTP server did not answer within {} s",
                timeout.as_secs_f64()
            )));
        };
        match sent {
            Ok(_) => Ok("smtp"),
            Err(error) if error.is_permanent() => {
                Err(Failure::Refused(without_addresses(&error.to_string())))
            }
            Err(error) => Err(Failure::Transient(without_addresses(&error.to_string()))),
        }
    }
}

/// An SMTP server's reply with every word that holds an `@` replaced: refusals often
/// quote the recipient's address, and the reply is stored with the email and logged.
fn without_addresses(reply: &str) -> String {
    reply
        .split(' ')
        .map(|word| {
            if word.contains('@') {
                "[address]"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same for every copy of one email: should the one repeat the outbox allows happen
/// (the server accepted it, the sender died before recording it), mail clients that drop
/// duplicate Message-IDs show it once.
fn message_id(email: &PendingEmail, from: &Mailbox) -> String {
    let recipient: String = email
        .recipient
        .as_str()
        .bytes()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "<notification.{}.{recipient}@{}>",
        email.position,
        from.email.domain()
    )
}

/// How long a connection, a command or an answer may take before the try counts as failed.
pub(crate) const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_smtp_reply_is_kept_without_the_addresses_it_quotes() {
        assert_eq!(
            without_addresses(
                "550 5.1.1 <bob@example.org>: Recipient address rejected: bob@example.org"
            ),
            "550 5.1.1 [address] Recipient address rejected: [address]"
        );
        assert_eq!(
            without_addresses("421 try again later"),
            "421 try again later"
        );
    }

    #[test]
    fn a_url_with_another_scheme_names_access_smtp_url_without_echoing_it() {
        let error = MailSettings::parse(Some("smtps://user:secret@mail.example.org"), None)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ACCESS_SMTP_URL"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        for malformed in ["smtp://", "smtp://host:port", "smtp://user:secret@host:25"] {
            let error = MailSettings::parse(Some(malformed), None)
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("ACCESS_SMTP_URL"), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
        for valid in [
            "smtp://mail.example.org",
            "smtp://127.0.0.1:2525/",
            "smtp://[::1]:25",
        ] {
            assert!(MailSettings::parse(Some(valid), None).is_ok(), "{valid}");
        }
    }

    #[test]
    fn the_sender_address_defaults_to_no_reply_at_localhost_and_must_be_an_address() {
        let settings = MailSettings::parse(Some("smtp://127.0.0.1:2525"), None).unwrap();
        assert!(settings.smtp.is_some());
        assert_eq!(settings.from.to_string(), DEFAULT_MAIL_FROM);
        let error = MailSettings::parse(None, Some("nobody"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ACCESS_MAIL_FROM"), "{error}");
    }
}
