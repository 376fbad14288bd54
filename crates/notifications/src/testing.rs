//! A small SMTP server for tests: it speaks enough SMTP for lettre (greeting, EHLO/HELO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every message it accepts, and can be
//! stopped and started again on the same port, which is how tests take "the mail
//! server" down.
//!
//! ```no_run
//! # async fn example() {
//! use access_notifications::testing::SmtpSink;
//!
//! let sink = SmtpSink::start().await;
//! // ... ACCESS_SMTP_URL = sink.url() ...
//! let messages = sink.wait_for(3, std::time::Duration::from_secs(10)).await;
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// One message as the sink received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub recipients: Vec<String>,
    /// Headers and body as sent, lines joined by `\n`, dot-stuffing undone.
    pub data: String,
}

impl Received {
    /// The first value of a header, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut lines = self.data.lines().take_while(|line| !line.is_empty());
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let first = lines.find(|line| line.to_ascii_lowercase().starts_with(&prefix))?;
        let mut value = first[prefix.len()..].trim().to_string();
        for line in lines.take_while(|line| line.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(line.trim());
        }
        Some(value)
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The text after the headers with every run of whitespace made one space, so that a
    /// test finds a phrase however the lines were wrapped.
    pub fn body_words(&self) -> String {
        let body = self.data.split_once("\n\n").map_or("", |(_, body)| body);
        body.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// What the sink answers to RCPT for a recipient, to play a server that refuses some.
#[derive(Clone, Debug, Default)]
pub struct SinkRules {
    /// Recipients containing this text are refused for good (550).
    pub refuse_recipients_containing: Option<String>,
}

pub struct SmtpSink {
    address: SocketAddr,
    messages: Arc<Mutex<Vec<Received>>>,
    received: watch::Sender<usize>,
    connections: Mutex<Option<JoinSet<()>>>,
}

impl SmtpSink {
    /// A sink on a free port of the loopback interface.
    pub async fn start() -> SmtpSink {
        Self::start_with(SinkRules::default()).await
    }

    pub async fn start_with(rules: SinkRules) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        Self::serve(listener, rules)
    }

    /// A sink on `address`, e.g. that of a sink stopped before.
    pub async fn start_on(address: SocketAddr) -> std::io::Result<SmtpSink> {
        Ok(Self::serve(
            TcpListener::bind(address).await?,
            SinkRules::default(),
        ))
    }

    fn serve(listener: TcpListener, rules: SinkRules) -> SmtpSink {
        let address = listener.local_addr().expect("a bound listener");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let received = watch::channel(0).0;
        let mut connections = JoinSet::new();
        let (kept, signal) = (messages.clone(), received.clone());
        connections.spawn(async move {
            let mut sessions = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (kept, signal, rules) = (kept.clone(), signal.clone(), rules.clone());
                sessions.spawn(async move {
                    let _ = session(stream, &rules, &kept, &signal).await;
                });
            }
        });
        SmtpSink {
            address,
            messages,
            received,
            connections: Mutex::new(Some(connections)),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The value for `ACCESS_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Waits until at least `count` messages arrived, or `timeout` passed; answers them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let mut received = self.received.subscribe();
        let _ =
            tokio::time::timeout(timeout, received.wait_for(|received| *received >= count)).await;
        self.messages()
    }

    /// Closes the port and every open connection, as a mail server going down; answers
    /// what it received.
    pub async fn stop(&self) -> Vec<Received> {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(mut connections) = connections {
            // Ending the accepting task drops its listener and its sessions (a dropped
            // sink does the same: a JoinSet aborts its tasks).
            connections.shutdown().await;
        }
        self.messages()
    }
}

async fn session(
    stream: TcpStream,
    rules: &SinkRules,
    messages: &Mutex<Vec<Received>>,
    received: &watch::Sender<usize>,
) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    writer.write_all(b"220 sink ESMTP\r\n").await?;
    let mut mail_from = String::new();
    let mut recipients = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink\r\n",
            "MAIL" => {
                mail_from = argument(&line);
                recipients.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                let recipient = argument(&line);
                let refused = rules
                    .refuse_recipients_containing
                    .as_deref()
                    .is_some_and(|text| recipient.contains(text));
                if refused {
                    b"550 no such mailbox\r\n"
                } else {
                    recipients.push(recipient);
                    b"250 OK\r\n"
                }
            }
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n").await?;
                let mut data = Vec::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    let line = line.strip_prefix('.').unwrap_or(&line);
                    data.push(line.to_string());
                }
                let count = {
                    let mut kept = messages
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    kept.push(Received {
                        mail_from: mail_from.clone(),
                        recipients: std::mem::take(&mut recipients),
                        data: data.join("\n"),
                    });
                    kept.len()
                };
                received.send_replace(count);
                b"250 accepted\r\n"
            }
            "RSET" | "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                writer.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        writer.write_all(reply).await?;
    }
    Ok(())
}

/// The address of `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn argument(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or_else(String::new, |(address, _)| address.to_string())
}
