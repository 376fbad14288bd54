//! How the server starts and refuses to, per server.md.

use std::process::Command;

use crate::helpers::*;

fn server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_access-server"));
    command.env_clear().env("ACCESS_LISTEN", "127.0.0.1:0");
    command
}

fn refusal(command: &mut Command) -> String {
    let output = command.output().expect("the server binary runs");
    assert!(
        !output.status.success(),
        "the server should have refused to start"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_server_refuses_to_start_without_a_way_to_check_tokens() {
    let message = refusal(&mut server());
    assert!(
        message.contains("ACCESS_JWT_SECRET") && message.contains("ACCESS_DEV_AUTH"),
        "{message}"
    );
}

#[test]
fn malformed_reference_data_stops_start_up_with_the_json_path_of_the_first_error() {
    let path = std::env::temp_dir().join(format!("bad-reference-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"version": "x", "practices": [], "registries": [], "virtualGroups": [], "apmEntities": [],
            "clinicians": [{"npi": "1234567890", "firstName": "A", "lastName": "B", "ssn": "123456789",
                            "enrollments": [], "apmEntities": [], "virtualGroups": []}]}"#,
    )
    .unwrap();
    let message = refusal(
        server()
            .env("ACCESS_JWT_SECRET", "s")
            .env("ACCESS_REFERENCE_DATA", &path),
    );
    std::fs::remove_file(&path).unwrap();
    assert!(
        message.contains("ACCESS_REFERENCE_DATA") && message.contains("clinicians[0].npi"),
        "{message}"
    );
}

#[test]
fn an_unusable_database_url_stops_start_up_naming_database_url() {
    let message = refusal(
        server()
            .env("ACCESS_JWT_SECRET", "s")
            .env("DATABASE_URL", "mysql://localhost/x"),
    );
    assert!(message.contains("DATABASE_URL"), "{message}");
}

#[test]
fn the_checked_in_schema_is_what_the_server_exports() {
    let checked_in = include_str!("../../schema.graphql");
    assert!(
        checked_in == access_api::schema::sdl(),
        "schema.graphql is stale: run `cargo run -- export-schema > schema.graphql`"
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    for app in spawn_apps().await {
        assert_eq!(app.get("/healthz").await.status(), 200, "{}", app.label);
        assert_eq!(app.get("/readyz").await.status(), 200, "{}", app.label);
        let graphiql = app.get("/graphql").await.text().await.unwrap();
        assert!(
            graphiql.to_lowercase().contains("graphiql"),
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn shutting_down_finishes_the_commands_in_flight() {
    for app in spawn_apps().await {
        let app = std::sync::Arc::new(app);
        app.first_security_official_of_greenville("alice").await;
        let requests: Vec<_> = (0..20)
            .map(|index| {
                let app = app.clone();
                tokio::spawn(async move {
                    app.try_graphql(
                        &token(&format!("staff-{index}"), &[]),
                        "mutation($input: RequestRoleInput!) { requestRole(input: $input) { request { state } } }",
                        serde_json::json!({ "input": { "organizationId": GREENVILLE, "role": "STAFF_USER" } }),
                    )
                    .await
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        app.shut_down().await.expect("a clean shutdown");

        let mut acknowledged = 0;
        for request in requests {
            // Requests that arrive after shutdown began are refused at the
            // door; a request that was let in gets its whole answer.
            if let Ok(answer) = request.await.unwrap() {
                match answer["data"]["requestRole"]["request"]["state"].as_str() {
                    Some("PENDING") => acknowledged += 1,
                    _ => assert_eq!(
                        answer["errors"][0]["extensions"]["code"], "CONFLICT",
                        "{}: {answer}",
                        app.label
                    ),
                }
            }
        }
        let pending = app
            .stored_events()
            .await
            .iter()
            .filter(|event| event.event_type == "RoleRequested")
            .count()
            - 1;
        assert_eq!(
            pending, acknowledged,
            "{}: every acknowledged command is stored, and only those",
            app.label
        );
    }
}

#[test]
fn rebuild_names_the_views_it_rebuilds_and_says_where_the_audit_log_went() {
    let unknown = refusal(server().args(["rebuild", "grants"]));
    assert!(
        unknown.contains("no view \"grants\"; expected one of access, support or all"),
        "{unknown}"
    );
    let audit = refusal(server().args(["rebuild", "audit"]));
    assert!(
        audit.contains("the audit log is the event log itself")
            && audit.contains("docs/adr/17-audit-log-from-the-event-log.md"),
        "{audit}"
    );
}
