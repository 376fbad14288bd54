//! End-to-end tests: the real server on port 0, over HTTP, against a fresh
//! SQLite database and, with TEST_DATABASE_URL, a fresh PostgreSQL one.

mod helpers;

mod access_control;
mod authentication;
mod authorization;
mod clinicians;
mod durability;
mod first_security_officials;
mod hostile_input;
mod idempotency;
mod journeys;
mod load;
mod notifications;
mod outage;
mod personal_data;
mod protection;
mod races;
mod start_up;
mod subscriptions;
mod views;
