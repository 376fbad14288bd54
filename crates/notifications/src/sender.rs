//! The sender: a task that drains the outbox, one email at a time, claimed a batch at a
//! time before they are sent and their outcomes recorded together after. It holds no
//! transaction open while an email is on its way, so a mail server that is down or slow
//! delays emails and nothing else.

use std::sync::Mutex;
use std::time::Duration;

use access_projections::{EmailsHanded, Error, HandedEmails, Outbox, Outcome, PendingEmail};
use access_store::Database;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::mail::{Failure, MailSettings, Mailer, DEFAULT_SMTP_TIMEOUT};

/// Emails read from the outbox, claimed and recorded per statement.
const BATCH: i64 = 100;

/// Emails handed over by the projector that are sent, and recorded, together at most.
const HANDED_BATCH: usize = 1_000;

/// With emails handed over, how soon after its last read the outbox is read again when
/// the projector applies something: this process's emails come by hand, and the outbox
/// holds only those the hand-over could not take (its sender far behind), which can wait
/// this long; a read at every commit cost two statements each.
const READ_WITH_HANDOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct SenderOptions {
    /// Tries before an email is given up as a dead letter.
    pub max_attempts: u32,
    /// The wait after the first failed try, doubled after each further one.
    pub first_retry: Duration,
    /// The longest wait between two tries.
    pub longest_retry: Duration,
    /// How long a claimed email stays this sender's: once it lapses, another sender may
    /// send the email again. So an email is sent only while its claim has `smtp_timeout`
    /// left; the rest of the batch is handed back, due at once.
    pub claim: Duration,
    pub smtp_timeout: Duration,
    /// The safety net when no wake-up came (emails queued by another process).
    pub poll_interval: Duration,
    #[cfg(feature = "fail-points")]
    pub fail_point: Option<(FailStage, access_projections::FailPoint)>,
}

impl Default for SenderOptions {
    /// Eight tries over about two hours (1, 2, 4 … 32, 60 minutes apart).
    fn default() -> Self {
        SenderOptions {
            max_attempts: 8,
            first_retry: Duration::from_secs(60),
            longest_retry: Duration::from_secs(3600),
            claim: Duration::from_secs(300),
            smtp_timeout: DEFAULT_SMTP_TIMEOUT,
            poll_interval: Duration::from_secs(5),
            #[cfg(feature = "fail-points")]
            fail_point: None,
        }
    }
}

impl SenderOptions {
    /// Whether an exchange with SMTP begun at `now` ends, timed out at worst, while the
    /// claim that lasts `until` still holds.
    fn may_send(&self, now: DateTime<Utc>, until: DateTime<Utc>) -> bool {
        (until - now)
            .to_std()
            .is_ok_and(|left| left >= self.smtp_timeout)
    }

    /// The wait after the `tried`-th failed try.
    fn backoff(&self, tried: u32) -> Duration {
        let factor = 1_u32
            .checked_shl(tried.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first_retry
            .saturating_mul(factor)
            .min(self.longest_retry)
    }
}

/// Where the armed fail point stops the sender, as the process's death would.
#[cfg(feature = "fail-points")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailStage {
    /// The email is claimed, not sent.
    BeforeSending,
    /// The SMTP server accepted the email; the outbox does not say so yet.
    AfterSending,
}

/// Delivers the outbox while it runs.
pub struct Sender {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Sender {
    /// Starts delivering: at once, whenever `wake` changes (the projector applied
    /// something), when a retry falls due, and every `poll_interval`; and the emails
    /// `handed` over as soon as they come (see `access_projections::EmailHandoff`, made
    /// with this sender's claim). Call inside a Tokio runtime.
    pub fn start(
        database: Database,
        mail: MailSettings,
        wake: watch::Receiver<()>,
        handed: Option<EmailsHanded>,
    ) -> Sender {
        assert!(
            mail.sender.claim > mail.sender.smtp_timeout,
            "an email's claim must outlast an exchange with SMTP, or nothing is ever sent"
        );
        let stop = watch::channel(false).0;
        let run = Run {
            outbox: Outbox::new(database),
            mailer: Mailer::new(&mail),
            options: mail.sender,
        };
        let task = tokio::spawn(run.follow(wake, stop.subscribe(), handed));
        Sender {
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Stops after the email in hand.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

struct Run {
    outbox: Outbox,
    mailer: Mailer,
    options: SenderOptions,
}

/// Whether the sender goes on.
enum Flow {
    Continue,
    Stop,
}

impl Run {
    async fn follow(
        self,
        mut wake: watch::Receiver<()>,
        mut stop: watch::Receiver<bool>,
        mut handed: Option<EmailsHanded>,
    ) {
        let mut woken_by_projector = true;
        loop {
            let pause = match self.deliver_due(&stop).await {
                Ok(Flow::Continue) => match self.outbox.next_due().await {
                    Ok(Some(due)) => (due - Utc::now())
                        .to_std()
                        .unwrap_or_default()
                        .min(self.options.poll_interval),
                    _ => self.options.poll_interval,
                },
                Ok(Flow::Stop) => return,
                // Not at once: the outbox or its database is in trouble.
                Err(error) => {
                    tracing::warn!(%error, "the email outbox cannot be used; trying again");
                    self.options.poll_interval
                }
            };
            let read_at = tokio::time::Instant::now();
            let mut next_read = read_at + pause;
            // Until the outbox is read again, emails handed over are sent as they come.
            loop {
                // Only what needs no await is done inside the select: its futures hold
                // `stop`'s guard, which may not be held across an await.
                let handed_now = tokio::select! {
                    _ = stop.wait_for(|stop| *stop) => Woken::Stop,
                    changed = wake.changed(), if woken_by_projector => {
                        // The projector stopped: polling alone from now on.
                        woken_by_projector = changed.is_ok();
                        let soonest = match handed {
                            Some(_) => read_at + READ_WITH_HANDOFF,
                            None => read_at,
                        };
                        next_read = next_read.min(soonest);
                        continue;
                    }
                    first = next_handed(&mut handed) => match first {
                        Some(first) => Woken::Handed(first),
                        None => Woken::HandOverEnded,
                    },
                    _ = tokio::time::sleep_until(next_read) => break,
                };
                let first = match handed_now {
                    Woken::Stop => {
                        self.hand_back_handed(&mut handed).await;
                        return;
                    }
                    Woken::HandOverEnded => {
                        handed = None;
                        continue;
                    }
                    Woken::Handed(first) => first,
                };
                match self.deliver_handed(first, &mut handed, &stop).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Stop) => return,
                    // Their claim lapses, and then they are sent from the outbox.
                    Err(error) => {
                        tracing::warn!(%error, "the email outbox cannot be used for emails handed over");
                    }
                }
            }
        }
    }

    /// Sends every email due now, oldest event first.
    async fn deliver_due(&self, stop: &watch::Receiver<bool>) -> Result<Flow, Error> {
        loop {
            let due = self.outbox.due(Utc::now(), BATCH).await?;
            if due.is_empty() {
                return Ok(Flow::Continue);
            }
            let claimed_at = Utc::now();
            let until = claimed_at + self.options.claim;
            let claimed = self.outbox.claim(&due, claimed_at, until).await?;
            // An email another sender took is left to it.
            let mine = due
                .iter()
                .zip(claimed)
                .filter_map(|(email, attempts)| Some((email, attempts?)))
                .collect();
            if let Flow::Stop = self.send_claimed(mine, until, stop).await? {
                return Ok(Flow::Stop);
            }
        }
    }

    /// Sends the emails handed over, `first` and those that came with it, with the
    /// addresses the people directory has now. They were queued claimed for this sender.
    async fn deliver_handed(
        &self,
        first: HandedEmails,
        handed: &mut Option<EmailsHanded>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Flow, Error> {
        let mut until = first.until;
        let mut emails = first.emails;
        while emails.len() < HANDED_BATCH {
            let Some(next) = handed.as_mut().and_then(EmailsHanded::try_recv) else {
                break;
            };
            until = until.min(next.until);
            emails.extend(next.emails);
        }
        let emails = self.outbox.address(emails).await?;
        let never_tried = emails.iter().map(|email| (email, 0)).collect();
        self.send_claimed(never_tried, until, stop).await
    }

    /// Sends emails claimed for this sender until `until`, each with the attempts made
    /// before, and records what came of them. The outcomes are recorded together after
    /// the batch: a sender that dies meanwhile sends the batch's sent emails again once
    /// the claim lapses, which at-least-once delivery allows (docs/notifications.md).
    /// What the claim no longer leaves time to send, or what is left when the sender is
    /// told to stop, is handed back, due at once.
    async fn send_claimed(
        &self,
        claimed: Vec<(&PendingEmail, i64)>,
        until: DateTime<Utc>,
        stop: &watch::Receiver<bool>,
    ) -> Result<Flow, Error> {
        let mut outcomes = Vec::with_capacity(claimed.len());
        let mut handed_back = Vec::new();
        let mut stopping = false;
        for (email, attempts) in claimed {
            stopping = stopping || *stop.borrow();
            if stopping || !self.options.may_send(Utc::now(), until) {
                handed_back.push(email);
                continue;
            }
            match self.deliver(email, attempts).await {
                Some(outcome) => outcomes.push((email, Utc::now(), outcome)),
                // The process's death: nothing more is recorded.
                None => return Ok(Flow::Stop),
            }
        }
        self.outbox.record(&outcomes).await?;
        self.outbox.hand_back(&handed_back, Utc::now()).await?;
        Ok(if stopping { Flow::Stop } else { Flow::Continue })
    }

    /// Gives the emails handed over and not sent back to any sender, due at once, rather
    /// than leave them claimed until their claim lapses.
    async fn hand_back_handed(&self, handed: &mut Option<EmailsHanded>) {
        let mut left = Vec::new();
        while let Some(next) = handed.as_mut().and_then(EmailsHanded::try_recv) {
            left.extend(next.emails);
        }
        let left: Vec<&PendingEmail> = left.iter().collect();
        if let Err(error) = self.outbox.hand_back(&left, Utc::now()).await {
            tracing::warn!(%error, emails = left.len(), "handing back the emails handed over failed; they are sent once their claim lapses");
        }
    }

    /// Sends one claimed email and says what came of it; `None` when a fail point
    /// stopped the sender as its process's death would.
    async fn deliver(&self, email: &PendingEmail, attempts: i64) -> Option<Outcome> {
        #[cfg(feature = "fail-points")]
        if self.trips(FailStage::BeforeSending) {
            return None;
        }
        let sent = self.mailer.send(email).await;
        let now = Utc::now();
        let (position, recipient) = (email.position, &email.recipient);
        Some(match sent {
            Ok(via) => {
                #[cfg(feature = "fail-points")]
                if self.trips(FailStage::AfterSending) {
                    return None;
                }
                Outcome::Sent { via }
            }
            Err(Failure::Undeliverable(reason)) => {
                tracing::warn!(position, %recipient, reason, "email undeliverable");
                Outcome::Undeliverable { reason }
            }
            Err(Failure::Refused(error)) => {
                tracing::warn!(position, %recipient, error, "email refused by the SMTP server: dead letter");
                Outcome::Dead { error }
            }
            Err(Failure::Transient(error)) => {
                let tried = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
                if tried >= self.options.max_attempts {
                    tracing::warn!(position, %recipient, tried, error, "email given up: dead letter");
                    Outcome::Dead { error }
                } else {
                    let wait = self.options.backoff(tried);
                    tracing::info!(position, %recipient, tried, error, retry_in = ?wait, "email not sent; will retry");
                    Outcome::Retry {
                        at: now + wait,
                        error,
                    }
                }
            }
        })
    }

    #[cfg(feature = "fail-points")]
    fn trips(&self, stage: FailStage) -> bool {
        self.options
            .fail_point
            .as_ref()
            .is_some_and(|(at, fail_point)| *at == stage && fail_point.trip())
    }
}

/// What the sender was woken for between two reads of the outbox.
enum Woken {
    Stop,
    Handed(HandedEmails),
    /// The projector stopped handing emails over.
    HandOverEnded,
}

/// The next emails handed over; never, when there is no hand-over.
async fn next_handed(handed: &mut Option<EmailsHanded>) -> Option<HandedEmails> {
    match handed {
        Some(handed) => handed.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_each_failure_up_to_the_longest() {
        let options = SenderOptions::default();
        let minutes: Vec<u64> = (1..=8)
            .map(|tried| options.backoff(tried).as_secs() / 60)
            .collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(options.backoff(200), options.longest_retry);
    }

    #[test]
    fn an_email_is_sent_only_while_its_claim_outlasts_an_smtp_timeout() {
        let options = SenderOptions::default();
        let claimed_at = Utc::now();
        let until = claimed_at + options.claim;
        assert!(options.may_send(claimed_at, until));
        assert!(options.may_send(until - options.smtp_timeout, until));
        let too_late = until - options.smtp_timeout + chrono::Duration::milliseconds(1);
        assert!(!options.may_send(too_late, until));
        assert!(!options.may_send(until + chrono::Duration::seconds(1), until));
    }
}
