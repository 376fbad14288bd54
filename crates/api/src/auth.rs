//! Bearer tokens in, capabilities out. A resolver can act for support staff or
//! auditors only through a handle that exists solely for validated claims
//! holding that role, so forgetting a check does not compile.

use std::path::Path;

use access_domain::identifiers::PersonId;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

/// The secret `ACCESS_DEV_AUTH=1` accepts. Public on purpose: never for
/// production, which is why the server says so loudly when it is used.
pub const DEV_SECRET: &str = "access-development-secret-do-not-use-in-production";

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("ACCESS_JWT_PUBLIC_KEY: cannot read {path}: {error}")]
    Unreadable { path: String, error: std::io::Error },
    #[error("ACCESS_JWT_PUBLIC_KEY: {path} is not a PEM RSA or EC (P-256) public key")]
    NotAKey { path: String },
    #[error("ACCESS_JWT_SECRET: must not be empty")]
    EmptySecret,
}

/// Checks signatures, `exp`, and issuer/audience when configured.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn hs256(secret: &str) -> Result<Self, AuthConfigError> {
        if secret.is_empty() {
            return Err(AuthConfigError::EmptySecret);
        }
        Ok(Self::new(
            DecodingKey::from_secret(secret.as_bytes()),
            Algorithm::HS256,
        ))
    }

    /// RS256 or ES256, chosen by the key's type; only that one algorithm is
    /// accepted, so an HS256 token signed with the public key is refused.
    pub fn from_public_key_file(path: &Path) -> Result<Self, AuthConfigError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|error| AuthConfigError::Unreadable {
            path: shown.clone(),
            error,
        })?;
        if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            return Ok(Self::new(key, Algorithm::RS256));
        }
        if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            return Ok(Self::new(key, Algorithm::ES256));
        }
        Err(AuthConfigError::NotAKey { path: shown })
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self { key, validation }
    }

    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self
    }

    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.validate_aud = true;
        self.validation.set_audience(&[audience]);
        self
    }

    /// The caller behind an `Authorization` header value, if any.
    pub fn caller(&self, authorization: Option<&str>) -> Caller {
        let Some(header) = authorization else {
            return Caller::Anonymous;
        };
        let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
            return Caller::Rejected("the Authorization header must be 'Bearer <token>'".into());
        };
        match decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) => match Identity::from_claims(data.claims) {
                Ok(identity) => Caller::Authenticated(identity),
                Err(reason) => Caller::Rejected(reason),
            },
            Err(error) => Caller::Rejected(format!(
                "the bearer token is not valid ({})",
                describe(&error)
            )),
        }
    }
}

fn describe(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not valid yet",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm => "unexpected algorithm",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        _ => "malformed",
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    name: Option<String>,
    email: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Who is calling, decided once per HTTP request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    /// A token was sent but refused; the reason is safe to show.
    Rejected(String),
    Authenticated(Identity),
}

impl Caller {
    pub fn identity(&self) -> ApiResult<&Identity> {
        match self {
            Caller::Authenticated(identity) => Ok(identity),
            Caller::Anonymous => Err(ApiError::Unauthenticated(
                "Sign in: send 'Authorization: Bearer <token>'.".into(),
            )),
            Caller::Rejected(reason) => Err(ApiError::Unauthenticated(format!(
                "Sign in again: {reason}."
            ))),
        }
    }
}

/// A person as the identity provider vouches for them.
#[derive(Debug, Clone)]
pub struct Identity {
    pub person: PersonId,
    pub display_name: Option<String>,
    pub email: Option<String>,
    support: bool,
    auditor: bool,
}

impl Identity {
    fn from_claims(claims: Claims) -> Result<Self, String> {
        let person =
            PersonId::parse(&claims.sub).map_err(|error| format!("the token's sub: {error}"))?;
        Ok(Self {
            person,
            display_name: claims.name,
            email: claims.email,
            support: claims.roles.iter().any(|role| role == "support"),
            auditor: claims.roles.iter().any(|role| role == "auditor"),
        })
    }

    /// The handle for support-staff actions.
    pub fn support_agent(&self) -> ApiResult<SupportAgent> {
        if self.support {
            Ok(SupportAgent {
                person: self.person.clone(),
            })
        } else {
            Err(ApiError::Forbidden(
                "Only support staff may do this.".into(),
            ))
        }
    }

    /// Support staff and auditors may read anyone's access.
    pub fn may_read_everything(&self) -> bool {
        self.support || self.auditor
    }
}

/// Proof that the caller is support staff; only [`Identity::support_agent`]
/// makes one.
#[derive(Debug, Clone)]
pub struct SupportAgent {
    person: PersonId,
}

impl SupportAgent {
    pub fn person(&self) -> &PersonId {
        &self.person
    }
}

/// Claims this server signs for development and tests.
#[derive(Debug, serde::Serialize)]
pub struct TokenClaims<'a> {
    pub sub: &'a str,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub roles: Vec<&'a str>,
    pub exp: i64,
}

/// An HS256 token, as an identity provider would issue it.
pub fn sign_hs256(secret: &str, claims: &TokenClaims<'_>) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing of plain claims cannot fail")
}
