use std::time::Duration;

use access_api::auth::{sign_hs256, TokenClaims};
use access_server::settings::{Settings, TokenKey};
use access_store::testing::{fresh_databases, TestDatabase};
use access_store::{Database, Pool, StoredEvent};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const SECRET: &str = "end-to-end-test-secret";

/// Whether to run the long versions of the reliability tests (more kills, more
/// clients, thousands of race rounds): `ACCESS_LONG_TESTS=1`.
pub fn long_tests() -> bool {
    std::env::var("ACCESS_LONG_TESTS").is_ok_and(|value| value == "1")
}

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
        cached_events: access_store::CACHED_EVENTS,
        max_requests: access_api::MAX_REQUESTS,
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

/// A token carrying the person's name and email address, as an identity
/// provider's does.
pub fn contact_token(person: &str, name: &str, email: &str) -> String {
    sign_hs256(
        SECRET,
        &TokenClaims {
            sub: person,
            name: Some(name),
            email: Some(email),
            roles: Vec::new(),
            exp: (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp(),
        },
    )
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
    pub async fn post_graphql(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.post_graphql_as(None, body).await
    }

    pub async fn post_graphql_as(
        &self,
        bearer: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let request = self
            .client
            .post(format!("{}/graphql", self.url))
            .header("content-type", "application/json")
            .header("x-request-id", "test-request-42")
            .body(body);
        match bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
        .await
        .unwrap()
    }

    /// Every stored event, read straight from the event store.
    pub async fn stored_events(&self) -> Vec<StoredEvent> {
        stored_events(&self.database_url).await
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Runs one SQL statement on the test's database, to put it in a state that
    /// only a crash or an outside system would leave.
    pub async fn execute_sql(&self, sql: &str) {
        let database = Database::connect(&self.database_url).await.unwrap();
        match database.pool() {
            Pool::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            Pool::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|error| panic!("{}: {sql}: {error}", self.label));
    }

    /// Waits until `sql`, a query answering one integer, answers `expected` (within
    /// 10 s), for states the server reaches in the background (emails sent, say).
    pub async fn until_sql_answers(&self, sql: &str, expected: i64) {
        let database = Database::connect(&self.database_url).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answer: i64 = match database.pool() {
                Pool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
                Pool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            }
            .unwrap_or_else(|error| panic!("{}: {sql}: {error}", self.label));
            if answer == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {sql} still answers {answer}, not {expected}",
                self.label
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every stored event of the database at `database_url`.
pub async fn stored_events(database_url: &str) -> Vec<StoredEvent> {
    let database = Database::connect(database_url).await.unwrap();
    database.events_after(0, 1_000_000).await.unwrap()
}

/// A GraphQL answer, checked to be HTTP 200 with a JSON body.
async fn answered(label: &str, request: reqwest::RequestBuilder) -> Response {
    let response = request.send().await.expect("the server answers");
    assert!(
        response.status().is_success(),
        "{label}: HTTP {}",
        response.status()
    );
    Response(response.json().await.expect("a JSON body"))
}

fn graphql_request(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
) -> reqwest::RequestBuilder {
    let request = client
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    match bearer {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// What the tests do over GraphQL, alike on an in-process server and on a server
/// process of its own.
pub trait Graphql: Sync {
    /// The database it runs on (for assertion messages), its URL and a client.
    fn endpoint(&self) -> (&str, &str, &reqwest::Client);

    fn label(&self) -> &str {
        self.endpoint().0
    }

    fn graphql(
        &self,
        bearer: Option<&str>,
        query: &str,
        variables: Value,
    ) -> impl std::future::Future<Output = Response> + Send {
        let (label, url, client) = self.endpoint();
        answered(
            label,
            graphql_request(client, url, bearer, query, variables),
        )
    }

    async fn request_role(
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
    async fn first_security_official_of_greenville(&self, person: &str) {
        let response = self
            .request_role(person, GREENVILLE, "SECURITY_OFFICIAL", greenville_proof())
            .await;
        assert_eq!(
            response.data("requestRole.request.state"),
            "APPROVED",
            "{}",
            self.label()
        );
    }

    /// Returns the new request's id.
    async fn pending_staff_request(&self, person: &str) -> String {
        let response = self
            .request_role(person, GREENVILLE, "STAFF_USER", Value::Null)
            .await;
        assert_eq!(
            response.data("requestRole.request.state"),
            "PENDING",
            "{}",
            self.label()
        );
        response
            .data("requestRole.request.id")
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn decide(&self, person: &str, request_id: &str, approve: bool) -> Response {
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

    /// `person`, a support agent, makes `member` Security Official of Greenville.
    async fn promote_in_greenville(&self, person: &str, member: &str) {
        self.graphql(
            Some(&token(person, &["support"])),
            "mutation($person: ID!) { changeRole(organizationId: \"practice:123456789\", personId: $person, role: SECURITY_OFFICIAL) { role } }",
            json!({ "person": member }),
        )
        .await
        .data("changeRole");
    }
}

impl Graphql for TestApp {
    fn endpoint(&self) -> (&str, &str, &reqwest::Client) {
        (self.label, &self.url, &self.client)
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
/// second server process of a deployment is, or one that can be killed and
/// restarted. Killed when dropped.
pub struct ServerProcess {
    child: Option<std::process::Child>,
    pub url: String,
    label: &'static str,
    /// Where it listens, kept across restarts so that clients keep their URL.
    address: String,
    database_url: String,
    settings: Vec<(String, String)>,
    /// Every line it logged, across restarts.
    logs: std::sync::Arc<std::sync::Mutex<String>>,
    client: reqwest::Client,
}

impl ServerProcess {
    /// A second server on the in-process server's database.
    pub async fn start(app: &TestApp) -> ServerProcess {
        Self::on(app.label, &app.database_url, &[]).await
    }

    /// A server on `database_url`, with extra settings.
    pub async fn on(
        label: &'static str,
        database_url: &str,
        settings: &[(&str, &str)],
    ) -> ServerProcess {
        let mut server = ServerProcess {
            child: None,
            url: String::new(),
            label,
            address: "127.0.0.1:0".into(),
            database_url: database_url.into(),
            settings: settings
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            logs: Default::default(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        server.restart().await;
        server
    }

    /// SIGKILL: no shutdown, nothing flushed, as the OOM killer or a lost machine
    /// ends a server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same database, address and settings, and waits,
    /// off the test's runtime thread, until it says where it listens: the other
    /// servers of the test keep serving meanwhile.
    pub async fn restart(&mut self) {
        self.kill();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_access-server"));
        command
            .env_clear()
            .env("ACCESS_LISTEN", &self.address)
            .env("DATABASE_URL", &self.database_url)
            .env("ACCESS_JWT_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(self.settings.iter().map(|(name, value)| (name, value)))
            .stderr(std::process::Stdio::piped());
        let logs = self.logs.clone();
        let (child, address) = tokio::task::spawn_blocking(move || Self::spawn(command, logs))
            .await
            .expect("the server process starts");
        self.child = Some(child);
        self.url = format!("http://{address}");
        self.address = address;
    }

    fn spawn(
        mut command: std::process::Command,
        logs: std::sync::Arc<std::sync::Mutex<String>>,
    ) -> (std::process::Child, String) {
        use std::io::BufRead;
        let mut child = command.spawn().expect("the server binary starts");
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let kept = logs.clone();
        let mut lines = stderr.lines().map_while(Result::ok).inspect(move |line| {
            let mut logs = kept.lock().unwrap();
            logs.push_str(line);
            logs.push('\n');
        });
        let address = lines
            .by_ref()
            .find_map(|line| {
                line.split("serving GraphQL on http://")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| {
                panic!(
                    "the server process did not start:\n{}",
                    logs.lock().unwrap()
                )
            });
        // Keep reading its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        (child, address)
    }

    /// Still running, neither exited nor killed.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Everything it logged so far, across restarts.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.client.get(format!("{}{path}", self.url)).send().await
    }
}

impl Graphql for ServerProcess {
    fn endpoint(&self) -> (&str, &str, &reqwest::Client) {
        (self.label, &self.url, &self.client)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
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
