//! The sender against an SMTP sink, on every database `fresh_databases()` yields: emails
//! are queued straight into the outbox, as the projector queues them.

use std::collections::BTreeMap;
use std::time::Duration;

use access_domain::identifiers::PersonId;
use access_notifications::testing::{Received, SinkRules, SmtpSink};
use access_notifications::{FailStage, MailSettings, Sender, SenderOptions};
use access_projections::{EmailState, FailPoint, Outbox, People};
use access_store::testing::{fresh_databases, TestDatabase};
use access_store::{Database, Pool};
use chrono::{SecondsFormat, Utc};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(10);

struct Queue {
    label: &'static str,
    url: String,
    database: Database,
    _database: TestDatabase,
}

async fn queues() -> Vec<Queue> {
    let mut queues = Vec::new();
    for test_database in fresh_databases().await {
        queues.push(Queue {
            label: test_database.label,
            url: test_database.url.clone(),
            database: Database::connect(&test_database.url).await.unwrap(),
            _database: test_database,
        });
    }
    queues
}

/// Runs one statement on either database: `$bind` binds its values to `$query`, `$then`
/// turns what `$run` answered into the same type on both.
macro_rules! on_pool {
    ($database:expr, $sql:expr, |$query:ident| $bind:expr, $run:ident, |$done:ident| $then:expr) => {
        match $database.pool() {
            Pool::Sqlite(pool) => {
                let $query = sqlx::query($sql);
                let $done = $bind.$run(pool).await.unwrap();
                $then
            }
            Pool::Postgres(pool) => {
                let $query = sqlx::query($sql);
                let $done = $bind.$run(pool).await.unwrap();
                $then
            }
        }
    };
}

impl Queue {
    /// An email of the event at `position` to `recipient`, due now.
    async fn queue(&self, position: i64, recipient: &str) {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let sql = "INSERT INTO notification_outbox (position, recipient_id, organization_id, \
                   kind, subject, body, at, state, attempts, next_attempt_at) \
                   VALUES ($1, $2, 'practice:123456789', 'REQUEST_SUBMITTED', $3, $4, $5, \
                           'PENDING', 0, $5)";
        let subject = format!("Event {position}");
        let body = format!("Body of event {position}.\n\n--\nFooter\n");
        on_pool!(
            self.database,
            sql,
            |query| query
                .bind(position)
                .bind(recipient)
                .bind(&subject)
                .bind(&body)
                .bind(&now),
            execute,
            |_done| ()
        );
    }

    async fn remember(&self, who: &str, email: Option<&str>) {
        People::new(self.database.clone())
            .remember(&PersonId::parse(who).unwrap(), Some(who), email)
            .await
            .unwrap();
    }

    /// Every email's (state, attempts, sent via), by position.
    async fn states(&self) -> BTreeMap<i64, (String, i64, Option<String>)> {
        use sqlx::Row;
        let sql = "SELECT position, state, attempts, sent_via FROM notification_outbox";
        on_pool!(self.database, sql, |query| query, fetch_all, |rows| rows
            .iter()
            .map(|row| (row.get::<i64, _>(0), (row.get(1), row.get(2), row.get(3))))
            .collect())
    }

    fn sender(&self, mail: MailSettings) -> Sender {
        // No projector here: the sender finds the rows by polling.
        let (_, wake) = watch::channel(());
        Sender::start(self.database.clone(), mail, wake, None)
    }
}

fn quick() -> SenderOptions {
    SenderOptions {
        max_attempts: 3,
        first_retry: Duration::from_millis(20),
        longest_retry: Duration::from_millis(100),
        // Short, so that a dead sender's claim lapses soon; an exchange with the sink
        // still fits in it many times over.
        claim: Duration::from_millis(2_500),
        smtp_timeout: Duration::from_secs(2),
        poll_interval: Duration::from_millis(50),
        ..SenderOptions::default()
    }
}

fn mail_to(url: &str, sender: SenderOptions) -> MailSettings {
    MailSettings {
        sender,
        ..MailSettings::parse(Some(url), Some("Access <access@example.org>")).unwrap()
    }
}

/// Polls until `condition` holds; false after [`WAIT`].
async fn eventually<F: std::future::Future<Output = bool>>(
    mut condition: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    condition().await
}

fn subjects(messages: &[Received]) -> Vec<String> {
    let mut subjects: Vec<String> = messages.iter().map(Received::subject).collect();
    subjects.sort();
    subjects
}

#[tokio::test]
async fn each_due_email_goes_out_once_to_the_address_on_file_with_a_stable_message_id() {
    for q in queues().await {
        let sink = SmtpSink::start().await;
        q.remember("alice", Some("alice@example.org")).await;
        q.queue(1, "alice").await;
        q.queue(2, "alice").await;
        let sender = q.sender(mail_to(&sink.url(), quick()));
        sink.wait_for(2, WAIT).await;
        // Time for a second copy to show, were one to be sent.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender.shutdown().await;
        let messages = sink.messages();
        assert_eq!(subjects(&messages), ["Event 1", "Event 2"], "{}", q.label);
        let first = &messages[0];
        assert_eq!(first.recipients, ["alice@example.org"], "{}", q.label);
        assert_eq!(first.mail_from, "access@example.org", "{}", q.label);
        assert_eq!(first.header("To").unwrap(), "alice <alice@example.org>");
        assert_eq!(
            first.header("Message-ID").unwrap(),
            "<notification.1.616c696365@example.org>",
            "{}",
            q.label
        );
        assert_eq!(first.body_words(), "Body of event 1. -- Footer");
        let sent = ("SENT".to_string(), 1, Some("smtp".to_string()));
        assert_eq!(
            q.states().await,
            BTreeMap::from([(1, sent.clone()), (2, sent)]),
            "{}",
            q.label
        );
    }
}

/// Five emails queued and claimed together; the sender stops at `stage` of the first one,
/// as if its process died there; a new sender finishes the batch once the claim lapsed.
/// Answers what the sink received, by subject.
async fn killed_mid_batch(q: &Queue, stage: FailStage) -> BTreeMap<String, Vec<Received>> {
    let sink = SmtpSink::start().await;
    q.remember("alice", Some("alice@example.org")).await;
    for position in 1..=5 {
        q.queue(position, "alice").await;
    }
    let fail_point = FailPoint::default();
    fail_point.arm();
    let dying = q.sender(mail_to(
        &sink.url(),
        SenderOptions {
            fail_point: Some((stage, fail_point.clone())),
            ..quick()
        },
    ));
    assert!(fail_point.stopped(1, WAIT).await, "{}", q.label);
    dying.shutdown().await;
    let states = q.states().await;
    assert!(
        states.values().all(|state| state.0 == "SENDING"),
        "{}: the claim stays: {states:?}",
        q.label
    );

    let restarted = Database::connect(&q.url).await.unwrap();
    let (_, wake) = watch::channel(());
    let sender = Sender::start(restarted, mail_to(&sink.url(), quick()), wake, None);
    assert!(
        eventually(|| async { q.states().await.values().all(|state| state.0 == "SENT") }).await,
        "{}: {:?}",
        q.label,
        q.states().await
    );
    sender.shutdown().await;
    let mut by_subject: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for message in sink.messages() {
        by_subject
            .entry(message.subject())
            .or_default()
            .push(message);
    }
    by_subject
}

#[tokio::test]
async fn a_sender_killed_after_the_server_accepted_an_email_sends_only_that_one_again() {
    for q in queues().await {
        let received = killed_mid_batch(&q, FailStage::AfterSending).await;
        let copies: Vec<(&str, usize)> = received
            .iter()
            .map(|(subject, copies)| (subject.as_str(), copies.len()))
            .collect();
        assert_eq!(
            copies,
            [
                ("Event 1", 2),
                ("Event 2", 1),
                ("Event 3", 1),
                ("Event 4", 1),
                ("Event 5", 1)
            ],
            "{}",
            q.label
        );
        // Mail clients that drop duplicate Message-IDs show the repeat once.
        let repeated = &received["Event 1"];
        assert_eq!(
            repeated[0].header("Message-ID"),
            repeated[1].header("Message-ID")
        );
    }
}

#[tokio::test]
async fn a_sender_killed_before_sending_loses_nothing_and_sends_nothing_twice() {
    for q in queues().await {
        let received = killed_mid_batch(&q, FailStage::BeforeSending).await;
        assert!(
            received.len() == 5 && received.values().all(|copies| copies.len() == 1),
            "{}: {received:?}",
            q.label
        );
    }
}

#[tokio::test]
async fn a_sender_stopped_mid_batch_hands_back_the_emails_it_did_not_try() {
    for q in queues().await {
        // A mail server that accepts the connection and never answers.
        let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", hanging.local_addr().unwrap());
        q.remember("alice", Some("alice@example.org")).await;
        for position in 1..=3 {
            q.queue(position, "alice").await;
        }
        let sender = q.sender(mail_to(
            &url,
            SenderOptions {
                smtp_timeout: Duration::from_millis(500),
                // Both: the retry waits the shorter of the two, and quick()'s longest is
                // 100 ms, after which the email in hand was due again on a slow machine.
                first_retry: Duration::from_secs(3600),
                longest_retry: Duration::from_secs(3600),
                claim: Duration::from_secs(60),
                ..quick()
            },
        ));
        let (connection, _) = tokio::time::timeout(WAIT, hanging.accept())
            .await
            .expect("the sender connects")
            .unwrap();
        sender.shutdown().await;
        drop(connection);
        let states = q.states().await;
        assert_eq!(
            states,
            BTreeMap::from([
                (1, ("PENDING".to_string(), 1, None)),
                (2, ("PENDING".to_string(), 0, None)),
                (3, ("PENDING".to_string(), 0, None)),
            ]),
            "{}: the email in hand is recorded as tried, the others are due again untried",
            q.label
        );
        let due = Outbox::new(q.database.clone())
            .due(Utc::now(), 10)
            .await
            .unwrap();
        let due: Vec<i64> = due.iter().map(|email| email.position).collect();
        assert_eq!(due, [2, 3], "{}", q.label);
    }
}

#[tokio::test]
async fn an_email_that_fails_every_try_becomes_a_dead_letter_after_the_last_one() {
    for q in queues().await {
        // A port nobody listens on: the mail server is down.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("smtp://{}", closed.local_addr().unwrap());
        drop(closed);
        q.remember("alice", Some("alice@example.org")).await;
        q.queue(1, "alice").await;
        let sender = q.sender(mail_to(&url, quick()));
        let outbox = Outbox::new(q.database.clone());
        assert!(
            eventually(|| async { !outbox.undelivered().await.unwrap().is_empty() }).await,
            "{}",
            q.label
        );
        sender.shutdown().await;
        let dead = outbox.undelivered().await.unwrap();
        assert_eq!(dead.len(), 1, "{}", q.label);
        assert_eq!(dead[0].state, EmailState::Dead, "{}", q.label);
        assert_eq!(dead[0].attempts, 3, "{}", q.label);
        assert_eq!(dead[0].subject, "Event 1");
        assert!(dead[0]
            .last_error
            .as_deref()
            .is_some_and(|error| !error.is_empty()));
        assert!(dead[0].last_attempt_at.is_some());
    }
}

#[tokio::test]
async fn an_email_the_server_refuses_for_good_is_a_dead_letter_after_one_try() {
    for q in queues().await {
        let sink = SmtpSink::start_with(SinkRules {
            refuse_recipients_containing: Some("bob@".into()),
        })
        .await;
        q.remember("alice", Some("alice@example.org")).await;
        q.remember("bob", Some("bob@example.org")).await;
        q.queue(1, "bob").await;
        q.queue(2, "alice").await;
        let sender = q.sender(mail_to(&sink.url(), quick()));
        assert_eq!(subjects(&sink.wait_for(1, WAIT).await), ["Event 2"]);
        let outbox = Outbox::new(q.database.clone());
        assert!(
            eventually(|| async { !outbox.undelivered().await.unwrap().is_empty() }).await,
            "{}",
            q.label
        );
        sender.shutdown().await;
        let dead = outbox.undelivered().await.unwrap();
        assert_eq!(
            (dead[0].position, dead[0].state, dead[0].attempts),
            (1, EmailState::Dead, 1),
            "{}",
            q.label
        );
    }
}

#[tokio::test]
async fn an_email_to_a_person_without_a_usable_address_is_undeliverable_and_never_tried() {
    for q in queues().await {
        let sink = SmtpSink::start().await;
        q.remember("dave", None).await;
        q.remember("erin", Some("not an address")).await;
        q.queue(1, "carol").await;
        q.queue(2, "dave").await;
        q.queue(3, "erin").await;
        let sender = q.sender(mail_to(&sink.url(), quick()));
        let outbox = Outbox::new(q.database.clone());
        assert!(
            eventually(|| async { outbox.undelivered().await.unwrap().len() == 3 }).await,
            "{}",
            q.label
        );
        sender.shutdown().await;
        for email in outbox.undelivered().await.unwrap() {
            assert_eq!(
                (email.state, email.attempts),
                (EmailState::Undeliverable, 0),
                "{}",
                q.label
            );
        }
        assert!(sink.messages().is_empty(), "{}", q.label);
    }
}
