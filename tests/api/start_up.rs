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
