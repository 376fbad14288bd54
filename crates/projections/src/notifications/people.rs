//! The people directory: the name and email address the identity provider last gave for
//! each person. Events carry person ids only, so that the log holds no contact details;
//! the API records what each caller's token says, and the email sender reads the address
//! here when it sends. Rows can be deleted at will (erasure).

use access_domain::identifiers::PersonId;
use access_store::Database;
use chrono::Utc;

use crate::error::Error;
use crate::sql::{execute, params};

/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct People {
    database: Database,
}

impl People {
    pub fn new(database: Database) -> Self {
        People { database }
    }

    /// Records the person's name and address as a token states them now (absent claims
    /// clear the old values: the identity provider is the authority). A row that already
    /// says the same is left alone.
    pub async fn remember(
        &self,
        person: &PersonId,
        display_name: Option<&str>,
        email: Option<&str>,
    ) -> Result<(), Error> {
        execute(
            &self.database,
            "INSERT INTO people (person_id, display_name, email, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (person_id) DO UPDATE \
                SET display_name = excluded.display_name, email = excluded.email, \
                    updated_at = excluded.updated_at \
              WHERE people.display_name IS DISTINCT FROM excluded.display_name \
                 OR people.email IS DISTINCT FROM excluded.email",
            params![person.as_str(), display_name, email, Utc::now()],
        )
        .await
    }
}
