use access_domain::roles::Role;
use access_projections::{export_audit, ExportFormat};

use crate::common::{harnesses, request, GOOD_TIN, ORGANIZATIONS};

#[tokio::test]
async fn the_audit_export_writes_one_line_per_event_of_the_range_as_json_lines_or_csv() {
    let practice = ORGANIZATIONS[0];
    for h in harnesses().await {
        h.run(
            practice,
            request(practice, "alice", Role::SecurityOfficial, Some(GOOD_TIN)),
        )
        .await;
        h.run(
            practice,
            request(practice, "bob, \"the\" builder", Role::StaffUser, None),
        )
        .await;
        let events = h.events().await;
        assert_eq!(events.len(), 4, "{}", h.label);

        let mut jsonl = Vec::new();
        let written = export_audit(&h.database, None, None, ExportFormat::JsonLines, &mut jsonl)
            .await
            .unwrap();
        assert_eq!(written, 4);
        let lines: Vec<serde_json::Value> = String::from_utf8(jsonl)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[3]["position"], events[3].position, "{}", h.label);
        assert_eq!(lines[3]["subject"], "bob, \"the\" builder");
        assert_eq!(lines[3]["payload"], events[3].payload, "{}", h.label);
        assert_eq!(lines[0]["actor"], "alice");

        let (from, to) = (events[1].position, events[2].position);
        let mut csv = Vec::new();
        let written = export_audit(
            &h.database,
            Some(from),
            Some(to),
            ExportFormat::Csv,
            &mut csv,
        )
        .await
        .unwrap();
        assert_eq!(written, 2, "{}", h.label);
        let csv = String::from_utf8(csv).unwrap();
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows.len(), 3, "{}: {csv}", h.label);
        assert!(rows[0].starts_with("position,organization_id,"));
        assert!(rows[1].starts_with(&format!("{from},{practice},2,ProofAccepted,1.0,")));
        assert!(rows[2].contains(",\"{\"\"RoleGranted\"\":{\"\"at\"\":\"\"2024-05-01T09:00:01.123456789Z\"\",\"\"by\"\":null,\"\"person\"\":\"\"alice\"\",\"\"request_id\"\":\"\""), "{}", h.label);

        let mut quoted = Vec::new();
        export_audit(
            &h.database,
            Some(events[3].position),
            None,
            ExportFormat::Csv,
            &mut quoted,
        )
        .await
        .unwrap();
        let quoted = String::from_utf8(quoted).unwrap();
        assert!(
            quoted.contains(",\"bob, \"\"the\"\" builder\","),
            "{}: {quoted}",
            h.label
        );
    }
}
