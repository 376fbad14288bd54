//! A load harness for the access-management server: it starts the real
//! server binary as a child process on a fresh database and generated
//! reference data, drives it over HTTP/GraphQL with closed-loop clients or at
//! a constant rate, and compares what it measures with baselines measured in
//! the same run (pgbench on the same PostgreSQL, a trivial axum handler).
//! See README.md.

pub mod client;
pub mod db;
pub mod drive;
pub mod harness;
pub mod history;
pub mod process;
pub mod reference;
pub mod stats;
pub mod trivial;
