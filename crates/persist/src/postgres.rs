//! [`PostgresStore`]: the shared store of cluster mode (feature `postgres`).
//!
//! Same records as SQLite (`record.rs`: version, kind, length, CRC-32,
//! optional seal), same verification on read (`load.rs`), same folding
//! (`compaction.rs`); what differs is where the bytes live and how several
//! processes share them.
//!
//! Schema (version [`PG_SCHEMA_VERSION`]):
//!
//! ```sql
//! CREATE TABLE weft_schema (id INT PRIMARY KEY CHECK (id = 1), version INT NOT NULL,
//!   cipher TEXT NOT NULL, key_check BYTEA, created_ms BIGINT NOT NULL);
//! CREATE TABLE weft_docs (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,
//!   next_seq BIGINT NOT NULL, snapshot_seq BIGINT NOT NULL, log_count BIGINT NOT NULL,
//!   log_bytes BIGINT NOT NULL, snapshot_bytes BIGINT NOT NULL,
//!   compactions BIGINT NOT NULL, last_compaction_ms BIGINT);
//! CREATE TABLE weft_log (doc BIGINT NOT NULL, seq BIGINT NOT NULL, record BYTEA NOT NULL,
//!   PRIMARY KEY (doc, seq));
//! CREATE TABLE weft_snapshots (doc BIGINT NOT NULL, seq BIGINT NOT NULL,
//!   record BYTEA NOT NULL, PRIMARY KEY (doc, seq));
//! ```
//!
//! Threads: the store owns a small tokio runtime (`weft-pg` workers) that
//! drives every connection. Callers of the blocking [`Store`] API hand it a
//! job and wait on a channel, so a relay calling from its blocking pool
//! never runs the driver on its async workers, and the store never needs
//! the caller's runtime.
//!
//! * **Appends**: one writer task owns one connection and groups whatever
//!   is queued (up to `max_batch`) into one transaction: per document one
//!   `INSERT … ON CONFLICT DO UPDATE` reserves the seqs (the document's row
//!   lock orders appends from every node), one multi-row insert stores the
//!   sealed records, one update counts their bytes; then `COMMIT`, then
//!   every caller is answered. One failed statement fails the whole batch
//!   (every caller gets the error and nothing of the batch is stored).
//! * **Reads** run on pooled connections in a `REPEATABLE READ READ ONLY`
//!   transaction: bookkeeping, snapshot and log from one snapshot of the
//!   database.
//! * **Compaction** takes `pg_try_advisory_xact_lock(WEFT, crc32(doc))`
//!   first: only one node folds a document at a time; the others skip it.
//!   The fold commits only if the document's snapshot is still the one it
//!   read (its row is locked `FOR UPDATE` while the new snapshot replaces
//!   the folded log).
//! * **Schema**: created on first open under an advisory lock; a store
//!   whose version is newer than this build is refused
//!   ([`Error::NewerFormat`]); older versions are migrated in place.
//! * Every statement has a deadline (`Options` do not change it: 30 s);
//!   a lost connection is re-established on the next call.

use crate::commit::{slot, Answer, Commit};
use crate::compaction::{prepare, CompactCommit, Plan};
use crate::crypto::Cipher;
use crate::error::RecordKind;
use crate::load::{checked_appends, trusted_appends, verify, Payload, RawDoc, StoredDoc};
use crate::record::RecordCodec;
use crate::store::{Appended, CompactionReport, DocStats, Options, Store};
use crate::{validate_doc_id, Error, Result};
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc as tmpsc;
use tokio_postgres::{Client, Config, NoTls};

/// The schema version this build writes and the highest it opens.
pub const PG_SCHEMA_VERSION: i32 = 1;
/// First key of every advisory lock this store takes ("WEFT").
const LOCK_SPACE: i32 = 0x5745_4654;
/// Second key of the advisory lock held while creating or migrating the schema.
const SCHEMA_LOCK: i32 = 0;
const CIPHER_NONE: &str = "none";
const CIPHER_XCHACHA: &str = "xchacha20poly1305";
/// Deadline of one statement (or one connection attempt).
const STATEMENT_DEADLINE: Duration = Duration::from_secs(30);
/// Idle read connections kept.
const MAX_IDLE_READERS: usize = 8;
/// Read connections open at once per store (a node): more readers wait
/// their turn instead of opening more server connections.
pub const MAX_PG_READERS: usize = 16;
/// Compactions running at once per store (each replays a whole document
/// on the blocking pool); the others wait their turn.
const MAX_COMPACTIONS: usize = 2;

const SCHEMA_V1: &str = "
CREATE TABLE weft_docs (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    next_seq BIGINT NOT NULL,
    snapshot_seq BIGINT NOT NULL,
    log_count BIGINT NOT NULL,
    log_bytes BIGINT NOT NULL,
    snapshot_bytes BIGINT NOT NULL,
    compactions BIGINT NOT NULL,
    last_compaction_ms BIGINT
);
CREATE TABLE weft_log (
    doc BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (doc, seq)
);
CREATE TABLE weft_snapshots (
    doc BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (doc, seq)
);
";

/// Migrations from version `i + 1` to `i + 2` (none yet: version 1 is the
/// first). A newer build appends here and bumps [`PG_SCHEMA_VERSION`].
const MIGRATIONS: &[&str] = &[];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn pg(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Postgres { context, source }
}

/// Runs `fut` under the statement deadline.
async fn deadline<T>(
    context: &'static str,
    fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    match tokio::time::timeout(STATEMENT_DEADLINE, fut).await {
        Ok(r) => r.map_err(pg(context)),
        Err(_) => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("postgres: {context} took longer than {STATEMENT_DEADLINE:?}"),
        ))),
    }
}

/// Column `i` of `row`: a typed error, not a panic, when the database
/// holds something else (a schema changed under the store, damage).
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
) -> Result<T> {
    row.try_get(i).map_err(pg("read column"))
}

/// `u64` bookkeeping from a `BIGINT` column (never negative when written
/// by this crate; a negative one is damage).
fn to_u64(doc_id: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Inconsistent {
        doc_id: doc_id.to_owned(),
        detail: format!("negative bookkeeping value {v}"),
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The advisory-lock key of a document.
fn doc_lock_key(doc_id: &str) -> i32 {
    i32::from_ne_bytes(crc32fast::hash(doc_id.as_bytes()).to_ne_bytes())
}

/// A queued append (or delete), answered after the commit.
enum WriteCmd {
    Append {
        doc_id: String,
        update: Payload,
        reply: Answer<Result<Appended>>,
    },
    Delete {
        doc_id: String,
        reply: Answer<Result<bool>>,
    },
}

struct Shared {
    config: Config,
    codec: RecordCodec,
    options: Options,
    readers: Mutex<Vec<Client>>,
    /// One permit per read connection that may be open ([`MAX_PG_READERS`]).
    read_slots: tokio::sync::Semaphore,
    /// One permit per compaction that may run ([`MAX_COMPACTIONS`]).
    compaction_slots: tokio::sync::Semaphore,
    compacting: Mutex<HashSet<String>>,
    background_errors: Mutex<Vec<Error>>,
}

/// The durable store on PostgreSQL, shared by every relay node of a
/// cluster (`docs/scale-out.md`). Same records, checksums, optional
/// encryption and [`Store`] guarantees as [`SqliteStore`](crate::SqliteStore):
/// an append has committed when it returns. Cheap to clone.
///
/// ```no_run
/// use weft_core::{Doc, ReplicaId};
/// use weft_persist::{Options, PostgresStore, Store};
/// let store = PostgresStore::open("postgres://weft@127.0.0.1:5432/weft", Options::default())?;
/// let mut doc = Doc::new(ReplicaId::random());
/// let update = doc.transact(|tx| tx.text("t")?.insert(0, "hi")).unwrap();
/// store.append("note", &update)?; // committed in Postgres when this returns
/// assert_eq!(store.load("note", ReplicaId::random())?.unwrap(), doc);
/// # Ok::<(), weft_persist::Error>(())
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    writer: tmpsc::UnboundedSender<WriteCmd>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Allowed from any context (an async task included).
            rt.shutdown_background();
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.shared.config;
        f.debug_struct("PostgresStore")
            .field("hosts", &c.get_hosts())
            .field("dbname", &c.get_dbname())
            .field("encrypted", &self.inner.shared.options.encryption.is_some())
            .finish()
    }
}

async fn connect(config: &Config) -> Result<Client> {
    let (client, connection) = deadline("connect", config.connect(NoTls)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

/// Creates or checks the schema; returns the codec.
async fn init_or_check(client: &mut Client, options: &Options) -> Result<RecordCodec> {
    let tx = deadline("open: begin", client.transaction()).await?;
    deadline(
        "open: schema lock",
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_SPACE, &SCHEMA_LOCK],
        ),
    )
    .await?;
    deadline(
        "open: schema table",
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS weft_schema (id INT PRIMARY KEY CHECK (id = 1), \
             version INT NOT NULL, cipher TEXT NOT NULL, key_check BYTEA, \
             created_ms BIGINT NOT NULL)",
        ),
    )
    .await?;
    let row = deadline(
        "open: read schema",
        tx.query_opt(
            "SELECT version, cipher, key_check FROM weft_schema WHERE id = 1",
            &[],
        ),
    )
    .await?;
    let (version, cipher_name, key_check): (i32, String, Option<Vec<u8>>) = match row {
        Some(r) => (col(&r, 0)?, col(&r, 1)?, col(&r, 2)?),
        None => {
            deadline("open: create schema", tx.batch_execute(SCHEMA_V1)).await?;
            let (cipher_name, check) = match &options.encryption {
                Some(key) => (CIPHER_XCHACHA, Some(Cipher::new(key).key_check()?)),
                None => (CIPHER_NONE, None),
            };
            let v1 = 1i32;
            deadline(
                "open: write schema",
                tx.execute(
                    "INSERT INTO weft_schema (id, version, cipher, key_check, created_ms) \
                     VALUES (1, $1, $2, $3, $4)",
                    &[&v1, &cipher_name, &check, &now_ms()],
                ),
            )
            .await?;
            (v1, cipher_name.to_owned(), check)
        }
    };
    if version > PG_SCHEMA_VERSION {
        return Err(Error::NewerFormat {
            found: i64::from(version),
            supported: i64::from(PG_SCHEMA_VERSION),
        });
    }
    if version < 1 {
        return Err(Error::NotAStore {
            path: "postgres weft_schema".into(),
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version - 1).unwrap_or(0))
    {
        deadline("open: migrate", tx.batch_execute(sql)).await?;
        let to = i32::try_from(i + 2).unwrap_or(i32::MAX);
        deadline(
            "open: migrate",
            tx.execute("UPDATE weft_schema SET version = $1 WHERE id = 1", &[&to]),
        )
        .await?;
    }
    let cipher = match (cipher_name.as_str(), &options.encryption) {
        (CIPHER_NONE, None) => None,
        (CIPHER_NONE, Some(_)) => return Err(Error::NotEncrypted),
        (CIPHER_XCHACHA, None) => return Err(Error::KeyRequired),
        (CIPHER_XCHACHA, Some(key)) => {
            let cipher = Cipher::new(key);
            match key_check {
                Some(check) if cipher.verify_key_check(&check) => Some(cipher),
                Some(_) => return Err(Error::WrongKey),
                None => {
                    return Err(Error::NotAStore {
                        path: "postgres weft_schema (no key check)".into(),
                    })
                }
            }
        }
        _ => {
            return Err(Error::NotAStore {
                path: format!("postgres weft_schema (unknown cipher {cipher_name})"),
            })
        }
    };
    deadline("open: commit", tx.commit()).await?;
    Ok(RecordCodec::new(cipher))
}

impl PostgresStore {
    /// Connects to `url` (a libpq-style URL or key=value string, e.g.
    /// `postgres://user:pass@host:5432/db`), creates the schema in an empty
    /// database or checks an existing one, and starts the writer.
    ///
    /// Errors: [`Error::NewerFormat`] when a newer weft created the schema,
    /// [`Error::KeyRequired`] / [`Error::WrongKey`] / [`Error::NotEncrypted`]
    /// when the key does not fit, [`Error::Postgres`] when the server
    /// cannot be reached or refuses.
    pub fn open(url: &str, options: Options) -> Result<PostgresStore> {
        let mut config: Config = url.parse().map_err(pg("parse URL"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives(true);
        config.application_name("weft");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weft-pg")
            .enable_all()
            .build()?;
        let (mut client, codec) = runtime.block_on(async {
            let mut client = connect(&config).await?;
            let codec = init_or_check(&mut client, &options).await?;
            Ok::<_, Error>((client, codec))
        })?;
        let shared = Arc::new(Shared {
            config,
            codec,
            options: options.clone(),
            readers: Mutex::new(Vec::new()),
            read_slots: tokio::sync::Semaphore::new(MAX_PG_READERS),
            compaction_slots: tokio::sync::Semaphore::new(MAX_COMPACTIONS),
            compacting: Mutex::new(HashSet::new()),
            background_errors: Mutex::new(Vec::new()),
        });
        let (writer, mut queue) = tmpsc::unbounded_channel::<WriteCmd>();
        let w_shared = shared.clone();
        let max_batch = options.max_batch.max(1);
        runtime.spawn(async move {
            let mut batch = Vec::new();
            let mut conn = Some(client);
            while let Some(first) = queue.recv().await {
                batch.push(first);
                while batch.len() < max_batch {
                    match queue.try_recv() {
                        Ok(c) => batch.push(c),
                        Err(_) => break,
                    }
                }
                let c = match conn.take() {
                    Some(c) if !c.is_closed() => Ok(c),
                    _ => connect(&w_shared.config).await,
                };
                match c {
                    Ok(c) => {
                        client = c;
                        commit_batch(&w_shared, &mut client, std::mem::take(&mut batch)).await;
                        conn = Some(client);
                    }
                    Err(e) => fail_batch(std::mem::take(&mut batch), &e),
                }
            }
        });
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                shared,
                writer,
                runtime: Some(runtime),
            }),
        })
    }

    /// Runs `fut` on the store's runtime and waits for it (blocking).
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let Some(rt) = &self.inner.runtime else {
            return Err(Error::Closed);
        };
        let (tx, rx) = mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Errors of background compactions since the last call.
    pub fn take_background_errors(&self) -> Vec<Error> {
        let mut v = self
            .inner
            .shared
            .background_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *v)
    }

    /// Queues every append (or its error) on the writer task without
    /// waiting: they share its next transactions.
    fn queue_all(&self, appends: impl Iterator<Item = Result<(String, Payload)>>) -> Commit {
        let queued = appends
            .map(|a| {
                let (doc_id, update) = a?;
                let (reply, wait) = slot();
                self.inner
                    .writer
                    .send(WriteCmd::Append {
                        doc_id,
                        update,
                        reply,
                    })
                    .map_err(|_| Error::Closed)?;
                Ok(wait)
            })
            .collect();
        Commit::from_queued(queued)
    }

    /// Queues a background compaction of `doc_id` (see `spawn_compaction`).
    fn maybe_compact_doc(&self, doc_id: &str) {
        if let Some(rt) = &self.inner.runtime {
            let _guard = rt.enter();
            spawn_compaction(&self.inner.shared, doc_id);
        }
    }
}

fn fail_batch(batch: Vec<WriteCmd>, e: &Error) {
    for cmd in batch {
        match cmd {
            WriteCmd::Append { reply, .. } => {
                reply.send(Err(copy_error(e)));
            }
            WriteCmd::Delete { reply, .. } => {
                reply.send(Err(copy_error(e)));
            }
        }
    }
}

/// A copy of a batch's error for each of its callers.
fn copy_error(e: &Error) -> Error {
    Error::Unavailable {
        detail: e.to_string(),
    }
}

/// One write of a batch, without its reply channel.
enum Op {
    Append { doc_id: String, update: Payload },
    Delete { doc_id: String },
}

/// What one write did.
enum Done {
    Appended(Appended),
    Deleted(bool),
}

enum Reply {
    Append(Answer<Result<Appended>>),
    Delete(Answer<Result<bool>>),
}

/// Runs a batch in one transaction and answers every caller after the
/// commit; if anything fails, every caller of the batch gets the error
/// ([`Error::Unavailable`]) and nothing of the batch is stored.
async fn commit_batch(shared: &Arc<Shared>, client: &mut Client, batch: Vec<WriteCmd>) {
    let mut ops = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for cmd in batch {
        match cmd {
            WriteCmd::Append {
                doc_id,
                update,
                reply,
            } => {
                ops.push(Op::Append { doc_id, update });
                replies.push(Reply::Append(reply));
            }
            WriteCmd::Delete { doc_id, reply } => {
                ops.push(Op::Delete { doc_id });
                replies.push(Reply::Delete(reply));
            }
        }
    }
    let result = run_ops(shared, client, &ops).await;
    match result {
        Ok(done) => {
            let mut due: Vec<&str> = Vec::new();
            for ((reply, done), op) in replies.into_iter().zip(done).zip(&ops) {
                match (reply, done) {
                    (Reply::Append(reply), Done::Appended(a)) => {
                        if shared
                            .options
                            .compaction
                            .should_compact(a.log_records, a.log_bytes)
                        {
                            if let Op::Append { doc_id, .. } = op {
                                if !due.contains(&doc_id.as_str()) {
                                    due.push(doc_id);
                                }
                            }
                        }
                        reply.send(Ok(a));
                    }
                    (Reply::Delete(reply), Done::Deleted(existed)) => {
                        reply.send(Ok(existed));
                    }
                    (Reply::Append(reply), Done::Deleted(_)) => {
                        reply.send(Err(Error::Closed));
                    }
                    (Reply::Delete(reply), Done::Appended(_)) => {
                        reply.send(Err(Error::Closed));
                    }
                }
            }
            for doc_id in due {
                spawn_compaction(shared, doc_id);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "postgres write batch failed");
            for reply in replies {
                match reply {
                    Reply::Append(r) => {
                        r.send(Err(copy_error(&e)));
                    }
                    Reply::Delete(r) => {
                        r.send(Err(copy_error(&e)));
                    }
                }
            }
        }
    }
}

impl Op {
    fn doc_id(&self) -> &str {
        match self {
            Op::Append { doc_id, .. } | Op::Delete { doc_id } => doc_id,
        }
    }
}

/// The statements of one batch, in one transaction; the results in the
/// order of `ops`.
///
/// The batch locks each document's `weft_docs` row as it writes it. Two
/// nodes committing batches that touch the same documents in opposite
/// orders would each wait for the other's row (a deadlock PostgreSQL
/// breaks by failing one batch), so every batch writes its documents in
/// one global order (by name), each document's writes in arrival order.
async fn run_ops(shared: &Shared, client: &mut Client, ops: &[Op]) -> Result<Vec<Done>> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by(|&a, &b| ops[a].doc_id().cmp(ops[b].doc_id()));
    let sorted: Vec<&Op> = order.iter().map(|&i| &ops[i]).collect();
    let done = run_sorted(shared, client, &sorted).await?;
    let mut by_arrival: Vec<Option<Done>> = (0..ops.len()).map(|_| None).collect();
    for (&i, d) in order.iter().zip(done) {
        by_arrival[i] = Some(d);
    }
    by_arrival
        .into_iter()
        .map(|d| d.ok_or(Error::Closed))
        .collect()
}

/// [`run_ops`] on ops already in lock order.
async fn run_sorted(shared: &Shared, client: &mut Client, ops: &[&Op]) -> Result<Vec<Done>> {
    let tx = deadline("append: begin", client.transaction()).await?;
    let mut done = Vec::with_capacity(ops.len());
    let mut i = 0;
    while i < ops.len() {
        match ops[i] {
            Op::Delete { doc_id } => {
                done.push(Done::Deleted(delete_in(&tx, doc_id).await?));
                i += 1;
            }
            Op::Append { doc_id, .. } => {
                // Consecutive appends to one document share its statements.
                let mut group: Vec<&[u8]> = Vec::new();
                while let Some(Op::Append { doc_id: d, update }) = ops.get(i).copied() {
                    if d != doc_id {
                        break;
                    }
                    group.push(update.as_bytes());
                    i += 1;
                }
                let n = i64::try_from(group.len()).unwrap_or(i64::MAX);
                let row = deadline(
                    "append: reserve seqs",
                    tx.query_one(
                        "INSERT INTO weft_docs AS d (name, next_seq, snapshot_seq, log_count, \
                         log_bytes, snapshot_bytes, compactions) VALUES ($1, 1 + $2::int8, 0, $2::int8, 0, 0, 0) \
                         ON CONFLICT (name) DO UPDATE SET next_seq = d.next_seq + $2::int8, \
                         log_count = d.log_count + $2::int8 \
                         RETURNING id, next_seq - $2::int8, log_count - $2::int8, log_bytes",
                        &[doc_id, &n],
                    ),
                )
                .await?;
                let key: i64 = col(&row, 0)?;
                let first = to_u64(doc_id, col(&row, 1)?)?;
                let count_before = to_u64(doc_id, col(&row, 2)?)?;
                let mut bytes = to_u64(doc_id, col(&row, 3)?)?;
                let mut seqs = Vec::with_capacity(group.len());
                let mut records = Vec::with_capacity(group.len());
                for (j, update) in group.iter().enumerate() {
                    let seq = first + j as u64;
                    let record = shared.codec.seal(doc_id, RecordKind::Update, seq, update)?;
                    bytes += record.len() as u64;
                    done.push(Done::Appended(Appended {
                        seq,
                        log_records: count_before + j as u64 + 1,
                        log_bytes: bytes,
                    }));
                    seqs.push(to_i64(seq));
                    records.push(record);
                }
                deadline(
                    "append: insert records",
                    tx.execute(
                        "INSERT INTO weft_log (doc, seq, record) \
                         SELECT $1, s, r FROM UNNEST($2::int8[], $3::bytea[]) AS t(s, r)",
                        &[&key, &seqs, &records],
                    ),
                )
                .await?;
                let added: i64 = records.iter().map(|r| r.len() as i64).sum();
                deadline(
                    "append: count bytes",
                    tx.execute(
                        "UPDATE weft_docs SET log_bytes = log_bytes + $2 WHERE id = $1",
                        &[&key, &added],
                    ),
                )
                .await?;
            }
        }
    }
    deadline("append: commit", tx.commit()).await?;
    Ok(done)
}

/// Starts a background compaction of `doc_id` on the store's runtime
/// unless this node already runs one for it (the advisory lock keeps other
/// nodes off it).
fn spawn_compaction(shared: &Arc<Shared>, doc_id: &str) {
    {
        let mut running = shared.compacting.lock().unwrap_or_else(|p| p.into_inner());
        if !running.insert(doc_id.to_owned()) {
            return;
        }
    }
    let shared = shared.clone();
    let doc_id = doc_id.to_owned();
    tokio::spawn(async move {
        let result = compact(&shared, &doc_id).await;
        shared
            .compacting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&doc_id);
        if let Err(e) = result {
            tracing::warn!(doc_id, error = %e, "background compaction failed");
            let mut v = shared
                .background_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if v.len() < 64 {
                v.push(e);
            }
        }
    });
}

async fn delete_in(tx: &tokio_postgres::Transaction<'_>, doc_id: &str) -> Result<bool> {
    let row = deadline(
        "delete document",
        tx.query_opt(
            "DELETE FROM weft_docs WHERE name = $1 RETURNING id",
            &[&doc_id],
        ),
    )
    .await?;
    let Some(row) = row else { return Ok(false) };
    let key: i64 = col(&row, 0)?;
    deadline(
        "delete document",
        tx.execute("DELETE FROM weft_log WHERE doc = $1", &[&key]),
    )
    .await?;
    deadline(
        "delete document",
        tx.execute("DELETE FROM weft_snapshots WHERE doc = $1", &[&key]),
    )
    .await?;
    Ok(true)
}

/// A pooled read connection, returned to the pool when dropped healthy;
/// at most [`MAX_PG_READERS`] are in use at once.
async fn with_reader<T, F, Fut>(shared: &Shared, f: F) -> Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = (Client, Result<T>)>,
{
    // The semaphore is never closed.
    let _slot = shared
        .read_slots
        .acquire()
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    let idle = shared
        .readers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop();
    let client = match idle {
        Some(c) if !c.is_closed() => c,
        _ => connect(&shared.config).await?,
    };
    let (client, result) = f(client).await;
    if !client.is_closed() {
        let mut r = shared.readers.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() < MAX_IDLE_READERS {
            r.push(client);
        }
    }
    result
}

async fn read_raw_in(client: &mut Client, doc_id: &str) -> Result<Option<RawDoc>> {
    let ctx = "read document";
    let tx = deadline(
        ctx,
        client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start(),
    )
    .await?;
    let row = deadline(
        ctx,
        tx.query_opt(
            "SELECT id, next_seq, snapshot_seq, log_count FROM weft_docs WHERE name = $1",
            &[&doc_id],
        ),
    )
    .await?;
    let Some(row) = row else {
        deadline(ctx, tx.commit()).await?;
        return Ok(None);
    };
    let key: i64 = col(&row, 0)?;
    let next_seq = to_u64(doc_id, col(&row, 1)?)?;
    let snapshot_seq = to_u64(doc_id, col(&row, 2)?)?;
    let log_count = to_u64(doc_id, col(&row, 3)?)?;
    let snapshot = deadline(
        ctx,
        tx.query_opt(
            "SELECT seq, record FROM weft_snapshots WHERE doc = $1 ORDER BY seq DESC LIMIT 1",
            &[&key],
        ),
    )
    .await?
    .map(|r| Ok::<_, Error>((to_u64(doc_id, col(&r, 0)?)?, col::<Vec<u8>>(&r, 1)?)))
    .transpose()?;
    let rows = deadline(
        ctx,
        tx.query(
            "SELECT seq, record FROM weft_log WHERE doc = $1 ORDER BY seq",
            &[&key],
        ),
    )
    .await?;
    let log = rows
        .into_iter()
        .map(|r| Ok((to_u64(doc_id, col(&r, 0)?)?, col::<Vec<u8>>(&r, 1)?)))
        .collect::<Result<Vec<_>>>()?;
    deadline(ctx, tx.commit()).await?;
    Ok(Some(RawDoc {
        key,
        next_seq,
        snapshot_seq,
        log_count,
        snapshot,
        log,
    }))
}

async fn read_raw(shared: &Shared, doc_id: &str) -> Result<Option<RawDoc>> {
    let id = doc_id.to_owned();
    with_reader(shared, |mut c| async move {
        let r = read_raw_in(&mut c, &id).await;
        (c, r)
    })
    .await
}

/// Folds `doc_id` under its advisory lock; a document another node is
/// compacting right now is left to it (reported as nothing folded).
async fn compact(shared: &Shared, doc_id: &str) -> Result<Option<CompactionReport>> {
    const ATTEMPTS: usize = 8;
    let _slot = shared
        .compaction_slots
        .acquire()
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    for _ in 0..ATTEMPTS {
        let Some(raw) = read_raw(shared, doc_id).await? else {
            return Ok(None);
        };
        let snapshot_seq = raw.snapshot_seq;
        let codec = shared.codec.clone();
        let id = doc_id.to_owned();
        // Folding replays the whole document: CPU work, off the driver.
        let plan = tokio::task::spawn_blocking(move || prepare(&codec, &id, raw))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        let commit = match plan {
            Plan::Nothing(report) => return Ok(Some(report)),
            Plan::Commit(commit) => commit,
        };
        let id = doc_id.to_owned();
        let done = with_reader(shared, |mut c| async move {
            let r = commit_compaction(&mut c, &id, &commit).await;
            (c, r)
        })
        .await?;
        match done {
            Committed::Done(report) => return Ok(Some(report)),
            Committed::Busy => {
                return Ok(Some(CompactionReport {
                    through_seq: snapshot_seq,
                    folded: 0,
                    snapshot_bytes: 0,
                }))
            }
            Committed::Stale => continue,
        }
    }
    Err(Error::Inconsistent {
        doc_id: doc_id.to_owned(),
        detail: format!("compaction lost the race {ATTEMPTS} times in a row"),
    })
}

enum Committed {
    Done(CompactionReport),
    /// Another node holds the document's compaction lock.
    Busy,
    /// The document changed since it was read.
    Stale,
}

async fn commit_compaction(
    client: &mut Client,
    doc_id: &str,
    c: &CompactCommit,
) -> Result<Committed> {
    let ctx = "commit compaction";
    let tx = deadline(ctx, client.transaction()).await?;
    let locked_row = deadline(
        ctx,
        tx.query_one(
            "SELECT pg_try_advisory_xact_lock($1, $2)",
            &[&LOCK_SPACE, &doc_lock_key(doc_id)],
        ),
    )
    .await?;
    let locked: bool = col(&locked_row, 0)?;
    if !locked {
        return Ok(Committed::Busy);
    }
    let current = deadline(
        ctx,
        tx.query_opt(
            "SELECT snapshot_seq FROM weft_docs WHERE id = $1 FOR UPDATE",
            &[&c.key],
        ),
    )
    .await?
    .map(|r| col::<i64>(&r, 0))
    .transpose()?;
    if current != Some(to_i64(c.base_snapshot_seq)) {
        return Ok(Committed::Stale);
    }
    let len = c.record.len() as i64;
    let through = to_i64(c.through_seq);
    deadline(
        ctx,
        tx.execute(
            "INSERT INTO weft_snapshots (doc, seq, record) VALUES ($1, $2, $3)",
            &[&c.key, &through, &c.record],
        ),
    )
    .await?;
    deadline(
        ctx,
        tx.execute(
            "DELETE FROM weft_log WHERE doc = $1 AND seq <= $2",
            &[&c.key, &through],
        ),
    )
    .await?;
    deadline(
        ctx,
        tx.execute(
            "DELETE FROM weft_snapshots WHERE doc = $1 AND seq < $2",
            &[&c.key, &through],
        ),
    )
    .await?;
    deadline(
        ctx,
        tx.execute(
            "UPDATE weft_docs SET snapshot_seq = $2, snapshot_bytes = $3, \
             log_count = (SELECT count(*) FROM weft_log WHERE doc = $1), \
             log_bytes = (SELECT coalesce(sum(length(record)), 0)::int8 FROM weft_log WHERE doc = $1), \
             compactions = compactions + 1, last_compaction_ms = $4 WHERE id = $1",
            &[&c.key, &through, &len, &now_ms()],
        ),
    )
    .await?;
    deadline(ctx, tx.commit()).await?;
    Ok(Committed::Done(CompactionReport {
        through_seq: c.through_seq,
        folded: c.folded,
        snapshot_bytes: c.record.len() as u64,
    }))
}

impl Store for PostgresStore {
    fn append(&self, doc_id: &str, update: &[u8]) -> Result<Appended> {
        self.queue_all(checked_appends(doc_id, &[update]))
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
        let shared = self.inner.shared.clone();
        let id = doc_id.to_owned();
        let Some(raw) = self.run(async move { read_raw(&shared, &id).await })? else {
            return Ok(None);
        };
        let bytes: u64 = raw.log.iter().map(|(_, r)| r.len() as u64).sum();
        if self
            .inner
            .shared
            .options
            .compaction
            .should_compact(raw.log_count, bytes)
        {
            self.maybe_compact_doc(doc_id);
        }
        verify(&self.inner.shared.codec, doc_id, raw).map(Some)
    }

    fn compact(&self, doc_id: &str) -> Result<Option<CompactionReport>> {
        validate_doc_id(doc_id)?;
        let shared = self.inner.shared.clone();
        let id = doc_id.to_owned();
        self.run(async move { compact(&shared, &id).await })
    }

    fn list(&self) -> Result<Vec<String>> {
        let shared = self.inner.shared.clone();
        self.run(async move {
            with_reader(&shared, |c| async move {
                let r = deadline(
                    "list documents",
                    c.query(
                        "SELECT name FROM weft_docs ORDER BY name COLLATE \"C\"",
                        &[],
                    ),
                )
                .await
                .and_then(|rows| rows.iter().map(|r| col(r, 0)).collect());
                (c, r)
            })
            .await
        })
    }

    fn delete(&self, doc_id: &str) -> Result<bool> {
        validate_doc_id(doc_id)?;
        let (reply, wait) = slot();
        self.inner
            .writer
            .send(WriteCmd::Delete {
                doc_id: doc_id.to_owned(),
                reply,
            })
            .map_err(|_| Error::Closed)?;
        wait.result()
    }

    fn stats(&self, doc_id: &str) -> Result<Option<DocStats>> {
        validate_doc_id(doc_id)?;
        let shared = self.inner.shared.clone();
        let id = doc_id.to_owned();
        self.run(async move {
            with_reader(&shared, |c| async move {
                let r = async {
                    let row = deadline(
                        "document stats",
                        c.query_opt(
                            "SELECT next_seq, snapshot_seq, log_count, log_bytes, snapshot_bytes, \
                             compactions, last_compaction_ms FROM weft_docs WHERE name = $1",
                            &[&id],
                        ),
                    )
                    .await?;
                    let Some(r) = row else { return Ok(None) };
                    let u = |i: usize| to_u64(&id, col::<i64>(&r, i)?);
                    Ok(Some(DocStats {
                        last_seq: u(0)?.saturating_sub(1),
                        snapshot_seq: u(1)?,
                        log_records: u(2)?,
                        log_bytes: u(3)?,
                        snapshot_bytes: u(4)?,
                        compactions: u(5)?,
                        last_compaction: col::<Option<i64>>(&r, 6)?
                            .and_then(|ms| u64::try_from(ms).ok())
                            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
                    }))
                }
                .await;
                (c, r)
            })
            .await
        })
    }
}
