use std::collections::HashSet;

use access_store::testing::fresh_databases;
use access_store::Database;

const ISSUERS: usize = 16;
const SERIALS_PER_ISSUER: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ticket_serials_are_unique_under_concurrency() {
    for db in fresh_databases().await {
        let database = Database::connect(&db.url).await.unwrap();
        let issuers = (0..ISSUERS)
            .map(|_| {
                let database = database.clone();
                tokio::spawn(async move {
                    let mut serials = Vec::new();
                    for _ in 0..SERIALS_PER_ISSUER {
                        serials.push(database.next_ticket_serial().await.unwrap());
                    }
                    serials
                })
            })
            .collect::<Vec<_>>();
        let mut serials = HashSet::new();
        for issuer in issuers {
            let issued = issuer.await.unwrap();
            assert!(
                issued.is_sorted(),
                "{}: one issuer went backwards",
                db.label
            );
            serials.extend(issued);
        }
        assert_eq!(serials.len(), ISSUERS * SERIALS_PER_ISSUER, "{}", db.label);
        assert!(!serials.contains(&0), "{}", db.label);
    }
}
