//! # weft-client
//!
//! The offline-first sync client of weft: what an app or editor embeds.
//! Every edit applies at once to the in-memory document and is durable in
//! the local store before the call returns; a background task syncs each
//! open document with a relay whenever one is reachable — after seconds or
//! weeks offline — resuming by version vector, so nothing the relay has is
//! sent again and no edit is lost.
//!
//! ```
//! use weft_client::{Client, SyncStatus};
//!
//! // Pure local use: no relay at all.
//! let client = Client::in_memory(); // or Client::open_sqlite("app.db")
//! let note = client.replica("note-1").unwrap();
//! note.transact(|tx| {
//!     tx.text("body")?.insert(0, "Hello")?;
//!     tx.counter("edits")?.increment(1)?;
//!     tx.map("meta")?.put("title", "Greeting")
//! })
//! .unwrap(); // applied, and appended to the store
//! assert_eq!(note.read(|d| d.text("body").unwrap().to_string()), "Hello");
//! assert_eq!(*note.status().borrow(), SyncStatus::Offline);
//! ```
//!
//! With a relay (inside a tokio runtime), the same document syncs in the
//! background; see `examples/two_replicas.rs` for two replicas that edit
//! offline and converge through a relay:
//!
//! ```no_run
//! # async fn run() -> Result<(), weft_client::Error> {
//! use std::time::Duration;
//! use weft_client::{Client, SyncConfig};
//! let client = Client::open_sqlite("app.db")?;
//! let note = client.replica("note-1")?;
//! client.connect(SyncConfig::new("ws://127.0.0.1:8787/ws"))?;
//! note.transact_async(|tx| tx.text("body")?.insert(0, "Hi ")).await?;
//! note.wait_synced(Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```
//!
//! What the client promises:
//!
//! - **Durable before return.** [`Replica::transact`] returns after the
//!   edit is in memory *and* committed to the local store (fsynced for
//!   SQLite). A crash or SIGKILL afterwards loses nothing; the next run
//!   loads it and syncs it.
//! - **No lost edit, no re-sent history.** The outbox is the store itself:
//!   on every (re)connect the relay's version in `Synced` says exactly
//!   what it lacks, and only that is sent (`Doc::diff`), in bounded
//!   batches when large. Updates are idempotent, so a resend after a cut
//!   is harmless.
//! - **Untrusted relay input.** Every frame is decoded with the client's
//!   own limits and checked against the handshake rules; a bad frame ends
//!   the connection (the client reconnects), never panics. Every update in
//!   a frame is decoded once under the document's [`ClientLimits`] (input
//!   and decoded size, authors) and *applied before it is stored*: one the
//!   document refuses — over the limits, waiting for a dependency while
//!   the waiting buffer is full, claiming transactions of this session's
//!   own replica id, conflicting with transactions it holds — is reported
//!   ([`ClientEvent::RemoteUpdateRefused`]), neither applied nor stored
//!   (so never uploaded), and the connection goes on. Presence is capped
//!   per document. What one update, the waiting buffer and presence can
//!   make the client hold is bounded by these limits
//!   (`crates/client/tests/hostile.rs`); a document itself still grows
//!   with every update it applies (there is no per-document size cap).
//! - **The store always opens.** A stored record that verifies but does
//!   not replay is left out and reported
//!   ([`ClientEvent::StoredRecordsSkipped`], [`Replica::skipped_records`]),
//!   never a reason the document (and its unsynced edits) cannot open;
//!   updates stored while waiting for a dependency come back waiting.
//! - **Fresh replica ids or none.** Each editing session mints its replica
//!   id from the OS random source; if that fails, opening the document
//!   fails ([`Error::RandomUnavailable`]) instead of guessing an id.
//! - **Errors by scope** (`docs/protocol.md` §7.7): connection errors
//!   reconnect with backoff, document refusals stay with that document,
//!   retryable update errors are resent later, refused updates are
//!   reported ([`ClientEvent`]).
//!
//! | module | responsibility |
//! |---|---|
//! | `client.rs` | [`Client`]: the store, open replicas, connect / disconnect |
//! | `replica.rs` | [`Replica`]: transact (memory + store + outbox), read, status, presence |
//! | `connection.rs` | the sync task's lifecycle: connect, handshake, subscribe, event loop, keepalive, reconnect with backoff |
//! | `connection/dispatch.rs` | each relay frame: catch-up, remote updates, acks, errors by scope, presence; sending the outbox window |
//! | `connection/session.rs` | one live connection: socket I/O, subscribed documents and their phase, status recomputation |
//! | `link.rs` | the command channel from replicas to the sync task |
//! | `outbox.rs` | what the relay lacks: backlog planning, in-flight window, acks, retries |
//! | `backoff.rs` | [`Backoff`]: capped exponential delays with full jitter |
//! | `status.rs` | [`SyncStatus`], [`ConnectionState`], [`ClientEvent`] |
//! | `presence.rs` | own presence and other peers' ([`Peers`]) |
//! | `config.rs` | [`SyncConfig`], [`ClientLimits`] |
//! | `tls.rs` | `wss://`: rustls with the system's roots plus added ones |
//! | `error.rs` | [`Error`] |
//!
//! The state machine and the outbox design: `docs/architecture.md`
//! ("Client"); the wire protocol: `docs/protocol.md` §7.

mod backoff;
mod client;
mod config;
mod connection;
mod error;
mod link;
mod outbox;
mod presence;
mod replica;
mod send_order;
mod shared;
mod status;
mod tls;

pub use backoff::Backoff;
pub use client::Client;
pub use config::{ClientLimits, SyncConfig};
pub use error::{Error, Result};
pub use presence::Peers;
pub use replica::Replica;
pub use status::{refusal_code, ClientEvent, ConnectionState, SyncStatus};
pub use weft_persist::SkippedRecord;
pub use weft_protocol::{Access, Cursor, DocId, ErrorCode, PeerId, PresenceState};

// The types this crate's API takes and returns, so an app needs no direct
// dependency on the crates below to use it (and cannot mix versions).
/// The whole of `weft-core` (every value type, `doc::*`), as this crate
/// uses it.
pub use weft_core;
pub use weft_core::doc::{
    Change, Event, Limits as DocLimits, SubscriptionId, Transaction, UndoManager,
};
pub use weft_core::{
    Bias, DecodeError, Doc, DocError, RandomUnavailable, ReplicaId, StablePosition, VersionVector,
};
/// The whole of `weft-persist` (stores, records, compaction), as this crate
/// uses it.
pub use weft_persist;
pub use weft_persist::{EncryptionKey, MemoryStore, Options as StoreOptions, SqliteStore, Store};
/// The whole of `weft-protocol` (frames, limits, error codes), as this
/// crate uses it.
pub use weft_protocol;
