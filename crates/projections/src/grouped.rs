//! Grouped appends: the commands waiting to append are written together,
//! events and views in one transaction, while this process writes every view
//! (docs/adr/14-grouped-appends.md).
//!
//! One append at a time holds the log's lock from its first row to its commit
//! (docs/adr/02-global-position.md), and each view then spent a transaction of its own on
//! the new events while the command waited for them (read-your-writes). Here the commands
//! that queued while the previous group was being written share one lock, one flush and
//! one update of each view, and are answered with every view already showing them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use access_store::{AppendQueue, AppendedAt, PendingAppend, Pool, StoredEvent};
use cqrs_es::persist::PersistenceError;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;
use sqlx::Row;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::Error;
use crate::events::{subject, Batch, Envelope};
use crate::notifications::{people, Recording};
use crate::projector::Shared;
use crate::sql::Tx;
use crate::view::{apply_batch, Target, View};

/// Events written in one group at most; the commands left over wait for the next one.
const GROUP_EVENTS: usize = 1_000;

/// The event store's append lock (docs/adr/02-global-position.md, the key its trigger
/// takes), taken in the round trip of the group's `BEGIN`.
const TAKE_APPEND_LOCK: &str = "SELECT pg_advisory_xact_lock(1094927699, 1);";

/// How full the appends' task keeps its groups, and how much of its time it spends
/// writing them, since the process started: a task writing nearly all the time is what
/// bounds the commands' rate, and the commands a group then say what each chain serves
/// (docs/performance.md, "(a) on PostgreSQL: where a group's chain goes").
#[derive(Default)]
pub(crate) struct GroupCounts {
    groups: AtomicU64,
    commands: AtomicU64,
    busy_nanos: AtomicU64,
}

impl GroupCounts {
    pub(crate) fn read(&self) -> AppendGroups {
        AppendGroups {
            groups: self.groups.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
        }
    }

    /// A transaction written from `started` until now: a group of `commands`, or the
    /// people directory's rows alone (`commands` 0), which take the task's time too.
    fn wrote(&self, commands: usize, started: Instant) {
        if commands > 0 {
            self.groups.fetch_add(1, Ordering::Relaxed);
            self.commands.fetch_add(commands as u64, Ordering::Relaxed);
        }
        let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(busy, Ordering::Relaxed);
    }
}

/// [`GroupCounts`] as read at one moment; counters, so two readings a while apart give
/// the rates over that while.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendGroups {
    /// Groups of commands appended, each in one transaction.
    pub groups: u64,
    /// The commands in them.
    pub commands: u64,
    /// Time spent writing groups and answering their commands, and writing the people
    /// directory's rows that came alone.
    pub busy: Duration,
}

/// The queue a store appends through, and the task that empties it.
///
/// The task runs on a thread and a runtime of its own: every command waits for the
/// group's chain of round trips, and on the server's runtime each wake-up of that chain
/// queued behind the HTTP requests' tasks (commands/s rose by 29 % under load once it had
/// a thread of its own, docs/performance.md). On PostgreSQL it has a connection of its
/// own; on SQLite it writes through the one writing connection (ADR 09), which it holds
/// for a group's transaction only. Should the runtime fail to start, the queue closes and
/// each store appends by itself.
///
/// The callers' rows of the people directory (`contacts`, see [`Projector::people`]) are
/// written in the groups too, so that a caller's row is committed with their command's
/// events, or before: a command no longer waits for a commit of its own for it first.
///
/// [`Projector::people`]: crate::Projector::people
pub(crate) fn start(
    shared: std::sync::Arc<Shared>,
    contacts: UnboundedReceiver<Recording>,
) -> (AppendQueue, tokio::task::JoinHandle<()>) {
    let (queue, pending) = AppendQueue::new();
    let writer = match shared.database.pool() {
        Pool::Postgres(pool) => Writer::Postgres(Box::new(Connection {
            options: (*pool.connect_options()).clone(),
            timeout: pool.options().get_acquire_timeout(),
            open: None,
        })),
        Pool::Sqlite(_) => Writer::Sqlite,
    };
    let task = tokio::task::spawn_blocking(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "starting the appends' runtime failed");
                return;
            }
        };
        runtime.block_on(append_in_groups(shared, writer, pending, contacts))
    });
    (queue, task)
}

/// Where a group's transaction is written.
enum Writer {
    /// The appends' own connection.
    Postgres(Box<Connection>),
    /// The database's one writing connection.
    Sqlite,
}

/// The appends' PostgreSQL connection, kept from one group to the next. A pool of one
/// cost every group two round trips more, each a wait on a busy machine: sqlx pings a
/// connection as it goes back to its pool and again as it is taken out
/// (docs/performance.md, "the pools' round trips"). Made when first needed, on the
/// appends' runtime so that its thread drives the connection's I/O, and made again after
/// a group that failed: what failed may have been the connection.
struct Connection {
    options: PgConnectOptions,
    /// How long a group waits for the connection to be made, as long as the server's pool
    /// waits for one of its own.
    timeout: Duration,
    open: Option<PgConnection>,
}

impl Writer {
    /// After a group's transaction: one that failed leaves the connection to be made anew.
    fn after<T>(&mut self, written: &Result<T, Error>) {
        if let (Writer::Postgres(connection), Err(_)) = (self, written) {
            connection.open = None;
        }
    }
}

impl Connection {
    async fn get(&mut self) -> Result<&mut PgConnection, Error> {
        if self.open.is_none() {
            let connecting = PgConnection::connect_with(&self.options);
            let connection = tokio::time::timeout(self.timeout, connecting)
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            self.open = Some(connection);
        }
        Ok(self.open.as_mut().expect("made above"))
    }
}

/// Takes every command waiting, writes them as one group, answers each; until the
/// projector stops and the queue is empty.
async fn append_in_groups(
    shared: std::sync::Arc<Shared>,
    mut writer: Writer,
    mut pending: UnboundedReceiver<PendingAppend>,
    mut contacts: UnboundedReceiver<Recording>,
) {
    let mut stop = shared.stop.subscribe();
    loop {
        let (mut group, mut events, mut recordings) = (Vec::new(), 0, Vec::new());
        tokio::select! {
            biased;
            next = pending.recv() => match next {
                Some(first) => {
                    events = first.events.len();
                    group.push(first);
                }
                None => return,
            },
            Some(contact) = contacts.recv() => recordings.push(contact),
            // Appends sent from now on are made by their stores themselves; those
            // already queued are still written.
            _ = stop.wait_for(|stop| *stop) => {
                pending.close();
                continue;
            }
        };
        while events < GROUP_EVENTS {
            match pending.try_recv() {
                Ok(next) => {
                    events += next.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        // After the appends: a caller's row is handed over before their command's events
        // are queued, so every row whose events are in this group is taken here.
        while let Ok(contact) = contacts.try_recv() {
            recordings.push(contact);
        }
        let started = Instant::now();
        if group.is_empty() {
            let written = write_people(&shared, &mut writer, &recordings).await;
            writer.after(&written);
            people::answer(recordings, written.as_ref().map(drop));
            shared.group_counts.wrote(0, started);
            continue;
        }
        let commands = group.len();
        let written = write(&shared, &mut writer, &group, &recordings).await;
        writer.after(&written);
        people::answer(recordings, written.as_ref().map(drop));
        match written {
            Ok(outcomes) => {
                for (append, outcome) in group.into_iter().zip(outcomes) {
                    append.answer(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(%error, commands = group.len(), "appending a group of commands failed");
                let connection = matches!(
                    &error,
                    Error::Sql(
                        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
                    )
                );
                for append in group {
                    let reason = format!("appending a group of commands: {error}").into();
                    append.answer(Err(if connection {
                        PersistenceError::ConnectionError(reason)
                    } else {
                        PersistenceError::UnknownError(reason)
                    }));
                }
            }
        }
        shared.group_counts.wrote(commands, started);
    }
}

/// One command's rows as the insert returned them.
type Inserted = HashMap<(String, i64), i64>;

/// Appends the group in one transaction and, when this process writes every view and
/// they stand at the log's head (or a few events behind it), applies the new events to
/// every view in the same transaction. Answers each command in order: where its events
/// went, or an optimistic-lock error for one whose sequence numbers another process
/// took first, or that follows such a one of its aggregate (nothing of it is kept).
async fn write(
    shared: &Shared,
    writer: &mut Writer,
    group: &[PendingAppend],
    recordings: &[Recording],
) -> Result<Vec<Result<AppendedAt, PersistenceError>>, Error> {
    // The lock is taken before the checkpoints and the head are read: until the commit,
    // no other appender can add to the log, so both stay what this transaction reads.
    // SQLite's `BEGIN IMMEDIATE` takes the database's write lock.
    let sqlite = matches!(writer, Writer::Sqlite);
    let mut tx = begin(shared, writer, TAKE_APPEND_LOCK).await?;
    let leading = leads_every_view(shared);
    let (inserted, behind) = match tx.postgres().await? {
        Some(connection) => {
            let (inserted, checkpoints) = insert(connection, group, leading).await?;
            (inserted, views_behind(shared, checkpoints).await?)
        }
        None => {
            let checkpoints = if leading {
                Some(read_checkpoints(&mut tx).await?)
            } else {
                None
            };
            let behind = views_behind(shared, checkpoints).await?;
            let head = behind.as_ref().map(|behind| behind.head);
            (insert_sqlite(&mut tx, group, head).await?, behind)
        }
    };
    let mut outcomes = Vec::with_capacity(group.len());
    let mut refused_rows = Vec::new();
    let mut appended = Vec::new();
    for append in group {
        let positions: Vec<Option<i64>> = append
            .events
            .iter()
            .map(|event| {
                inserted
                    .get(&(event.aggregate_id.clone(), event.sequence as i64))
                    .copied()
            })
            .collect();
        if positions.iter().all(Option::is_some) && !append.follows_a_failed_append() {
            let last = positions
                .iter()
                .flatten()
                .max()
                .copied()
                .unwrap_or_default();
            outcomes.push(Ok(last));
            appended.extend(append.events.iter().zip(positions.into_iter().flatten()));
        } else {
            refused_rows.extend(positions.into_iter().flatten());
            // Before the appends after it in the group are looked at: those of the same
            // aggregate follow its events, and are refused with it.
            append.refuse();
            outcomes.push(Err(PersistenceError::OptimisticLockError));
        }
    }
    if !refused_rows.is_empty() {
        // A command is stored whole or not at all.
        let rows = refused_rows
            .into_iter()
            .map(|position| vec![position.into()]);
        tx.execute_rows(rows.collect(), |rows| {
            format!("DELETE FROM events WHERE position IN ({rows})")
        })
        .await?;
    }
    // The events applied to the views, after the head read under the log's lock.
    let applied = match behind {
        Some(behind) if !appended.is_empty() => {
            let mut events = behind.events;
            for (event, position) in appended {
                let stored = StoredEvent {
                    position,
                    aggregate_type: event.aggregate_type.clone(),
                    aggregate_id: event.aggregate_id.clone(),
                    sequence: event.sequence as i64,
                    event_type: event.event_type.clone(),
                    event_version: event.event_version.clone(),
                    payload: event.payload.clone(),
                    metadata: event.metadata.clone(),
                };
                events.extend(Envelope::decode(stored)?);
            }
            events.sort_by_key(|envelope| envelope.position);
            let through = outcomes
                .iter()
                .flatten()
                .max()
                .copied()
                .unwrap_or(behind.head);
            let batch = Batch { events, through };
            project(shared, &mut tx, &behind.checkpoints, &batch).await?;
            Some((behind.head, batch))
        }
        _ => None,
    };
    // Last, so that on PostgreSQL the rows go in the commit's round trip.
    people::write_in(&mut tx, recordings).await?;
    let projected = applied.as_ref().map(|(_, batch)| batch.through);
    if let Some(through) = projected {
        shared
            .projecting_through
            .fetch_max(through, Ordering::SeqCst);
    }
    let committed = tx.commit().await;
    if committed.is_ok() && sqlite {
        // PostgreSQL tells every process of a commit (LISTEN); here the request feed
        // learns of it as from a notification, which the views, already past it, pass by.
        if let Some(last) = outcomes.iter().flatten().max() {
            shared.notified_head.fetch_max(*last, Ordering::SeqCst);
            shared.notified.send_replace(());
        }
    }
    if projected.is_some() {
        shared.remembered.settled();
        if committed.is_err() {
            // The views' tasks skipped the notifications of events this group was to
            // apply; now they must read them.
            shared.notifications_lost.fetch_add(1, Ordering::SeqCst);
            shared.notified.send_replace(());
        }
    }
    committed?;
    if let Some((head, mut batch)) = applied {
        // Every event after the head is this group's, for the request feed; those before
        // it were other writers', which the feed has read already.
        batch.events.retain(|envelope| envelope.position > head);
        shared.committed_batch(head, batch);
    }
    if let Some(through) = projected {
        for view in View::ALL {
            shared.reached(view, through);
        }
        shared.progress.send_replace(());
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.map(|position| AppendedAt {
                position,
                projected: projected.is_some(),
            })
        })
        .collect())
}

/// Callers' rows that came with no command to append, in a transaction of their own.
async fn write_people(
    shared: &Shared,
    writer: &mut Writer,
    recordings: &[Recording],
) -> Result<(), Error> {
    let mut tx = begin(shared, writer, "").await?;
    people::write_in(&mut tx, recordings).await?;
    tx.commit().await
}

/// A transaction on the appends' connection; on PostgreSQL its `BEGIN` carries
/// `postgres_then` (see [`Tx::begin_on`]).
async fn begin<'w>(
    shared: &Shared,
    writer: &'w mut Writer,
    postgres_then: &str,
) -> Result<Tx<'w>, Error> {
    match writer {
        Writer::Postgres(connection) => Tx::begin_on(connection.get().await?, postgres_then).await,
        Writer::Sqlite => Tx::begin(&shared.database).await,
    }
}

fn leads_every_view(shared: &Shared) -> bool {
    shared
        .leading
        .iter()
        .all(|leading| leading.load(Ordering::SeqCst))
}

/// Where the views stand, with the committed events some of them have not applied yet.
struct Behind {
    checkpoints: [i64; View::ALL.len()],
    head: i64,
    events: Vec<Envelope>,
}

/// Each view's checkpoint as read under the log's lock, and the log's head then.
struct Checkpoints {
    positions: Vec<(String, i64)>,
    head: i64,
}

/// The views' checkpoints, locked until the commit (a view's own task, or a rebuild,
/// waits meanwhile), and the log's head. On SQLite the transaction's write lock already
/// keeps every other writer out.
async fn read_checkpoints(tx: &mut Tx<'_>) -> Result<Checkpoints, Error> {
    let rows = tx
        .fetch(
            "SELECT view, position, (SELECT COALESCE(MAX(position), 0) FROM events) \
               FROM projection_checkpoints ORDER BY view",
            &[],
            |row| Ok((row.text(0)?, row.int(1)?, row.int(2)?)),
        )
        .await?;
    let head = rows.first().map(|(_, _, head)| *head).unwrap_or_default();
    Ok(Checkpoints {
        positions: rows
            .into_iter()
            .map(|(view, position, _)| (view, position))
            .collect(),
        head,
    })
}

/// Where the views stand, from their checkpoints, with the committed events between the
/// lowest of them and the log's head. `None` when there are no checkpoints to go by, or
/// the views are further behind than one batch: their tasks catch up, and the group is
/// appended without them.
async fn views_behind(
    shared: &Shared,
    checkpoints: Option<Checkpoints>,
) -> Result<Option<Behind>, Error> {
    let Some(Checkpoints { positions, head }) = checkpoints else {
        return Ok(None);
    };
    let mut checkpoints = [None; View::ALL.len()];
    for (name, position) in positions {
        if let Some(view) = View::parse(&name) {
            checkpoints[view.index()] = Some(position);
        }
    }
    let Some(checkpoints) = checkpoints.into_iter().collect::<Option<Vec<i64>>>() else {
        return Ok(None);
    };
    let lowest = checkpoints.iter().copied().min().unwrap_or_default();
    let mut events = Vec::new();
    if lowest < head {
        let limit = shared.options.batch_size;
        // Through the readers' pool: on SQLite this transaction holds the writing
        // connection, and nothing can commit while it does.
        let stored = shared
            .database
            .for_reads()
            .events_after(lowest, limit)
            .await?;
        if stored.last().is_none_or(|last| last.position < head) {
            return Ok(None);
        }
        for event in stored {
            events.extend(Envelope::decode(event)?);
        }
    }
    Ok(Some(Behind {
        checkpoints: checkpoints.try_into().unwrap_or_default(),
        head,
        events,
    }))
}

/// The group's rows, in one statement: each command's events stay consecutive, so they
/// get consecutive positions. A taken sequence number inserts nothing for that row.
///
/// With `read_checkpoints`, the same statement reads the views' checkpoints, locked until
/// the commit (a view's own task, or a rebuild, waits meanwhile), and the log's head
/// before the insert: one round trip fewer in every group's chain. The transaction took
/// the log's lock in an earlier statement, so the head this statement sees is final.
async fn insert(
    connection: &mut PgConnection,
    group: &[PendingAppend],
    read_checkpoints: bool,
) -> Result<(Inserted, Option<Checkpoints>), Error> {
    let events = group.iter().flat_map(|append| &append.events);
    let rows = events.clone().count();
    let mut types = Vec::with_capacity(rows);
    let mut ids = Vec::with_capacity(rows);
    let mut sequences = Vec::with_capacity(rows);
    let mut event_types = Vec::with_capacity(rows);
    let mut versions = Vec::with_capacity(rows);
    let mut payloads = Vec::with_capacity(rows);
    let mut metadata = Vec::with_capacity(rows);
    for event in events {
        types.push(event.aggregate_type.as_str());
        ids.push(event.aggregate_id.as_str());
        sequences.push(event.sequence as i64);
        event_types.push(event.event_type.as_str());
        versions.push(event.event_version.as_str());
        payloads.push(&event.payload);
        metadata.push(&event.metadata);
    }
    // The head is read in the statement's snapshot, which the insert's rows are not in.
    let rows = sqlx::query(
        "WITH appended AS ( \
             INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                 event_version, payload, metadata) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], \
                                  $5::text[], $6::jsonb[], $7::jsonb[]) \
             ON CONFLICT (aggregate_type, aggregate_id, sequence) DO NOTHING \
             RETURNING aggregate_id, sequence, position), \
         checkpoints AS ( \
             SELECT view, position FROM projection_checkpoints WHERE $8 \
               ORDER BY view FOR UPDATE) \
         SELECT false, aggregate_id, sequence, position FROM appended \
         UNION ALL \
         SELECT true, view, (SELECT COALESCE(MAX(position), 0) FROM events), position \
           FROM checkpoints",
    )
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .bind(event_types)
    .bind(versions)
    .bind(payloads)
    .bind(metadata)
    .bind(read_checkpoints)
    .fetch_all(&mut *connection)
    .await?;
    let mut inserted = Inserted::with_capacity(rows.len());
    let mut checkpoints = read_checkpoints.then(|| Checkpoints {
        positions: Vec::with_capacity(View::ALL.len()),
        head: 0,
    });
    for row in &rows {
        let (is_checkpoint, name, number, position): (bool, String, i64, i64) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
        match checkpoints.as_mut().filter(|_| is_checkpoint) {
            Some(checkpoints) => {
                checkpoints.head = number;
                checkpoints.positions.push((name, position));
            }
            None => {
                inserted.insert((name, number), position);
            }
        }
    }
    Ok((inserted, checkpoints))
}

/// [`insert`] on SQLite, a few hundred rows per statement. Its trigger gives each row the
/// next position in the order the rows are inserted, after the statement's `RETURNING`
/// is made, so the positions are read back: under the write lock, every row past the
/// log's head (`head`, when this transaction has read it already) is this group's.
async fn insert_sqlite(
    tx: &mut Tx<'_>,
    group: &[PendingAppend],
    head: Option<i64>,
) -> Result<Inserted, Error> {
    let head = match head {
        Some(head) => head,
        None => tx
            .fetch(
                "SELECT COALESCE(MAX(position), 0) FROM events",
                &[],
                |row| row.int(0),
            )
            .await?
            .pop()
            .unwrap_or_default(),
    };
    let rows = group
        .iter()
        .flat_map(|append| &append.events)
        .map(|event| {
            vec![
                event.aggregate_type.as_str().into(),
                event.aggregate_id.as_str().into(),
                (event.sequence as i64).into(),
                event.event_type.as_str().into(),
                event.event_version.as_str().into(),
                event.payload.to_string().into(),
                event.metadata.to_string().into(),
            ]
        })
        .collect();
    tx.execute_rows(rows, |rows| {
        format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                 event_version, payload, metadata) {rows} \
             ON CONFLICT (aggregate_type, aggregate_id, sequence) DO NOTHING"
        )
    })
    .await?;
    let rows = tx
        .fetch(
            "SELECT aggregate_id, sequence, position FROM events WHERE position > $1",
            &[head.into()],
            |row| Ok(((row.text(0)?, row.int(1)?), row.int(2)?)),
        )
        .await?;
    Ok(rows.into_iter().collect())
}

/// Applies `batch` to each view past its checkpoint and moves every checkpoint to the
/// batch's end; the remembered answers the events change are forgotten before the commit,
/// as the access view's own task does.
async fn project(
    shared: &Shared,
    tx: &mut Tx<'_>,
    checkpoints: &[i64; View::ALL.len()],
    batch: &Batch,
) -> Result<(), Error> {
    let through = batch.through;
    for view in View::ALL {
        let checkpoint = checkpoints[view.index()];
        if batch
            .events
            .first()
            .is_none_or(|first| first.position > checkpoint)
        {
            apply_batch(view, Target::Live, tx, batch, Some(&shared.options)).await?;
        } else {
            let unapplied = Batch {
                events: batch
                    .events
                    .iter()
                    .filter(|envelope| envelope.position > checkpoint)
                    .cloned()
                    .collect(),
                through,
            };
            apply_batch(view, Target::Live, tx, &unapplied, Some(&shared.options)).await?;
        }
    }
    let views = View::ALL
        .map(|view| format!("'{}'", view.name()))
        .join(", ");
    tx.execute_rows(vec![vec![through.into()]], |rows| {
        format!(
            "UPDATE projection_checkpoints SET position = (SELECT * FROM ({rows}) AS moved) \
              WHERE view IN ({views})"
        )
    })
    .await?;
    shared.remembered.changing(
        batch
            .events
            .iter()
            .map(|envelope| (&envelope.organization, subject(&envelope.event))),
    );
    Ok(())
}
