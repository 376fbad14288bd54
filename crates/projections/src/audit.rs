//! The audit log: the event log itself, filtered and paged for the auditors, and its
//! streaming export (docs/adr/17-audit-log-from-the-event-log.md).

use std::io::Write;

use access_domain::identifiers::{OrganizationId, PersonId};
use access_domain::Organization;
use access_store::{Database, StoredEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::json;

use crate::error::Error;
use crate::events::{subject, Envelope};
use crate::read::{limit, Page, Views};
use crate::sql::{fetch, time_text, Param};

/// One recorded event as auditors read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Global, strictly increasing in commit order.
    pub position: i64,
    pub organization: OrganizationId,
    /// Within the organization's stream, from 1.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub occurred_at: DateTime<Utc>,
    /// Who acted; `None` for an automatic grant.
    pub actor: Option<PersonId>,
    /// Whom the event is about, when the event names the person.
    pub subject: Option<PersonId>,
    /// The stored payload as JSON text (`{"RoleRequested": {...}}`): person ids and
    /// masked proof values only.
    pub payload: String,
}

impl AuditEntry {
    fn of(envelope: &Envelope) -> AuditEntry {
        AuditEntry {
            position: envelope.position,
            organization: envelope.organization.clone(),
            sequence: envelope.sequence,
            event_type: envelope.event_type.clone(),
            event_version: envelope.event_version.clone(),
            occurred_at: envelope.event.at(),
            actor: envelope.event.actor().cloned(),
            subject: subject(&envelope.event).cloned(),
            payload: envelope.payload.to_string(),
        }
    }
}

/// The contract's `AuditFilter`: every given field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub organization: Option<OrganizationId>,
    /// Events the person did or that are about them.
    pub person: Option<PersonId>,
    /// `Some(empty)` matches nothing.
    pub event_types: Option<Vec<String>>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Inclusive.
    pub to: Option<DateTime<Utc>>,
}

impl Views {
    /// The events matching `filter` in log order, `first` at a time after the cursor
    /// `after`. Cursors are positions, so a page never shifts while events keep arriving:
    /// new events only ever come after every existing one.
    ///
    /// # Errors
    /// [`Error::InvalidCursor`] when `after` is not a cursor of this query.
    pub async fn audit_log(
        &self,
        filter: &AuditFilter,
        first: usize,
        after: Option<&str>,
    ) -> Result<Page<AuditEntry>, Error> {
        let after = match after {
            Some(cursor) => cursor
                .parse::<i64>()
                .ok()
                .filter(|position| *position >= 0)
                .ok_or(Error::InvalidCursor)?,
            None => 0,
        };
        if filter.event_types.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Page::of(Vec::new(), first, |_| String::new()));
        }
        let mut values = vec![Param::from(Organization::TYPE), Param::from(after)];
        let mut conditions = vec!["aggregate_type = $1".to_owned(), "position > $2".to_owned()];
        let mut order = "position";
        let mut bind = |condition: &str, value: Param| {
            values.push(value);
            conditions.push(condition.replace('?', &format!("${}", values.len())));
        };
        if let Some(organization) = &filter.organization {
            // Within one organization sequence order is log order, and the primary key is
            // in sequence order: the page starts after the cursor's sequence. A cursor
            // from another organization finds none, and `position > $2` still holds.
            bind(
                "aggregate_id = ? AND sequence > COALESCE((SELECT page_end.sequence \
                   FROM events page_end WHERE page_end.position = $2 \
                    AND page_end.aggregate_type = $1 AND page_end.aggregate_id = ?), 0)",
                Param::from(organization.to_string()),
            );
            order = "sequence";
        }
        if let Some(person) = &filter.person {
            bind(
                "(person_id = ? OR acted_for = ?)",
                Param::from(person.as_str()),
            );
        }
        if let Some(from) = filter.from {
            bind("occurred_at >= ?", Param::from(from));
        }
        if let Some(to) = filter.to {
            bind("occurred_at <= ?", Param::from(to));
        }
        let mut types = Vec::new();
        for event_type in filter.event_types.iter().flatten() {
            values.push(Param::from(event_type.as_str()));
            types.push(format!("${}", values.len()));
        }
        if !types.is_empty() {
            conditions.push(format!("event_type IN ({})", types.join(", ")));
        }
        values.push(Param::from(limit(first)));
        let sql = format!(
            "SELECT position, aggregate_id, sequence, event_type, event_version, \
                    CAST(payload AS TEXT) \
               FROM events WHERE {} ORDER BY {order} LIMIT ${}",
            conditions.join(" AND "),
            values.len()
        );
        let entries = fetch(&self.database, &sql, &values, |row| {
            let position = row.int(0)?;
            let event_type = row.text(3)?;
            let payload = serde_json::from_str(&row.text(5)?).map_err(|_| Error::Undecodable {
                position,
                event_type: event_type.clone(),
            })?;
            let stored = StoredEvent {
                position,
                aggregate_type: Organization::TYPE.to_owned(),
                aggregate_id: row.text(1)?,
                sequence: row.int(2)?,
                event_type,
                event_version: row.text(4)?,
                payload,
                metadata: serde_json::Value::Null,
            };
            Ok(Envelope::decode(stored)?.map(|envelope| AuditEntry::of(&envelope)))
        })
        .await?;
        let entries = entries.into_iter().flatten().collect();
        Ok(Page::of(entries, first, |entry| entry.position.to_string()))
    }
}

/// How `export-audit` writes the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line, the payload as a JSON object.
    JsonLines,
    /// A header line, then one row per event, the payload as JSON text.
    Csv,
}

impl ExportFormat {
    pub fn parse(name: &str) -> Option<ExportFormat> {
        match name {
            "jsonl" => Some(ExportFormat::JsonLines),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }
}

/// Events read per query while exporting: what bounds the export's memory.
const EXPORT_PAGE: i64 = 1000;

/// Writes every event with `from <= position <= to` to `out`, in log order, and returns
/// how many it wrote.
///
/// Reads the event store itself, not the audit view, so an export is complete whether or
/// not a projector has caught up; rows are the audit view's rows all the same.
pub async fn export_audit(
    database: &Database,
    from: Option<i64>,
    to: Option<i64>,
    format: ExportFormat,
    out: &mut impl Write,
) -> Result<u64, Error> {
    if format == ExportFormat::Csv {
        writeln!(
            out,
            "position,organization_id,sequence,event_type,event_version,occurred_at,actor,subject,payload"
        )?;
    }
    let mut position = from.map_or(0, |from| from.saturating_sub(1).max(0));
    let mut written = 0;
    loop {
        let page = database.events_after(position, EXPORT_PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        position = last.position;
        for stored in page {
            if to.is_some_and(|to| stored.position > to) {
                out.flush()?;
                return Ok(written);
            }
            if let Some(envelope) = Envelope::decode(stored)? {
                write_entry(out, format, &envelope)?;
                written += 1;
            }
        }
    }
    out.flush()?;
    Ok(written)
}

fn write_entry(
    out: &mut impl Write,
    format: ExportFormat,
    envelope: &Envelope,
) -> std::io::Result<()> {
    let entry = AuditEntry::of(envelope);
    let actor = entry.actor.as_ref().map(PersonId::as_str);
    let subject = entry.subject.as_ref().map(PersonId::as_str);
    match format {
        ExportFormat::JsonLines => {
            let line = json!({
                "position": entry.position,
                "organization_id": entry.organization.to_string(),
                "sequence": entry.sequence,
                "event_type": entry.event_type,
                "event_version": entry.event_version,
                "occurred_at": time_text(entry.occurred_at),
                "actor": actor,
                "subject": subject,
                "payload": envelope.payload,
            });
            writeln!(out, "{line}")
        }
        ExportFormat::Csv => {
            let fields = [
                entry.position.to_string(),
                entry.organization.to_string(),
                entry.sequence.to_string(),
                entry.event_type,
                entry.event_version,
                time_text(entry.occurred_at),
                actor.unwrap_or_default().to_owned(),
                subject.unwrap_or_default().to_owned(),
                entry.payload,
            ];
            let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
            writeln!(out, "{}", row.join(","))
        }
    }
}

/// RFC 4180: a field holding a comma, a quote or a line break is quoted, quotes doubled.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}
