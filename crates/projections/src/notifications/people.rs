//! The people directory: the name and email address the identity provider last gave for
//! each person. Events carry person ids only, so that the log holds no contact details;
//! the API records what each caller's token says, and the email sender reads the address
//! here when it sends. Rows can be deleted at will (erasure).

use access_domain::identifiers::PersonId;
use access_store::Database;
use chrono::Utc;

use crate::error::Error;
use crate::sql::{execute, params, Tx};

/// What [`People::erase`] found to erase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErasedContact {
    /// Whether the directory had a row for the person.
    pub directory_entry: bool,
    /// Emails to the person whose last delivery error was blanked.
    pub delivery_errors: usize,
}

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

    /// Erases the person's name and address: their directory row and the SMTP servers'
    /// replies kept with their undelivered emails (a refusal often quotes the address).
    /// Their notifications stay, as the events do: they name no one. The identity
    /// provider fills the row again if the person makes another change.
    pub async fn erase(&self, person: &PersonId) -> Result<ErasedContact, Error> {
        let mut tx = Tx::begin(&self.database).await?;
        let directory = tx
            .fetch(
                "DELETE FROM people WHERE person_id = $1 RETURNING person_id",
                params![person.as_str()],
                |_| Ok(()),
            )
            .await?;
        let delivery_errors = tx
            .fetch(
                "UPDATE notification_outbox SET last_error = $2 \
                  WHERE recipient_id = $1 AND last_error IS NOT NULL RETURNING position",
                params![person.as_str(), ERASED_ERROR],
                |_| Ok(()),
            )
            .await?;
        tx.commit().await?;
        Ok(ErasedContact {
            directory_entry: !directory.is_empty(),
            delivery_errors: delivery_errors.len(),
        })
    }
}

/// What an erased delivery error says instead, so support still sees that one was there.
const ERASED_ERROR: &str = "(erased with the recipient's contact details)";
