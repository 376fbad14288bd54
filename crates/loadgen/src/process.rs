//! Child processes: the server under test (or the trivial baseline server),
//! started on port 0 and found by the line it logs, its log drained and
//! summarized, its memory read from /proc, stopped with SIGTERM.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::Gql;

/// The log filter the server runs with: warnings and errors, plus the
/// binary's own start-up line that says where it listens.
pub const SERVER_LOG_FILTER: &str = "warn,access_server=info";

/// What the harness keeps of a child's standard error.
#[derive(Debug, Default)]
pub struct LogSummary {
    pub warnings: u64,
    pub errors: u64,
    /// Distinct warning and error messages (digits blanked out): how many
    /// times each was logged and its first line as it was.
    pub distinct: Vec<(String, u64, String)>,
    /// The last lines of any kind, for when the process dies.
    pub last: VecDeque<String>,
}

impl LogSummary {
    fn add(&mut self, line: String) {
        let plain = strip_ansi(&line);
        let level = plain.split_whitespace().nth(1).unwrap_or("");
        let flagged = if level == "ERROR" || plain.contains(" ERROR ") {
            self.errors += 1;
            true
        } else if level == "WARN" || plain.contains(" WARN ") {
            self.warnings += 1;
            true
        } else {
            false
        };
        if flagged {
            let key: String = plain
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .take(160)
                .collect();
            match self.distinct.iter().position(|(seen, _, _)| *seen == key) {
                Some(index) => self.distinct[index].1 += 1,
                None if self.distinct.len() < 20 => self.distinct.push((key, 1, plain.clone())),
                None => {}
            }
        }
        if self.last.len() == 30 {
            self.last.pop_front();
        }
        self.last.push_back(plain);
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A server (or the trivial server) running as a child process. Killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub started: Instant,
    pub log: Arc<Mutex<LogSummary>>,
}

impl ServerProcess {
    /// Spawns `program args` with exactly `env` (plus PATH), waits until it logs
    /// "serving GraphQL on http://ADDR/" and keeps draining its standard error.
    pub async fn start(
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        timeout: Duration,
    ) -> Result<ServerProcess, String> {
        let program = program.to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        tokio::task::spawn_blocking(move || Self::start_blocking(&program, &args, &env, timeout))
            .await
            .map_err(|error| format!("start task: {error}"))?
    }

    fn start_blocking(
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<ServerProcess, String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, String)> = env
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone()))
            .collect();
        let mut command = tokio_free_command(program, &args, &env);
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", program.display()))?;
        let pid = child.id();
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(LogSummary::default()));
        let (found, address) = std::sync::mpsc::channel::<String>();
        let drained = log.clone();
        std::thread::spawn(move || {
            let mut announced = false;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !announced {
                    if let Some(address) = line
                        .split("serving GraphQL on http://")
                        .nth(1)
                        .and_then(|rest| rest.split('/').next())
                    {
                        announced = true;
                        let _ = found.send(address.to_string());
                    }
                }
                drained.lock().unwrap().add(line);
            }
        });
        match address.recv_timeout(timeout) {
            Ok(address) => Ok(ServerProcess {
                child,
                pid,
                url: format!("http://{address}"),
                started,
                log,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                std::thread::sleep(Duration::from_millis(100));
                let tail: Vec<String> = log.lock().unwrap().last.iter().cloned().collect();
                Err(format!(
                    "{} did not announce its address (exit: {status:?}); its last lines:\n{}",
                    program.display(),
                    tail.join("\n")
                ))
            }
        }
    }

    pub fn gql(&self) -> Gql {
        Gql::new(&self.url)
    }

    /// Polls `/readyz` until it answers 200; answers how long after spawning.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, String> {
        let gql = self.gql();
        let deadline = Instant::now() + timeout;
        loop {
            let last = match gql.get("/readyz").await {
                Ok((200, _)) => return Ok(self.started.elapsed()),
                Ok((status, body)) => format!("{status} {}", body.trim()),
                Err(error) => error,
            };
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the server exited ({status}) before it was ready"));
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after {timeout:?}: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `access_projector_lag_events` per view, from /metrics.
    pub async fn lag(&self) -> Result<Vec<(String, i64)>, String> {
        let (status, text) = self.gql().get("/metrics").await?;
        if status != 200 {
            return Err(format!("/metrics answered {status}"));
        }
        Ok(parse_lag(&text))
    }

    /// Waits until every view has applied every event; answers how long it took.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let mut last = Vec::new();
        loop {
            if let Ok(lag) = self.lag().await {
                if !lag.is_empty() && lag.iter().all(|(_, lag)| *lag == 0) {
                    return Ok(started.elapsed());
                }
                last = lag;
            }
            if started.elapsed() >= timeout {
                return Err(format!("views still behind after {timeout:?}: {last:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory (VmRSS) in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_bytes(self.pid)
    }

    /// The warnings and errors the process logged, for the report.
    pub fn log_report(&self) -> String {
        let log = self.log.lock().unwrap();
        if log.warnings == 0 && log.errors == 0 {
            return String::new();
        }
        let mut out = format!(
            "  server log: {} WARN and {} ERROR lines; by message (count, first line):\n",
            log.warnings, log.errors
        );
        for (_, count, line) in &log.distinct {
            out.push_str(&format!("    {count:>7} × {}\n", truncate(line, 400)));
        }
        out
    }

    /// SIGTERM, then waits for the exit (SIGKILL after `timeout`).
    pub async fn stop(mut self, timeout: Duration) -> Result<(), String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!("pid {} ignored SIGTERM for {timeout:?}", self.pid));
                }
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn truncate(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

pub fn parse_lag(metrics: &str) -> Vec<(String, i64)> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("access_projector_lag_events{view=\"")?;
            let (view, value) = rest.split_once("\"}")?;
            Some((view.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The machine's load averages (1, 5, 15 minutes) and its CPUs, to tell
/// whether something else was competing for them during a measurement.
pub fn machine_load() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("load average {} on {cpus} CPUs", load.join(" "))
}

pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs a command to completion with `env`; answers its standard output, or
/// an error with its standard error.
pub async fn run_to_completion(
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
) -> Result<(String, Duration), String> {
    let mut command = tokio_free_command(program, args, env);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| format!("cannot run {}: {error}", program.display()))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "{} {} failed ({}): {}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        elapsed,
    ))
}

fn tokio_free_command(program: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_lag_gauges() {
        let text = "# TYPE access_projector_lag_events gauge\naccess_projector_lag_events{view=\"access\"} 0\naccess_projector_lag_events{view=\"audit\"} 12\nother 1\n";
        assert_eq!(
            parse_lag(text),
            vec![("access".to_string(), 0), ("audit".to_string(), 12)]
        );
    }

    #[test]
    fn counts_warnings_and_errors() {
        let mut log = LogSummary::default();
        log.add("2026-01-01T00:00:00.000000Z  WARN access_api: slow".into());
        log.add("\u{1b}[2m2026-01-01T00:00:00Z\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m x: boom".into());
        log.add("2026-01-01T00:00:00Z  INFO access_server: serving".into());
        assert_eq!((log.warnings, log.errors), (1, 1));
        log.add("2026-01-01T00:00:01.000000Z  WARN access_api: slow".into());
        assert_eq!(log.distinct.len(), 2);
        assert_eq!(log.distinct[0].1, 2);
        assert_eq!(log.last.len(), 4);
    }
}
