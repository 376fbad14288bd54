use std::time::Duration;

use access_api::auth::{sign_hs256, TokenClaims};
use access_server::settings::{Settings, TokenKey};
use access_store::testing::{fresh_databases, TestDatabase};
use access_store::{Database, Pool, StoredEvent};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const SECRET: &str = "end-to-end-test-secret";

/// A server started for one test on one database.
pub struct TestApp {
    pub label: &'static str,
    pub url: String,
    client: reqwest::Client,
    database_url: String,
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    server: std::sync::Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
    _database: TestDatabase,
}

/// One running server per fresh database (SQLite always, PostgreSQL when
/// TEST_DATABASE_URL is set).
pub async fn spawn_apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for database in fresh_databases().await {
        apps.push(spawn_app(database).await);
    }
    apps
}

pub async fn spawn_app(database: TestDatabase) -> TestApp {
    spawn_app_with(database, |_| {}).await
}

/// A server whose settings `configure` adjusts first.
pub async fn spawn_app_with(
    database: TestDatabase,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    log_buffer();
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database.url.clone(),
        reference_data: None,
        token_key: TokenKey::Secret(SECRET.into()),
        issuer: None,
        audience: None,
        mail: Default::default(),
    };
    configure(&mut settings);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = access_server::start(settings, async {
        let _ = stopped.await;
    })
    .await
    .unwrap_or_else(|error| panic!("{}: the server did not start: {error}", database.label));
    TestApp {
        label: database.label,
        url: format!("http://{}", server.address),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        database_url: database.url.clone(),
        stop: std::sync::Mutex::new(Some(stop)),
        server: std::sync::Mutex::new(Some(server.handle)),
        _database: database,
    }
}

pub fn token(person: &str, roles: &[&str]) -> String {
    token_with(SECRET, person, roles, chrono::Duration::hours(1))
}

pub fn token_with(
    secret: &str,
    person: &str,
    roles: &[&str],
    valid_for: chrono::Duration,
) -> String {
    named_token_with(secret, person, person, roles, valid_for)
}

/// A token whose display name differs from the person id.
pub fn named_token(person: &str, name: &str) -> String {
    named_token_with(SECRET, person, name, &[], chrono::Duration::hours(1))
}

fn named_token_with(
    secret: &str,
    person: &str,
    name: &str,
    roles: &[&str],
    valid_for: chrono::Duration,
) -> String {
    sign_hs256(
        secret,
        &TokenClaims {
            sub: person,
            name: Some(name),
            email: None,
            roles: roles.to_vec(),
            exp: (chrono::Utc::now() + valid_for).timestamp(),
        },
    )
}

/// A GraphQL response, with helpers to read data and errors.
#[derive(Debug)]
pub struct Response(pub Value);

impl Response {
    pub fn data(&self, path: &str) -> &Value {
        assert!(
            self.0.get("errors").is_none(),
            "unexpected errors: {}",
            self.0
        );
        path.split('.')
            .fold(&self.0["data"], |value, key| &value[key])
    }

    /// The first error's extensions.code.
    pub fn code(&self) -> &str {
        self.0["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {}", self.0))
    }

    pub fn error(&self) -> &Value {
        &self.0["errors"][0]
    }
}

impl TestApp {
    /// Asks the server to stop, as SIGTERM does, and waits until it has.
    pub async fn shut_down(&self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
        let server = self.server.lock().unwrap().take().expect("the server runs");
        server.await.expect("the server task ends")
    }

    /// A GraphQL request whose transport failure is returned, not a panic.
    pub async fn try_graphql(
        &self,
        bearer: &str,
        query: &str,
        variables: Value,
    ) -> reqwest::Result<Value> {
        self.client
            .post(format!("{}/graphql", self.url))
            .bearer_auth(bearer)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .json()
            .await
    }

    pub async fn graphql(&self, bearer: Option<&str>, query: &str, variables: Value) -> Response {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        assert!(
            response.status().is_success(),
            "{}: HTTP {}",
            self.label,
            response.status()
        );
        Response(response.json().await.expect("a JSON body"))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// A mutation sent with an `Idempotency-Key`: the raw response, headers included.
    pub async fn with_idempotency_key(
        &self,
        bearer: &str,
        key: &str,
        query: &str,
        variables: Value,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}/graphql", self.url))
            .bearer_auth(bearer)
            .header("idempotency-key", key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
    }

    /// A raw POST to /graphql, for bodies that are not well-formed requests.
    pub async fn post_graphql(&self, body: String) -> reqwest::Response {
        self.client
            .post(format!("{}/graphql", self.url))
            .header("content-type", "application/json")
            .header("x-request-id", "test-request-42")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Every stored event, read straight from the event store.
    pub async fn stored_events(&self) -> Vec<StoredEvent> {
        let database = Database::connect(&self.database_url).await.unwrap();
        database.events_after(0, 100_000).await.unwrap()
    }

    pub async fn request_role(
        &self,
        person: &str,
        organization: &str,
        role: &str,
        proof: Value,
    ) -> Response {
        self.graphql(
            Some(&token(person, &[])),
            "mutation($input: RequestRoleInput!) { requestRole(input: $input) {
                proofRejected attemptsRemaining
                request { id state role failedAttempts ticket { number state attempts { maskedProof reason } } }
            } }",
            json!({ "input": { "organizationId": organization, "role": role, "proof": proof } }),
        )
        .await
    }

    /// `person` becomes the first Security Official of the demo practice
    /// Greenville Medical Clinic with its published proof.
    pub async fn first_security_official_of_greenville(&self, person: &str) {
        let response = self
            .request_role(person, GREENVILLE, "SECURITY_OFFICIAL", greenville_proof())
            .await;
        assert_eq!(
            response.data("requestRole.request.state"),
            "APPROVED",
            "{}",
            self.label
        );
    }

    /// Returns the new request's id.
    pub async fn pending_staff_request(&self, person: &str) -> String {
        let response = self
            .request_role(person, GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        assert_eq!(
            response.data("requestRole.request.state"),
            "PENDING",
            "{}",
            self.label
        );
        response
            .data("requestRole.request.id")
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn decide(&self, person: &str, request_id: &str, approve: bool) -> Response {
        let query = if approve {
            "mutation($id: ID!) { approveRoleRequest(requestId: $id) { state decidedBy { id } } }"
        } else {
            "mutation($id: ID!) { denyRoleRequest(requestId: $id, reason: \"not our staff\") { state reason decidedBy { id } } }"
        };
        self.graphql(
            Some(&token(person, &[])),
            query,
            json!({ "id": request_id }),
        )
        .await
    }
}

pub const GREENVILLE: &str = "practice:123456789";

/// The demo practice's proof as a person would type it (with dashes).
pub fn greenville_proof() -> Value {
    json!({ "tin": "12-3456789", "npi": "1234567893", "ptan": "ab1234" })
}

pub fn wrong_greenville_proof() -> Value {
    json!({ "tin": "123456789", "npi": "1234567893", "ptan": "ZZ9999" })
}

/// The server binary in a process of its own, on a test's database: what a
/// second server process of a deployment is. Killed when dropped.
pub struct ServerProcess {
    child: std::process::Child,
    pub url: String,
}

impl ServerProcess {
    /// Starts the process and waits, off the test's runtime thread, until it
    /// says where it listens: the in-process server keeps serving meanwhile.
    pub async fn start(app: &TestApp) -> ServerProcess {
        let database_url = app.database_url.clone();
        tokio::task::spawn_blocking(move || Self::start_blocking(&database_url))
            .await
            .expect("the second server starts")
    }

    fn start_blocking(database_url: &str) -> ServerProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_access-server"))
            .env_clear()
            .env("ACCESS_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("ACCESS_JWT_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut lines = stderr.lines();
        let mut seen = Vec::new();
        let address = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let address = line
                    .split("serving GraphQL on http://")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .map(str::to_string);
                seen.push(line);
                address
            })
            .unwrap_or_else(|| panic!("the second server did not start:\n{}", seen.join("\n")));
        // Keep reading its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ServerProcess {
            child,
            url: format!("http://{address}"),
        }
    }

    pub async fn graphql(&self, bearer: &str, query: &str, variables: Value) -> Response {
        let response = reqwest::Client::new()
            .post(format!("{}/graphql", self.url))
            .bearer_auth(bearer)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("the second server answers");
        Response(response.json().await.expect("a JSON body"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the servers of this test process log, at debug level, so a
/// test can show a secret never reached a log line.
pub fn captured_logs() -> String {
    let buffer = log_buffer();
    let bytes = buffer.lock().unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

type LogBuffer = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

fn log_buffer() -> &'static LogBuffer {
    static BUFFER: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buffer
    })
}

struct LogWriter(LogBuffer);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TestApp {
    /// Everything the test's database holds, as text, to search for values
    /// that must never be stored: SQLite's files byte for byte (free pages and
    /// the write-ahead log included), every PostgreSQL row cast to text.
    pub async fn database_dump(&self) -> String {
        match Database::connect(&self.database_url).await.unwrap().pool() {
            Pool::Sqlite(_) => {
                let path = self.database_url.trim_start_matches("sqlite://");
                ["", "-wal"]
                    .iter()
                    .filter_map(|suffix| std::fs::read(format!("{path}{suffix}")).ok())
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .collect()
            }
            Pool::Postgres(pool) => {
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                let mut dump = String::new();
                for table in tables {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
                            .fetch_all(pool)
                            .await
                            .unwrap();
                    dump.push_str(&rows.join("\n"));
                }
                dump
            }
        }
    }
}
