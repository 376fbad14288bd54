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
        Ok(parse_lag(&self.metrics().await?))
    }

    async fn metrics(&self) -> Result<String, String> {
        let (status, text) = self.gql().get("/metrics").await?;
        if status != 200 {
            return Err(format!("/metrics answered {status}"));
        }
        Ok(text)
    }

    /// The `access_append_*` counters, from /metrics, with when they were read.
    pub async fn append_counters(&self) -> Result<AppendCounters, String> {
        let text = self.metrics().await?;
        AppendCounters::parse(&text, Instant::now())
            .ok_or_else(|| "no access_append_* series in /metrics".to_string())
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

/// CPU time (user and system) used so far, in the kernel's clock ticks of 10 ms: by the
/// server, by every PostgreSQL process, by this load tool, and by the whole machine.
/// The difference of two is what a measured phase cost, a figure the machine's speed
/// from run to run moves less than it moves a rate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTicks {
    pub server: u64,
    pub postgres: u64,
    pub load_tool: u64,
    pub machine_busy: u64,
    pub machine_total: u64,
}

/// `/proc` counts in USER_HZ, which Linux fixes at 100 for every program.
const TICK: Duration = Duration::from_millis(10);

impl CpuTicks {
    pub fn now(server: u32) -> CpuTicks {
        let (machine_busy, machine_total) = machine_ticks().unwrap_or_default();
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| process_ticks(pid).filter(|(name, _)| name == "postgres"))
            .map(|(_, ticks)| ticks)
            .sum();
        CpuTicks {
            server: process_ticks(server).map_or(0, |(_, ticks)| ticks),
            postgres,
            load_tool: process_ticks(std::process::id()).map_or(0, |(_, ticks)| ticks),
            machine_busy,
            machine_total,
        }
    }

    /// What was used since `before`, per command: the server's, PostgreSQL's and the load
    /// tool's CPU time, and the share of the machine's cores that was busy.
    pub fn per_command(self, before: CpuTicks, commands: u64) -> CpuPerCommand {
        let per = |after: u64, before: u64| {
            TICK * after.saturating_sub(before) as u32 / commands.max(1) as u32
        };
        let total = self
            .machine_total
            .saturating_sub(before.machine_total)
            .max(1);
        CpuPerCommand {
            server: per(self.server, before.server),
            postgres: per(self.postgres, before.postgres),
            load_tool: per(self.load_tool, before.load_tool),
            busy: self.machine_busy.saturating_sub(before.machine_busy) as f64 / total as f64,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuPerCommand {
    pub server: Duration,
    pub postgres: Duration,
    pub load_tool: Duration,
    /// 0 to 1, of every core.
    pub busy: f64,
}

impl std::fmt::Display for CpuPerCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |duration: Duration| duration.as_secs_f64() * 1e6;
        write!(
            f,
            "server {:.0} µs, PostgreSQL {:.0} µs, load tool {:.0} µs; cores {:.0} % busy",
            us(self.server),
            us(self.postgres),
            us(self.load_tool),
            self.busy * 100.0
        )
    }
}

/// The server's counts of its grouped appends (`access_append_*` in /metrics), read at
/// `at`. Two readings around a measured phase say whether the appends' task was the
/// limit (busy nearly all the time), and if so what bounded the rate: the commands each
/// group carried and the time each group took (docs/performance.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppendCounters {
    pub groups: f64,
    pub commands: f64,
    pub busy_seconds: f64,
    pub at: Instant,
}

impl AppendCounters {
    pub fn parse(metrics: &str, at: Instant) -> Option<AppendCounters> {
        let series = |name: &str| {
            metrics.lines().find_map(|line| {
                let (series, value) = line.split_once(' ')?;
                (series == name).then(|| value.trim().parse::<f64>().ok())?
            })
        };
        Some(AppendCounters {
            groups: series("access_append_groups_total")?,
            commands: series("access_append_group_commands_total")?,
            busy_seconds: series("access_append_busy_seconds_total")?,
            at,
        })
    }

    /// What happened between `before` and this reading.
    pub fn since(self, before: AppendCounters) -> Grouping {
        let groups = (self.groups - before.groups).max(0.0);
        let busy = (self.busy_seconds - before.busy_seconds).max(0.0);
        let wall = self.at.saturating_duration_since(before.at).as_secs_f64();
        Grouping {
            commands_a_group: (self.commands - before.commands).max(0.0) / groups.max(1.0),
            time_a_group: Duration::from_secs_f64(busy / groups.max(1.0)),
            busy: if wall > 0.0 { busy / wall } else { 0.0 },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grouping {
    pub commands_a_group: f64,
    /// The appends' task's time per group: the group's chain.
    pub time_a_group: Duration,
    /// The share of the time the appends' task was writing, 0 to 1.
    pub busy: f64,
}

impl std::fmt::Display for Grouping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} commands a group, {:.2} ms a group; the appends' task busy {:.0} % of the time",
            self.commands_a_group,
            self.time_a_group.as_secs_f64() * 1e3,
            self.busy * 100.0
        )
    }
}

/// A process's name and its user and system ticks, from `/proc/PID/stat`.
fn process_ticks(pid: u32) -> Option<(String, u64)> {
    parse_process_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The name sits in parentheses and may hold spaces and parentheses itself, so the fields
/// are counted from the last `)`: utime and stime are the 14th and 15th fields.
fn parse_process_ticks(stat: &str) -> Option<(String, u64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// The machine's busy and total ticks over every core, from `/proc/stat`: idle and
/// waiting for the disk count as not busy.
fn machine_ticks() -> Option<(u64, u64)> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    // counted in user time already.
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle, total))
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
    fn a_process_name_with_spaces_and_parentheses_does_not_shift_the_ticks() {
        let stat = "4242 (tokio rt) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 31 0 0 20 0 9 0 1234 5678 99";
        assert_eq!(
            parse_process_ticks(stat),
            Some(("tokio rt) (x)".to_string(), 281))
        );
    }

    #[test]
    fn the_machine_is_busy_except_when_idle_or_waiting_for_the_disk() {
        let stat = "cpu  100 5 20 300 40 1 2 3 0 0\ncpu0 50 2 10 150 20 0 1 1 0 0\n";
        assert_eq!(parse_machine_ticks(stat), Some((131, 471)));
    }

    #[test]
    fn cpu_per_command_divides_each_difference_by_the_commands() {
        let before = CpuTicks {
            server: 100,
            postgres: 1_000,
            load_tool: 10,
            machine_busy: 500,
            machine_total: 1_000,
        };
        let after = CpuTicks {
            server: 300,
            postgres: 1_400,
            load_tool: 30,
            machine_busy: 1_250,
            machine_total: 2_000,
        };
        let cpu = after.per_command(before, 1_000);
        assert_eq!(cpu.server, Duration::from_millis(2));
        assert_eq!(cpu.postgres, Duration::from_millis(4));
        assert_eq!(cpu.load_tool, Duration::from_micros(200));
        assert_eq!(cpu.busy, 0.75);
    }

    #[test]
    fn two_readings_of_the_append_counters_give_the_groups_size_time_and_the_tasks_busy_share() {
        let start = Instant::now();
        let text = |groups: u64, commands: u64, busy: f64| {
            format!(
                "# TYPE access_append_groups_total counter\naccess_append_groups_total {groups}\n\
                 access_append_group_commands_total {commands}\n\
                 access_append_busy_seconds_total {busy}\naccess_graphql_requests_in_flight 3\n"
            )
        };
        let before = AppendCounters::parse(&text(10, 100, 1.5), start).unwrap();
        let after =
            AppendCounters::parse(&text(1_010, 16_100, 5.1), start + Duration::from_secs(4))
                .unwrap();
        let grouping = after.since(before);
        assert_eq!(grouping.commands_a_group, 16.0);
        assert_eq!(grouping.time_a_group, Duration::from_micros(3_600));
        assert!((grouping.busy - 0.9).abs() < 1e-9, "{grouping:?}");
        assert_eq!(
            grouping.to_string(),
            "16.0 commands a group, 3.60 ms a group; the appends' task busy 90 % of the time"
        );
        assert_eq!(
            AppendCounters::parse("access_append_groups_total 1\n", start),
            None
        );
    }

    #[test]
    fn reads_the_lag_gauges() {
        let text = "# TYPE access_projector_lag_events gauge\naccess_projector_lag_events{view=\"access\"} 0\naccess_projector_lag_events{view=\"support\"} 12\nother 1\n";
        assert_eq!(
            parse_lag(text),
            vec![("access".to_string(), 0), ("support".to_string(), 12)]
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
