//! The SQL of the SQLite writer's commands (append, compaction commit,
//! delete), run inside the writer thread's transaction
//! (`group_commit.rs`).

use crate::compaction::CompactCommit;
use crate::error::RecordKind;
use crate::outcome::{Appended, CompactionReport};
use crate::record::RecordCodec;
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Appends one update inside the writer's transaction.
pub(crate) fn exec_append(
    conn: &Connection,
    codec: &RecordCodec,
    doc_id: &str,
    update: &[u8],
) -> Result<Appended> {
    let ctx = "append";
    let row = conn
        .prepare_cached("SELECT id, next_seq, log_count, log_bytes FROM docs WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([doc_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, u64>(2)?,
                    r.get::<_, u64>(3)?,
                ))
            })
            .optional()
        })
        .map_err(Error::sqlite(ctx))?;
    let (id, seq, count, bytes) = match row {
        Some(r) => r,
        None => {
            conn.prepare_cached(
                "INSERT INTO docs (name, next_seq, snapshot_seq, log_count, log_bytes, \
                 snapshot_bytes, compactions) VALUES (?1, 1, 0, 0, 0, 0, 0)",
            )
            .and_then(|mut s| s.execute([doc_id]))
            .map_err(Error::sqlite(ctx))?;
            (conn.last_insert_rowid(), 1, 0, 0)
        }
    };
    let record = codec.seal(doc_id, RecordKind::Update, seq, update)?;
    let len = record.len() as u64;
    conn.prepare_cached("INSERT INTO log (doc, seq, record) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![id, seq, record]))
        .map_err(Error::sqlite(ctx))?;
    conn.prepare_cached(
        "UPDATE docs SET next_seq = ?2, log_count = ?3, log_bytes = ?4 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, seq + 1, count + 1, bytes + len]))
    .map_err(Error::sqlite(ctx))?;
    Ok(Appended {
        seq,
        log_records: count + 1,
        log_bytes: bytes + len,
    })
}

/// Commits a folded snapshot: insert it, drop the folded updates and the
/// old snapshot, update the bookkeeping — all in the writer's transaction,
/// so a failure at any step leaves the old snapshot and log in place.
/// `None` if the document changed since it was read.
pub(crate) fn exec_compact(
    conn: &Connection,
    c: &CompactCommit,
) -> Result<Option<CompactionReport>> {
    let ctx = "commit compaction";
    let current = conn
        .query_row(
            "SELECT snapshot_seq FROM docs WHERE id = ?1",
            [c.key],
            |r| r.get::<_, u64>(0),
        )
        .optional()
        .map_err(Error::sqlite(ctx))?;
    if current != Some(c.base_snapshot_seq) {
        return Ok(None);
    }
    let len = c.record.len() as u64;
    conn.execute(
        "INSERT INTO snapshots (doc, seq, record) VALUES (?1, ?2, ?3)",
        params![c.key, c.through_seq, c.record],
    )
    .map_err(Error::sqlite(ctx))?;
    conn.execute(
        "DELETE FROM log WHERE doc = ?1 AND seq <= ?2",
        params![c.key, c.through_seq],
    )
    .map_err(Error::sqlite(ctx))?;
    conn.execute(
        "DELETE FROM snapshots WHERE doc = ?1 AND seq < ?2",
        params![c.key, c.through_seq],
    )
    .map_err(Error::sqlite(ctx))?;
    conn.execute(
        "UPDATE docs SET snapshot_seq = ?2, snapshot_bytes = ?3, \
         log_count = (SELECT count(*) FROM log WHERE doc = ?1), \
         log_bytes = (SELECT coalesce(sum(length(record)), 0) FROM log WHERE doc = ?1), \
         compactions = compactions + 1, last_compaction_ms = ?4 WHERE id = ?1",
        params![c.key, c.through_seq, len, now_ms()],
    )
    .map_err(Error::sqlite(ctx))?;
    Ok(Some(CompactionReport {
        through_seq: c.through_seq,
        folded: c.folded,
        snapshot_bytes: len,
    }))
}

/// Deletes a document and its records; whether it existed.
pub(crate) fn exec_delete(conn: &Connection, doc_id: &str) -> Result<bool> {
    let ctx = "delete document";
    let id = conn
        .query_row("SELECT id FROM docs WHERE name = ?1", [doc_id], |r| {
            r.get::<_, i64>(0)
        })
        .optional()
        .map_err(Error::sqlite(ctx))?;
    let Some(id) = id else { return Ok(false) };
    for sql in [
        "DELETE FROM log WHERE doc = ?1",
        "DELETE FROM snapshots WHERE doc = ?1",
        "DELETE FROM docs WHERE id = ?1",
    ] {
        conn.execute(sql, [id]).map_err(Error::sqlite(ctx))?;
    }
    Ok(true)
}
