//! HTTP endpoints: GraphQL (POST, GraphiQL on GET, subscriptions over
//! WebSocket) and the operational probes and metrics.

use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::body::Body;
use axum::extract::WebSocketUpgrade;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tracing::Instrument;

use crate::auth::TokenVerifier;
use crate::error::{ApiError, ErrorCode};
use crate::schema::{self, AccessSchema};
use crate::service::AccessService;

/// Largest request body accepted: a GraphQL document with variables is a few KiB.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest a GraphQL request may run before it is answered with TIMEOUT.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_ID: &str = "x-request-id";

#[derive(Clone)]
struct AppState {
    schema: AccessSchema,
    verifier: TokenVerifier,
    service: AccessService,
}

/// The whole HTTP surface of the server.
pub fn router(service: AccessService, verifier: TokenVerifier) -> Router {
    let schema = schema::build(Some(service.clone()));
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
            verifier,
            service,
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
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {MAX_BODY_BYTES} bytes"),
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    let limited = Body::new(http_body_util::Limited::new(body, MAX_BODY_BYTES));
    next.run(Request::from_parts(parts, limited)).await
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let caller = state.verifier.caller(authorization);
    let execution = state.schema.execute(request.into_inner().data(caller));
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, execution).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("GraphQL request stopped after {REQUEST_TIMEOUT:?}");
            async_graphql::Response::from_errors(vec![async_graphql::Error::from(
                ApiError::Timeout,
            )
            .into_server_error(Default::default())])
        }
    };
    // Parse, validation and limit errors come from async-graphql itself,
    // without a code; clients get one for every error all the same.
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", ErrorCode::InvalidQuery.as_str());
        }
    }
    response.into()
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
            GraphQLWebSocket::new(stream, state.schema.clone(), protocol)
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

/// Ready when the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.service.database().ping().await {
        Ok(()) => (StatusCode::OK, "ready".to_string()),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable".to_string(),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.service.metrics().render(),
    )
}
