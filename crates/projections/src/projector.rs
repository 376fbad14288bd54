//! The projector: one task per view that catches up from the view's checkpoint, then
//! tails the log, waking on commits; with PostgreSQL, only the holder of the view's lease
//! writes it.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use access_domain::identifiers::OrganizationId;
use access_store::{AppendQueue, Database, Pool};
use sqlx::postgres::{PgConnection, PgListener, PgPool};
use sqlx::Connection;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use crate::error::Error;
use crate::events::{read_batch, subject, Batch};
use crate::feed::RequestChange;
use crate::grouped::{AppendGroups, GroupCounts};
use crate::notifications::{EmailHandoff, OrganizationNames, People, Recording};
use crate::read::Views;
use crate::remembered::Remembered;
use crate::sql::Tx;
use crate::view::{
    apply_batch, ensure_checkpoint, lock_checkpoint, lowest_checkpoint, set_checkpoint, Target,
    View,
};

/// The first half of the views' advisory-lock keys: 'ACES', as for the event store's
/// append lock (which uses the second half 1; the views use 1001 and up).
const LEASE_CLASS: i32 = 1_094_927_699;

/// The channel the events trigger notifies, once per inserting statement, with the highest
/// position it inserted.
const CHANNEL: &str = "access_events";

/// Batches kept for the views and the feed to share: one each, and one to spare.
const RECENT_BATCHES: usize = View::ALL.len() + 2;

/// Request changes kept for subscribers slower than the log.
const REQUEST_FEED_CAPACITY: usize = 1024;
const APPENDED_FEED_CAPACITY: usize = 16_384;

/// An event committed to an organization's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub organization: OrganizationId,
    pub sequence: i64,
}

/// How often [`Projector::wait_for`] looks at the checkpoints when another process holds
/// the leases, so that it cannot be woken by this process's progress.
const RECHECK: Duration = Duration::from_millis(25);

#[derive(Clone, Debug)]
pub struct ProjectorOptions {
    /// Events applied per transaction during catch-up.
    pub batch_size: i64,
    /// The safety net when no wake-up came: commits by another process on SQLite, a
    /// notification lost while the listening connection was down.
    pub poll_interval: Duration,
    /// How often a process without a view's lease tries to take it over, and how long a
    /// failed view waits before trying again.
    pub retry_interval: Duration,
    /// Names organizations in notifications; without it they are named by type and
    /// masked key.
    pub organization_names: Option<Arc<dyn OrganizationNames>>,
    /// Hands the emails the notifications view queues to this process's sender, queued
    /// already claimed for it; without it they are queued for any sender to claim.
    pub email_handoff: Option<EmailHandoff>,
    #[cfg(feature = "fail-points")]
    pub fail_point: Option<FailPoint>,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        ProjectorOptions {
            batch_size: 500,
            poll_interval: Duration::from_secs(5),
            retry_interval: Duration::from_secs(1),
            organization_names: None,
            email_handoff: None,
            #[cfg(feature = "fail-points")]
            fail_point: None,
        }
    }
}

/// The views did not reach a position within the wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the views reached position {reached}, not {position}, within the wait")]
pub struct Lagging {
    pub position: i64,
    pub reached: i64,
}

/// Keeps every view up to date with the event log while it runs. Cheap to clone.
#[derive(Clone)]
pub struct Projector {
    shared: Arc<Shared>,
    /// Where this process's appends go to be written in groups.
    appends: AppendQueue,
    /// Where callers' rows of the people directory go to be written with those groups.
    contacts: UnboundedSender<Recording>,
}

pub(crate) struct Shared {
    pub(crate) database: Database,
    pub(crate) options: ProjectorOptions,
    /// Fired after each batch this process applies, for `wait_for`.
    pub(crate) progress: watch::Sender<()>,
    /// Fired on each PostgreSQL notification (other processes' commits).
    pub(crate) notified: watch::Sender<()>,
    /// The highest position a notification named: a view already past it has nothing
    /// to read when woken by one.
    pub(crate) notified_head: AtomicI64,
    /// Counts the times notifications were lost: a view that sees it change reads the
    /// log whatever the head says.
    pub(crate) notifications_lost: AtomicU64,
    /// The last position of the latest group this process appended with the views:
    /// their notifications wake no view, whose checkpoint moves with the commit.
    pub(crate) projecting_through: AtomicI64,
    pub(crate) stop: watch::Sender<bool>,
    /// Changes to role requests, for this process's subscribers.
    requests: broadcast::Sender<RequestChange>,
    /// Every organization event committed, by any process, as it is read.
    appended: broadcast::Sender<Appended>,
    pub(crate) leading: [AtomicBool; View::ALL.len()],
    /// Each view's checkpoint as this process's task for it last wrote or read it;
    /// meaningful while that task leads the view.
    reached: [AtomicI64; View::ALL.len()],
    /// The last batches read, by the position they follow: the views and the request
    /// feed usually stand at the same position, and one read serves them all.
    recent: tokio::sync::Mutex<Vec<(i64, Arc<Batch>)>>,
    /// Answers of the access view, kept while this process writes it.
    pub(crate) remembered: Arc<Remembered>,
    pub(crate) group_counts: GroupCounts,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Projector {
    /// Starts one task per view (and, on PostgreSQL, one listening for commits). Each
    /// catches up from its checkpoint, then follows the log until [`shutdown`](Self::shutdown).
    /// Call inside a Tokio runtime.
    pub fn start(database: Database, options: ProjectorOptions) -> Projector {
        let shared = Arc::new(Shared {
            database,
            options,
            progress: watch::channel(()).0,
            notified: watch::channel(()).0,
            notified_head: AtomicI64::new(0),
            notifications_lost: AtomicU64::new(0),
            projecting_through: AtomicI64::new(0),
            stop: watch::channel(false).0,
            requests: broadcast::channel(REQUEST_FEED_CAPACITY).0,
            appended: broadcast::channel(APPENDED_FEED_CAPACITY).0,
            leading: Default::default(),
            reached: Default::default(),
            recent: Default::default(),
            remembered: Arc::default(),
            group_counts: GroupCounts::default(),
            tasks: Mutex::new(Vec::new()),
        });
        let mut tasks = Vec::new();
        if let Pool::Postgres(pool) = shared.database.pool() {
            tasks.push(tokio::spawn(listen(shared.clone(), pool.clone())));
        }
        let (contacts, contacts_waiting) = unbounded_channel();
        let (appends, task) = crate::grouped::start(shared.clone(), contacts_waiting);
        tasks.push(task);
        for view in View::ALL {
            tasks.push(tokio::spawn(run(shared.clone(), view)));
        }
        tasks.push(tokio::spawn(feed_requests(shared.clone())));
        *shared
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = tasks;
        Projector {
            shared,
            appends,
            contacts,
        }
    }

    /// The people directory whose rows are written with the appends' groups: a caller's
    /// row handed to it before their command is committed with the command's events, or
    /// earlier (docs/notifications.md).
    pub fn people(&self) -> People {
        People::written_by(self.shared.database.clone(), self.contacts.clone())
    }

    /// The queue through which a store's appends are written in groups, with the views
    /// when this process writes them all (`AggregateStore::appending_through`,
    /// docs/adr/14-grouped-appends.md).
    pub fn append_queue(&self) -> AppendQueue {
        self.appends.clone()
    }

    /// Returns once every view has applied the log up to `position` (from any process),
    /// or fails after `timeout` saying how far they got.
    ///
    /// Read-your-writes: after a command, wait for its
    /// [`Committed::position`](access_store::Committed::position), then read.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> Result<(), Lagging> {
        let deadline = Instant::now() + timeout;
        let mut progress = self.shared.progress.subscribe();
        let mut reached = 0;
        loop {
            match self.shared.lowest_checkpoint().await {
                Ok(lowest) if lowest >= position => return Ok(()),
                Ok(lowest) => reached = lowest,
                Err(error) => tracing::debug!(%error, "reading the checkpoints failed"),
            }
            tokio::select! {
                _ = progress.changed() => {}
                _ = sleep(RECHECK) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Lagging { position, reached });
                }
            }
        }
    }

    /// Every change to a role request from now on, committed by any process. A
    /// subscriber that falls more than the feed's capacity behind is told it lagged.
    pub fn request_changes(&self) -> broadcast::Receiver<RequestChange> {
        self.shared.requests.subscribe()
    }

    /// Which organization each event committed from now on (by any process) belongs
    /// to, and its sequence number: how this process learns that another one changed
    /// an organization it holds in memory. A receiver that falls more than the feed's
    /// capacity behind is told it lagged and must assume anything changed.
    pub fn appended(&self) -> broadcast::Receiver<Appended> {
        self.shared.appended.subscribe()
    }

    /// Changes after each batch this process applies to any view: how a consumer of a
    /// view in this process (the email sender) learns of new rows without polling.
    pub fn applied(&self) -> watch::Receiver<()> {
        self.shared.progress.subscribe()
    }

    /// Reads over the views, remembering Manage Access pages and pending queues while
    /// this process writes the access view (docs/adr/12-remembered-answers.md).
    pub fn views(&self) -> Views {
        Views {
            remembered: self.shared.remembered.clone(),
            ..Views::new(self.shared.database.clone())
        }
    }

    /// How this process's appends were grouped, and how busy writing them kept its
    /// appends' task, since it started.
    pub fn append_groups(&self) -> AppendGroups {
        self.shared.group_counts.read()
    }

    /// Whether this process writes `view` now (always, on SQLite).
    pub fn is_leading(&self, view: View) -> bool {
        self.shared.leading[view.index()].load(Ordering::SeqCst)
    }

    /// Stops every task after the batch in hand and gives the leases up.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let tasks = std::mem::take(
            &mut *self
                .shared
                .tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Shared {
    /// How far every view has got. Known in memory while this process leads every
    /// view, so the many commands waiting for their own position after a batch do not
    /// each ask the database; read from the checkpoints otherwise.
    async fn lowest_checkpoint(&self) -> Result<i64, Error> {
        let leads_every_view = self
            .leading
            .iter()
            .all(|leading| leading.load(Ordering::SeqCst));
        if leads_every_view {
            let lowest = self
                .reached
                .iter()
                .map(|reached| reached.load(Ordering::SeqCst))
                .min();
            return Ok(lowest.unwrap_or_default());
        }
        lowest_checkpoint(&self.database).await
    }

    /// The events after `position`, read once for every task that asks for the same
    /// position: the lock makes the others wait for the first one's read. A batch read
    /// a moment ago is as good as a new one (positions are handed out in commit order,
    /// so nothing can appear later before its end); an empty one is never kept, so a
    /// task that found nothing new asks the database again next time.
    async fn batch_after(&self, position: i64) -> Result<Arc<Batch>, Error> {
        let mut recent = self.recent.lock().await;
        if let Some((_, batch)) = recent.iter().find(|(after, _)| *after == position) {
            return Ok(batch.clone());
        }
        let batch = Arc::new(read_batch(&self.database, position, self.options.batch_size).await?);
        if batch.through > position {
            keep(&mut recent, position, batch.clone());
        }
        Ok(batch)
    }

    /// The events a grouped append has just committed after `position`, all of them, kept
    /// as if read: the request feed, which follows the log right behind the groups, then
    /// takes them from here instead of reading back and decoding what was just written.
    /// Skipped while a read holds the batches: the group's commands would wait for it,
    /// and the feed reads the events itself.
    pub(crate) fn committed_batch(&self, position: i64, batch: Batch) {
        if let Ok(mut recent) = self.recent.try_lock() {
            keep(&mut recent, position, Arc::new(batch));
        }
    }

    /// The view's checkpoint moved to `position`, by its task or by a grouped append;
    /// never backwards, whichever of the two tells last.
    pub(crate) fn reached(&self, view: View, position: i64) {
        self.reached[view.index()].fetch_max(position, Ordering::SeqCst);
    }

    fn reached_of(&self, view: View) -> i64 {
        self.reached[view.index()].load(Ordering::SeqCst)
    }

    /// Sleeps for `duration`; false when the projector is stopping.
    async fn pause(&self, duration: Duration) -> bool {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => false,
            _ = sleep(duration) => true,
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Keeps `batch`, read after `position`, among the recent ones, forgetting the oldest.
fn keep(recent: &mut Vec<(i64, Arc<Batch>)>, position: i64, batch: Arc<Batch>) {
    if recent.len() == RECENT_BATCHES {
        recent.remove(0);
    }
    recent.push((position, batch));
}

/// One view's life: take the lease, project until stopped or failed, give the lease up;
/// after a failure, wait and start over from the checkpoint.
async fn run(shared: Arc<Shared>, view: View) {
    while let Some(mut lease) = Lease::take(&shared, view).await {
        shared.leading[view.index()].store(true, Ordering::SeqCst);
        if view == View::Access {
            shared.remembered.writing(true);
        }
        tracing::info!(view = view.name(), "projecting this view");
        let outcome = follow(&shared, view, &mut lease).await;
        if view == View::Access {
            shared.remembered.writing(false);
        }
        shared.leading[view.index()].store(false, Ordering::SeqCst);
        lease.give_up().await;
        match outcome {
            Ok(()) => return,
            #[cfg(feature = "fail-points")]
            Err(Error::FailPoint) => {
                tracing::warn!(view = view.name(), "stopped at the fail point");
                return;
            }
            Err(error) => {
                tracing::warn!(view = view.name(), %error, "projection failed; retrying");
                if !shared.pause(shared.options.retry_interval).await {
                    return;
                }
            }
        }
    }
}

/// Catches up, then waits for news and catches up again, until stopped.
async fn follow(shared: &Shared, view: View, lease: &mut Lease) -> Result<(), Error> {
    let mut commits = shared.database.commits();
    let mut notified = shared.notified.subscribe();
    let mut stop = shared.stop.subscribe();
    let mut position = ensure_checkpoint(&shared.database, view).await?;
    shared.reached[view.index()].store(position, Ordering::SeqCst);
    let started = Instant::now();
    let from = position;
    position = catch_up(shared, view, position).await?;
    tracing::info!(
        view = view.name(),
        from,
        to = position,
        seconds = started.elapsed().as_secs_f64(),
        "caught up"
    );
    let mut lost = shared.notifications_lost.load(Ordering::SeqCst);
    loop {
        let only_notified = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return Ok(()),
            _ = commits.changed() => false,
            _ = notified.changed() => true,
            _ = sleep(shared.options.poll_interval) => false,
        };
        // Grouped appends move the checkpoint of every view together with the events.
        position = position.max(shared.reached_of(view));
        let lost_since = shared.notifications_lost.load(Ordering::SeqCst);
        let notified_head = shared.notified_head.load(Ordering::SeqCst);
        let applied_or_applying =
            position.max(shared.projecting_through.load(Ordering::SeqCst)) >= notified_head;
        if only_notified && lost_since == lost && applied_or_applying {
            continue;
        }
        lost = lost_since;
        lease.check().await?;
        position = catch_up(shared, view, position).await?;
    }
}

/// Applies every event after `position`, batch by batch; returns the new position.
async fn catch_up(shared: &Shared, view: View, mut position: i64) -> Result<i64, Error> {
    loop {
        let batch = shared.batch_after(position).await?;
        if batch.through == position || shared.stopping() {
            return Ok(position);
        }
        position = commit_batch(shared, view, position, &batch).await?;
        shared.reached(view, position);
        shared.progress.send_replace(());
    }
}

/// Applies a batch and moves the checkpoint in one transaction, provided the checkpoint
/// is still where this task left it; otherwise (a rebuild swapped its tables in, or
/// another process wrote the view meanwhile) applies nothing and resumes from where the
/// checkpoint is. The lease makes that rare; this makes it harmless.
async fn commit_batch(
    shared: &Shared,
    view: View,
    expected: i64,
    batch: &Batch,
) -> Result<i64, Error> {
    let mut tx = Tx::begin(&shared.database).await?;
    let checkpoint = lock_checkpoint(&mut tx, view).await?;
    if checkpoint != expected {
        tracing::debug!(
            view = view.name(),
            expected,
            checkpoint,
            "the checkpoint moved under this projector; resuming from it"
        );
        // A grouped append of this process forgot what its events changed; any other
        // writer did not tell.
        if view == View::Access && checkpoint != shared.reached_of(view) {
            shared.remembered.forget_everything();
        }
        return Ok(checkpoint);
    }
    apply_batch(view, Target::Live, &mut tx, batch, Some(&shared.options)).await?;
    #[cfg(feature = "fail-points")]
    if shared
        .options
        .fail_point
        .as_ref()
        .is_some_and(FailPoint::trip)
    {
        // Dropping the transaction rolls it back, as the process's death would.
        return Err(Error::FailPoint);
    }
    set_checkpoint(&mut tx, view, batch.through).await?;
    if view != View::Access {
        tx.commit().await?;
        return Ok(batch.through);
    }
    // The answers the batch changes are forgotten before the commit, and none is kept
    // until it is done: a caller that sees the new checkpoint, in the database or in
    // `reached`, never finds one of them remembered from before.
    shared.remembered.changing(
        batch
            .events
            .iter()
            .map(|envelope| (&envelope.organization, subject(&envelope.event))),
    );
    let committed = tx.commit().await;
    shared.remembered.settled();
    committed?;
    Ok(batch.through)
}

/// The right to write a view. On PostgreSQL a session advisory lock held on a connection
/// of its own: PostgreSQL releases it the moment that connection or its process dies, so
/// another process takes over at its next attempt. SQLite serves one machine, and the
/// checkpoint check keeps two writers exact anyway.
enum Lease {
    Unshared,
    Postgres(PgConnection),
}

impl Lease {
    /// Waits until this process holds the view's lease; `None` when stopping first.
    async fn take(shared: &Shared, view: View) -> Option<Lease> {
        let pool = match shared.database.pool() {
            Pool::Sqlite(_) if shared.stopping() => return None,
            Pool::Sqlite(_) => return Some(Lease::Unshared),
            Pool::Postgres(pool) => pool,
        };
        let mut connection: Option<PgConnection> = None;
        let mut waiting_logged = false;
        while !shared.stopping() {
            match try_lock(pool, &mut connection, view).await {
                Ok(true) => return connection.map(Lease::Postgres),
                Ok(false) if !waiting_logged => {
                    tracing::info!(
                        view = view.name(),
                        "another process is projecting this view; standing by"
                    );
                    waiting_logged = true;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(view = view.name(), %error, "cannot try the view's lease");
                    connection = None;
                }
            }
            if !shared.pause(shared.options.retry_interval).await {
                break;
            }
        }
        if let Some(connection) = connection {
            let _ = connection.close().await;
        }
        None
    }

    /// Fails when the lease's connection is gone, and with it the lock.
    async fn check(&mut self) -> Result<(), Error> {
        match self {
            Lease::Unshared => Ok(()),
            Lease::Postgres(connection) => Ok(connection.ping().await?),
        }
    }

    /// Closing the session releases its advisory lock.
    async fn give_up(self) {
        if let Lease::Postgres(connection) = self {
            let _ = connection.close().await;
        }
    }
}

async fn try_lock(
    pool: &PgPool,
    connection: &mut Option<PgConnection>,
    view: View,
) -> Result<bool, sqlx::Error> {
    if connection.is_none() {
        *connection = Some(PgConnection::connect_with(&pool.connect_options()).await?);
    }
    let Some(connection) = connection.as_mut() else {
        unreachable!("connected just above");
    };
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(LEASE_CLASS)
        .bind(view.lease_key())
        .fetch_one(connection)
        .await
}

/// Follows the log from its head for [`Projector::request_changes`], waking like the
/// views do; it writes nothing, so every process runs it, leader or not.
async fn feed_requests(shared: Arc<Shared>) {
    let mut commits = shared.database.commits();
    let mut notified = shared.notified.subscribe();
    let mut stop = shared.stop.subscribe();
    let mut position = loop {
        match shared.database.head_position().await {
            Ok(head) => break head,
            Err(error) => {
                tracing::warn!(%error, "the request feed cannot read the log's head; retrying");
                if !shared.pause(shared.options.retry_interval).await {
                    return;
                }
            }
        }
    };
    loop {
        match shared.batch_after(position).await {
            Ok(batch) if batch.through > position => {
                // No subscriber is not an error: the news is simply not wanted.
                for event in &batch.events {
                    let _ = shared.appended.send(Appended {
                        organization: event.organization.clone(),
                        sequence: event.sequence,
                    });
                }
                for change in batch.events.iter().filter_map(RequestChange::of) {
                    let _ = shared.requests.send(change);
                }
                position = batch.through;
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "the request feed cannot read the log; retrying"),
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            _ = commits.changed() => {}
            _ = notified.changed() => {}
            _ = sleep(shared.options.poll_interval) => {}
        }
    }
}

/// Turns PostgreSQL's notifications of commits (by any process) into wake-ups.
async fn listen(shared: Arc<Shared>, pool: PgPool) {
    let mut stop = shared.stop.subscribe();
    let mut listener: Option<PgListener> = None;
    while !shared.stopping() {
        let listening = match listener.as_mut() {
            Some(listener) => listener,
            None => match subscribe(&pool).await {
                Ok(subscribed) => listener.insert(subscribed),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for commits; polling meanwhile");
                    if !shared.pause(shared.options.retry_interval).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let received = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            received = listening.recv() => received,
        };
        match received {
            Ok(notification) => {
                // The trigger's payload is the statement's highest position.
                let position = notification.payload().parse().unwrap_or(i64::MAX);
                shared.notified_head.fetch_max(position, Ordering::SeqCst);
            }
            Err(error) => {
                // What was notified while the connection was down is lost: the wake-up
                // below makes the views look for themselves.
                tracing::warn!(%error, "lost the commit notifications; listening again");
                shared.notifications_lost.fetch_add(1, Ordering::SeqCst);
                listener = None;
            }
        }
        shared.notified.send_replace(());
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// A test hook standing for the process dying between an event's commit and its view
/// update: once armed, each view's next batch is applied and then abandoned uncommitted,
/// and the view's task stops.
#[cfg(feature = "fail-points")]
#[derive(Clone, Debug)]
pub struct FailPoint {
    armed: Arc<AtomicBool>,
    trips: Arc<watch::Sender<usize>>,
}

#[cfg(feature = "fail-points")]
impl Default for FailPoint {
    fn default() -> Self {
        FailPoint {
            armed: Arc::default(),
            trips: Arc::new(watch::channel(0).0),
        }
    }
}

#[cfg(feature = "fail-points")]
impl FailPoint {
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Waits until `count` view tasks have stopped here; false after `timeout`.
    pub async fn stopped(&self, count: usize, timeout: Duration) -> bool {
        let mut trips = self.trips.subscribe();
        tokio::time::timeout(timeout, trips.wait_for(|trips| *trips >= count))
            .await
            .is_ok_and(|reached| reached.is_ok())
    }

    /// Whether the armed fail point stops its caller here: also for the fail points of
    /// other crates that consume the views (the email sender).
    pub fn trip(&self) -> bool {
        let armed = self.armed.load(Ordering::SeqCst);
        if armed {
            self.trips.send_modify(|trips| *trips += 1);
        }
        armed
    }
}
