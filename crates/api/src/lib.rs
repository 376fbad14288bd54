//! The GraphQL API of the access-management backend: bearer-token
//! authentication, capabilities, the schema of `schema.graphql`, and the HTTP
//! router that serves it.

pub mod auth;
mod clinician;
mod documents;
pub mod error;
mod http;
mod notifications;
mod observe;
mod per_person;
mod read_models;
mod remembered_reads;
pub mod schema;
mod service;
mod subscriptions;
mod types;
mod value_free;

pub use http::{router, MAX_REQUESTS};
pub use service::AccessService;
