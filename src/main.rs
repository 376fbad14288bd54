//! `access-server [serve]` starts the server; the other subcommands export the
//! schema, generate reference data, sign development tokens, rebuild the views,
//! export the audit log, list the emails that could not be delivered and erase a
//! person's contact details.

use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use access_api::auth::{sign_hs256, TokenClaims, DEV_SECRET};
use access_domain::identifiers::PersonId;
use access_projections::{ExportFormat, People, View};
use access_reference::GenerateOptions;
use access_server::settings::{Settings, DEFAULT_DATABASE_URL};
use access_store::Database;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: access-server [COMMAND]

commands:
  serve                     start the server (the default); settings come from the
                            environment: ACCESS_LISTEN, DATABASE_URL, ACCESS_REFERENCE_DATA,
                            ACCESS_JWT_SECRET | ACCESS_JWT_PUBLIC_KEY | ACCESS_DEV_AUTH=1, ...
  export-schema             print the GraphQL schema (SDL); schema.graphql is its output
  generate-reference-data [--seed N] [--practices N] [--registries N] [--virtual-groups N]
                          [--apm-entities N] [--clinicians N] [--version TEXT]
                            print realistic reference data (JSON) of any size
  dev-token --sub ID [--name NAME] [--email EMAIL] [--roles support,auditor] [--days N]
                            print a token signed with the development secret
                            (accepted only by a server started with ACCESS_DEV_AUTH=1)
  rebuild [access|support|all]
                            rebuild a view (default: all) from the whole event log into
                            fresh tables and swap them in; a running server keeps serving
  export-audit [--from POS] [--to POS] [--format jsonl|csv]
                            print the audit log (positions inclusive), streaming
  undelivered-emails        list the notification emails given up (dead letters) or
                            without a usable address, oldest first
  erase-person PERSON_ID    erase the person's name and email address (the directory,
                            delivery errors, answers kept for retries); the events and the
                            audit log keep the person id only

rebuild, export-audit, undelivered-emails and erase-person use DATABASE_URL like serve
(default sqlite://data/access.db).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, options) = match args.split_first() {
        Some((command, options)) => (command.as_str(), options),
        None => ("serve", &[][..]),
    };
    let result = match command {
        "serve" => serve(),
        "export-schema" => {
            print!("{}", access_api::schema::sdl());
            Ok(())
        }
        "generate-reference-data" => generate(options),
        "dev-token" => dev_token(options),
        "rebuild" => rebuild(options),
        "export-audit" => export_audit(options),
        "undelivered-emails" => undelivered_emails(),
        "erase-person" => erase_person(options),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("access-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> Result<(), String> {
    // Logs go to standard error: standard output is the subcommands' data.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings =
        Settings::from_env(|name| std::env::var(name).ok()).map_err(|error| error.to_string())?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async {
        let server = access_server::start(settings, shutdown_signal())
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(
            "serving GraphQL on http://{}/graphql (GraphiQL in a browser); events in {}; reference data version {}",
            server.address,
            server.database,
            server.reference_version
        );
        server
            .handle
            .await
            .map_err(|error| format!("server task failed: {error}"))?
            .map_err(|error| format!("server stopped: {error}"))
    })
}

/// Ctrl-C or SIGTERM: stop accepting and finish the requests in flight.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// `--name value` pairs.
fn flag<'a>(options: &'a [String], name: &str) -> Option<&'a str> {
    options
        .iter()
        .position(|option| option == name)
        .and_then(|index| options.get(index + 1))
        .map(String::as_str)
}

fn number(options: &[String], name: &str, default: usize) -> Result<usize, String> {
    match flag(options, name) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("{name}: expected a whole number, got {text:?}")),
    }
}

fn generate(options: &[String]) -> Result<(), String> {
    let defaults = GenerateOptions::demo();
    let generated = access_reference::generate(&GenerateOptions {
        seed: number(options, "--seed", defaults.seed as usize)? as u64,
        practices: number(options, "--practices", defaults.practices)?,
        registries: number(options, "--registries", defaults.registries)?,
        virtual_groups: number(options, "--virtual-groups", defaults.virtual_groups)?,
        apm_entities: number(options, "--apm-entities", defaults.apm_entities)?,
        clinicians: number(options, "--clinicians", defaults.clinicians)?,
        version: flag(options, "--version").map_or(defaults.version, str::to_string),
    });
    print!("{}", generated.to_json_pretty());
    Ok(())
}

fn dev_token(options: &[String]) -> Result<(), String> {
    let sub = flag(options, "--sub").ok_or("dev-token: --sub is required (the person id)")?;
    let days = number(options, "--days", 30)? as i64;
    let roles = flag(options, "--roles")
        .map(|roles| roles.split(',').collect())
        .unwrap_or_default();
    let claims = TokenClaims {
        sub,
        name: flag(options, "--name"),
        email: flag(options, "--email"),
        roles,
        exp: (chrono::Utc::now() + chrono::Duration::days(days)).timestamp(),
    };
    println!("{}", sign_hs256(DEV_SECRET, &claims));
    Ok(())
}

/// The database `serve` would use.
fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
}

/// Runs a database command to completion on a runtime of its own, with a worker thread
/// per core: `rebuild` builds each view's rows in a task of its own, and on one thread
/// they took turns while PostgreSQL's backends waited (docs/performance.md, (e)).
fn with_database<F>(command: impl FnOnce(Database) -> F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async {
        let database = Database::connect(&database_url())
            .await
            .map_err(|error| format!("DATABASE_URL: {error}"))?;
        command(database).await
    })
}

/// How often the progress line is redrawn on a terminal: often enough to look alive,
/// rarely enough to cost nothing next to the rebuild. Into a log, a line now and then.
const PROGRESS_ON_TERMINAL: Duration = Duration::from_millis(200);
const PROGRESS_IN_LOG: Duration = Duration::from_secs(5);
/// Events per transaction of a rebuild: each view writes a batch in a few multi-row
/// statements, so larger batches mean fewer round trips and commits.
const REBUILD_BATCH: i64 = 5000;

fn rebuild(options: &[String]) -> Result<(), String> {
    let views = match options.first().map(String::as_str) {
        None | Some("all") => View::REBUILDABLE.to_vec(),
        Some("audit") => {
            return Err(
                "rebuild: the audit log is the event log itself since migration 1005 \
                        (docs/adr/17-audit-log-from-the-event-log.md): nothing to rebuild"
                    .to_owned(),
            )
        }
        Some(name) => vec![View::parse(name).ok_or_else(|| {
            let names: Vec<&str> = View::REBUILDABLE.iter().map(|view| view.name()).collect();
            format!(
                "rebuild: no view {name:?}; expected one of {} or all",
                names.join(", ")
            )
        })?],
    };
    with_database(|database| async move {
        let terminal = std::io::stderr().is_terminal();
        let every = if terminal {
            PROGRESS_ON_TERMINAL
        } else {
            PROGRESS_IN_LOG
        };
        let mut drawn = Instant::now();
        let rebuilt = access_projections::rebuild(&database, &views, REBUILD_BATCH, |progress| {
            if drawn.elapsed() >= every {
                drawn = Instant::now();
                let percent = progress.position * 100 / progress.head.max(1);
                let line = format!(
                    "position {} of {} ({percent}%), {} events",
                    progress.position, progress.head, progress.events
                );
                if terminal {
                    eprint!("\r{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        })
        .await
        .map_err(|error| format!("rebuild: {error}"))?;
        if terminal {
            eprint!("\r\x1b[2K");
        }
        let names: Vec<&str> = rebuilt.views.iter().map(|view| view.name()).collect();
        println!(
            "{}: rebuilt from {} events up to position {} in {:.2} s ({:.0} events/s)",
            names.join(", "),
            rebuilt.events,
            rebuilt.position,
            rebuilt.elapsed.as_secs_f64(),
            rebuilt.events_per_second()
        );
        println!(
            "filling {:.2} s, building the indexes {:.2} s, the swap {:.2} s",
            rebuilt.filling.as_secs_f64(),
            rebuilt.indexing.as_secs_f64(),
            rebuilt.swapping().as_secs_f64()
        );
        Ok(())
    })
}

fn export_audit(options: &[String]) -> Result<(), String> {
    let position = |name: &str| -> Result<Option<i64>, String> {
        flag(options, name)
            .map(|text| {
                text.parse::<i64>()
                    .ok()
                    .filter(|position| *position >= 0)
                    .ok_or_else(|| format!("{name}: expected a position (0 or more), got {text:?}"))
            })
            .transpose()
    };
    let (from, to) = (position("--from")?, position("--to")?);
    let format = match flag(options, "--format") {
        None => ExportFormat::JsonLines,
        Some(name) => ExportFormat::parse(name)
            .ok_or_else(|| format!("--format: expected jsonl or csv, got {name:?}"))?,
    };
    with_database(|database| async move {
        let mut out = BufWriter::new(std::io::stdout().lock());
        let written = access_projections::export_audit(&database, from, to, format, &mut out)
            .await
            .map_err(|error| format!("export-audit: {error}"))?;
        out.flush()
            .map_err(|error| format!("export-audit: {error}"))?;
        eprintln!("exported {written} events");
        Ok(())
    })
}

/// Support's view of the outbox: what never reached its recipient, and why.
fn undelivered_emails() -> Result<(), String> {
    with_database(|database| async move {
        let emails = access_projections::Outbox::new(database)
            .undelivered()
            .await
            .map_err(|error| format!("undelivered-emails: {error}"))?;
        println!(
            "position\trecipient\torganization\tstate\tattempts\tlast attempt\tsubject\tlast error"
        );
        for email in &emails {
            let last_attempt = email
                .last_attempt_at
                .map_or_else(String::new, |at| at.to_rfc3339());
            println!(
                "{}\t{}\t{}\t{:?}\t{}\t{last_attempt}\t{}\t{}",
                email.position,
                email.recipient,
                email.organization,
                email.state,
                email.attempts,
                email.subject,
                email.last_error.as_deref().unwrap_or(""),
            );
        }
        eprintln!("{} undelivered emails", emails.len());
        Ok(())
    })
}

/// A person's right to erasure: what the service holds about them beyond their id. The
/// events are the audit record and hold no name or address, so they stay as they are.
fn erase_person(options: &[String]) -> Result<(), String> {
    let person = match options {
        [person] => PersonId::parse(person).map_err(|error| format!("erase-person: {error}"))?,
        _ => return Err("erase-person: give one person id (the token's sub)".into()),
    };
    with_database(|database| async move {
        let failed = |error: &dyn std::fmt::Display| format!("erase-person {person}: {error}");
        let contact = People::new(database.clone())
            .erase(&person)
            .await
            .map_err(|error| failed(&error))?;
        let answers = database
            .forget_answers_of(person.as_str())
            .await
            .map_err(|error| failed(&error))?;
        let flushed = database
            .flush_deleted_rows()
            .await
            .map_err(|error| failed(&error))?;
        println!(
            "{person}: erased; directory entries: {}, delivery errors: {}, answers kept for \
             retries: {answers}",
            u8::from(contact.directory_entry),
            contact.delivery_errors,
        );
        if !flushed {
            eprintln!(
                "erase-person: a reader kept the SQLite write-ahead log busy, so it may still hold \
                 the erased rows; run the command again when the server is idle"
            );
        }
        Ok(())
    })
}
