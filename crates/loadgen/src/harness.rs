//! The workloads: each sets up its own database, reference data and server
//! process, drives it, prints its per-operation table and answers the rows of
//! the summary table; `all` runs them with the baselines.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{
    self, token, Gql, APPROVE, AUTHORIZE, DENY, MANAGE_ACCESS, PENDING_REQUESTS, REQUEST_ROLE,
    REVOKE, TRIVIAL,
};
use crate::db::{self, Kind, TestDatabase};
use crate::drive::{at_rate_in_turns, closed_loop, open_loop, Sent};
use crate::history::{self, ManyOrganizations};
use crate::process::{self, CpuTicks, ServerProcess, SERVER_LOG_FILTER};
use crate::reference::{self, Practice, Reference, Size};
use crate::stats::{ms, OpStats, Recorder};

#[derive(Clone, Debug)]
pub struct Options {
    /// The server binary (`target/release/access-server`).
    pub server: PathBuf,
    /// Admin URL of the PostgreSQL where databases are created and dropped.
    pub postgres: String,
    pub database: Kind,
    pub seconds: u64,
    pub clients: usize,
    /// Organizations (practices) of (a).
    pub organizations: usize,
    /// Users of the hot registry seeded before (b) is measured.
    pub hot_users: usize,
    /// The constant rate of `authorize` in (c).
    pub rate: f64,
    pub history_events: usize,
    pub rebuild_events: usize,
    pub startup_organizations: usize,
    pub startup_clinicians: usize,
    pub minutes: f64,
    pub soak_rate: f64,
    pub report_every: u64,
    /// The server's `ACCESS_CACHE_EVENTS`, when not its default.
    pub cache_events: Option<usize>,
}

impl Options {
    pub fn defaults(server: PathBuf) -> Options {
        Options {
            server,
            postgres: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".to_string(),
            database: Kind::Postgres,
            seconds: 10,
            clients: 32,
            organizations: 1000,
            hot_users: 2000,
            rate: 5000.0,
            history_events: 100_000,
            rebuild_events: 1_000_000,
            startup_organizations: 100_000,
            startup_clinicians: 500_000,
            minutes: 30.0,
            soak_rate: 250.0,
            report_every: 60,
            cache_events: None,
        }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

/// The trivial handler's operation at `authorize`'s constant rate.
const TRIVIAL_AT_RATE: &str = "trivial POST /graphql at a constant rate";

/// How long `authorize` and the trivial handler each run at that rate before the other
/// takes its turn.
const AT_RATE_TURN: Duration = Duration::from_secs(1);

/// An open-loop figure: the p99, p50 and worst latency, the rate done and the errors.
fn at_rate_figure(stats: &OpStats, elapsed: Duration) -> String {
    let summary = stats.summary();
    format!(
        "{:.2} ms (p50 {:.2}, max {:.1}; {:.0} req/s done, {} errors)",
        ms(summary.p99),
        ms(summary.p50),
        ms(summary.max),
        stats.ok_count() as f64 / elapsed.as_secs_f64(),
        stats.error_count()
    )
}

/// One line of the summary table.
#[derive(Clone, Debug)]
pub struct Row {
    pub workload: String,
    pub figure: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub met: String,
}

impl Row {
    fn new(workload: impl Into<String>, figure: impl Into<String>) -> Row {
        Row {
            workload: workload.into(),
            figure: figure.into(),
            baseline: "–".into(),
            ratio: "–".into(),
            target: "–".into(),
            met: "–".into(),
        }
    }

    fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.met = if met { "yes" } else { "**no**" }.into();
        self
    }

    /// A baseline to read the figure by, with no ratio to it.
    fn beside(mut self, baseline: impl Into<String>) -> Row {
        self.baseline = baseline.into();
        self
    }

    fn against(mut self, baseline: impl Into<String>, ratio: f64) -> Row {
        self.baseline = baseline.into();
        self.ratio = format!("{ratio:.2}");
        self
    }

    pub fn failed_row(workload: &str, error: &str) -> Row {
        let mut row = Row::new(
            workload,
            format!("FAILED: {}", process::truncate(error, 200)),
        );
        row.met = "**no**".into();
        row
    }
}

pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | figure | baseline | ratio | target | met |\n|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.workload,
            row.figure.replace('|', "/").replace('\n', " "),
            row.baseline,
            row.ratio,
            row.target,
            row.met
        );
    }
    out
}

/// A server under test on its own database and reference data.
struct Deployment {
    database: Option<TestDatabase>,
    server: Option<ServerProcess>,
    secret: String,
    reference: Reference,
}

impl Deployment {
    fn server(&self) -> &ServerProcess {
        self.server.as_ref().expect("a running server")
    }

    fn gql(&self) -> Gql {
        self.server().gql()
    }

    fn url(&self) -> String {
        self.database
            .as_ref()
            .expect("a database")
            .url()
            .to_string()
    }

    /// Prints what the server logged, stops it and drops the database.
    async fn finish(mut self) {
        self.stop_server().await;
        if let Some(database) = self.database.take() {
            database.drop_database().await;
        }
        let _ = std::fs::remove_file(&self.reference.path);
    }

    async fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            print!("{}", server.log_report());
            if let Err(error) = server.stop(Duration::from_secs(60)).await {
                println!("  warning: {error}");
            }
        }
    }
}

pub struct Harness {
    pub options: Options,
    /// The loadgen binary itself, for the trivial server.
    pub exe: PathBuf,
    /// Temporary files (reference data, SQLite databases, pgbench script).
    pub dir: PathBuf,
    /// Keeps person ids of one run apart from another's.
    pub run: String,
}

impl Harness {
    pub fn new(options: Options) -> Result<Harness, String> {
        let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
        let dir = std::env::temp_dir().join(format!("access-loadgen-{run}"));
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let exe = std::env::current_exe().map_err(|error| error.to_string())?;
        if !options.server.exists() {
            return Err(format!(
                "no server binary at {}: run `cargo build --release` first (or pass --server PATH)",
                options.server.display()
            ));
        }
        Ok(Harness {
            options,
            exe,
            dir,
            run,
        })
    }

    pub fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn server_env(
        &self,
        database_url: &str,
        secret: &str,
        reference: &Reference,
    ) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("ACCESS_LISTEN", "127.0.0.1:0".to_string()),
            ("DATABASE_URL", database_url.to_string()),
            ("ACCESS_JWT_SECRET", secret.to_string()),
            (
                "ACCESS_REFERENCE_DATA",
                reference.path.display().to_string(),
            ),
            ("RUST_LOG", SERVER_LOG_FILTER.to_string()),
        ];
        if let Some(events) = self.options.cache_events {
            env.push(("ACCESS_CACHE_EVENTS", events.to_string()));
        }
        env
    }

    async fn start_server(
        &self,
        database_url: &str,
        secret: &str,
        reference: &Reference,
    ) -> Result<ServerProcess, String> {
        ServerProcess::start(
            &self.options.server,
            &["serve"],
            &self.server_env(database_url, secret, reference),
            Duration::from_secs(600),
        )
        .await
    }

    /// A fresh database and reference data of `size`; the server started on
    /// them and ready.
    /// Runs `workload` on a fresh deployment, torn down whatever the outcome.
    async fn on_fresh_deployment(
        &self,
        kind: Kind,
        label: &str,
        size: Size,
        workload: impl AsyncFnOnce(&mut Deployment) -> Result<Vec<Row>, String>,
    ) -> Result<Vec<Row>, String> {
        let mut deployment = self.deploy(kind, label, size).await?;
        let result = workload(&mut deployment).await;
        deployment.finish().await;
        result
    }

    async fn deploy(&self, kind: Kind, label: &str, size: Size) -> Result<Deployment, String> {
        let reference = reference::write(&self.dir, label, size)?;
        let database = TestDatabase::create(kind, &self.options.postgres, &self.dir, label).await?;
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let mut deployment = Deployment {
            database: Some(database),
            server: None,
            secret,
            reference,
        };
        match self
            .start_server(&deployment.url(), &deployment.secret, &deployment.reference)
            .await
        {
            Ok(mut server) => {
                let ready = server.wait_ready(Duration::from_secs(300)).await;
                deployment.server = Some(server);
                if let Err(error) = ready {
                    deployment.finish().await;
                    return Err(error);
                }
            }
            Err(error) => {
                deployment.finish().await;
                return Err(error);
            }
        }
        Ok(deployment)
    }

    /// Starts the deployment's server again (after events were inserted with it
    /// stopped), waits for /readyz and for every view to catch up.
    async fn restart_server(
        &self,
        deployment: &mut Deployment,
    ) -> Result<(Duration, Duration), String> {
        let mut server = self
            .start_server(&deployment.url(), &deployment.secret, &deployment.reference)
            .await?;
        let ready = server.wait_ready(Duration::from_secs(1800)).await;
        deployment.server = Some(server);
        let ready = ready?;
        let caught_up = deployment
            .server()
            .wait_caught_up(Duration::from_secs(1800))
            .await?;
        Ok((ready, caught_up))
    }

    // ---------------------------------------------------------------- baselines

    /// `pgbench` with the clients, two threads, a one-row INSERT shaped like an
    /// event into a scratch table of a scratch database. Answers TPS.
    pub async fn pgbench(&self) -> Result<(f64, Vec<Row>), String> {
        println!(
            "\n## baseline: pgbench, one-row event-shaped INSERT, {} clients, -j 2, {} s",
            self.options.clients, self.options.seconds
        );
        let database =
            TestDatabase::create(Kind::Postgres, &self.options.postgres, &self.dir, "pgbench")
                .await?;
        let result = async {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(database.url())
                .await
                .map_err(|error| error.to_string())?;
            sqlx::raw_sql(
                "CREATE TABLE scratch_events (aggregate_type text NOT NULL, aggregate_id text NOT NULL,
                    sequence bigint NOT NULL, event_type text NOT NULL, event_version text NOT NULL,
                    payload json NOT NULL, metadata json NOT NULL, position bigserial NOT NULL,
                    PRIMARY KEY (aggregate_type, aggregate_id, sequence));
                 CREATE UNIQUE INDEX scratch_events_position ON scratch_events (position);
                 CREATE SEQUENCE scratch_sequence;",
            )
            .execute(&mut connection)
            .await
            .map_err(|error| error.to_string())?;
            let _ = connection.close().await;
            let payload = r#"{"RoleRequested":{"at":"2026-11-01T12:00:00.000000Z","path":"SECURITY_OFFICIAL_APPROVAL","person":"person-00000000","request_id":"2f1c7d8e-1b2a-4c3d-9e8f-0a1b2c3d4e5f","role":"STAFF_USER"}}"#;
            let script = self.dir.join("pgbench-insert.sql");
            std::fs::write(
                &script,
                format!(
                    "INSERT INTO scratch_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                     VALUES ('Organization', 'practice:' || :client_id, nextval('scratch_sequence'), 'RoleRequested', '1.0', '{payload}', '{{}}');\n"
                ),
            )
            .map_err(|error| error.to_string())?;
            let clients = self.options.clients.to_string();
            let seconds = self.options.seconds.to_string();
            let script = script.display().to_string();
            let (out, _) = process::run_to_completion(
                std::path::Path::new("pgbench"),
                &["-n", "-c", &clients, "-j", "2", "-T", &seconds, "-f", &script, database.url()],
                &[],
            )
            .await?;
            let tps = out
                .lines()
                .find(|line| line.starts_with("tps = "))
                .and_then(|line| line.trim_start_matches("tps = ").split_whitespace().next())
                .and_then(|number| number.parse::<f64>().ok())
                .ok_or_else(|| format!("no tps in pgbench's output:\n{out}"))?;
            for line in out.lines().filter(|line| line.starts_with("latency") || line.starts_with("tps")) {
                println!("  {line}");
            }
            Ok::<f64, String>(tps)
        }
        .await;
        database.drop_database().await;
        let tps = result?;
        Ok((
            tps,
            vec![Row::new(
                "baseline: pgbench one-row INSERT (TPS)",
                format!("{tps:.0} TPS"),
            )],
        ))
    }

    /// The trivial axum server driven by the same client and clients: the
    /// HTTP ceiling in req/s.
    pub async fn http_ceiling(&self) -> Result<(f64, Vec<Row>), String> {
        println!(
            "\n## baseline: trivial axum handler (HTTP ceiling), {} clients, {} s",
            self.options.clients, self.options.seconds
        );
        let server = self.trivial_server().await?;
        let gql = server.gql();
        let (recorder, elapsed) = closed_loop(
            self.options.clients,
            self.options.duration(),
            |_, deadline| {
                let gql = gql.clone();
                async move {
                    let mut recorder = Recorder::new();
                    while Instant::now() < deadline {
                        gql.timed(
                            &mut recorder,
                            "trivial POST /graphql",
                            None,
                            TRIVIAL,
                            Value::Null,
                        )
                        .await;
                    }
                    recorder
                }
            },
        )
        .await;
        print!("{}", recorder.table(elapsed));
        let _ = server.stop(Duration::from_secs(5)).await;
        let rate = recorder.op("trivial POST /graphql").ok_count() as f64 / elapsed.as_secs_f64();
        Ok((
            rate,
            vec![Row::new(
                "baseline: trivial axum handler (HTTP ceiling)",
                format!("{rate:.0} req/s"),
            )],
        ))
    }

    /// `loadgen trivial-server` as a child process, on any free port.
    async fn trivial_server(&self) -> Result<ServerProcess, String> {
        ServerProcess::start(
            &self.exe,
            &["trivial-server"],
            &[("ACCESS_LISTEN", "127.0.0.1:0".to_string())],
            Duration::from_secs(30),
        )
        .await
    }

    // ---------------------------------------------------------------- (a) spread

    pub async fn spread(&self, kind: Kind, pgbench_tps: Option<f64>) -> Result<Vec<Row>, String> {
        let label = match kind {
            Kind::Postgres => "PostgreSQL",
            Kind::Sqlite => "SQLite",
        };
        let o = &self.options;
        println!(
            "\n## (a) spread on {label}: first-SO requests (valid proof), staff requests and approvals over {} organizations, {} clients, {} s",
            o.organizations, o.clients, o.seconds
        );
        let deployment = self
            .deploy(kind, "spread", Size::practices(o.organizations))
            .await?;
        let gql = deployment.gql();
        let secret = deployment.secret.clone();
        let practices: Vec<Practice> = deployment
            .reference
            .practices
            .iter()
            .take(o.organizations)
            .cloned()
            .collect();
        let clients = o.clients;
        let run = self.run.clone();
        let wal_before = match kind {
            Kind::Postgres => db::wal_written(&deployment.url()).await.ok(),
            Kind::Sqlite => None,
        };
        let server = deployment.server().pid;
        let groups_before = deployment.server().append_counters().await;
        let cpu_before = CpuTicks::now(server);
        let (recorder, elapsed) = closed_loop(clients, o.duration(), |client, deadline| {
            let mine: Vec<Practice> = practices
                .iter()
                .skip(client)
                .step_by(clients)
                .cloned()
                .collect();
            spread_client(
                gql.clone(),
                secret.clone(),
                mine,
                deadline,
                format!("{run}-sp{client}"),
            )
        })
        .await;
        let cpu_after = CpuTicks::now(server);
        let groups_after = deployment.server().append_counters().await;
        let wal_after = match wal_before {
            Some(_) => db::wal_written(&deployment.url()).await.ok(),
            None => None,
        };
        print!("{}", recorder.table(elapsed));
        deployment.finish().await;
        let all = recorder.pooled(|_| true);
        let summary = all.summary();
        let rate = all.ok_count() as f64 / elapsed.as_secs_f64();
        println!(
            "  commands/s {rate:.0}, p99 {:.1} ms, errors {:?}",
            ms(summary.p99),
            recorder.errors_by_code()
        );
        let cpu = cpu_after.per_command(cpu_before, all.ok_count());
        println!("  CPU per command: {cpu}");
        let cpu_row = Row::new(
            format!("(a) spread CPU per command ({label})"),
            cpu.to_string(),
        );
        let grouping = match (groups_before, groups_after) {
            (Ok(before), Ok(after)) => after.since(before).to_string(),
            // Informative only, as a server built before the series has none.
            (Err(error), _) | (_, Err(error)) => format!("not read: {error}"),
        };
        println!("  appends: {grouping}");
        let grouping_row = Row::new(format!("(a) spread appends ({label})"), grouping);
        let wal_row = wal_before.zip(wal_after).map(|(before, after)| {
            let commands = all.ok_count().max(1) as f64;
            let records = (after.0 - before.0) as f64 / commands;
            let bytes = (after.1 - before.1) as f64 / commands;
            println!("  PostgreSQL WAL per command: {records:.1} records, {bytes:.0} bytes");
            Row::new(
                "(a) spread WAL per command (PostgreSQL)",
                format!("{records:.1} records, {bytes:.0} bytes"),
            )
        });
        let mut rows = Vec::new();
        match kind {
            Kind::Postgres => {
                let mut row =
                    Row::new("(a) spread commands/s (PostgreSQL)", format!("{rate:.0}/s"));
                if let Some(before) = pgbench_tps {
                    // The machine's speed drifts within minutes: the ratio is taken
                    // against pgbench on both sides of the measured phase, so that a
                    // drift during it moves both figures alike.
                    let (after, after_rows) = self.pgbench().await?;
                    rows.extend(after_rows.into_iter().map(|row| Row {
                        workload: "baseline: pgbench one-row INSERT (TPS), after (a)".into(),
                        ..row
                    }));
                    let (tps, baseline) = pgbench_around(before, after);
                    let ratio = rate / tps;
                    println!("  commands/s ÷ {baseline}: {ratio:.3}");
                    row = row.against(baseline, ratio).target("≥ 0.25", ratio >= 0.25);
                }
                rows.push(row);
            }
            Kind::Sqlite => rows.push(
                Row::new("(a) spread commands/s (SQLite)", format!("{rate:.0}/s"))
                    .target("≥ 1,000/s", rate >= 1000.0),
            ),
        }
        rows.push(Row::new(
            format!("(a) spread p99 ({label})"),
            format!("{:.1} ms", ms(summary.p99)),
        ));
        rows.push(errors_row(
            &format!("(a) spread errors ({label})"),
            &recorder,
            None,
        ));
        rows.push(cpu_row);
        rows.push(grouping_row);
        rows.extend(wal_row);
        Ok(rows)
    }

    // ---------------------------------------------------------------- (b) hot

    pub async fn hot(&self) -> Result<Vec<Row>, String> {
        let o = &self.options;
        println!(
            "\n## (b) hot registry: {} writers (each with its own Security Official) on one registry seeded with {} users, {} s",
            o.clients, o.hot_users, o.seconds
        );
        self.on_fresh_deployment(
            Kind::Postgres,
            "hot",
            Size::practices(100),
            async |deployment| self.hot_on(deployment).await,
        )
        .await
    }

    async fn hot_on(&self, deployment: &mut Deployment) -> Result<Vec<Row>, String> {
        let o = &self.options;
        let secret = deployment.secret.clone();
        let registry = deployment
            .reference
            .registries
            .first()
            .cloned()
            .ok_or("no approved registry in the reference data")?;
        let prefix = format!("{}-hot", self.run);
        // The registry's history, written with the server stopped: the first
        // Security Official by proof, the others approved by it, thousands of users.
        deployment.stop_server().await;
        let (rows, security_officials) =
            history::hot_registry(&registry, &prefix, o.clients.saturating_sub(1), o.hot_users);
        let url = deployment.url();
        let mut chunks = rows.chunks(10_000);
        let (inserted, took) = db::bulk_insert(
            &url,
            || chunks.next().map(<[_]>::to_vec).unwrap_or_default(),
            |_| {},
        )
        .await?;
        println!(
            "  {} on {}: {} Security Officials and {} users, {inserted} events inserted in {:.1} s",
            registry.id,
            url.rsplit('/').next().unwrap_or(""),
            security_officials.len(),
            o.hot_users,
            took.as_secs_f64()
        );
        let (ready, caught_up) = self.restart_server(deployment).await?;
        println!(
            "  server ready {:.2} s after spawn; views caught up {:.2} s later",
            ready.as_secs_f64(),
            caught_up.as_secs_f64()
        );
        let gql = deployment.gql();
        let sos: Vec<String> = security_officials
            .iter()
            .map(|person| token(&secret, person, &[]))
            .collect();
        let (recorder, elapsed) = closed_loop(sos.len(), o.duration(), |writer, deadline| {
            hot_writer(
                gql.clone(),
                secret.clone(),
                registry.id.clone(),
                sos[writer].clone(),
                format!("{prefix}-w{writer}"),
                deadline,
            )
        })
        .await;
        print!("{}", recorder.table(elapsed));
        let all = recorder.pooled(|_| true);
        let rate = all.ok_count() as f64 / elapsed.as_secs_f64();
        let failures = recorder.total_errors();
        println!(
            "  commands/s {rate:.0}, p99 {:.1} ms, client-visible failures {failures} {:?}",
            ms(all.summary().p99),
            recorder.errors_by_code()
        );
        Ok(vec![
            Row::new("(b) hot registry commands/s", format!("{rate:.0}/s"))
                .target("≥ 1,000/s", rate >= 1000.0),
            Row::new(
                "(b) hot registry p99",
                format!("{:.1} ms", ms(all.summary().p99)),
            ),
            errors_row(
                "(b) hot registry client-visible failures",
                &recorder,
                Some(0),
            ),
        ])
    }

    // ---------------------------------------------------------------- (c) reads

    pub async fn reads(&self, ceiling: Option<f64>) -> Result<Vec<Row>, String> {
        let o = &self.options;
        println!(
            "\n## (c) reads: manageAccess and pendingRequests ({} clients, {} s each), authorize at {:.0}/s for {} s in turns with the trivial handler",
            o.clients, o.seconds, o.rate, o.seconds
        );
        let deployment = self
            .deploy(
                o.database,
                "reads",
                Size::practices((o.clients * 8).max(100)),
            )
            .await?;
        let result = self.reads_on(&deployment, ceiling).await;
        deployment.finish().await;
        result
    }

    async fn reads_on(
        &self,
        deployment: &Deployment,
        ceiling: Option<f64>,
    ) -> Result<Vec<Row>, String> {
        let o = &self.options;
        let gql = deployment.gql();
        let started = Instant::now();
        let seeded = seed(
            &gql,
            &deployment.secret,
            &deployment.reference.practices,
            o.clients,
            8,
            5,
            3,
            &format!("{}-rd", self.run),
        )
        .await;
        println!(
            "  seeded {} Security Officials of {} organizations, {} staff grants, {} pending requests in {:.1} s ({} failures {:?})",
            seeded.sos.len(),
            seeded.sos.iter().map(|so| so.orgs.len()).sum::<usize>(),
            seeded.staff.len(),
            seeded.pending,
            started.elapsed().as_secs_f64(),
            seeded.recorder.total_errors(),
            seeded.recorder.errors_by_code()
        );
        if seeded.sos.is_empty() || seeded.staff.is_empty() {
            return Err("seeding failed: no Security Official or staff user".into());
        }
        let _ = deployment
            .server()
            .wait_caught_up(Duration::from_secs(120))
            .await;
        let mut rows = Vec::new();
        // Security Officials read their screens; staff users ask authorize
        // (closed loop: its capacity, next to the constant-rate test below).
        let officials: Vec<(String, Value)> = seeded
            .sos
            .iter()
            .map(|so| (so.token.clone(), Value::Null))
            .collect();
        let staff_callers: Vec<(String, Value)> = seeded
            .staff
            .iter()
            .map(|(bearer, org)| (bearer.clone(), json!({ "org": org })))
            .collect();
        for (op, query, callers, targeted) in [
            ("manageAccess", MANAGE_ACCESS, &officials, true),
            ("pendingRequests", PENDING_REQUESTS, &officials, true),
            ("authorize", AUTHORIZE, &staff_callers, false),
        ] {
            let (recorder, elapsed) = closed_loop(o.clients, o.duration(), |client, deadline| {
                let gql = gql.clone();
                let mine: Vec<(String, Value)> = callers
                    .iter()
                    .skip(client)
                    .step_by(o.clients)
                    .cloned()
                    .collect();
                let mine = if mine.is_empty() {
                    vec![callers[client % callers.len()].clone()]
                } else {
                    mine
                };
                async move {
                    let mut recorder = Recorder::new();
                    let mut next = 0;
                    while Instant::now() < deadline {
                        let (bearer, variables) = &mine[next % mine.len()];
                        next += 1;
                        gql.timed(&mut recorder, op, Some(bearer), query, variables.clone())
                            .await;
                    }
                    recorder
                }
            })
            .await;
            print!("{}", recorder.table(elapsed));
            let stats = recorder.op(op);
            let rate = stats.ok_count() as f64 / elapsed.as_secs_f64();
            let mut row = Row::new(
                format!("(c) {op} req/s ({} clients)", o.clients),
                format!("{rate:.0} req/s, p99 {:.1} ms", ms(stats.summary().p99)),
            );
            if let Some(ceiling) = ceiling {
                let ratio = rate / ceiling;
                row = row.against(format!("HTTP ceiling {ceiling:.0} req/s"), ratio);
                if targeted {
                    row = row.target("≥ 0.3", ratio >= 0.3);
                }
            }
            rows.push(row);
            if stats.error_count() > 0 {
                rows.push(errors_row(&format!("(c) {op} errors"), &recorder, None));
            }
        }
        // authorize at a constant rate, timed from each request's scheduled send, in
        // turns with the trivial handler at the same rate: what the load tool and the
        // machine cost any request in those same seconds.
        let trivial = self.trivial_server().await?;
        let trivial_gql = trivial.gql();
        let staff = Arc::new(seeded.staff.clone());
        let op_gql = gql.clone();
        let [(recorder, elapsed), (baseline, baseline_elapsed)] = at_rate_in_turns(
            o.rate,
            o.duration(),
            AT_RATE_TURN,
            move |i| {
                let (gql, staff) = (op_gql.clone(), staff.clone());
                async move {
                    let (bearer, org) = &staff[i as usize % staff.len()];
                    let result = gql
                        .call(Some(bearer), AUTHORIZE, json!({"org": org}))
                        .await
                        .and_then(|data| {
                            if data["authorize"]["allowed"] == Value::Bool(true) {
                                Ok(())
                            } else {
                                Err("UNEXPECTED_DENIED".to_string())
                            }
                        });
                    ("authorize", result.err())
                }
            },
            move |_| {
                let gql = trivial_gql.clone();
                async move {
                    let result = gql.call(None, TRIVIAL, Value::Null).await;
                    (TRIVIAL_AT_RATE, result.err())
                }
            },
        )
        .await;
        let _ = trivial.stop(Duration::from_secs(5)).await;
        let baseline = baseline.op(TRIVIAL_AT_RATE);
        rows.push(Row::new(
            format!(
                "baseline: trivial axum handler p99 at {:.0}/s (open loop, in turns with authorize)",
                o.rate
            ),
            at_rate_figure(&baseline, baseline_elapsed),
        ));
        let stats = recorder.op("authorize");
        let summary = stats.summary();
        let row = Row::new(
            format!("(c) authorize p99 at {:.0}/s (open loop)", o.rate),
            at_rate_figure(&stats, elapsed),
        )
        .target(
            "≤ 1 ms",
            summary.p99 <= Duration::from_millis(1) && stats.error_count() == 0,
        )
        .beside(format!(
            "trivial handler's p99 in the same turns {:.2} ms",
            ms(baseline.summary().p99)
        ));
        rows.push(row);
        Ok(rows)
    }

    // ---------------------------------------------------------------- (d) long history

    pub async fn long_history(&self) -> Result<Vec<Row>, String> {
        let o = &self.options;
        println!(
            "\n## (d) long history: one organization with {} events vs a fresh one (PostgreSQL)",
            o.history_events
        );
        self.on_fresh_deployment(
            Kind::Postgres,
            "history",
            Size::practices(50),
            async |deployment| self.long_history_on(deployment).await,
        )
        .await
    }

    async fn long_history_on(&self, deployment: &mut Deployment) -> Result<Vec<Row>, String> {
        let o = &self.options;
        let practices = deployment.reference.practices.clone();
        let (long, fresh, check) = (&practices[3], &practices[4], &practices[5]);
        let secret = deployment.secret.clone();
        let url = deployment.url();
        // What a real command writes, against what the synthesizer writes.
        let checked_rows =
            verify_serialization(&deployment.gql(), &secret, &url, check, &self.run).await?;
        println!("  serialization check: {checked_rows} rows written by the server re-serialize byte for byte");
        deployment.stop_server().await;

        let rows =
            history::single_organization(long, &format!("{}-lh", self.run), o.history_events);
        let so_person = format!("{}-lh-so", self.run);
        let mut chunks = rows.chunks(10_000);
        let (inserted, took) = db::bulk_insert(
            &url,
            || chunks.next().map(<[_]>::to_vec).unwrap_or_default(),
            |_| {},
        )
        .await?;
        println!(
            "  inserted {inserted} events for {} in {:.1} s",
            long.id,
            took.as_secs_f64()
        );

        let (ready, caught_up) = self.restart_server(deployment).await?;
        println!(
            "  server ready {:.2} s after spawn; views caught up {:.2} s later",
            ready.as_secs_f64(),
            caught_up.as_secs_f64()
        );

        let gql = deployment.gql();
        let mut setup = Recorder::new();
        let fresh_so = token(&secret, &format!("{}-fresh-so", self.run), &[]);
        checked(&gql, &mut setup, "setup", &fresh_so, REQUEST_ROLE,
            json!({"input": {"organizationId": fresh.id, "role": "SECURITY_OFFICIAL", "proof": fresh.proof()}}),
            expect_state("APPROVED")).await.ok_or_else(|| format!("fresh organization's SO not approved: {:?}", setup.errors_by_code()))?;
        let long_so = token(&secret, &so_person, &[]);
        let targets = [
            ("long", long.id.clone(), long_so),
            ("fresh", fresh.id.clone(), fresh_so),
        ];
        let mut warmup = Recorder::new();
        for (name, org, so) in &targets {
            staff_cycle(
                &gql,
                &mut warmup,
                &secret,
                org,
                so,
                &format!("{}-{name}-warm", self.run),
                name,
            )
            .await;
        }
        if warmup.total_errors() > 0 {
            return Err(format!(
                "warm-up commands failed: {:?}",
                warmup.errors_by_code()
            ));
        }
        // The first command loaded the long organization from every event, and kept a
        // snapshot. A restart empties the cache: the next first command loads it again,
        // from that snapshot.
        let replayed = first_request(&warmup, "long");
        match db::snapshot_of(&url, &long.id).await? {
            Some((sequence, bytes)) => println!(
                "  snapshot kept at event {sequence}: {:.1} MB of JSON",
                bytes as f64 / 1e6
            ),
            None => return Err("no snapshot was kept of the long organization".into()),
        }
        deployment.stop_server().await;
        self.restart_server(deployment).await?;
        let gql = deployment.gql();
        let mut reload = Recorder::new();
        let (_, long_id, long_so) = &targets[0];
        let reloaded = format!("{}-long-reload", self.run);
        staff_cycle(
            &gql,
            &mut reload,
            &secret,
            long_id,
            long_so,
            &reloaded,
            "long",
        )
        .await;
        if reload.total_errors() > 0 {
            return Err(format!(
                "reload commands failed: {:?}",
                reload.errors_by_code()
            ));
        }
        let from_snapshot = first_request(&reload, "long");
        println!(
            "  first command after a restart: {:.1} ms replaying all {} events, {:.1} ms from the snapshot",
            ms(replayed),
            o.history_events,
            ms(from_snapshot)
        );
        let mut recorder = Recorder::new();
        let deadline = Instant::now() + o.duration();
        // Each cycle has each Security Official approve one request: paced below the
        // server's budget of mutations per person, which a fast machine would pass.
        let mut pace = tokio::time::interval(LONG_HISTORY_CYCLE);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cycle = 0;
        while cycle < 5 || (Instant::now() < deadline && cycle < 1000) {
            pace.tick().await;
            for (name, org, so) in &targets {
                staff_cycle(
                    &gql,
                    &mut recorder,
                    &secret,
                    org,
                    so,
                    &format!("{}-{name}-{cycle}", self.run),
                    name,
                )
                .await;
            }
            cycle += 1;
        }
        print!("{}", recorder.table(o.duration()));
        let long_stats = recorder.pooled(|name| name.starts_with("long"));
        let fresh_stats = recorder.pooled(|name| name.starts_with("fresh"));
        let (l, f) = (long_stats.summary(), fresh_stats.summary());
        let ratio = ms(l.p50) / ms(f.p50).max(1e-9);
        println!("  command p50: long {:.2} ms, fresh {:.2} ms, ratio {ratio:.2}; p99: long {:.2} ms, fresh {:.2} ms", ms(l.p50), ms(f.p50), ms(l.p99), ms(f.p99));
        let mut rows = vec![Row::new(
            format!(
                "(d) command p50 on a {}-event organization",
                o.history_events
            ),
            format!("{:.2} ms (p99 {:.1} ms)", ms(l.p50), ms(l.p99)),
        )
        .against(format!("fresh org {:.2} ms", ms(f.p50)), ratio)
        .target("≤ 1.5", ratio <= 1.5)];
        rows.push(
            Row::new(
                "(d) first command after a restart, loading the organization from its snapshot",
                format!("{:.1} ms", ms(from_snapshot)),
            )
            .against(
                format!("replaying all its events {:.1} ms", ms(replayed)),
                ms(from_snapshot) / ms(replayed).max(1e-9),
            ),
        );
        if recorder.total_errors() > 0 {
            rows.push(errors_row("(d) long-history errors", &recorder, Some(0)));
        }
        Ok(rows)
    }

    // ---------------------------------------------------------------- (e) rebuild, (f) idle

    pub async fn rebuild(&self) -> Result<Vec<Row>, String> {
        let o = &self.options;
        println!("\n## (e) rebuild all from {} events, then (f) idle RSS of a server on that database (PostgreSQL)", o.rebuild_events);
        let organizations = (o.rebuild_events / 100).max(10);
        self.on_fresh_deployment(
            Kind::Postgres,
            "rebuild",
            Size::practices(organizations),
            async |deployment| self.rebuild_on(deployment).await,
        )
        .await
    }

    async fn rebuild_on(&self, deployment: &mut Deployment) -> Result<Vec<Row>, String> {
        let o = &self.options;
        deployment.stop_server().await;
        let url = deployment.url();
        let practices = deployment.reference.practices.clone();
        let mut many =
            ManyOrganizations::new(&practices, &format!("{}-rb", self.run), o.rebuild_events);
        let mut shown = 0;
        let (inserted, took) = db::bulk_insert(
            &url,
            || many.next_batch(10_000),
            |done| {
                if done >= shown + 200_000 {
                    shown = done;
                    println!("  inserted {done} events");
                }
            },
        )
        .await?;
        println!(
            "  inserted {inserted} events over {} organizations in {:.1} s ({:.0}/s)",
            practices.len(),
            took.as_secs_f64(),
            inserted as f64 / took.as_secs_f64()
        );
        let env = [
            ("DATABASE_URL", url.clone()),
            ("RUST_LOG", "warn".to_string()),
        ];
        let (out, took) = process::run_to_completion(&o.server, &["rebuild", "all"], &env).await?;
        for line in out.lines() {
            println!("  {line}");
        }
        let rate = inserted as f64 / took.as_secs_f64();
        println!(
            "  `access-server rebuild all`: {:.1} s wall, {rate:.0} events/s over the log",
            took.as_secs_f64()
        );
        let reported: Vec<String> = out
            .lines()
            .filter_map(|line| {
                let (view, rest) = line.split_once(':')?;
                let rate = rest.rsplit_once('(')?.1.split_whitespace().next()?;
                Some(format!("{view} {rate}/s"))
            })
            .collect();
        let mut rows = vec![Row::new(
            format!("(e) rebuild all: {inserted} events"),
            format!(
                "{rate:.0} events/s ({:.1} s; as the rebuild reports itself: {})",
                took.as_secs_f64(),
                reported.join("; ")
            ),
        )
        .target("≥ 50,000/s", rate >= 50_000.0)];

        // (f) A server on this database, once caught up, left idle.
        let (ready, caught_up) = self.restart_server(deployment).await?;
        println!(
            "  server on the {inserted}-event database: ready {:.1} s after spawn, views caught up {:.1} s later",
            ready.as_secs_f64(),
            caught_up.as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let rss = deployment.server().rss_bytes().unwrap_or(0);
        println!("  idle RSS {:.1} MB", mb(rss));
        rows.push(
            Row::new(
                format!("(f) idle RSS, server on the {inserted}-event database"),
                format!("{:.0} MB", mb(rss)),
            )
            .target("≤ 150 MB", mb(rss) <= 150.0),
        );
        Ok(rows)
    }

    // ---------------------------------------------------------------- (f) start-up

    pub async fn start_up(&self) -> Result<Vec<Row>, String> {
        let o = &self.options;
        println!(
            "\n## (f) start-up with reference data of {} organizations and {} clinicians",
            o.startup_organizations, o.startup_clinicians
        );
        let others = (o.startup_organizations / 100).max(13);
        let size = Size {
            practices: o.startup_organizations.saturating_sub(3 * others).max(4),
            registries: others,
            virtual_groups: others,
            apm_entities: others,
            clinicians: o.startup_clinicians,
        };
        let started = Instant::now();
        let reference = reference::write(&self.dir, "startup", size)?;
        let bytes = std::fs::metadata(&reference.path)
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "  generated {} organizations, {} clinicians ({:.0} MB of JSON) in {:.1} s",
            reference.organizations,
            reference.clinicians,
            mb(bytes),
            started.elapsed().as_secs_f64()
        );
        let database = TestDatabase::create(o.database, &o.postgres, &self.dir, "startup").await?;
        let mut deployment = Deployment {
            database: Some(database),
            server: None,
            secret: uuid::Uuid::new_v4().simple().to_string(),
            reference,
        };
        let result = async {
            let mut server = self
                .start_server(&deployment.url(), &deployment.secret, &deployment.reference)
                .await?;
            let ready = server.wait_ready(Duration::from_secs(300)).await;
            let rss_at_ready = server.rss_bytes().unwrap_or(0);
            deployment.server = Some(server);
            let ready = ready?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let rss_after = deployment.server().rss_bytes().unwrap_or(0);
            let rss = rss_at_ready.max(rss_after);
            println!(
                "  /readyz 200 {:.2} s after spawn; RSS {:.0} MB when ready, {:.0} MB 2 s later",
                ready.as_secs_f64(),
                mb(rss_at_ready),
                mb(rss_after)
            );
            Ok(vec![
                Row::new(
                    "(f) start-up: spawn to /readyz 200",
                    format!("{:.2} s", ready.as_secs_f64()),
                )
                .target("≤ 5 s", ready <= Duration::from_secs(5)),
                Row::new(
                    format!(
                        "(f) RSS after start ({} orgs, {} clinicians)",
                        deployment.reference.organizations, deployment.reference.clinicians
                    ),
                    format!("{:.0} MB", mb(rss)),
                )
                .target("≤ 400 MB", mb(rss) <= 400.0),
            ])
        }
        .await;
        deployment.finish().await;
        result
    }

    // ---------------------------------------------------------------- soak

    pub async fn soak(&self) -> Result<Vec<Row>, String> {
        let o = &self.options;
        let duration = Duration::from_secs_f64(o.minutes * 60.0);
        let first_so_requests = (o.soak_rate * duration.as_secs_f64() / 50.0).ceil() as usize + 10;
        let seeded_orgs = o.clients * 8;
        println!(
            "\n## soak: {:.0} req/s for {:.1} min (staff requests decided and revoked, first Security Officials, the reads of (c)), reported every {} s",
            o.soak_rate, o.minutes, o.report_every
        );
        let deployment = self
            .deploy(
                o.database,
                "soak",
                Size::practices((seeded_orgs + first_so_requests).min(300_000)),
            )
            .await?;
        let result = self.soak_on(&deployment, duration, seeded_orgs).await;
        deployment.finish().await;
        result
    }

    async fn soak_on(
        &self,
        deployment: &Deployment,
        duration: Duration,
        seeded_orgs: usize,
    ) -> Result<Vec<Row>, String> {
        let o = &self.options;
        let gql = deployment.gql();
        let secret = deployment.secret.clone();
        let seeded = seed(
            &gql,
            &secret,
            &deployment.reference.practices,
            o.clients,
            8,
            5,
            3,
            &format!("{}-sk", self.run),
        )
        .await;
        if seeded.sos.is_empty() || seeded.staff.is_empty() {
            return Err(format!(
                "seeding failed: {:?}",
                seeded.recorder.errors_by_code()
            ));
        }
        let mut organizations = Vec::new();
        for (index, so) in seeded.sos.iter().enumerate() {
            for org in &so.orgs {
                organizations.push((org.clone(), index));
            }
        }
        let state = Arc::new(SoakState {
            gql: gql.clone(),
            secret: secret.clone(),
            sos: seeded.sos.iter().map(|so| so.token.clone()).collect(),
            staff: seeded.staff.clone(),
            organizations,
            queue: Mutex::new(VecDeque::new()),
            members: Mutex::new(VecDeque::new()),
            unclaimed: Mutex::new(
                deployment
                    .reference
                    .practices
                    .iter()
                    .skip(seeded_orgs)
                    .cloned()
                    .collect(),
            ),
            run: self.run.clone(),
        });
        let window = Arc::new(Mutex::new(Recorder::new()));
        let total = Arc::new(Mutex::new(Recorder::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reporter = {
            let (window, total, stop) = (window.clone(), total.clone(), stop.clone());
            let server_pid = deployment.server().pid;
            let server_gql = gql.clone();
            let every = Duration::from_secs(o.report_every.max(1));
            tokio::spawn(async move {
                let started = Instant::now();
                let mut next = started + every;
                let mut minute = 0;
                loop {
                    while Instant::now() < next {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let elapsed = every.min(Instant::now() - (next - every));
                    next += every;
                    minute += 1;
                    let recorded = std::mem::take(&mut *window.lock().unwrap());
                    let lag = match server_gql.get("/metrics").await {
                        Ok((_, text)) => process::parse_lag(&text),
                        Err(_) => Vec::new(),
                    };
                    let rss = process::rss_bytes(server_pid).unwrap_or(0);
                    let mut line = format!(
                        "  [{minute:>3}] t={:>5.0}s RSS {:.0} MB lag {:?} |",
                        started.elapsed().as_secs_f64(),
                        mb(rss),
                        lag
                    );
                    for (op, stats) in &recorded.ops {
                        let s = stats.summary();
                        let _ = write!(
                            line,
                            " {op} p99 {:.1} ms ({:.0}/s, {} err)",
                            ms(s.p99),
                            s.count as f64 / elapsed.as_secs_f64(),
                            s.errors
                        );
                    }
                    println!("{line}");
                    total.lock().unwrap().merge(recorded);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            })
        };
        let vacuuming = self
            .vacuum_in_place_of_autovacuum(deployment, stop.clone())
            .await;
        let (elapsed, lateness) = open_loop(o.soak_rate, duration, window.clone(), move |i| {
            let state = state.clone();
            async move { state.op(i).await }
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        let _ = reporter.await;
        if let Some(vacuuming) = vacuuming {
            let _ = vacuuming.await;
        }
        let recorder = std::mem::take(&mut *total.lock().unwrap());
        println!(
            "  whole soak ({:.0} s, dispatcher's worst lateness {:.1} ms):",
            elapsed.as_secs_f64(),
            ms(lateness)
        );
        print!("{}", recorder.table(elapsed));
        let rss = deployment.server().rss_bytes().unwrap_or(0);
        let all = recorder.pooled(|_| true);
        Ok(vec![
            Row::new(
                format!("soak {:.0} req/s for {:.1} min", o.soak_rate, o.minutes),
                format!(
                    "p99 {:.1} ms over {} requests; final RSS {:.0} MB",
                    ms(all.summary().p99),
                    all.count(),
                    mb(rss)
                ),
            ),
            errors_row("soak errors", &recorder, Some(0)),
        ])
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn errors_row(workload: &str, recorder: &Recorder, target: Option<u64>) -> Row {
    let total = recorder.total_errors();
    let codes: Vec<String> = recorder
        .errors_by_code()
        .iter()
        .map(|(code, count)| format!("{code} {count}"))
        .collect();
    let figure = if codes.is_empty() {
        "0".to_string()
    } else {
        format!("{total} ({})", codes.join(", "))
    };
    let row = Row::new(workload, figure);
    match target {
        Some(limit) => row.target(format!("{limit}"), total <= limit),
        None => row,
    }
}

// -------------------------------------------------------------------- commands

/// A command whose answer `check` turns into a value or an error code; the
/// latency and outcome are recorded under `op`.
async fn checked<T>(
    gql: &Gql,
    recorder: &mut Recorder,
    op: &str,
    bearer: &str,
    query: &str,
    variables: Value,
    check: impl FnOnce(&Value) -> Result<T, String>,
) -> Option<T> {
    let started = Instant::now();
    let result = gql
        .call(Some(bearer), query, variables)
        .await
        .and_then(|data| check(&data));
    recorder.record(
        op,
        started.elapsed(),
        result.as_ref().err().map(String::as_str),
    );
    result.ok()
}

/// Two commands: `requester` asks for Staff User in `organization`, and the
/// Security Official `so` approves the request.
async fn staff_request_approved(
    gql: &Gql,
    recorder: &mut Recorder,
    requester: &str,
    so: &str,
    organization: &str,
) {
    let Some(id) = checked(
        gql,
        recorder,
        "requestRole(STAFF_USER)",
        requester,
        REQUEST_ROLE,
        json!({"input": {"organizationId": organization, "role": "STAFF_USER"}}),
        expect_state("PENDING"),
    )
    .await
    else {
        return;
    };
    checked(
        gql,
        recorder,
        "approveRoleRequest",
        so,
        APPROVE,
        json!({"id": id}),
        approved,
    )
    .await;
}

/// `requestRole` answered the expected state: answers the request's id.
fn expect_state(expected: &'static str) -> impl Fn(&Value) -> Result<String, String> {
    move |data| match client::request_of(data) {
        Some((id, state)) if state == expected => Ok(id),
        Some((_, state)) => Err(format!("UNEXPECTED_{state}")),
        None => Err("UNEXPECTED_ANSWER".into()),
    }
}

fn approved(data: &Value) -> Result<(), String> {
    match data["approveRoleRequest"]["state"].as_str() {
        Some("APPROVED") => Ok(()),
        Some(state) => Err(format!("UNEXPECTED_{state}")),
        None => Err("UNEXPECTED_ANSWER".into()),
    }
}

/// A new person asks for Staff User at `org`; its Security Official approves.
/// The latency of the staff request a [`staff_cycle`] labelled `label` began with.
fn first_request(recorder: &Recorder, label: &str) -> Duration {
    let name = format!("{label} requestRole(STAFF_USER)");
    recorder.pooled(|op| op == name).summary().p50
}

async fn staff_cycle(
    gql: &Gql,
    recorder: &mut Recorder,
    secret: &str,
    org: &str,
    so: &str,
    person: &str,
    label: &str,
) -> bool {
    let requester = token(secret, person, &[]);
    let Some(id) = checked(
        gql,
        recorder,
        &format!("{label} requestRole(STAFF_USER)"),
        &requester,
        REQUEST_ROLE,
        json!({"input": {"organizationId": org, "role": "STAFF_USER"}}),
        expect_state("PENDING"),
    )
    .await
    else {
        return false;
    };
    checked(
        gql,
        recorder,
        &format!("{label} approveRoleRequest"),
        so,
        APPROVE,
        json!({"id": id}),
        approved,
    )
    .await
    .is_some()
}

/// (a): one client's organizations, in turn: a first Security Official by
/// proof where there is none yet, then a staff request and its approval.
async fn spread_client(
    gql: Gql,
    secret: String,
    practices: Vec<Practice>,
    deadline: Instant,
    prefix: String,
) -> Recorder {
    let mut recorder = Recorder::new();
    if practices.is_empty() {
        return recorder;
    }
    let mut security_officials: Vec<Option<String>> = vec![None; practices.len()];
    let mut people = 0u64;
    let mut next = 0;
    while Instant::now() < deadline {
        let index = next % practices.len();
        next += 1;
        let practice = &practices[index];
        if security_officials[index].is_none() {
            people += 1;
            let so = token(&secret, &format!("{prefix}-{people}"), &[]);
            if checked(&gql, &mut recorder, "requestRole(SECURITY_OFFICIAL)", &so, REQUEST_ROLE,
                json!({"input": {"organizationId": practice.id, "role": "SECURITY_OFFICIAL", "proof": practice.proof()}}),
                expect_state("APPROVED")).await.is_some()
            {
                security_officials[index] = Some(so);
            }
            continue;
        }
        people += 1;
        let so = security_officials[index]
            .clone()
            .expect("a Security Official");
        let requester = token(&secret, &format!("{prefix}-{people}"), &[]);
        staff_request_approved(&gql, &mut recorder, &requester, &so, &practice.id).await;
    }
    recorder
}

/// (b): one writer on the hot registry: a new person requests Staff User and
/// the writer's Security Official approves, until the deadline.
async fn hot_writer(
    gql: Gql,
    secret: String,
    registry: String,
    so: String,
    prefix: String,
    deadline: Instant,
) -> Recorder {
    let mut recorder = Recorder::new();
    let mut done = 0;
    while Instant::now() < deadline {
        done += 1;
        let requester = token(&secret, &format!("{prefix}-{done}"), &[]);
        staff_request_approved(&gql, &mut recorder, &requester, &so, &registry).await;
    }
    recorder
}

pub struct SoSeed {
    pub token: String,
    pub orgs: Vec<String>,
}

pub struct Seeded {
    pub sos: Vec<SoSeed>,
    /// A staff user's token and organization.
    pub staff: Vec<(String, String)>,
    pub pending: usize,
    pub recorder: Recorder,
}

/// `sos` Security Officials of `per_so` practices each (first by proof), each
/// practice with `staff` approved staff users and `pending` open requests.
#[allow(clippy::too_many_arguments)]
async fn seed(
    gql: &Gql,
    secret: &str,
    practices: &[Practice],
    sos: usize,
    per_so: usize,
    staff: usize,
    pending: usize,
    tag: &str,
) -> Seeded {
    let tasks: Vec<_> = (0..sos)
        .map(|so_index| {
            let mine: Vec<Practice> = practices.iter().skip(so_index * per_so).take(per_so).cloned().collect();
            let (gql, secret, tag) = (gql.clone(), secret.to_string(), tag.to_string());
            tokio::spawn(async move {
                let mut recorder = Recorder::new();
                let so_token = token(&secret, &format!("{tag}-so{so_index}"), &[]);
                let mut orgs = Vec::new();
                let mut staff_users = Vec::new();
                let mut open = 0;
                for practice in &mine {
                    if checked(&gql, &mut recorder, "seed requestRole(SECURITY_OFFICIAL)", &so_token, REQUEST_ROLE,
                        json!({"input": {"organizationId": practice.id, "role": "SECURITY_OFFICIAL", "proof": practice.proof()}}),
                        expect_state("APPROVED")).await.is_none() { continue }
                    orgs.push(practice.id.clone());
                    for k in 0..staff + pending {
                        let person = format!("{tag}-{so_index}-{}-{k}", practice.tin);
                        let requester = token(&secret, &person, &[]);
                        let Some(id) = checked(&gql, &mut recorder, "seed requestRole(STAFF_USER)", &requester, REQUEST_ROLE,
                            json!({"input": {"organizationId": practice.id, "role": "STAFF_USER"}}), expect_state("PENDING")).await else { continue };
                        if k >= staff {
                            open += 1;
                            continue;
                        }
                        if checked(&gql, &mut recorder, "seed approveRoleRequest", &so_token, APPROVE, json!({"id": id}), approved).await.is_some() {
                            staff_users.push((requester, practice.id.clone()));
                        }
                    }
                }
                (SoSeed { token: so_token, orgs }, staff_users, open, recorder)
            })
        })
        .collect();
    let mut seeded = Seeded {
        sos: Vec::new(),
        staff: Vec::new(),
        pending: 0,
        recorder: Recorder::new(),
    };
    for task in tasks {
        if let Ok((so, staff_users, open, recorder)) = task.await {
            if !so.orgs.is_empty() {
                seeded.sos.push(so);
            }
            seeded.staff.extend(staff_users);
            seeded.pending += open;
            seeded.recorder.merge(recorder);
        }
    }
    seeded
}

impl Harness {
    /// On a PostgreSQL server running with `autovacuum = off`, vacuums the soak's
    /// database every report interval in its place, and says so: otherwise the soak
    /// measures dead rows piling up in the views it updates, not the product.
    async fn vacuum_in_place_of_autovacuum(
        &self,
        deployment: &Deployment,
        stop: Arc<AtomicBool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let url = match &deployment.database {
            Some(database @ TestDatabase::Postgres { .. }) => database.url().to_string(),
            _ => return None,
        };
        if db::autovacuum_is_on(&url).await.unwrap_or(true) {
            return None;
        }
        let every = Duration::from_secs(self.options.report_every.max(1));
        println!(
            "  this PostgreSQL runs with autovacuum = off: the harness vacuums the database every {} s in its place",
            every.as_secs()
        );
        Some(tokio::spawn(async move {
            let mut next = Instant::now() + every;
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() < next {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                next += every;
                match db::vacuum(&url).await {
                    Ok(took) => println!("  vacuumed in {:.1} s", took.as_secs_f64()),
                    Err(error) => println!("  vacuum failed: {error}"),
                }
            }
        }))
    }
}

struct SoakState {
    gql: Gql,
    secret: String,
    sos: Vec<String>,
    staff: Vec<(String, String)>,
    /// Seeded organizations and the index of their Security Official.
    organizations: Vec<(String, usize)>,
    /// Pending requests to decide, oldest first.
    queue: Mutex<VecDeque<Waiting>>,
    /// Staff users the soak approved, to leave again once enough have joined.
    members: Mutex<VecDeque<Waiting>>,
    /// Practices without a Security Official yet.
    unclaimed: Mutex<Vec<Practice>>,
    run: String,
}

/// A staff request the soak made and who decides it: the request's id, the
/// organization, the person, and the index of its Security Official.
struct Waiting {
    request: String,
    organization: String,
    person: String,
    security_official: usize,
}

/// Least time between two cycles of (d): 40 approvals a second by each Security
/// Official, under the server's 50 mutations a second per person.
const LONG_HISTORY_CYCLE: Duration = Duration::from_millis(25);

/// Soak staff users kept per seeded organization before the oldest leave: the
/// organizations' membership stops growing, as a real practice's does.
const MEMBERS_PER_ORGANIZATION: usize = 4;

impl SoakState {
    /// The i-th request of the soak's mix: of every 10, 2 staff requests, 1 approval,
    /// 1 denial, 1 staff user leaving (once each organization has
    /// [`MEMBERS_PER_ORGANIZATION`] of the soak's; authorize until then), 1
    /// manageAccess, 1 pendingRequests, 3 authorize; every 50th a
    /// first-Security-Official request on a new organization instead.
    async fn op(&self, i: u64) -> Sent {
        let gql = &self.gql;
        // Scattered, so consecutive requests rarely land on one organization.
        let pick = |n: usize| (i.wrapping_mul(2_654_435_761) >> 8) as usize % n;
        if i % 50 == 49 {
            let practice = self.unclaimed.lock().unwrap().pop();
            if let Some(practice) = practice {
                let so = token(&self.secret, &format!("{}-soak-first-{i}", self.run), &[]);
                let result = gql
                    .call(Some(&so), REQUEST_ROLE, json!({"input": {"organizationId": practice.id, "role": "SECURITY_OFFICIAL", "proof": practice.proof()}}))
                    .await
                    .and_then(|data| expect_state("APPROVED")(&data));
                return ("requestRole(SECURITY_OFFICIAL)", result.err());
            }
        }
        match i % 10 {
            1 | 6 => {
                let next = self.queue.lock().unwrap().pop_front();
                let Some(waiting) = next else {
                    return self.staff_request(i, pick).await;
                };
                let bearer = Some(self.sos[waiting.security_official].as_str());
                let id = json!({"id": waiting.request});
                if i % 10 == 6 {
                    let result = gql.call(bearer, DENY, id).await;
                    return ("denyRoleRequest", result.err());
                }
                let result = gql
                    .call(bearer, APPROVE, id)
                    .await
                    .and_then(|data| approved(&data));
                if result.is_ok() {
                    self.members.lock().unwrap().push_back(waiting);
                }
                ("approveRoleRequest", result.err())
            }
            7 => {
                let leaving = {
                    let mut members = self.members.lock().unwrap();
                    let full = members.len() > MEMBERS_PER_ORGANIZATION * self.organizations.len();
                    full.then(|| members.pop_front()).flatten()
                };
                match leaving {
                    Some(member) => {
                        let result = gql
                            .call(
                                Some(&self.sos[member.security_official]),
                                REVOKE,
                                json!({"org": member.organization, "p": member.person}),
                            )
                            .await;
                        ("revokeAccess", result.err())
                    }
                    None => self.authorize(i).await,
                }
            }
            0 | 5 => self.staff_request(i, pick).await,
            2 => {
                let result = gql
                    .call(
                        Some(&self.sos[pick(self.sos.len())]),
                        MANAGE_ACCESS,
                        Value::Null,
                    )
                    .await;
                ("manageAccess", result.err())
            }
            3 => {
                let result = gql
                    .call(
                        Some(&self.sos[pick(self.sos.len())]),
                        PENDING_REQUESTS,
                        Value::Null,
                    )
                    .await;
                ("pendingRequests", result.err())
            }
            _ => self.authorize(i).await,
        }
    }

    async fn authorize(&self, i: u64) -> Sent {
        let (bearer, org) = &self.staff[i as usize % self.staff.len()];
        let result = self
            .gql
            .call(Some(bearer), AUTHORIZE, json!({"org": org}))
            .await;
        ("authorize", result.err())
    }

    async fn staff_request(&self, i: u64, pick: impl Fn(usize) -> usize) -> Sent {
        let (org, so) = &self.organizations[pick(self.organizations.len())];
        let person = format!("{}-soak-{i}", self.run);
        let requester = token(&self.secret, &person, &[]);
        let result = self
            .gql
            .call(
                Some(&requester),
                REQUEST_ROLE,
                json!({"input": {"organizationId": org, "role": "STAFF_USER"}}),
            )
            .await
            .and_then(|data| expect_state("PENDING")(&data));
        match result {
            Ok(request) => {
                self.queue.lock().unwrap().push_back(Waiting {
                    request,
                    organization: org.clone(),
                    person,
                    security_official: *so,
                });
                ("requestRole(STAFF_USER)", None)
            }
            Err(code) => ("requestRole(STAFF_USER)", Some(code)),
        }
    }
}

/// Runs real commands on `practice` through the server (first SO by proof,
/// staff requests approved, denied, withdrawn, one revoked), reads back the
/// rows they wrote, and checks that the synthesizer's serialization of the
/// same events is byte for byte what was stored. Answers the rows checked.
async fn verify_serialization(
    gql: &Gql,
    secret: &str,
    url: &str,
    practice: &Practice,
    run: &str,
) -> Result<usize, String> {
    let mut recorder = Recorder::new();
    let so = token(secret, &format!("{run}-check-so"), &[]);
    checked(gql, &mut recorder, "check", &so, REQUEST_ROLE,
        json!({"input": {"organizationId": practice.id, "role": "SECURITY_OFFICIAL", "proof": practice.proof()}}),
        expect_state("APPROVED")).await;
    for k in 0..4 {
        let person = format!("{run}-check-{k}");
        let requester = token(secret, &person, &[]);
        let Some(id) = checked(
            gql,
            &mut recorder,
            "check",
            &requester,
            REQUEST_ROLE,
            json!({"input": {"organizationId": practice.id, "role": "STAFF_USER"}}),
            expect_state("PENDING"),
        )
        .await
        else {
            continue;
        };
        let _ = match k {
            0 => gql.call(Some(&so), APPROVE, json!({"id": id})).await,
            1 => gql.call(Some(&so), DENY, json!({"id": id})).await,
            2 => {
                gql.call(
                    Some(&requester),
                    "mutation($id: ID!) { withdrawRoleRequest(requestId: $id) { state } }",
                    json!({"id": id}),
                )
                .await
            }
            _ => {
                let _ = gql.call(Some(&so), APPROVE, json!({"id": id})).await;
                gql.call(Some(&so), REVOKE, json!({"org": practice.id, "p": person}))
                    .await
            }
        };
    }
    if recorder.total_errors() > 0 {
        return Err(format!(
            "the check's commands failed: {:?}",
            recorder.errors_by_code()
        ));
    }
    let stored = db::sample_rows(url, &practice.id).await?;
    let mut kinds = std::collections::BTreeSet::new();
    let mut synthesized = Vec::new();
    for row in &stored {
        let event: access_domain::OrganizationEvent =
            serde_json::from_str(&row.payload).map_err(|error| {
                format!(
                    "stored payload does not parse as an event: {error}: {}",
                    row.payload
                )
            })?;
        synthesized.push(history::row(&row.aggregate_id, row.sequence, &event));
        kinds.insert(row.event_type.clone());
    }
    // What insert_postgres would store for the synthesized rows.
    let texts: Vec<String> = synthesized
        .iter()
        .flat_map(|row| [row.payload.clone(), row.metadata.clone()])
        .collect();
    let mut as_stored = db::stored_form(url, &texts).await?.into_iter();
    for (row, mut again) in stored.iter().zip(synthesized) {
        again.payload = as_stored.next().unwrap_or_default();
        again.metadata = as_stored.next().unwrap_or_default();
        if &again != row {
            return Err(format!("synthesized row differs from the stored one:\n stored      {row:?}\n synthesized {again:?}"));
        }
    }
    if stored.len() < 12 {
        return Err(format!(
            "expected at least 12 stored events, found {}",
            stored.len()
        ));
    }
    println!(
        "  event types checked: {}",
        kinds.into_iter().collect::<Vec<_>>().join(", ")
    );
    Ok(stored.len())
}

/// pgbench's rate around a measured phase, `before` and `after` it: their mean, which a
/// ratio is taken against, and how the baseline reads in the table.
fn pgbench_around(before: f64, after: f64) -> (f64, String) {
    let mean = (before + after) / 2.0;
    (
        mean,
        format!("pgbench {mean:.0} TPS (mean of {before:.0} before, {after:.0} after)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_to_pgbench_is_taken_against_the_mean_of_its_runs_before_and_after() {
        let (tps, baseline) = pgbench_around(12_000.0, 16_000.0);
        assert_eq!(tps, 14_000.0);
        assert_eq!(
            baseline,
            "pgbench 14000 TPS (mean of 12000 before, 16000 after)"
        );
    }
}
