//! Remembered answers to requests sent with an `Idempotency-Key`, so that a
//! client retrying after a lost response gets the first answer and the command
//! does not run twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::database::{Database, Pool};
use crate::error::StoreError;

/// How long an answer is kept for retries.
pub const KEEP_ANSWERS_FOR: Duration = Duration::from_secs(24 * 60 * 60);
/// A first request still unanswered after this long is taken to have died
/// with its server, and a retry may take its key over. Longer than any request may
/// run (the API stops one after 15 s), so the first is never still running.
const ABANDONED_AFTER: Duration = Duration::from_secs(20);

/// The metadata entry that ties an event to the request that appended it: a hash of
/// the person and the request's `Idempotency-Key`, never the key itself.
pub const REQUEST_METADATA: &str = "request";

/// What a request with an idempotency key finds.
#[derive(Debug, PartialEq, Eq)]
pub enum IdempotentStart {
    /// First time: run it, then [`Database::finish_idempotent`].
    Fresh,
    /// Taken over from a first request that never kept an answer: its server died,
    /// or it was given up ([`Database::give_up_idempotent`]). It may have committed:
    /// ask [`Database::request_committed`] before running it again.
    TakenOver,
    /// Answered before: this was the answer.
    Replay(String),
    /// The first request with this key is still running.
    InProgress,
    /// The key was used for a different request.
    DifferentRequest,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

impl Database {
    /// Holds `key` for `person`'s `request` (the bytes that identify the request: its
    /// query, variables, operation), or says what holds it already. Only a keyed
    /// fingerprint of the request is stored (see [`Database::fingerprint`]).
    pub async fn begin_idempotent(
        &self,
        person: &str,
        key: &str,
        request: &[u8],
    ) -> Result<IdempotentStart, StoreError> {
        let fingerprint = self.fingerprint(request);
        let fingerprint = fingerprint.as_str();
        let now = now_ms();
        let doing = "remembering an idempotency key";
        let expired = now - KEEP_ANSWERS_FOR.as_millis() as i64;
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at_ms < $1"
        )
        .bind(expired)
        .execute(pool)
        .await
        .map(drop))
        .map_err(|error| self.error(doing, error))?;
        let inserted = on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO idempotency_keys (person_id, idempotency_key, fingerprint, created_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        )
        .bind(person)
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        })
        .map_err(|error| self.error(doing, error))?;
        if inserted == 1 {
            return Ok(IdempotentStart::Fresh);
        }
        let (stored_fingerprint, response, created_at): (String, Option<String>, i64) =
            on_pool!(self, |pool| sqlx::query_as(
                "SELECT fingerprint, response, created_at_ms FROM idempotency_keys \
                 WHERE person_id = $1 AND idempotency_key = $2"
            )
            .bind(person)
            .bind(key)
            .fetch_one(pool)
            .await)
            .map_err(|error| self.error(doing, error))?;
        if stored_fingerprint != fingerprint {
            return Ok(IdempotentStart::DifferentRequest);
        }
        if let Some(response) = response {
            return Ok(IdempotentStart::Replay(response));
        }
        if now - created_at < ABANDONED_AFTER.as_millis() as i64 {
            return Ok(IdempotentStart::InProgress);
        }
        // Take the abandoned key over, unless another retry just did.
        let taken = on_pool!(self, |pool| sqlx::query(
            "UPDATE idempotency_keys SET created_at_ms = $3 \
             WHERE person_id = $1 AND idempotency_key = $2 AND response IS NULL AND created_at_ms = $4"
        )
        .bind(person)
        .bind(key)
        .bind(now)
        .bind(created_at)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map_err(|error| self.error(doing, error))?;
        Ok(if taken == 1 {
            IdempotentStart::TakenOver
        } else {
            IdempotentStart::InProgress
        })
    }

    /// HMAC-SHA-256 of the request under the servers' shared key, in hex: the same on
    /// every server of this database, and useless to anyone holding the table without
    /// the key (an unkeyed hash of a request holding an SSN gives the SSN away to
    /// whoever tries all 10⁹ of them).
    pub fn fingerprint(&self, request: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.fingerprint_key())
            .expect("HMAC takes keys of any length");
        mac.update(request);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Keeps the answer for retries.
    pub async fn finish_idempotent(
        &self,
        person: &str,
        key: &str,
        response: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE idempotency_keys SET response = $3 WHERE person_id = $1 AND idempotency_key = $2"
        )
        .bind(person)
        .bind(key)
        .bind(response)
        .execute(pool)
        .await
        .map(drop))
        .map_err(|error| self.error("keeping an idempotent answer", error))
    }

    /// Keeps no answer, so that a retry takes the key over at once: for answers a
    /// retry should not repeat (a conflict, a timeout, an internal error). Some of
    /// those come after the command committed, so the retry goes through
    /// [`IdempotentStart::TakenOver`] like one after a crash.
    pub async fn give_up_idempotent(&self, person: &str, key: &str) -> Result<(), StoreError> {
        let abandoned = now_ms() - ABANDONED_AFTER.as_millis() as i64;
        on_pool!(self, |pool| sqlx::query(
            "UPDATE idempotency_keys SET created_at_ms = $3 \
             WHERE person_id = $1 AND idempotency_key = $2 AND response IS NULL"
        )
        .bind(person)
        .bind(key)
        .bind(abandoned)
        .execute(pool)
        .await
        .map(drop))
        .map_err(|error| self.error("giving up an idempotency key", error))
    }

    /// Whether any event carries `request` in its [`REQUEST_METADATA`]: the request
    /// that appended it committed.
    pub async fn request_committed(&self, request: &str) -> Result<bool, StoreError> {
        // Each written as its index is (event-store/<db>/0003_events_by_request.sql).
        let sql = match self.pool() {
            Pool::Postgres(_) => {
                "SELECT EXISTS (SELECT 1 FROM events WHERE metadata ->> 'request' = $1)"
            }
            Pool::Sqlite(_) => {
                "SELECT EXISTS (SELECT 1 FROM events WHERE json_extract(metadata, '$.request') = $1)"
            }
        };
        on_pool!(self, |pool| sqlx::query_scalar::<_, bool>(sql)
            .bind(request)
            .fetch_one(pool)
            .await)
        .map_err(|error| self.error("looking for a request's events", error))
    }

    /// Forgets every answer kept for the person's retries: an answer repeats whatever
    /// the client asked to see, and its fingerprint is a hash of what they sent. For
    /// erasure; a retry after it runs the request again, under the domain's rules.
    pub async fn forget_answers_of(&self, person: &str) -> Result<u64, StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM idempotency_keys WHERE person_id = $1"
        )
        .bind(person)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map_err(|error| self.error("forgetting a person's idempotent answers", error))
    }
}
