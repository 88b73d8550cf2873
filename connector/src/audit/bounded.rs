//! Text bounded before it enters a record, so that a record grows by a
//! known amount however long the input: the SQL of a query, the detail of
//! a refusal.

use policy::document::hash_bytes;

use super::record::AuditEntry;

/// `entry` with the SQL of a query: the text up to `max` bytes, cut on a
/// character boundary and marked when cut (`… [truncated: K of N bytes
/// kept]`), and the `sha256:` hash of the whole text, which a receipt's
/// `sql_hash` also names. So a record grows by at most `max` bytes plus a
/// fixed overhead, however long the query.
pub fn audit_sql(entry: AuditEntry, sql: &str, max: usize) -> AuditEntry {
    entry
        .with_sql(bounded_text(sql, max))
        .with_sql_hash(hash_bytes(sql.as_bytes()))
}

/// `text` cut to at most `max` bytes on a character boundary, marked when
/// cut (`… [truncated: K of N bytes kept]`).
pub fn bounded_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let cut = text.floor_char_boundary(max);
    let head = text.get(..cut).unwrap_or_default();
    format!("{head}… [truncated: {cut} of {} bytes kept]", text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::RecordKind;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary_and_marked() {
        assert_eq!(bounded_text("short", 10), "short");
        let cut = bounded_text("ééééé", 3);
        assert!(cut.starts_with("é…"), "{cut}");
        assert!(cut.contains("2 of 10 bytes"), "{cut}");
        let sql = format!("SELECT '{}'", "x".repeat(10_000));
        let entry = audit_sql(AuditEntry::new(RecordKind::QueryChecked, "p"), &sql, 100);
        let kept = entry.sql.unwrap();
        assert!(
            kept.len() < 100 + 64 && kept.contains("[truncated: 100 of 10009"),
            "{kept}"
        );
        assert_eq!(entry.sql_hash, Some(hash_bytes(sql.as_bytes())));
    }
}
