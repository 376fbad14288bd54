//! The access-management domain: one event-sourced aggregate per organization.
//!
//! Pure: no IO. Reference-data lookups, ticket numbers and the clock reach the
//! aggregate through [`services::OrganizationServices`].

pub mod aggregate;
pub mod capabilities;
pub mod commands;
pub mod errors;
pub mod events;
pub mod identifiers;
pub mod proof;
pub mod roles;
pub mod services;

pub use aggregate::Organization;
pub use commands::OrganizationCommand;
pub use errors::AccessError;
pub use events::OrganizationEvent;
