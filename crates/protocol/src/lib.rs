//! # weft-protocol
//!
//! The relay wire protocol, shared by the relay server and the sync client:
//! the [`Frame`]s, their byte encoding, the handshake rules ([`Handshake`],
//! [`negotiate`]), stable [`ErrorCode`]s, validated [`DocId`]s, presence
//! ([`PresenceState`]) and the [`Limits`] a receiver enforces. No I/O: one
//! WebSocket binary message carries one encoded frame, and whoever owns the
//! socket calls [`Frame::encode`] and [`Frame::decode`]. The full
//! specification is `docs/protocol.md` §7.
//!
//! A frame is the weft envelope (`WEFT`, format version 1, kind
//! [`weft_core::codec::kind::PROTOCOL_FRAME`]) around a postcard body; the
//! relay protocol version ([`PROTOCOL_VERSION`]) is negotiated in
//! `Hello`/`Welcome`. Decoding checks the size first and every bound after,
//! returns a typed [`ProtocolError`] for bad input and never panics.
//!
//! A client connects, subscribes to a document it has never seen, and
//! catches up from the server's `Synced` diff:
//!
//! ```
//! use weft_core::{Doc, ReplicaId};
//! use weft_protocol::{DocId, Frame, Handshake, Limits, PeerId, Role};
//!
//! let limits = Limits::default();
//! let notes = DocId::new("notes").unwrap();
//! let mut server_doc = Doc::new(ReplicaId::new(1));
//! server_doc
//!     .transact(|tx| {
//!         tx.text("body")?.insert(0, "hello")?;
//!         Ok(())
//!     })
//!     .unwrap();
//! let mut client_doc = Doc::new(ReplicaId::new(2));
//!
//! // Client → server: Hello once, then Subscribe with what it already has.
//! let to_server = [
//!     Frame::hello(Some("example/1.0".into()), Some("secret-token".into())).encode(),
//!     Frame::Subscribe { doc: notes.clone(), version: client_doc.version().clone() }.encode(),
//! ];
//!
//! // Server: decode, check the order, answer.
//! let mut server = Handshake::new(Role::Server);
//! let mut to_client = Vec::new();
//! for bytes in &to_server {
//!     let frame = Frame::decode(bytes, &limits).unwrap();
//!     server.receive(&frame).unwrap();
//!     let reply = match frame {
//!         // (check the token here; refuse with ErrorCode::Unauthorized)
//!         Frame::Hello { .. } => Frame::Welcome {
//!             protocol_version: server.version().unwrap(),
//!             server_name: "relay".into(),
//!             peer: PeerId(7),
//!             limits,
//!         },
//!         Frame::Subscribe { doc, version } => Frame::Synced {
//!             doc,
//!             update: server_doc.diff(&version), // exactly what the client lacks
//!             version: server_doc.version().clone(),
//!         },
//!         other => panic!("unexpected {}", other.name()),
//!     };
//!     to_client.push(reply.encode());
//! }
//!
//! // Client: decode, check the order, apply the diff.
//! let mut client = Handshake::new(Role::Client);
//! for bytes in &to_client {
//!     let frame = Frame::decode(bytes, &limits).unwrap();
//!     client.receive(&frame).unwrap();
//!     if let Frame::Synced { update, version, .. } = frame {
//!         client_doc.apply(&update).unwrap();
//!         // Anything the server lacks would now go up as
//!         // Frame::Update { seq, update: client_doc.diff(&version), .. }.
//!         assert!(client_doc.version() >= &version);
//!     }
//! }
//! assert_eq!(client.version(), Some(2));
//! assert_eq!(client_doc.text("body").unwrap().to_string(), "hello");
//! ```

mod doc_id;
mod error;
mod error_code;
mod frame;
mod handshake;
mod presence;
pub mod sync;
mod wire;

pub use doc_id::{DocId, InvalidDocId, MAX_DOC_ID_BYTES};
pub use error::ProtocolError;
pub use error_code::{ErrorCode, ErrorScope};
pub use frame::{
    Access, Direction, Frame, Limits, ACCESS_VERSION, MAX_MESSAGE_BYTES, MAX_NAME_BYTES,
    MAX_TOKEN_BYTES, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
pub use handshake::{negotiate, Handshake, Role};
pub use presence::{Cursor, PeerId, PresenceState, MAX_USER_BYTES};

#[cfg(test)]
mod tests;
