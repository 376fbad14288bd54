//! The HTTP ceiling: a trivial axum handler answering `POST /graphql` with a
//! small constant JSON body, run as a child process like the real server and
//! driven by the same client code.

use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::Router;

pub const BODY: &str = r#"{"data":{"__typename":"Query"}}"#;

pub fn router() -> Router {
    Router::new().route(
        "/graphql",
        post(|_body: Bytes| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
    )
}

/// Serves on `listen` (port 0 for any), announcing the address on standard
/// error the way the real server does.
pub async fn serve(listen: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!(
        "trivial server: serving GraphQL on http://{}/graphql",
        listener.local_addr()?
    );
    axum::serve(listener, router()).await
}
