//! HTTP endpoints: GraphQL (POST, GraphiQL on GET, subscriptions over
//! WebSocket) and the operational probes.

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse, GraphQLSubscription};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use crate::auth::TokenVerifier;
use crate::schema::{self, AccessSchema};
use crate::service::AccessService;

#[derive(Clone)]
struct AppState {
    schema: AccessSchema,
    verifier: TokenVerifier,
    service: AccessService,
}

/// The whole HTTP surface of the server.
pub fn router(service: AccessService, verifier: TokenVerifier) -> Router {
    let schema = schema::build(Some(service.clone()));
    let subscriptions = GraphQLSubscription::new(schema.clone());
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route_service("/graphql/ws", subscriptions)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            schema,
            verifier,
            service,
        })
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
    state
        .schema
        .execute(request.into_inner().data(caller))
        .await
        .into()
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
