//! The two ways load is applied.
//!
//! - Closed loop: N clients, each sending its next request when the previous one
//!   answered, until a deadline. Throughput is what the server sustains.
//! - Open loop: requests sent on a fixed schedule (constant rate) whatever the
//!   server does, each timed from its *scheduled* send time, so a stall shows up
//!   in the latency of every request that should have been sent meanwhile (no
//!   coordinated omission).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stats::{ms, Recorder};

/// Runs `client(index, deadline)` for every client concurrently; each runs its
/// own loop until the deadline and hands back what it recorded. Answers the
/// merged recording and the wall time until the last client finished.
pub async fn closed_loop<F, Fut>(
    clients: usize,
    duration: Duration,
    client: F,
) -> (Recorder, Duration)
where
    F: Fn(usize, Instant) -> Fut,
    Fut: Future<Output = Recorder> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|index| tokio::spawn(client(index, deadline)))
        .collect();
    let mut merged = Recorder::new();
    for task in tasks {
        match task.await {
            Ok(recorded) => merged.merge(recorded),
            Err(error) => merged.record(
                "client task",
                Duration::ZERO,
                Some(&format!("PANIC {error}")),
            ),
        }
    }
    (merged, started.elapsed())
}

/// What one open-loop request did: the operation's name and its error, if any.
pub type Sent = (&'static str, Option<String>);

/// Sends `op(i)` at `rate` per second for `duration`, into `recorder`.
/// The schedule is kept by a dedicated thread that sleeps to each send time
/// (finer than the runtime's 1 ms timer) and spawns the request on the runtime.
/// Answers the wall time of the schedule and the largest dispatch lateness.
pub async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    recorder: Arc<Mutex<Recorder>>,
    op: F,
) -> (Duration, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Sent> + Send + 'static,
{
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let handle = tokio::runtime::Handle::current();
    let in_flight = Arc::new(AtomicU64::new(0));
    let flight = in_flight.clone();
    let start = Instant::now() + Duration::from_millis(5);
    let dispatcher = std::thread::spawn(move || {
        let op = Arc::new(op);
        let mut worst_lateness = Duration::ZERO;
        for i in 0..total {
            let scheduled = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            } else {
                worst_lateness = worst_lateness.max(now - scheduled);
            }
            flight.fetch_add(1, Ordering::Relaxed);
            let (op, recorder, flight) = (op.clone(), recorder.clone(), flight.clone());
            handle.spawn(async move {
                let (name, error) = op(i).await;
                let latency = scheduled.elapsed();
                recorder
                    .lock()
                    .unwrap()
                    .record(name, latency, error.as_deref());
                flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
        worst_lateness
    });
    let worst_lateness = tokio::task::spawn_blocking(move || dispatcher.join())
        .await
        .expect("the dispatcher thread")
        .expect("the dispatcher did not panic");
    // Let the requests in flight finish (the client times out at 30 s).
    let drain_deadline = Instant::now() + Duration::from_secs(35);
    while in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (start.elapsed(), worst_lateness)
}

/// Two operations at the same constant `rate`, each for `duration` in all, sent in
/// alternate turns of about `turn` (first, second, first, …), each printed as a table
/// with the dispatcher's worst lateness (what the load tool adds to every latency it
/// measures). Both see the same minutes of the machine, so the second's latencies say
/// what the first's owe to the load tool and the machine rather than to the server.
/// Answers each operation's recording and wall time, first then second.
pub async fn at_rate_in_turns<F, FutF, G, FutG>(
    rate: f64,
    duration: Duration,
    turn: Duration,
    first: F,
    second: G,
) -> [(Recorder, Duration); 2]
where
    F: Fn(u64) -> FutF + Send + Sync + 'static,
    FutF: Future<Output = Sent> + Send + 'static,
    G: Fn(u64) -> FutG + Send + Sync + 'static,
    FutG: Future<Output = Sent> + Send + 'static,
{
    let recorders = [(); 2].map(|_| Arc::new(Mutex::new(Recorder::new())));
    let (first, second) = (Arc::new(first), Arc::new(second));
    let turns = (duration.as_secs_f64() / turn.as_secs_f64())
        .ceil()
        .max(1.0) as u32;
    let turn = duration / turns;
    let sent_per_turn = (rate * turn.as_secs_f64()).round() as u64;
    let (mut elapsed, mut worst_lateness) = ([Duration::ZERO; 2], Duration::ZERO);
    for number in 0..u64::from(turns) {
        // Numbered on from the turns before, so that each operation goes on through its
        // callers instead of starting over at every turn.
        let offset = number * sent_per_turn;
        let op = first.clone();
        let (took, lateness) =
            open_loop(rate, turn, recorders[0].clone(), move |i| op(offset + i)).await;
        elapsed[0] += took;
        worst_lateness = worst_lateness.max(lateness);
        let op = second.clone();
        let (took, lateness) =
            open_loop(rate, turn, recorders[1].clone(), move |i| op(offset + i)).await;
        elapsed[1] += took;
        worst_lateness = worst_lateness.max(lateness);
    }
    let [first, second] = [0, 1].map(|index| {
        let recorder = std::mem::take(&mut *recorders[index].lock().unwrap());
        print!("{}", recorder.table(elapsed[index]));
        (recorder, elapsed[index])
    });
    println!("  dispatcher's worst lateness {:.2} ms", ms(worst_lateness));
    [first, second]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turns_alternate_the_two_operations_each_sending_its_whole_share_numbered_on() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (first_sent, second_sent) = (sent.clone(), sent.clone());
        let [(first, _), (second, _)] = at_rate_in_turns(
            200.0,
            Duration::from_millis(200),
            Duration::from_millis(50),
            move |i| {
                first_sent.lock().unwrap().push(("first", i));
                async { ("first", None) }
            },
            move |i| {
                second_sent.lock().unwrap().push(("second", i));
                async { ("second", None) }
            },
        )
        .await;
        assert_eq!(first.op("first").ok_count(), 40);
        assert_eq!(second.op("second").ok_count(), 40);
        let sent = sent.lock().unwrap();
        for (turn, requests) in sent.chunks(10).enumerate() {
            let expected = if turn % 2 == 0 { "first" } else { "second" };
            let mut numbers: Vec<u64> = requests
                .iter()
                .map(|(op, number)| {
                    assert_eq!(*op, expected, "turn {turn}");
                    *number
                })
                .collect();
            numbers.sort_unstable();
            let first_number = (turn as u64 / 2) * 10;
            assert_eq!(
                numbers,
                (first_number..first_number + 10).collect::<Vec<_>>()
            );
        }
        assert_eq!(sent.len(), 80);
    }
}
