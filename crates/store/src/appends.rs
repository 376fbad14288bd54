//! Appends handed to another part of the process, which may write several commands'
//! events in one transaction, and the views with them (`access-projections`' grouped
//! appender; docs/adr/14-grouped-appends.md).

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use tokio::sync::{mpsc, oneshot};

/// Where a command's events were appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendedAt {
    /// The global position of the command's last event.
    pub position: i64,
    /// Whether every view already includes the events: they were written in the
    /// transaction that appended them, so no view needs waking for them.
    pub projected: bool,
}

/// One command's events, waiting for the appender.
pub struct PendingAppend {
    /// Consecutive events of one aggregate, in sequence order.
    pub events: Vec<SerializedEvent>,
    reply: oneshot::Sender<Result<AppendedAt, PersistenceError>>,
}

impl PendingAppend {
    /// Tells the waiting command what became of its events: durable (committed) when
    /// `Ok`; [`PersistenceError::OptimisticLockError`] when another process took one of
    /// its sequence numbers first, with nothing of it stored.
    pub fn answer(self, outcome: Result<AppendedAt, PersistenceError>) {
        // A command that stopped waiting (its request was dropped) needs no answer; its
        // events are stored or not exactly as if it had waited.
        let _ = self.reply.send(outcome);
    }
}

/// The sending end, given to an [`AggregateStore`](crate::AggregateStore) with
/// [`appending_through`](crate::AggregateStore::appending_through). Cheap to clone.
#[derive(Clone)]
pub struct AppendQueue {
    sender: mpsc::UnboundedSender<PendingAppend>,
}

impl AppendQueue {
    /// The queue and the receiving end, for the task that appends.
    pub fn new() -> (AppendQueue, mpsc::UnboundedReceiver<PendingAppend>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (AppendQueue { sender }, receiver)
    }

    /// Appends `events` through the queue's task. When that task is gone (the process
    /// is stopping) the events come back untouched, for the caller to append itself.
    pub(crate) async fn append(
        &self,
        events: Vec<SerializedEvent>,
    ) -> Result<Result<AppendedAt, PersistenceError>, Vec<SerializedEvent>> {
        let (reply, answer) = oneshot::channel();
        if let Err(unsent) = self.sender.send(PendingAppend { events, reply }) {
            return Err(unsent.0.events);
        }
        // The task answers every append it takes, after its transaction ended; one
        // that stopped without answering rolled back with it.
        Ok(answer.await.unwrap_or_else(|_| {
            Err(PersistenceError::UnknownError(
                "the appender stopped before the commit".into(),
            ))
        }))
    }
}
