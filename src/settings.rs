//! Settings from the environment (server.md, "Settings"). A bad value stops
//! start-up with the setting's name and what is expected.

use std::net::SocketAddr;
use std::path::PathBuf;

use access_api::auth::{AuthConfigError, TokenVerifier, DEV_SECRET};
use access_api::MAX_REQUESTS;
use access_notifications::{MailSettings, MailSettingsError};
use access_store::CACHED_EVENTS;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/access.db";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("ACCESS_LISTEN: expected address:port such as {DEFAULT_LISTEN}, got {0:?}")]
    Listen(String),
    #[error(
        "no way to check bearer tokens: set ACCESS_JWT_SECRET (HS256 key) or ACCESS_JWT_PUBLIC_KEY \
         (path of a PEM RS256/ES256 public key); for a local trial only, ACCESS_DEV_AUTH=1"
    )]
    NoTokenKey,
    #[error("ACCESS_JWT_SECRET and ACCESS_JWT_PUBLIC_KEY are both set: choose one")]
    TwoTokenKeys,
    #[error("ACCESS_DEV_AUTH: expected 1 or 0, got {0:?}")]
    DevAuth(String),
    #[error("ACCESS_CACHE_EVENTS: expected a whole number of events such as 250000, got {0:?}")]
    CacheEvents(String),
    #[error("ACCESS_MAX_REQUESTS: expected a whole number of requests of at least 1 such as 256, got {0:?}")]
    MaxRequests(String),
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    #[error(transparent)]
    Mail(#[from] MailSettingsError),
}

/// How bearer tokens are checked.
#[derive(Debug, Clone)]
pub enum TokenKey {
    Secret(String),
    PublicKeyFile(PathBuf),
    /// ACCESS_DEV_AUTH=1: the published development secret.
    Development,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    /// None: the shipped demo data.
    pub reference_data: Option<PathBuf>,
    pub token_key: TokenKey,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// `ACCESS_SMTP_URL` and `ACCESS_MAIL_FROM`: where notification emails go (the log,
    /// by default) and whom they come from.
    pub mail: MailSettings,
    /// `ACCESS_CACHE_EVENTS`: the organizations held in memory, measured in the entries
    /// of their states (a grant, an open request, a closed request's outcome: each about
    /// what one event adds).
    pub cached_events: usize,
    /// `ACCESS_MAX_REQUESTS`: GraphQL requests served at once; more are turned away.
    pub max_requests: usize,
}

impl Settings {
    /// Reads the settings through `var` (the process environment in `main`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let listen_text = set("ACCESS_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text
            .parse()
            .map_err(|_| SettingsError::Listen(listen_text.clone()))?;
        let development = match set("ACCESS_DEV_AUTH").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => return Err(SettingsError::DevAuth(other.to_string())),
        };
        let token_key = match (set("ACCESS_JWT_SECRET"), set("ACCESS_JWT_PUBLIC_KEY")) {
            (Some(_), Some(_)) => return Err(SettingsError::TwoTokenKeys),
            (Some(secret), None) => TokenKey::Secret(secret),
            (None, Some(path)) => TokenKey::PublicKeyFile(PathBuf::from(path)),
            (None, None) if development => TokenKey::Development,
            (None, None) => return Err(SettingsError::NoTokenKey),
        };
        Ok(Settings {
            listen,
            database_url: set("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
            reference_data: set("ACCESS_REFERENCE_DATA").map(PathBuf::from),
            token_key,
            issuer: set("ACCESS_JWT_ISSUER"),
            audience: set("ACCESS_JWT_AUDIENCE"),
            mail: MailSettings::parse(
                set("ACCESS_SMTP_URL").as_deref(),
                set("ACCESS_MAIL_FROM").as_deref(),
            )?,
            cached_events: match set("ACCESS_CACHE_EVENTS") {
                None => CACHED_EVENTS,
                Some(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| SettingsError::CacheEvents(text.clone()))?,
            },
            max_requests: match set("ACCESS_MAX_REQUESTS") {
                None => MAX_REQUESTS,
                Some(text) => text
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&count: &usize| count > 0)
                    .ok_or_else(|| SettingsError::MaxRequests(text.clone()))?,
            },
        })
    }

    pub fn token_verifier(&self) -> Result<TokenVerifier, SettingsError> {
        let verifier = match &self.token_key {
            TokenKey::Secret(secret) => TokenVerifier::hs256(secret)?,
            TokenKey::PublicKeyFile(path) => TokenVerifier::from_public_key_file(path)?,
            TokenKey::Development => TokenVerifier::hs256(DEV_SECRET)?,
        };
        let verifier = match &self.issuer {
            Some(issuer) => verifier.with_issuer(issuer),
            None => verifier,
        };
        Ok(match &self.audience {
            Some(audience) => verifier.with_audience(audience),
            None => verifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_env(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn with_only_a_secret_the_defaults_are_the_documented_ones() {
        let settings = settings(&[("ACCESS_JWT_SECRET", "s3cret")]).unwrap();
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.database_url, DEFAULT_DATABASE_URL);
        assert!(settings.reference_data.is_none());
        assert!(settings.mail.smtp.is_none(), "emails go to the log");
        assert_eq!(settings.mail.from.to_string(), "no-reply@localhost");
        assert_eq!(settings.cached_events, 250_000);
        assert_eq!(settings.max_requests, 256);
    }

    #[test]
    fn the_memory_held_for_organizations_is_set_in_events_and_a_bad_count_names_its_setting() {
        let settings_with =
            |count: &str| settings(&[("ACCESS_JWT_SECRET", "s"), ("ACCESS_CACHE_EVENTS", count)]);
        assert_eq!(settings_with("20000").unwrap().cached_events, 20_000);
        for bad in ["lots", "-1", "2.5e5"] {
            let error = settings_with(bad).unwrap_err().to_string();
            assert!(error.starts_with("ACCESS_CACHE_EVENTS"), "{error}");
        }
    }

    #[test]
    fn the_requests_served_at_once_are_at_least_one_and_a_bad_count_names_its_setting() {
        let settings_with =
            |count: &str| settings(&[("ACCESS_JWT_SECRET", "s"), ("ACCESS_MAX_REQUESTS", count)]);
        assert_eq!(settings_with(" 64 ").unwrap().max_requests, 64);
        for bad in ["0", "many", "-5", "1.5"] {
            let error = settings_with(bad).unwrap_err().to_string();
            assert!(error.starts_with("ACCESS_MAX_REQUESTS"), "{error}");
        }
    }

    #[test]
    fn a_malformed_smtp_url_or_sender_address_names_its_setting() {
        let error = settings(&[
            ("ACCESS_JWT_SECRET", "s"),
            ("ACCESS_SMTP_URL", "mail.example.org"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("ACCESS_SMTP_URL"), "{error}");
        let error = settings(&[("ACCESS_JWT_SECRET", "s"), ("ACCESS_MAIL_FROM", "no reply")])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ACCESS_MAIL_FROM"), "{error}");
        let settings = settings(&[
            ("ACCESS_JWT_SECRET", "s"),
            ("ACCESS_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("ACCESS_MAIL_FROM", "Access <access@example.org>"),
        ])
        .unwrap();
        assert!(settings.mail.smtp.is_some());
        assert_eq!(settings.mail.from.email.to_string(), "access@example.org");
    }

    #[test]
    fn without_any_token_key_start_up_is_refused_naming_the_settings() {
        let error = settings(&[]).unwrap_err().to_string();
        assert!(
            error.contains("ACCESS_JWT_SECRET") && error.contains("ACCESS_JWT_PUBLIC_KEY"),
            "{error}"
        );
    }

    #[test]
    fn development_auth_is_accepted_only_when_asked_for() {
        assert!(matches!(
            settings(&[("ACCESS_DEV_AUTH", "1")]).unwrap().token_key,
            TokenKey::Development
        ));
        let error = settings(&[("ACCESS_DEV_AUTH", "yes")])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ACCESS_DEV_AUTH"), "{error}");
    }

    #[test]
    fn a_malformed_listen_address_names_access_listen() {
        let error = settings(&[("ACCESS_JWT_SECRET", "s"), ("ACCESS_LISTEN", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ACCESS_LISTEN"), "{error}");
    }

    #[test]
    fn an_unreadable_public_key_names_access_jwt_public_key() {
        let settings = settings(&[("ACCESS_JWT_PUBLIC_KEY", "/nonexistent/key.pem")]).unwrap();
        let error = settings.token_verifier().err().unwrap().to_string();
        assert!(error.starts_with("ACCESS_JWT_PUBLIC_KEY"), "{error}");
    }
}
