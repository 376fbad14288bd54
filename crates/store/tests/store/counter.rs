//! The smallest aggregate that exercises the store: each command appends a chosen
//! number of events, so tests control how many events one commit carries.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    pub count: usize,
}

#[derive(Clone)]
pub enum CounterCommand {
    Add {
        events: usize,
    },
    /// Adds one event, refused until the count has reached `at_least`.
    AddOnceAtLeast {
        at_least: usize,
    },
    /// Adds one event, refused once the count has reached `below`.
    AddWhileBelow {
        below: usize,
    },
    /// As `AddWhileBelow`, decided once `gate` is free; says on `deciding` that it waits
    /// for it, so that a test can settle an append meanwhile.
    AddWhileBelowPastGate {
        below: usize,
        deciding: std::sync::Arc<tokio::sync::Notify>,
        gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    },
    Refuse,
    /// Adds one event to the state, says so on `stalled`, then never finishes: a request
    /// dropped in the middle of its turn.
    AddThenStall {
        stalled: std::sync::Arc<tokio::sync::Notify>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CounterEvent {
    Added { count: usize },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "Added".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("refused")]
pub struct Refused;

impl Aggregate for Counter {
    const TYPE: &'static str = "Counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = Refused;
    type Services = ();

    async fn handle(
        &mut self,
        command: CounterCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refused> {
        match command {
            CounterCommand::Add { events } => {
                for _ in 0..events {
                    let count = self.count + 1;
                    sink.write(CounterEvent::Added { count }, self).await;
                }
                Ok(())
            }
            CounterCommand::AddOnceAtLeast { at_least } if self.count >= at_least => {
                let count = self.count + 1;
                sink.write(CounterEvent::Added { count }, self).await;
                Ok(())
            }
            CounterCommand::AddWhileBelow { below } if self.count < below => {
                let count = self.count + 1;
                sink.write(CounterEvent::Added { count }, self).await;
                Ok(())
            }
            CounterCommand::AddWhileBelowPastGate {
                below,
                deciding,
                gate,
            } => {
                deciding.notify_one();
                drop(gate.lock().await);
                if self.count >= below {
                    return Err(Refused);
                }
                let count = self.count + 1;
                sink.write(CounterEvent::Added { count }, self).await;
                Ok(())
            }
            CounterCommand::AddThenStall { stalled } => {
                let count = self.count + 1;
                sink.write(CounterEvent::Added { count }, self).await;
                stalled.notify_one();
                std::future::pending().await
            }
            CounterCommand::AddOnceAtLeast { .. }
            | CounterCommand::AddWhileBelow { .. }
            | CounterCommand::Refuse => Err(Refused),
        }
    }

    fn apply(&mut self, event: CounterEvent) {
        match event {
            CounterEvent::Added { count } => self.count = count,
        }
    }
}
