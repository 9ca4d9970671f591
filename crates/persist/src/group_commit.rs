//! Group commit: one writer thread owns the write connection; callers queue
//! commands and wait for their acknowledgement.
//!
//! The thread takes the first queued command, then everything else already
//! queued (up to `max_batch`), runs them in one `BEGIN IMMEDIATE … COMMIT`
//! transaction — each inside its own savepoint, so one failing command does
//! not fail its neighbours — and replies to every caller only after the
//! commit returned. While one commit is being fsynced, new appends queue up
//! and share the next one, so durable throughput grows with the number of
//! concurrent writers instead of stopping at one fsync per update. There is
//! no timer: a lone writer is never delayed.

use crate::commit::{slot, Answer, Awaited};
use crate::compaction::CompactCommit;
use crate::compaction::CompactorHandle;
use crate::load::Payload;
use crate::outcome::{Appended, CompactionReport};
use crate::record::RecordCodec;
use crate::sqlite_write::{exec_append, exec_compact, exec_delete};
use crate::{CompactionPolicy, Error, Result};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

/// Where the writer sends one command's result.
pub(crate) type Reply<T> = Answer<Result<T>>;

/// One queued write.
pub(crate) enum Command {
    Append {
        doc_id: String,
        update: Payload,
        reply: Reply<Appended>,
    },
    Compact {
        commit: CompactCommit,
        reply: Reply<Option<CompactionReport>>,
    },
    Delete {
        doc_id: String,
        reply: Reply<bool>,
    },
    Shutdown,
}

/// Counts of the writer's work, for tests and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) transactions: AtomicU64,
    pub(crate) appends: AtomicU64,
}

/// What the writer thread needs besides its connection.
pub(crate) struct WriterCtx {
    pub(crate) codec: RecordCodec,
    pub(crate) policy: CompactionPolicy,
    pub(crate) max_batch: usize,
    pub(crate) compactor: Option<CompactorHandle>,
    pub(crate) counters: Arc<Counters>,
}

/// The writer thread and its queue.
pub(crate) struct Writer {
    tx: mpsc::Sender<Command>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread on the queue `(tx, rx)` (created by the caller so
    /// that others, like the compactor, can hold a sender first).
    pub(crate) fn spawn(
        conn: Connection,
        tx: mpsc::Sender<Command>,
        rx: mpsc::Receiver<Command>,
        ctx: WriterCtx,
    ) -> std::io::Result<Writer> {
        let handle = thread::Builder::new()
            .name("weft-persist-writer".into())
            .spawn(move || run(conn, rx, ctx))?;
        Ok(Writer {
            tx,
            handle: Some(handle),
        })
    }

    /// Lets queued commands finish, then stops the thread.
    pub(crate) fn shutdown(&mut self) {
        let _ = self.tx.send(Command::Shutdown);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Queues a command built around a fresh answer slot and waits for it.
pub(crate) fn call<T>(
    tx: &mpsc::Sender<Command>,
    make: impl FnOnce(Reply<T>) -> Command,
) -> Result<T> {
    send(tx, make)?.result()
}

/// Queues a command without waiting; the slot yields its result.
pub(crate) fn send<T>(
    tx: &mpsc::Sender<Command>,
    make: impl FnOnce(Reply<T>) -> Command,
) -> Result<Awaited<Result<T>>> {
    let (reply, wait) = slot();
    tx.send(make(reply)).map_err(|_| Error::Closed)?;
    Ok(wait)
}

fn run(conn: Connection, rx: mpsc::Receiver<Command>, ctx: WriterCtx) {
    let mut batch = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < ctx.max_batch {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let stop = match batch.iter().position(|c| matches!(c, Command::Shutdown)) {
            Some(i) => {
                // Commands queued after shutdown are dropped: their callers
                // see `Error::Closed`, nothing was written for them.
                batch.truncate(i);
                true
            }
            None => false,
        };
        commit_batch(&conn, &ctx, std::mem::take(&mut batch));
        if stop {
            break;
        }
    }
}

/// A command's result, held until the transaction commits.
enum Outcome {
    Append(Reply<Appended>, String, Result<Appended>),
    Compact(
        Reply<Option<CompactionReport>>,
        Result<Option<CompactionReport>>,
    ),
    Delete(Reply<bool>, Result<bool>),
}

/// A copy of a SQLite error for every caller of a failed transaction.
fn replicate(e: &Error) -> Error {
    match e {
        Error::Storage {
            context,
            source: rusqlite::Error::SqliteFailure(code, msg),
        } => Error::Storage {
            context,
            source: rusqlite::Error::SqliteFailure(*code, msg.clone()),
        },
        Error::DatabaseCorrupt { context, detail } => Error::DatabaseCorrupt {
            context,
            detail: detail.clone(),
        },
        other => Error::Storage {
            context: "commit",
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(other.to_string()),
            ),
        },
    }
}

fn exec(conn: &Connection, sql: &'static str, context: &'static str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(Error::sqlite(context))
}

/// Runs `f` inside a savepoint, rolling back only its own changes on error.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    exec(conn, "SAVEPOINT cmd", "savepoint")?;
    let result = f();
    if result.is_err() {
        exec(conn, "ROLLBACK TO cmd", "rollback to savepoint")?;
    }
    exec(conn, "RELEASE cmd", "release savepoint")?;
    result
}

fn commit_batch(conn: &Connection, ctx: &WriterCtx, batch: Vec<Command>) {
    if batch.is_empty() {
        return;
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    let began = exec(conn, "BEGIN IMMEDIATE", "begin transaction");
    for cmd in batch {
        match cmd {
            Command::Append {
                doc_id,
                update,
                reply,
            } => {
                let r = match &began {
                    Ok(()) => in_savepoint(conn, || {
                        exec_append(conn, &ctx.codec, &doc_id, update.as_bytes())
                    }),
                    Err(e) => Err(replicate(e)),
                };
                outcomes.push(Outcome::Append(reply, doc_id, r));
            }
            Command::Compact { commit, reply } => {
                let r = match &began {
                    Ok(()) => in_savepoint(conn, || exec_compact(conn, &commit)),
                    Err(e) => Err(replicate(e)),
                };
                outcomes.push(Outcome::Compact(reply, r));
            }
            Command::Delete { doc_id, reply } => {
                let r = match &began {
                    Ok(()) => in_savepoint(conn, || exec_delete(conn, &doc_id)),
                    Err(e) => Err(replicate(e)),
                };
                outcomes.push(Outcome::Delete(reply, r));
            }
            Command::Shutdown => {}
        }
    }
    let committed = match began {
        Ok(()) => match exec(conn, "COMMIT", "commit") {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave no transaction open; the commit error is what callers see.
                let _ = exec(conn, "ROLLBACK", "rollback");
                Err(e)
            }
        },
        Err(e) => Err(e),
    };
    let commit_error = || committed.as_ref().err().map(replicate);
    if committed.is_ok() {
        ctx.counters.transactions.fetch_add(1, Ordering::Relaxed);
    }
    for outcome in outcomes {
        match outcome {
            Outcome::Append(reply, doc_id, r) => {
                let r = match (r, commit_error()) {
                    (Ok(_), Some(e)) => Err(e),
                    (r, _) => r,
                };
                if let Ok(a) = &r {
                    ctx.counters.appends.fetch_add(1, Ordering::Relaxed);
                    if let Some(c) = &ctx.compactor {
                        if ctx.policy.should_compact(a.log_records, a.log_bytes) {
                            c.request(&doc_id);
                        }
                    }
                }
                reply.send(r);
            }
            Outcome::Compact(reply, r) => {
                let r = match (r, commit_error()) {
                    (Ok(_), Some(e)) => Err(e),
                    (r, _) => r,
                };
                reply.send(r);
            }
            Outcome::Delete(reply, r) => {
                let r = match (r, commit_error()) {
                    (Ok(_), Some(e)) => Err(e),
                    (r, _) => r,
                };
                reply.send(r);
            }
        }
    }
}
