use access_store::testing::fresh_databases;
use access_store::Database;

use crate::execute;

fn unkeyed_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A request kept for retries may hold an SSN; its stored fingerprint must not be
/// something anyone with the table can recompute for each of the 10⁹ candidates.
#[tokio::test]
async fn request_fingerprints_are_keyed_by_a_secret_shared_by_the_servers_of_one_database() {
    let request = br#"["mutation { manual }",{"ssn":"123-45-6789"},null]"#;
    let mut fingerprints_per_database = Vec::new();
    for db in fresh_databases().await {
        let first_server = Database::connect(&db.url).await.unwrap();
        let second_server = Database::connect(&db.url).await.unwrap();
        let fingerprint = first_server.fingerprint(request);
        assert_eq!(
            fingerprint,
            second_server.fingerprint(request),
            "{}: a retry sent to another server must match",
            db.label
        );
        assert_ne!(fingerprint, unkeyed_sha256(request), "{}", db.label);
        assert_eq!(fingerprint.len(), 64, "{}", db.label);
        assert_ne!(
            fingerprint,
            first_server.fingerprint(br#"["mutation { manual }",{"ssn":"123-45-6780"},null]"#),
            "{}",
            db.label
        );
        fingerprints_per_database.push(fingerprint);

        execute(&first_server, "DELETE FROM server_secrets").await;
        let after_losing_it = Database::connect(&db.url).await.unwrap();
        assert_ne!(
            after_losing_it.fingerprint(request),
            first_server.fingerprint(request),
            "{}: a lost secret is made anew",
            db.label
        );
    }
    let other_sqlite = fresh_databases().await.remove(0);
    let other = Database::connect(&other_sqlite.url).await.unwrap();
    assert_ne!(
        other.fingerprint(request),
        fingerprints_per_database[0],
        "each database makes its own secret"
    );
}
