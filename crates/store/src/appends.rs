//! Appends handed to another part of the process, which may write several commands'
//! events in one transaction, and the views with them (`access-projections`' grouped
//! appender; docs/adr/14-grouped-appends.md).
//!
//! Commands on one aggregate are pipelined through the queue (docs/adr/05-aggregate-cache.md):
//! the next command is handled on the state a queued append leaves before that append is
//! committed, so each append names the one it follows, and is stored only after it.

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use tokio::sync::{mpsc, oneshot, watch};

/// Where a command's events were appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendedAt {
    /// The global position of the command's last event.
    pub position: i64,
    /// Whether every view already includes the events: they were written in the
    /// transaction that appended them, so no view needs waking for them.
    pub projected: bool,
}

/// Whether a queued append was stored, for the commands decided on the state it leaves:
/// `None` while it waits, `Some(true)` once committed, `Some(false)` when nothing of it
/// ever will be. A closed channel still at `None` means the appender dropped it unwritten.
pub(crate) type Settled = watch::Receiver<Option<bool>>;

/// Whether the append will never be stored.
pub(crate) fn failed(settled: &Settled) -> bool {
    let outcome = *settled.borrow();
    match outcome {
        Some(stored) => !stored,
        None => settled.has_changed().is_err(),
    }
}

/// Waits until the append is settled and says whether it was stored.
pub(crate) async fn stored(settled: &Settled) -> bool {
    let mut settled = settled.clone();
    let outcome = settled
        .wait_for(Option::is_some)
        .await
        .map(|outcome| *outcome);
    matches!(outcome, Ok(Some(true)))
}

/// One command's events, waiting for the appender.
pub struct PendingAppend {
    /// Consecutive events of one aggregate, in sequence order.
    pub events: Vec<SerializedEvent>,
    /// The aggregate's append before this one, when it was still waiting at the time:
    /// this one's sequence numbers follow its events, so this one may be stored only
    /// if that one is.
    after: Option<Settled>,
    settled: watch::Sender<Option<bool>>,
    reply: oneshot::Sender<Result<AppendedAt, PersistenceError>>,
}

impl PendingAppend {
    /// Whether the append this one follows will never be stored: then neither may this
    /// one, whatever its own rows did.
    pub fn follows_a_failed_append(&self) -> bool {
        self.after.as_ref().is_some_and(failed)
    }

    /// Marks the append as one that will not be stored, before its group has ended, so
    /// that the appends following it in the same group are refused with it.
    pub fn refuse(&self) {
        self.settled.send_replace(Some(false));
    }

    /// Tells the waiting command what became of its events: durable (committed) when
    /// `Ok`; [`PersistenceError::OptimisticLockError`] when another process took one of
    /// its sequence numbers first, or the append it follows was not stored, with nothing
    /// of it stored.
    pub fn answer(self, outcome: Result<AppendedAt, PersistenceError>) {
        // Settled first: the commands queued behind this one learn of it even when its
        // own command stopped waiting (its request was dropped), whose events are stored
        // or not exactly as if it had waited.
        self.settled.send_replace(Some(outcome.is_ok()));
        let _ = self.reply.send(outcome);
    }
}

/// The sending end, given to an [`AggregateStore`](crate::AggregateStore) with
/// [`appending_through`](crate::AggregateStore::appending_through). Cheap to clone.
#[derive(Clone)]
pub struct AppendQueue {
    sender: mpsc::UnboundedSender<PendingAppend>,
}

/// An append in the queue.
pub(crate) struct Queued {
    pub(crate) settled: Settled,
    answer: oneshot::Receiver<Result<AppendedAt, PersistenceError>>,
}

impl Queued {
    /// Waits for the append's group; `Ok` when its events are durable.
    pub(crate) async fn answer(self) -> Result<AppendedAt, PersistenceError> {
        // The task answers every append it takes, after its transaction ended; one
        // that stopped without answering rolled back with it.
        self.answer.await.unwrap_or_else(|_| {
            Err(PersistenceError::UnknownError(
                "the appender stopped before the commit".into(),
            ))
        })
    }
}

impl AppendQueue {
    /// The queue and the receiving end, for the task that appends.
    pub fn new() -> (AppendQueue, mpsc::UnboundedReceiver<PendingAppend>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (AppendQueue { sender }, receiver)
    }

    /// Queues `events`, to be stored only if `after` (the aggregate's previous append,
    /// if it may still be waiting) is. When the queue's task is gone (the process is
    /// stopping) the events come back untouched, for the caller to append itself.
    pub(crate) fn send(
        &self,
        events: Vec<SerializedEvent>,
        after: Option<Settled>,
    ) -> Result<Queued, Vec<SerializedEvent>> {
        let (reply, answer) = oneshot::channel();
        let (settled_sender, settled) = watch::channel(None);
        self.sender
            .send(PendingAppend {
                events,
                after,
                settled: settled_sender,
                reply,
            })
            .map_err(|unsent| unsent.0.events)?;
        Ok(Queued { settled, answer })
    }
}
