//! Grouped appends on PostgreSQL: the commands waiting to append are written together,
//! events and views in one transaction, while this process writes every view
//! (docs/adr/14-grouped-appends.md).
//!
//! One append at a time holds the log's lock from its first row to its commit
//! (docs/adr/02-global-position.md), and each view then spent a transaction of its own on
//! the new events while the command waited for them (read-your-writes). Here the commands
//! that queued while the previous group was being written share one lock, one flush and
//! one update of each view, and are answered with every view already showing them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use access_store::{AppendQueue, AppendedAt, PendingAppend, StoredEvent};
use cqrs_es::persist::PersistenceError;
use sqlx::postgres::PgConnection;
use sqlx::Row;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::Error;
use crate::events::{subject, Batch, Envelope};
use crate::projector::Shared;
use crate::sql::Tx;
use crate::view::{apply_batch, Target, View};

/// Events written in one group at most; the commands left over wait for the next one.
const GROUP_EVENTS: usize = 1_000;

/// The event store's append lock (docs/adr/02-global-position.md, the key its trigger
/// takes), taken in the round trip of the group's `BEGIN`.
const TAKE_APPEND_LOCK: &str = "SELECT pg_advisory_xact_lock(1094927699, 1);";

/// The queue a store appends through, and the task that empties it.
///
/// The task runs on a thread and a runtime of its own, over a connection of its own:
/// every command waits for the group's chain of round trips, and on the server's runtime
/// each wake-up of that chain queued behind the HTTP requests' tasks (commands/s rose by
/// 29 % under load once it had a thread of its own, docs/performance.md). Should the
/// runtime fail to start, the queue closes and each store appends by itself.
pub(crate) fn start(
    shared: std::sync::Arc<Shared>,
    pool: &sqlx::PgPool,
) -> (AppendQueue, tokio::task::JoinHandle<()>) {
    let (queue, pending) = AppendQueue::new();
    let connection = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(pool.options().get_acquire_timeout());
    let connect = (*pool.connect_options()).clone();
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
        runtime.block_on(async move {
            // Made inside the runtime, so that this thread drives its I/O.
            let pool = connection.connect_lazy_with(connect);
            append_in_groups(shared, pool, pending).await
        })
    });
    (queue, task)
}

/// Takes every command waiting, writes them as one group, answers each; until the
/// projector stops and the queue is empty.
async fn append_in_groups(
    shared: std::sync::Arc<Shared>,
    pool: sqlx::PgPool,
    mut pending: UnboundedReceiver<PendingAppend>,
) {
    let mut stop = shared.stop.subscribe();
    loop {
        let first = tokio::select! {
            biased;
            next = pending.recv() => match next {
                Some(first) => first,
                None => return,
            },
            // Appends sent from now on are made by their stores themselves; those
            // already queued are still written.
            _ = stop.wait_for(|stop| *stop) => {
                pending.close();
                continue;
            }
        };
        let mut events = first.events.len();
        let mut group = vec![first];
        while events < GROUP_EVENTS {
            match pending.try_recv() {
                Ok(next) => {
                    events += next.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        match write(&shared, &pool, &group).await {
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
    pool: &sqlx::PgPool,
    group: &[PendingAppend],
) -> Result<Vec<Result<AppendedAt, PersistenceError>>, Error> {
    // The lock is taken before the checkpoints and the head are read: until the commit,
    // no other appender can add to the log, so both stay what this transaction reads.
    let mut tx = Tx::begin_postgres(pool, TAKE_APPEND_LOCK).await?;
    let connection = postgres(&mut tx).await?;
    let behind = if leads_every_view(shared) {
        views_behind(shared, connection).await?
    } else {
        None
    };
    let inserted = insert(connection, group).await?;
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
        sqlx::query("DELETE FROM events WHERE position = ANY($1)")
            .bind(&refused_rows)
            .execute(postgres(&mut tx).await?)
            .await?;
    }
    let projected = match behind {
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
            project(shared, &mut tx, &behind.checkpoints, events, through).await?;
            Some(through)
        }
        _ => None,
    };
    if let Some(through) = projected {
        shared
            .projecting_through
            .fetch_max(through, Ordering::SeqCst);
    }
    let committed = tx.commit().await;
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

/// The views' checkpoints, locked until the commit (a view's own task, or a rebuild,
/// waits meanwhile), and the events between the lowest of them and the log's head.
/// `None` when the views are further behind than one batch: their tasks catch up, and
/// the group is appended without them.
async fn views_behind(
    shared: &Shared,
    connection: &mut PgConnection,
) -> Result<Option<Behind>, Error> {
    let rows = sqlx::query(
        "SELECT view, position, (SELECT COALESCE(MAX(position), 0) FROM events) \
           FROM projection_checkpoints ORDER BY view FOR UPDATE",
    )
    .fetch_all(&mut *connection)
    .await?;
    let mut checkpoints = [None; View::ALL.len()];
    let mut head = 0;
    for row in rows {
        let name: String = row.try_get(0)?;
        head = row.try_get(2)?;
        if let Some(view) = View::parse(&name) {
            checkpoints[view.index()] = Some(row.try_get::<i64, _>(1)?);
        }
    }
    let Some(checkpoints) = checkpoints.into_iter().collect::<Option<Vec<i64>>>() else {
        return Ok(None);
    };
    let lowest = checkpoints.iter().copied().min().unwrap_or_default();
    let mut events = Vec::new();
    if lowest < head {
        let limit = shared.options.batch_size;
        let stored = shared.database.events_after(lowest, limit).await?;
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
async fn insert(connection: &mut PgConnection, group: &[PendingAppend]) -> Result<Inserted, Error> {
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
    let rows = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                             event_version, payload, metadata) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
                              $6::jsonb[], $7::jsonb[]) \
         ON CONFLICT (aggregate_type, aggregate_id, sequence) DO NOTHING \
         RETURNING aggregate_id, sequence, position",
    )
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .bind(event_types)
    .bind(versions)
    .bind(payloads)
    .bind(metadata)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| Ok(((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?)))
        .collect()
}

/// Applies `events` to each view past its checkpoint and moves every checkpoint to
/// `through`; the remembered answers the events change are forgotten before the commit,
/// as the access view's own task does.
async fn project(
    shared: &Shared,
    tx: &mut Tx,
    checkpoints: &[i64; View::ALL.len()],
    events: Vec<Envelope>,
    through: i64,
) -> Result<(), Error> {
    let names = shared.options.organization_names.as_deref();
    let batch = Batch { events, through };
    for view in View::ALL {
        let checkpoint = checkpoints[view.index()];
        if batch
            .events
            .first()
            .is_none_or(|first| first.position > checkpoint)
        {
            apply_batch(view, Target::Live, tx, &batch, names).await?;
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
            apply_batch(view, Target::Live, tx, &unapplied, names).await?;
        }
    }
    tx.execute_rows(
        View::ALL
            .iter()
            .map(|view| vec![view.name().into(), through.into()])
            .collect(),
        |rows| {
            format!(
                "UPDATE projection_checkpoints SET position = moved.position \
                   FROM ({rows}) AS moved (view, position) \
                  WHERE projection_checkpoints.view = moved.view"
            )
        },
    )
    .await?;
    shared.remembered.changing(
        batch
            .events
            .iter()
            .map(|envelope| (&envelope.organization, subject(&envelope.event))),
    );
    Ok(())
}

async fn postgres(tx: &mut Tx) -> Result<&mut PgConnection, Error> {
    Ok(tx
        .postgres()
        .await?
        .expect("groups are appended on PostgreSQL only"))
}
