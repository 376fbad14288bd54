//! HTTP endpoints: GraphQL (POST, GraphiQL on GET, subscriptions over
//! WebSocket) and the operational probes and metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::http::GraphiQLSource;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Data, ErrorExtensions, ParseRequestError};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::body::{Body, Bytes};
use axum::extract::WebSocketUpgrade;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;
use tracing::Instrument;

use access_store::IdempotentStart;

use crate::auth::{Caller, TokenVerifier};
use crate::documents::ParsedDocuments;
use crate::error::{ApiError, ErrorCode};
use crate::observe::{unlabelled_series, Operation};
use crate::schema::{self, AccessSchema};
use crate::service::AccessService;
use crate::value_free::without_values;

/// Largest request body accepted: a GraphQL document with variables is a few KiB.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest a GraphQL request may run before it is answered with TIMEOUT.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_ID: &str = "x-request-id";
/// Views further behind the log than this make the server not ready.
const READY_LAG_BOUND: i64 = 10_000;
/// A client's key for retrying a request safely (docs/api.md).
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// GraphQL requests one process serves at once unless `ACCESS_MAX_REQUESTS` says
/// otherwise: well above what two cores keep busy (a few dozen at full load), far below
/// what exhausts memory or file descriptors.
pub const MAX_REQUESTS: usize = 256;
/// Longest between two log lines about requests turned away.
const BUSY_WARNING_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    schema: AccessSchema,
    websocket_schema: AccessSchema,
    documents: Arc<ParsedDocuments>,
    /// Behind an `Arc`: the state is cloned for every request, and a verifier's
    /// validation rules are sets of strings (a clone and a drop of them per request were
    /// about 3 % of the server's CPU time under load, docs/performance.md).
    verifier: Arc<TokenVerifier>,
    service: AccessService,
    serving: Arc<Serving>,
}

/// The GraphQL requests being served. Past the limit a request is turned away at once:
/// an overloaded server that queued everything would answer nobody in time, and grow
/// until it ran out of memory or file descriptors.
struct Serving {
    permits: Semaphore,
    limit: usize,
    last_warned: Mutex<Option<Instant>>,
}

impl Serving {
    fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// Logs the load, at most once per [`BUSY_WARNING_EVERY`], since under overload
    /// every request would.
    fn warn_turned_away(&self, total: u64) {
        let mut last = self
            .last_warned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_none_or(|at| at.elapsed() >= BUSY_WARNING_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                limit = self.limit,
                turned_away_since_start = total,
                "serving as many GraphQL requests as ACCESS_MAX_REQUESTS allows; turning more away"
            );
        }
    }
}

/// The whole HTTP surface of the server; at most `max_requests` GraphQL requests are
/// served at once.
pub fn router(service: AccessService, verifier: TokenVerifier, max_requests: usize) -> Router {
    let schema = schema::build(Some(service.clone()));
    let websocket_schema = schema::for_websocket(service.clone());
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(subscriptions))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(limit_body))
        .layer(middleware::from_fn(with_request_id))
        .with_state(AppState {
            schema,
            websocket_schema,
            documents: Arc::default(),
            verifier: Arc::new(verifier),
            service,
            serving: Arc::new(Serving {
                permits: Semaphore::new(max_requests),
                limit: max_requests,
                last_warned: Mutex::new(None),
            }),
        })
}

/// Every log line of a request carries its id: the caller's `X-Request-Id`
/// when it sends a sane one, else a new one, echoed in the response.
async fn with_request_id(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %request_id, method = %request.method(), path = %request.uri().path());
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Refuses a body over [`MAX_BODY_BYTES`]: at once when its length is
/// declared, else when reading passes the limit. (The GraphQL extractor reads
/// the body itself, so axum's `DefaultBodyLimit` does not reach it.)
async fn limit_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let limited = Body::new(http_body_util::Limited::new(body, MAX_BODY_BYTES));
    next.run(Request::from_parts(parts, limited)).await
}

/// Says the connection closes: the rest of the body is never read, so the connection
/// cannot carry another request, and a client that reused it would lose that request.
fn too_large() -> Response {
    let mut response = invalid_request(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The request body is over {MAX_BODY_BYTES} bytes."),
    );
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        HeaderValue::from_static("close"),
    );
    response
}

/// An HTTP-level refusal in the shape of a GraphQL answer, so that a client reads
/// `extensions.code` whatever it sent.
fn invalid_request(status: StatusCode, message: String) -> Response {
    (status, axum::Json(invalid_query(message))).into_response()
}

/// A body that is not a GraphQL request. The answer never repeats the parser's words:
/// they may quote the body, and with it a proof value or an SSN.
struct MalformedRequest(ParseRequestError);

impl From<ParseRequestError> for MalformedRequest {
    fn from(error: ParseRequestError) -> Self {
        MalformedRequest(error)
    }
}

impl IntoResponse for MalformedRequest {
    fn into_response(self) -> Response {
        match self.0 {
            ParseRequestError::PayloadTooLarge => too_large(),
            _ => invalid_request(
                StatusCode::BAD_REQUEST,
                "The body is not a GraphQL request: send JSON such as {\"query\": \"{ me { id } }\"}."
                    .into(),
            ),
        }
    }
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLRequest<MalformedRequest>,
) -> Response {
    // Taken before anything is read or written, so a request turned away did nothing.
    let Ok(_serving) = state.serving.permits.try_acquire() else {
        return turned_away(&state);
    };
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let caller = state.verifier.caller(authorization);
    let request = request.into_inner();
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(refusal) => return answer(refusal_response(refusal)),
    };
    let (Some(key), Caller::Authenticated(identity)) = (key, &caller) else {
        return respond(&state, request, caller).await;
    };
    let person = identity.person.to_string();
    let database = state.service.database();
    let identity = request_identity(&request);
    let run = match database.begin_idempotent(&person, &key, &identity).await {
        Ok(IdempotentStart::Fresh) => Run::Execute,
        Ok(IdempotentStart::TakenOver) => {
            match database
                .request_committed(&request_tag(&person, &key))
                .await
            {
                Ok(true) => Run::AlreadyApplied,
                Ok(false) => Run::Execute,
                Err(error) => {
                    let refusal =
                        ApiError::internal("looking for a retried request's events", &error);
                    // The key stays taken over; the next retry looks again.
                    return answer(refusal_response(refusal));
                }
            }
        }
        Ok(IdempotentStart::Replay(body)) => {
            let mut replayed = json_body(body);
            replayed
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return replayed;
        }
        Ok(IdempotentStart::InProgress) => {
            return answer(refusal_response(ApiError::IdempotentInProgress))
        }
        Ok(IdempotentStart::DifferentRequest) => {
            return answer(refusal_response(ApiError::InvalidInput {
                field: IDEMPOTENCY_KEY.into(),
                message: "was already used for a different request; use a new key".into(),
            }))
        }
        Err(error) => {
            return answer(refusal_response(ApiError::internal(
                "reading an idempotency key",
                &error,
            )))
        }
    };
    let response = match run {
        Run::Execute => {
            let tag = request_tag(&person, &key);
            let execution = async {
                match prepare(&state, &request) {
                    Some(prepared) => execute(&state, request, caller, prepared).await,
                    None => unparsable(&request.query),
                }
            };
            crate::service::serving_request(tag, execution).await
        }
        Run::AlreadyApplied => refusal_response(ApiError::AlreadyApplied),
    };
    let body = serde_json::to_string(&response).unwrap_or_default();
    let outcome = if response.errors.iter().any(is_worth_retrying) {
        database.give_up_idempotent(&person, &key).await
    } else {
        database.finish_idempotent(&person, &key, &body).await
    };
    match outcome {
        Ok(()) => {}
        // The key stays "in progress": retries answer CONFLICT until it is
        // taken to be abandoned.
        Err(error) if error.is_retryable() => {
            tracing::warn!(%error, "keeping an idempotent answer: the database is unavailable");
        }
        Err(error) => tracing::error!(%error, "keeping an idempotent answer"),
    }
    json_body(body)
}

/// HTTP 503 with `Retry-After`, which proxies and load balancers understand, and the
/// `UNAVAILABLE` answer clients already retry.
fn turned_away(state: &AppState) -> Response {
    let total = state.service.metrics().turned_away();
    state.serving.warn_turned_away(total);
    let mut response = answer(refusal_response(ApiError::Busy));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("1"),
    );
    response
}

/// What a request with an idempotency key does once its key is held.
enum Run {
    Execute,
    /// An earlier attempt committed and its answer was lost: say so, do nothing.
    AlreadyApplied,
}

/// Ties the events a request appends to the person and key that sent it; a hash, so
/// that the client's text never reaches the event store.
fn request_tag(person: &str, key: &str) -> String {
    hex_sha256(serde_json::json!([person, key]).to_string().as_bytes())
}

/// The header's value, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_string()))
        }
        _ => Err(ApiError::InvalidInput {
            field: IDEMPOTENCY_KEY.into(),
            message: "must be 1 to 255 visible ASCII characters".into(),
        }),
    }
}

/// What identifies "the same request" for an idempotency key.
fn request_identity(request: &async_graphql::Request) -> Vec<u8> {
    serde_json::json!([request.query, request.variables, request.operation_name])
        .to_string()
        .into_bytes()
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Answers a retry should not get again: it should run the request anew.
fn is_worth_retrying(error: &async_graphql::ServerError) -> bool {
    let code = error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"));
    [
        ErrorCode::Conflict,
        ErrorCode::Timeout,
        ErrorCode::Internal,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
    ]
    .iter()
    .any(|retryable| code == Some(&async_graphql::Value::from(retryable.as_str())))
}

/// A request's document, parsed, and the operation it runs.
struct Prepared {
    document: Arc<ExecutableDocument>,
    operation: Option<Operation>,
}

/// Parsed here (the schema reuses it) so that a syntax error is answered by
/// [`unparsable`], not in async-graphql's words: `None` for such a document.
fn prepare(state: &AppState, request: &async_graphql::Request) -> Option<Prepared> {
    let document = state.documents.parse(&request.query)?;
    let operation = Operation::of(&document, request.operation_name.as_deref());
    Some(Prepared {
        document,
        operation,
    })
}

/// A request without an idempotency key. An operation reading only the caller's
/// remembered Manage Access page and pending queue, or asking only `authorize` about the
/// caller, is answered with the text of an identical earlier answer while what it read is
/// unchanged, and its answer's text is kept (docs/adr/13-remembered-answer-texts.md).
async fn respond(state: &AppState, request: async_graphql::Request, caller: Caller) -> Response {
    let Some(prepared) = prepare(state, &request) else {
        return answer(unparsable(&request.query));
    };
    // `depends_on`: `None` when the answer depends on the caller's pages; else the
    // organizations whose state in memory it reads, the key holding the mark of other
    // processes' reports taken before the read (a report coming in meanwhile moves it).
    let (person, key, depends_on) = match (&caller, &prepared.operation) {
        (Caller::Authenticated(identity), Some(operation))
            if operation.reads_remembered_pages_only =>
        {
            (identity.person.clone(), answer_key(&request), None)
        }
        (Caller::Authenticated(identity), Some(operation)) => {
            let asked = operation
                .authorizes_in(&request.variables)
                .and_then(|organizations| Some((organizations, state.service.reports_mark()?)));
            let Some((organizations, mark)) = asked else {
                return answer(execute(state, request, caller, prepared).await);
            };
            let key = format!("{}\n{mark}", answer_key(&request));
            (identity.person.clone(), key, Some(organizations))
        }
        _ => return answer(execute(state, request, caller, prepared).await),
    };
    let views = state.service.views();
    let started = Instant::now();
    if let Some(text) = views.answer_text(&person, &key) {
        let metrics = state.service.metrics();
        if let Some(operation) = &prepared.operation {
            operation.observe(metrics, &async_graphql::Response::default(), started);
        }
        metrics.answer_sent_as_kept();
        return graphql_body(Bytes::from_owner(ArcText(text)));
    }
    // Before anything is read: an answer racing a change to it is not kept.
    let ticket = views.read_ticket();
    let response = execute(state, request, caller, prepared).await;
    let Ok(text) = serde_json::to_string(&response) else {
        return answer(response);
    };
    let text: Arc<str> = Arc::from(text);
    if let (Some(ticket), true) = (ticket, response.errors.is_empty()) {
        match depends_on {
            None => views.keep_answer_text(ticket, &person, key, text.clone()),
            Some(organizations) => {
                views.keep_answer_text_about(ticket, &person, key, text.clone(), organizations);
            }
        }
    }
    graphql_body(Bytes::from_owner(ArcText(text)))
}

/// What makes two reads of one person the same read.
fn answer_key(request: &async_graphql::Request) -> String {
    let variables = serde_json::to_string(&request.variables).unwrap_or_default();
    format!(
        "{}\n{variables}\n{}",
        request.operation_name.as_deref().unwrap_or_default(),
        request.query
    )
}

/// A kept answer's text, sent without a copy.
struct ArcText(Arc<str>);

impl AsRef<[u8]> for ArcText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// As async-graphql's own answers are sent.
fn graphql_body(body: Bytes) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/graphql-response+json",
        )],
        body,
    )
        .into_response()
}

async fn execute(
    state: &AppState,
    mut request: async_graphql::Request,
    caller: Caller,
    Prepared {
        document,
        operation,
    }: Prepared,
) -> async_graphql::Response {
    request.set_parsed_query(ExecutableDocument::clone(&document));
    if let Some(operation) = &operation {
        if let Err(refusal) = operation.admit(&state.service, &caller).await {
            let refused = operation.refused(refusal);
            operation.observe(state.service.metrics(), &refused, Instant::now());
            return refused;
        }
    }
    let started = Instant::now();
    let execution = state.schema.execute(request.data(caller));
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, execution).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("GraphQL request stopped after {REQUEST_TIMEOUT:?}");
            refusal_response(ApiError::Timeout)
        }
    };
    if let Some(operation) = &operation {
        operation.observe(state.service.metrics(), &response, started);
    }
    // Parse, validation and limit errors come from async-graphql itself,
    // without a code; clients get one for every error all the same.
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", ErrorCode::InvalidQuery.as_str());
            error.message = without_values(&error.message);
        }
    }
    response
}

/// A document that does not parse. async-graphql's syntax errors quote the line of
/// the document, and with it any value typed inline (a proof, an SSN), into the
/// answer, which an idempotent request keeps for a day: this says where instead.
fn unparsable(query: &str) -> async_graphql::Response {
    use async_graphql::parser::{parse_query, Error};
    let message = match parse_query(query) {
        Err(Error::Syntax { start, .. }) => format!(
            "The document is not valid GraphQL at line {}, column {}.",
            start.line, start.column
        ),
        Err(other) => other.to_string(),
        Ok(_) => "The document is not valid GraphQL.".into(),
    };
    invalid_query(message)
}

fn invalid_query(message: String) -> async_graphql::Response {
    let error = async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", ErrorCode::InvalidQuery.as_str()))
        .into_server_error(Default::default());
    async_graphql::Response::from_errors(vec![error])
}

fn refusal_response(refusal: ApiError) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![
        async_graphql::Error::from(refusal).into_server_error(Default::default())
    ])
}

fn answer(response: async_graphql::Response) -> Response {
    GraphQLResponse::from(response).into_response()
}

fn json_body(body: String) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Subscriptions over graphql-transport-ws. The token travels in the
/// `connection_init` payload (`{"Authorization": "Bearer …"}`), since browsers
/// cannot set headers on a WebSocket; an upgrade request's own Authorization
/// header is used when the payload has none.
async fn subscriptions(
    State(state): State<AppState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            let verifier = state.verifier.clone();
            GraphQLWebSocket::new(stream, state.websocket_schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let from_payload = ["Authorization", "authorization"]
                        .iter()
                        .find_map(|key| payload.get(key).and_then(|value| value.as_str()))
                        .map(str::to_string);
                    let mut data = Data::default();
                    data.insert(verifier.caller(from_payload.or(header).as_deref()));
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}

async fn graphiql() -> impl IntoResponse {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

/// Ready when the database answers and every view is within
/// [`READY_LAG_BOUND`] events of the log's head.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.service.database();
    if let Err(error) = database.ping().await {
        tracing::warn!(%error, "readiness check failed");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable".to_string(),
        );
    }
    match (
        database.head_position().await,
        access_projections::checkpoints(database).await,
    ) {
        (Ok(head), Ok(checkpoints)) => {
            let behind: Vec<String> = checkpoints
                .iter()
                .filter(|(_, position)| head - position > READY_LAG_BOUND)
                .map(|(view, position)| {
                    format!("{} is {} events behind", view.name(), head - position)
                })
                .collect();
            if behind.is_empty() {
                (StatusCode::OK, "ready".to_string())
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, behind.join("; "))
            }
        }
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot read the views' progress".to_string(),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.service.metrics().render();
    unlabelled_series(
        &mut text,
        "access_graphql_requests_in_flight",
        "gauge",
        "GraphQL requests being served now (at most ACCESS_MAX_REQUESTS).",
        state.serving.in_flight(),
    );
    let groups = state.service.projector().append_groups();
    unlabelled_series(
        &mut text,
        "access_append_groups_total",
        "counter",
        "Groups of commands this process appended, each in one transaction with the views it writes (docs/adr/14-grouped-appends.md).",
        groups.groups,
    );
    unlabelled_series(
        &mut text,
        "access_append_group_commands_total",
        "counter",
        "Commands in those groups.",
        groups.commands,
    );
    unlabelled_series(
        &mut text,
        "access_append_busy_seconds_total",
        "counter",
        "Seconds the appends' task spent writing groups and answering their commands; a rate near 1 means it bounds this process's commands/s.",
        groups.busy.as_secs_f64(),
    );
    // The lag is read from the database, so every server reports the views'
    // true state whichever server writes them.
    let database = state.service.database();
    match (
        database.head_position().await,
        access_projections::checkpoints(database).await,
    ) {
        (Ok(head), Ok(checkpoints)) => {
            text.push_str("# HELP access_projector_lag_events Events committed that a view has not applied yet.\n");
            text.push_str("# TYPE access_projector_lag_events gauge\n");
            for (view, position) in checkpoints {
                text.push_str(&format!(
                    "access_projector_lag_events{{view=\"{}\"}} {}\n",
                    view.name(),
                    (head - position).max(0)
                ));
            }
        }
        (Err(error), _) => tracing::warn!(%error, "reading the log's head for /metrics"),
        (_, Err(error)) => tracing::warn!(%error, "reading the checkpoints for /metrics"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}
