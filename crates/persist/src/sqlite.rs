//! The SQLite store: schema, pragmas, format version, reads, and the SQL
//! each queued write runs (the batching itself is in `group_commit.rs`).
//!
//! Schema (format version 1; `docs/storage.md` has the rationale):
//!
//! ```sql
//! CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value ANY) STRICT;
//! CREATE TABLE docs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
//!   next_seq INTEGER NOT NULL, snapshot_seq INTEGER NOT NULL, log_count INTEGER NOT NULL,
//!   log_bytes INTEGER NOT NULL, snapshot_bytes INTEGER NOT NULL,
//!   compactions INTEGER NOT NULL, last_compaction_ms INTEGER) STRICT;
//! CREATE TABLE log (doc INTEGER NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,
//!   PRIMARY KEY (doc, seq)) STRICT, WITHOUT ROWID;
//! CREATE TABLE snapshots (doc INTEGER NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,
//!   UNIQUE (doc, seq)) STRICT;
//! ```

use crate::commit::Commit;
use crate::compaction::{prepare, Compactor, Plan};
use crate::crypto::Cipher;
use crate::group_commit::{call, send, Command, Counters, Writer, WriterCtx};
use crate::load::{checked_appends, trusted_appends, verify, Payload, RawDoc, StoredDoc};
use crate::record::RecordCodec;
use crate::sqlite_write::now_ms;
use crate::store::{Appended, CompactionReport, DocStats, Options, Store};
use crate::{validate_doc_id, Error, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};
use weft_core::{Doc, ReplicaId};

/// The store format version this build writes and the highest it opens.
pub const FORMAT_VERSION: i64 = 1;
/// `PRAGMA application_id` of a weft store: "WEFT".
const APPLICATION_ID: i32 = 0x5745_4654;
const CIPHER_NONE: &str = "none";
const CIPHER_XCHACHA: &str = "xchacha20poly1305";
/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;
/// Background errors kept until taken.
const MAX_BACKGROUND_ERRORS: usize = 64;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value ANY) STRICT;
CREATE TABLE docs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    next_seq INTEGER NOT NULL,
    snapshot_seq INTEGER NOT NULL,
    log_count INTEGER NOT NULL,
    log_bytes INTEGER NOT NULL,
    snapshot_bytes INTEGER NOT NULL,
    compactions INTEGER NOT NULL,
    last_compaction_ms INTEGER
) STRICT;
CREATE TABLE log (
    doc INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (doc, seq)
) STRICT, WITHOUT ROWID;
CREATE TABLE snapshots (
    doc INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    record BLOB NOT NULL,
    UNIQUE (doc, seq)
) STRICT;
";

/// The durable store: one SQLite file in WAL mode with `synchronous=FULL`.
///
/// Appends go through one writer thread that groups concurrent appends into
/// shared transactions (group commit) and returns only after the commit is
/// on disk. Reads use their own connections and never wait for the writer.
/// Documents whose log passes the [`CompactionPolicy`](crate::CompactionPolicy)
/// are compacted by a background thread. Cheap to clone (shared handle); the
/// threads stop when the last clone is dropped.
///
/// ```
/// use weft_core::{Doc, ReplicaId};
/// use weft_persist::{Options, SqliteStore, Store};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("weft.db");
/// let mut doc = Doc::new(ReplicaId::random());
/// {
///     let store = SqliteStore::open(&path, Options::default()).unwrap();
///     let update = doc.transact(|tx| tx.text("title")?.insert(0, "Groceries")).unwrap();
///     store.append("list-1", &update).unwrap();
///     store.compact("list-1").unwrap();
///     let update = doc.transact(|tx| tx.text("title")?.insert(9, "!")).unwrap();
///     store.append("list-1", &update).unwrap();
/// }
/// let store = SqliteStore::open(&path, Options::default()).unwrap();
/// let loaded = store.load("list-1", ReplicaId::random()).unwrap().unwrap();
/// assert_eq!(loaded, doc);
/// assert_eq!(loaded.text("title").unwrap().to_string(), "Groceries!");
/// let stats = store.stats("list-1").unwrap().unwrap();
/// assert_eq!((stats.snapshot_seq, stats.log_records, stats.compactions), (1, 1, 1));
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    writer_tx: mpsc::Sender<Command>,
    writer: Writer,
    compactor: Option<Compactor>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.writer.shutdown();
        if let Some(c) = &mut self.compactor {
            c.shutdown();
        }
        // Nothing writes any more: fold the WAL into the database file and
        // truncate it (best effort; SQLite also checkpoints when the last
        // connection closes, but only if it can, and leaves the file).
        let _ = self.shared.checkpoint();
    }
}

/// State shared by callers, the writer and the compactor.
struct Shared {
    path: PathBuf,
    codec: RecordCodec,
    options: Options,
    readers: Mutex<Vec<Connection>>,
    background_errors: Mutex<Vec<Error>>,
    stopping: AtomicBool,
    counters: Arc<Counters>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.shared.path)
            .field("encrypted", &self.inner.shared.options.encryption.is_some())
            .field("compaction", &self.inner.shared.options.compaction)
            .finish()
    }
}

/// Transactions and appends committed by a store's writer since it opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitStats {
    /// Committed transactions (each one fsync of the WAL).
    pub transactions: u64,
    /// Appends acknowledged.
    pub appends: u64,
}

/// What [`SqliteStore::check`] found.
#[derive(Debug)]
pub struct CheckReport {
    /// Documents examined.
    pub docs: usize,
    /// Every problem found: damaged pages (from SQLite's `quick_check`) and
    /// documents that fail to verify or replay. Empty means healthy.
    pub problems: Vec<Error>,
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(Error::sqlite("set busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(Error::sqlite("enable WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Io(std::io::Error::other(format!(
            "SQLite refused WAL mode (journal_mode is {mode})"
        ))));
    }
    // FULL: every commit fsyncs the WAL, so an acknowledged append survives
    // power loss (NORMAL would not; see docs/storage.md).
    conn.execute_batch("PRAGMA synchronous=FULL;")
        .map_err(Error::sqlite("set synchronous=FULL"))?;
    Ok(())
}

/// Creates the schema in an empty file, or checks an existing store's
/// identity, format version and encryption; returns the codec to use.
fn init_or_check(conn: &mut Connection, path: &Path, options: &Options) -> Result<RecordCodec> {
    let not_a_store = || Error::NotAStore {
        path: path.display().to_string(),
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(Error::sqlite("open: begin"))?;
    let app_id: i32 = tx
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(Error::sqlite("open: read application_id"))?;
    if app_id == 0 {
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(Error::sqlite("open: read schema"))?;
        if objects != 0 {
            return Err(not_a_store());
        }
        tx.execute_batch(SCHEMA)
            .map_err(Error::sqlite("open: create schema"))?;
        tx.execute_batch(&format!("PRAGMA application_id={APPLICATION_ID};"))
            .map_err(Error::sqlite("open: set application_id"))?;
        let (cipher_name, check) = match &options.encryption {
            Some(key) => (CIPHER_XCHACHA, Some(Cipher::new(key).key_check()?)),
            None => (CIPHER_NONE, None),
        };
        let mut put = tx
            .prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")
            .map_err(Error::sqlite("open: write meta"))?;
        let rows: [(&str, rusqlite::types::Value); 4] = [
            ("format_version", FORMAT_VERSION.into()),
            ("created_ms", now_ms().into()),
            ("cipher", cipher_name.to_owned().into()),
            (
                "key_check",
                check.map_or(rusqlite::types::Value::Null, Into::into),
            ),
        ];
        for (k, v) in rows {
            put.execute(params![k, v])
                .map_err(Error::sqlite("open: write meta"))?;
        }
        drop(put);
    } else if app_id != APPLICATION_ID {
        return Err(not_a_store());
    }
    let meta = |key: &str| -> Result<Option<rusqlite::types::Value>> {
        tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(Error::sqlite("open: read meta"))
    };
    use rusqlite::types::Value;
    let version = match meta("format_version")? {
        Some(Value::Integer(v)) => v,
        _ => return Err(not_a_store()),
    };
    if version > FORMAT_VERSION {
        return Err(Error::NewerFormat {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version < 1 {
        return Err(not_a_store());
    }
    // Migrations from older format versions go here (none exist yet).
    let cipher = match (meta("cipher")?, &options.encryption) {
        (Some(Value::Text(c)), None) if c == CIPHER_NONE => None,
        (Some(Value::Text(c)), Some(_)) if c == CIPHER_NONE => return Err(Error::NotEncrypted),
        (Some(Value::Text(c)), None) if c == CIPHER_XCHACHA => return Err(Error::KeyRequired),
        (Some(Value::Text(c)), Some(key)) if c == CIPHER_XCHACHA => {
            let cipher = Cipher::new(key);
            match meta("key_check")? {
                Some(Value::Blob(check)) if cipher.verify_key_check(&check) => Some(cipher),
                Some(Value::Blob(_)) => return Err(Error::WrongKey),
                _ => return Err(not_a_store()),
            }
        }
        _ => return Err(not_a_store()),
    };
    tx.commit().map_err(Error::sqlite("open: commit"))?;
    Ok(RecordCodec::new(cipher))
}

impl SqliteStore {
    /// Queues every append (or its error) without waiting: the writer
    /// thread finds them all queued and commits them together.
    fn queue_all(&self, appends: impl Iterator<Item = Result<(String, Payload)>>) -> Commit {
        let queued = appends
            .map(|append| {
                let (doc_id, update) = append?;
                send(&self.inner.writer_tx, |reply| Command::Append {
                    doc_id,
                    update,
                    reply,
                })
            })
            .collect();
        Commit::from_queued(queued)
    }
}

impl SqliteStore {
    /// Opens the store at `path`, creating it if the file does not exist.
    ///
    /// Errors: [`Error::NewerFormat`] for a store written by a newer
    /// version, [`Error::NotAStore`] for another kind of database,
    /// [`Error::KeyRequired`] / [`Error::WrongKey`] / [`Error::NotEncrypted`]
    /// when the key does not fit the store, [`Error::DatabaseCorrupt`] for a
    /// damaged file.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Error::sqlite("open"))?;
        configure(&conn)?;
        let codec = init_or_check(&mut conn, &path, &options)?;
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            path,
            codec: codec.clone(),
            options: options.clone(),
            readers: Mutex::new(Vec::new()),
            background_errors: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            counters: counters.clone(),
        });
        // The compactor commits through the writer, and the writer asks the
        // compactor for work: create the writer's queue first.
        let (writer_tx, writer_rx) = mpsc::channel::<Command>();
        let compactor = if options.compaction.automatic {
            let shared = shared.clone();
            let tx = writer_tx.clone();
            Some(Compactor::spawn(move |doc_id| {
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Err(e) = shared.compact(&tx, doc_id) {
                    if !shared.stopping.load(Ordering::SeqCst) {
                        shared.record_background_error(e);
                    }
                }
            })?)
        } else {
            None
        };
        let writer = Writer::spawn(
            conn,
            writer_tx.clone(),
            writer_rx,
            WriterCtx {
                codec,
                policy: options.compaction,
                max_batch: options.max_batch.max(1),
                compactor: compactor.as_ref().and_then(Compactor::handle),
                counters,
            },
        )?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                shared,
                writer_tx,
                writer,
                compactor,
            }),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Transactions and appends committed since the store opened: with many
    /// concurrent writers, `appends / transactions` is the group-commit
    /// batching factor.
    pub fn commit_stats(&self) -> CommitStats {
        let c = &self.inner.shared.counters;
        CommitStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            appends: c.appends.load(Ordering::Relaxed),
        }
    }

    /// Copies every committed transaction from the write-ahead log into the
    /// database file and truncates the log to zero bytes
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`), waiting up to the busy timeout
    /// (10 s) for readers and the writer. `Ok(false)` if it could not
    /// complete (a reader or writer stayed busy): nothing is lost, the log
    /// is checkpointed later. Dropping the last handle does the same.
    ///
    /// ```
    /// use weft_persist::{Options, SqliteStore, Store};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("weft.db");
    /// let store = SqliteStore::open(&path, Options::default()).unwrap();
    /// let mut doc = weft_core::Doc::new(weft_core::ReplicaId::random());
    /// let update = doc.transact(|tx| tx.text("t")?.insert(0, "x")).unwrap();
    /// store.append("d", &update).unwrap();
    /// assert!(store.checkpoint().unwrap());
    /// let wal = std::fs::metadata(dir.path().join("weft.db-wal")).unwrap();
    /// assert_eq!(wal.len(), 0);
    /// ```
    pub fn checkpoint(&self) -> Result<bool> {
        self.inner.shared.checkpoint()
    }

    /// Errors from background compactions since the last call (a document
    /// whose compaction fails keeps its log and is reported here; loading it
    /// reports the same error).
    pub fn take_background_errors(&self) -> Vec<Error> {
        match self.inner.shared.background_errors.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    /// Verifies the whole store: SQLite's `quick_check` of every page, then
    /// every document's records (checksums, seals, bookkeeping) and replay.
    /// Reports every problem instead of stopping at the first.
    pub fn check(&self) -> Result<CheckReport> {
        let shared = &self.inner.shared;
        let mut problems = Vec::new();
        let lines: Vec<String> = shared.with_reader(|conn| {
            let mut stmt = conn
                .prepare("PRAGMA quick_check")
                .map_err(Error::sqlite("quick_check"))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(Error::sqlite("quick_check"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(Error::sqlite("quick_check"))
        })?;
        for line in lines.into_iter().filter(|l| l != "ok") {
            problems.push(Error::DatabaseCorrupt {
                context: "quick_check",
                detail: line,
            });
        }
        let docs = match self.list() {
            Ok(docs) => docs,
            Err(e) => {
                problems.push(e);
                Vec::new()
            }
        };
        for doc_id in &docs {
            match self.load_report(doc_id, ReplicaId::new(0)) {
                Ok(Some(report)) => {
                    problems.extend(report.skipped.iter().map(|s| s.to_error(doc_id)));
                }
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        Ok(CheckReport {
            docs: docs.len(),
            problems,
        })
    }
}

impl Shared {
    /// `PRAGMA wal_checkpoint(TRUNCATE)` on a connection of its own (the
    /// readers' are read-only); `false` if SQLite reported it busy.
    fn checkpoint(&self) -> Result<bool> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Error::sqlite("checkpoint: open"))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(Error::sqlite("set busy timeout"))?;
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(Error::sqlite("checkpoint"))?;
        Ok(busy == 0)
    }

    fn record_background_error(&self, e: Error) {
        let mut v = match self.background_errors.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        if v.len() < MAX_BACKGROUND_ERRORS {
            v.push(e);
        }
    }

    /// Runs `f` on an idle read connection (opened on demand).
    fn with_reader<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let idle = match self.readers.lock() {
            Ok(mut r) => r.pop(),
            Err(p) => p.into_inner().pop(),
        };
        let mut conn = match idle {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(Error::sqlite("open reader"))?;
                c.busy_timeout(Duration::from_secs(10))
                    .map_err(Error::sqlite("set busy timeout"))?;
                c
            }
        };
        let result = f(&mut conn);
        if let Ok(mut r) = self.readers.lock() {
            if r.len() < MAX_IDLE_READERS {
                r.push(conn);
            }
        }
        result
    }

    fn read_raw(&self, doc_id: &str) -> Result<Option<RawDoc>> {
        self.with_reader(|conn| read_raw(conn, doc_id))
    }

    /// Folds `doc_id`'s log into a new snapshot and commits it through the
    /// writer; retries if another compaction or a delete got there first.
    fn compact(
        &self,
        writer: &mpsc::Sender<Command>,
        doc_id: &str,
    ) -> Result<Option<CompactionReport>> {
        const ATTEMPTS: usize = 8;
        for _ in 0..ATTEMPTS {
            let Some(raw) = self.read_raw(doc_id)? else {
                return Ok(None);
            };
            let commit = match prepare(&self.codec, doc_id, raw)? {
                Plan::Nothing(report) => return Ok(Some(report)),
                Plan::Commit(commit) => commit,
            };
            if let Some(report) = call(writer, |reply| Command::Compact { commit, reply })? {
                return Ok(Some(report));
            }
        }
        Err(Error::Inconsistent {
            doc_id: doc_id.to_owned(),
            detail: format!("compaction lost the race {ATTEMPTS} times in a row"),
        })
    }
}

fn read_raw(conn: &mut Connection, doc_id: &str) -> Result<Option<RawDoc>> {
    let ctx = "read document";
    let tx = conn.transaction().map_err(Error::sqlite(ctx))?;
    let row = tx
        .query_row(
            "SELECT id, next_seq, snapshot_seq, log_count FROM docs WHERE name = ?1",
            [doc_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, u64>(2)?,
                    r.get::<_, u64>(3)?,
                ))
            },
        )
        .optional()
        .map_err(Error::sqlite(ctx))?;
    let Some((key, next_seq, snapshot_seq, log_count)) = row else {
        return Ok(None);
    };
    let snapshot = tx
        .query_row(
            "SELECT seq, record FROM snapshots WHERE doc = ?1 ORDER BY seq DESC LIMIT 1",
            [key],
            |r| Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )
        .optional()
        .map_err(Error::sqlite(ctx))?;
    let log = {
        let mut stmt = tx
            .prepare_cached("SELECT seq, record FROM log WHERE doc = ?1 ORDER BY seq")
            .map_err(Error::sqlite(ctx))?;
        let rows = stmt
            .query_map([key], |r| {
                Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(Error::sqlite(ctx))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite(ctx))?
    };
    tx.commit().map_err(Error::sqlite(ctx))?;
    Ok(Some(RawDoc {
        key,
        next_seq,
        snapshot_seq,
        log_count,
        snapshot,
        log,
    }))
}

impl Store for SqliteStore {
    fn append(&self, doc_id: &str, update: &[u8]) -> Result<Appended> {
        self.submit_many(doc_id, &[update])
            .wait()
            .pop()
            .unwrap_or(Err(Error::Closed))
    }

    fn submit_updates(&self, doc_id: &str, updates: &[&weft_core::Update]) -> Commit {
        // Checked when they were decoded: stored as they are.
        self.queue_all(trusted_appends(doc_id, updates))
    }

    fn submit_many(&self, doc_id: &str, records: &[&[u8]]) -> Commit {
        self.queue_all(checked_appends(doc_id, records))
    }

    fn read(&self, doc_id: &str) -> Result<Option<StoredDoc>> {
        validate_doc_id(doc_id)?;
        let shared = &self.inner.shared;
        let Some(raw) = shared.read_raw(doc_id)? else {
            return Ok(None);
        };
        let bytes: u64 = raw.log.iter().map(|(_, r)| r.len() as u64).sum();
        if shared
            .options
            .compaction
            .should_compact(raw.log_count, bytes)
        {
            // A log past the threshold (e.g. compaction fell behind or the
            // store was reopened before it ran): fold it for next time.
            if let Some(h) = self.inner.compactor.as_ref().and_then(Compactor::handle) {
                h.request(doc_id);
            }
        }
        verify(&shared.codec, doc_id, raw).map(Some)
    }

    fn compact(&self, doc_id: &str) -> Result<Option<CompactionReport>> {
        validate_doc_id(doc_id)?;
        self.inner.shared.compact(&self.inner.writer_tx, doc_id)
    }

    fn list(&self) -> Result<Vec<String>> {
        self.inner.shared.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name FROM docs ORDER BY name")
                .map_err(Error::sqlite("list documents"))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(Error::sqlite("list documents"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(Error::sqlite("list documents"))
        })
    }

    fn delete(&self, doc_id: &str) -> Result<bool> {
        validate_doc_id(doc_id)?;
        let doc_id = doc_id.to_owned();
        call(&self.inner.writer_tx, |reply| Command::Delete {
            doc_id,
            reply,
        })
    }

    fn stats(&self, doc_id: &str) -> Result<Option<DocStats>> {
        validate_doc_id(doc_id)?;
        self.inner.shared.with_reader(|conn| {
            conn.prepare_cached(
                "SELECT next_seq, snapshot_seq, log_count, log_bytes, snapshot_bytes, \
                 compactions, last_compaction_ms FROM docs WHERE name = ?1",
            )
            .and_then(|mut s| {
                s.query_row([doc_id], |r| {
                    Ok(DocStats {
                        last_seq: r.get::<_, u64>(0)?.saturating_sub(1),
                        snapshot_seq: r.get(1)?,
                        log_records: r.get(2)?,
                        log_bytes: r.get(3)?,
                        snapshot_bytes: r.get(4)?,
                        compactions: r.get(5)?,
                        last_compaction: r
                            .get::<_, Option<u64>>(6)?
                            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
                    })
                })
                .optional()
            })
            .map_err(Error::sqlite("document stats"))
        })
    }

    fn load(&self, doc_id: &str, replica: ReplicaId) -> Result<Option<Doc>> {
        match self.read(doc_id)? {
            Some(stored) => stored.into_doc(doc_id, replica).map(Some),
            None => Ok(None),
        }
    }
}
