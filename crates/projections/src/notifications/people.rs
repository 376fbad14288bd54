//! The people directory: the name and email address the identity provider last gave for
//! each person. Events carry person ids only, so that the log holds no contact details;
//! the API records what each caller's token says, and the email sender reads the address
//! here when it sends. Rows can be deleted at will (erasure).

use std::collections::HashMap;

use access_domain::identifiers::PersonId;
use access_store::Database;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::sql::{params, Acknowledged, LoneWrites, Param, Tx};

/// Rows written in one statement at most; the callers left over wait for the next one.
const BATCH_ROWS: usize = 500;

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
    /// Where [`People::record`]'s rows wait for the next batch: of this directory's own
    /// writer, or of the appends' groups ([`Projector::people`](crate::Projector::people)).
    waiting: mpsc::UnboundedSender<Recording>,
}

/// One caller's name and address as given, and where to say they are committed.
pub(crate) struct Recording {
    person: String,
    display_name: Option<String>,
    email: Option<String>,
    at: DateTime<Utc>,
    committed: oneshot::Sender<Result<(), Error>>,
}

/// A row [`People::record`] handed over, until it is committed.
#[derive(Debug)]
pub struct Recorded(oneshot::Receiver<Result<(), Error>>);

impl Recorded {
    /// Returns once the row is committed.
    pub async fn committed(self) -> Result<(), Error> {
        self.0.await.unwrap_or(Err(Error::DirectoryStopped))
    }
}

impl People {
    /// Call inside a Tokio runtime: a task writes what [`record`](Self::record) is
    /// given, until the last clone is dropped.
    pub fn new(database: Database) -> Self {
        let (waiting, batches) = mpsc::unbounded_channel();
        tokio::spawn(record_in_batches(
            LoneWrites::new(database.clone(), Acknowledged::Flushed),
            batches,
        ));
        People { database, waiting }
    }

    /// A directory whose rows are written by whoever takes them from `waiting`.
    pub(crate) fn written_by(
        database: Database,
        waiting: mpsc::UnboundedSender<Recording>,
    ) -> Self {
        People { database, waiting }
    }

    /// Hands over the person's name and address as a token states them now (absent
    /// claims clear the old values: the identity provider is the authority), to be
    /// committed with the next batch. A row that already says the same is left alone.
    ///
    /// The rows given while a batch is being written go together in the next one: under
    /// load a mutation by someone new wrote a transaction of its own here, one flush for
    /// about every second command (docs/performance.md, "The people directory").
    pub fn record(
        &self,
        person: &PersonId,
        display_name: Option<&str>,
        email: Option<&str>,
    ) -> Result<Recorded, Error> {
        let (committed, answer) = oneshot::channel();
        let recording = Recording {
            person: person.as_str().to_owned(),
            display_name: display_name.map(str::to_owned),
            email: email.map(str::to_owned),
            at: Utc::now(),
            committed,
        };
        self.waiting
            .send(recording)
            .map_err(|_| Error::DirectoryStopped)?;
        Ok(Recorded(answer))
    }

    /// [`People::record`], returning once the row is committed.
    pub async fn remember(
        &self,
        person: &PersonId,
        display_name: Option<&str>,
        email: Option<&str>,
    ) -> Result<(), Error> {
        self.record(person, display_name, email)?.committed().await
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

/// Writes the rows waiting, a batch per statement, and answers their callers; until
/// every [`People`] is dropped.
async fn record_in_batches(writes: LoneWrites, mut batches: mpsc::UnboundedReceiver<Recording>) {
    let mut batch = Vec::new();
    while batches.recv_many(&mut batch, BATCH_ROWS).await > 0 {
        let recorded = writes.execute_rows(latest_rows(&batch), upsert).await;
        answer(std::mem::take(&mut batch), recorded.as_ref().map(drop));
    }
}

/// Writes `batch` in `tx`: the appends' groups commit their callers' rows with their
/// events.
pub(crate) async fn write_in(tx: &mut Tx<'_>, batch: &[Recording]) -> Result<(), Error> {
    tx.execute_rows(latest_rows(batch), upsert).await
}

/// Tells each caller of `batch` whether their row is committed.
pub(crate) fn answer(batch: Vec<Recording>, outcome: Result<(), &Error>) {
    if let Err(error) = outcome {
        tracing::warn!(%error, people = batch.len(), "recording callers' names and emails failed");
    }
    for recording in batch {
        let answer = outcome.map_err(|_| Error::DirectoryBatchFailed);
        let _ = recording.committed.send(answer);
    }
}

/// One row per person, the latest: a statement may change a row once only.
fn latest_rows(batch: &[Recording]) -> Vec<Vec<Param>> {
    let mut latest = HashMap::with_capacity(batch.len());
    for recording in batch {
        latest.insert(recording.person.as_str(), recording);
    }
    latest
        .into_values()
        .map(|recording| {
            vec![
                recording.person.as_str().into(),
                recording.display_name.as_deref().into(),
                recording.email.as_deref().into(),
                recording.at.into(),
            ]
        })
        .collect()
}

fn upsert(rows: &str) -> String {
    format!(
        "INSERT INTO people (person_id, display_name, email, updated_at) {rows} \
         ON CONFLICT (person_id) DO UPDATE \
            SET display_name = excluded.display_name, email = excluded.email, \
                updated_at = excluded.updated_at \
          WHERE people.display_name IS DISTINCT FROM excluded.display_name \
             OR people.email IS DISTINCT FROM excluded.email"
    )
}
