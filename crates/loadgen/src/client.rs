//! The GraphQL client every workload (and the HTTP-ceiling baseline) uses, and
//! the tokens it signs.

use std::time::{Duration, Instant};

use access_api::auth::{sign_hs256, TokenClaims};
use serde_json::{json, Value};

use crate::stats::Recorder;

/// One HTTP client (one connection pool) for a whole run.
#[derive(Clone)]
pub struct Gql {
    client: reqwest::Client,
    url: String,
}

impl Gql {
    /// `base` is `http://ADDR`; requests go to `base/graphql`.
    pub fn new(base: &str) -> Gql {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .expect("an HTTP client");
        Gql {
            client,
            url: format!("{base}/graphql"),
        }
    }

    /// Posts a query; answers `data` or the failure's code: the first error's
    /// `extensions.code` (`NO_CODE` without one), `HTTP_<status>`,
    /// `TRANSPORT` (no answer) or `BAD_BODY` (not JSON).
    pub async fn call(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, String> {
        let (status, bytes) = self.post(token, query, variables).await?;
        let mut value: Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(_) if !status.is_success() => return Err(format!("HTTP_{}", status.as_u16())),
            Err(_) => return Err("BAD_BODY".to_string()),
        };
        if let Some(errors) = value.get("errors").and_then(Value::as_array) {
            if let Some(first) = errors.first() {
                return Err(error_code(first));
            }
        }
        if !status.is_success() {
            return Err(format!("HTTP_{}", status.as_u16()));
        }
        Ok(value
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// Posts a query whose `data` nobody reads, timed and recorded under `op`; fails
    /// as [`call`](Self::call) does. The answer is checked without building it: a
    /// closed loop measures the server, and building every answer's tree took the load
    /// tool more CPU than the small answer of the HTTP-ceiling baseline does, on the
    /// cores it shares with the server.
    pub async fn timed(
        &self,
        recorder: &mut Recorder,
        op: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) {
        let started = Instant::now();
        let result = self
            .post(token, query, variables)
            .await
            .and_then(
                |(status, bytes)| match serde_json::from_slice::<Checked>(&bytes) {
                    Ok(Checked {
                        errors: Some(errors),
                    }) if !errors.is_empty() => Err(error_code(&errors[0])),
                    Ok(_) if status.is_success() => Ok(()),
                    Ok(_) => Err(format!("HTTP_{}", status.as_u16())),
                    Err(_) if !status.is_success() => Err(format!("HTTP_{}", status.as_u16())),
                    Err(_) => Err("BAD_BODY".to_string()),
                },
            );
        recorder.record(op, started.elapsed(), result.err().as_deref());
    }

    async fn post(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<(reqwest::StatusCode, axum::body::Bytes), String> {
        let body = json!({ "query": query, "variables": variables });
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|error| {
            if error.is_timeout() {
                "CLIENT_TIMEOUT".to_string()
            } else {
                "TRANSPORT".to_string()
            }
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|_| "TRANSPORT".to_string())?;
        Ok((status, bytes))
    }

    /// A plain GET of `base/path`, for /readyz and /metrics.
    pub async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let url = self.url.replace("/graphql", path);
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|error| error.to_string())?;
        Ok((status, text))
    }
}

/// A GraphQL answer with only its errors decoded; `data` is skipped unread.
#[derive(serde::Deserialize)]
struct Checked {
    errors: Option<Vec<Value>>,
}

fn error_code(error: &Value) -> String {
    error["extensions"]["code"]
        .as_str()
        .unwrap_or("NO_CODE")
        .to_string()
}

/// An HS256 token for `person`, valid for a day.
pub fn token(secret: &str, person: &str, roles: &[&str]) -> String {
    let email = format!("{person}@load.example.org");
    sign_hs256(
        secret,
        &TokenClaims {
            sub: person,
            name: Some(person),
            email: Some(&email),
            roles: roles.to_vec(),
            exp: (chrono::Utc::now() + chrono::Duration::days(1)).timestamp(),
        },
    )
}

pub const REQUEST_ROLE: &str = "mutation($input: RequestRoleInput!) { requestRole(input: $input) { proofRejected attemptsRemaining request { id state } } }";
pub const APPROVE: &str = "mutation($id: ID!) { approveRoleRequest(requestId: $id) { id state } }";
pub const DENY: &str = "mutation($id: ID!) { denyRoleRequest(requestId: $id, reason: \"not on our staff\") { state } }";
pub const REVOKE: &str = "mutation($org: ID!, $p: ID!) { revokeAccess(organizationId: $org, personId: $p, reason: \"left the practice\") }";
pub const MANAGE_ACCESS: &str = "{ manageAccess { tabs { type connections { organization { id legalBusinessName tin } role connectedUsers pendingUsers } } openRequests { id state organization { id } } performanceFeedbackOrganizations { id } } }";
pub const PENDING_REQUESTS: &str = "{ pendingRequests(first: 20) { totalCount pageInfo { hasNextPage endCursor } edges { node { id requester { id } organization { id } submittedAt } } } }";
pub const AUTHORIZE: &str = "query($org: ID!) { authorize(organizationId: $org, capability: SUBMIT_DATA) { allowed role reason } }";
/// What the HTTP-ceiling baseline sends (the trivial server ignores it).
pub const TRIVIAL: &str = "{ __typename }";

/// Reads `requestRole.request.{id,state}` of an answer.
pub fn request_of(data: &Value) -> Option<(String, String)> {
    let request = &data["requestRole"]["request"];
    Some((
        request["id"].as_str()?.to_string(),
        request["state"].as_str()?.to_string(),
    ))
}
