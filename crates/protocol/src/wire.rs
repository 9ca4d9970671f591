//! The wire layout of a frame: one enum whose variant order *is* the
//! protocol (variant index = frame type, fields in declaration order).
//!
//! Decoding borrows strings and update bytes from the input, so bounds are
//! checked before anything is copied and document ids are validated into
//! typed errors; encoding borrows from the [`Frame`], so nothing is cloned.
//! Both directions go through this one type, so the layout cannot drift
//! between them.

use crate::{Access, DocId, ErrorCode, Frame, Limits, PeerId, PresenceState, ProtocolError};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use weft_core::VersionVector;

/// Number of frame types: variant indexes `0..=13` in protocol version 1,
/// `14` (`Access`) from version 2; a new frame type would get index 15.
pub(crate) const FRAME_TYPES: u32 = 15;

#[derive(Serialize, Deserialize)]
pub(crate) enum Wire<'a> {
    Hello {
        min_version: u16,
        max_version: u16,
        #[serde(borrow)]
        client_name: Option<&'a str>,
        #[serde(borrow)]
        token: Option<&'a str>,
    },
    Welcome {
        protocol_version: u16,
        server_name: &'a str,
        peer: PeerId,
        limits: Limits,
    },
    Error {
        code: u16,
        #[serde(borrow)]
        doc: Option<&'a str>,
        seq: Option<u64>,
        message: &'a str,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Subscribe {
        doc: &'a str,
        version: Cow<'a, VersionVector>,
    },
    Synced {
        doc: &'a str,
        update: &'a [u8],
        version: Cow<'a, VersionVector>,
    },
    Unsubscribe {
        doc: &'a str,
    },
    Update {
        doc: &'a str,
        seq: u64,
        update: &'a [u8],
    },
    Ack {
        doc: &'a str,
        seq: u64,
    },
    Remote {
        doc: &'a str,
        update: &'a [u8],
    },
    Presence {
        doc: &'a str,
        state: Option<Cow<'a, PresenceState>>,
    },
    PresenceUpdate {
        doc: &'a str,
        peers: Cow<'a, [(PeerId, PresenceState)]>,
    },
    PresenceRemoved {
        doc: &'a str,
        peers: Cow<'a, [PeerId]>,
    },
    Access {
        doc: &'a str,
        access: Access,
    },
}

impl<'a> Wire<'a> {
    /// Borrows `frame` for encoding.
    pub(crate) fn of(frame: &'a Frame) -> Wire<'a> {
        match frame {
            Frame::Hello {
                min_version,
                max_version,
                client_name,
                token,
            } => Wire::Hello {
                min_version: *min_version,
                max_version: *max_version,
                client_name: client_name.as_deref(),
                token: token.as_deref(),
            },
            Frame::Welcome {
                protocol_version,
                server_name,
                peer,
                limits,
            } => Wire::Welcome {
                protocol_version: *protocol_version,
                server_name,
                peer: *peer,
                limits: *limits,
            },
            Frame::Error {
                code,
                doc,
                seq,
                message,
            } => Wire::Error {
                code: code.code(),
                doc: doc.as_ref().map(DocId::as_str),
                seq: *seq,
                message,
            },
            Frame::Ping { nonce } => Wire::Ping { nonce: *nonce },
            Frame::Pong { nonce } => Wire::Pong { nonce: *nonce },
            Frame::Subscribe { doc, version } => Wire::Subscribe {
                doc: doc.as_str(),
                version: Cow::Borrowed(version),
            },
            Frame::Synced {
                doc,
                update,
                version,
            } => Wire::Synced {
                doc: doc.as_str(),
                update,
                version: Cow::Borrowed(version),
            },
            Frame::Unsubscribe { doc } => Wire::Unsubscribe { doc: doc.as_str() },
            Frame::Update { doc, seq, update } => Wire::Update {
                doc: doc.as_str(),
                seq: *seq,
                update,
            },
            Frame::Ack { doc, seq } => Wire::Ack {
                doc: doc.as_str(),
                seq: *seq,
            },
            Frame::Remote { doc, update } => Wire::Remote {
                doc: doc.as_str(),
                update,
            },
            Frame::Presence { doc, state } => Wire::Presence {
                doc: doc.as_str(),
                state: state.as_ref().map(Cow::Borrowed),
            },
            Frame::PresenceUpdate { doc, peers } => Wire::PresenceUpdate {
                doc: doc.as_str(),
                peers: Cow::Borrowed(peers),
            },
            Frame::PresenceRemoved { doc, peers } => Wire::PresenceRemoved {
                doc: doc.as_str(),
                peers: Cow::Borrowed(peers),
            },
            Frame::Access { doc, access } => Wire::Access {
                doc: doc.as_str(),
                access: *access,
            },
        }
    }

    /// Validates document ids and update sizes (before copying the bytes)
    /// and builds the owned frame.
    pub(crate) fn into_frame(self, limits: &Limits) -> Result<Frame, ProtocolError> {
        let max_update = limits.max_update_bytes as usize;
        Ok(match self {
            Wire::Hello {
                min_version,
                max_version,
                client_name,
                token,
            } => Frame::Hello {
                min_version,
                max_version,
                client_name: client_name.map(str::to_owned),
                token: token.map(str::to_owned),
            },
            Wire::Welcome {
                protocol_version,
                server_name,
                peer,
                limits,
            } => Frame::Welcome {
                protocol_version,
                server_name: server_name.to_owned(),
                peer,
                limits,
            },
            Wire::Error {
                code,
                doc,
                seq,
                message,
            } => Frame::Error {
                code: ErrorCode::from_code(code),
                doc: doc.map(str::parse).transpose()?,
                seq,
                message: message.to_owned(),
            },
            Wire::Ping { nonce } => Frame::Ping { nonce },
            Wire::Pong { nonce } => Frame::Pong { nonce },
            Wire::Subscribe { doc, version } => Frame::Subscribe {
                doc: doc.parse()?,
                version: version.into_owned(),
            },
            Wire::Synced {
                doc,
                update,
                version,
            } => Frame::Synced {
                doc: doc.parse()?,
                update: update.to_vec(),
                version: version.into_owned(),
            },
            Wire::Unsubscribe { doc } => Frame::Unsubscribe { doc: doc.parse()? },
            Wire::Update { doc, seq, update } => {
                let doc: DocId = doc.parse()?;
                check_update(&doc, Some(seq), update, max_update)?;
                Frame::Update {
                    doc,
                    seq,
                    update: update.to_vec(),
                }
            }
            Wire::Ack { doc, seq } => Frame::Ack {
                doc: doc.parse()?,
                seq,
            },
            Wire::Remote { doc, update } => {
                let doc: DocId = doc.parse()?;
                check_update(&doc, None, update, max_update)?;
                Frame::Remote {
                    doc,
                    update: update.to_vec(),
                }
            }
            Wire::Presence { doc, state } => Frame::Presence {
                doc: doc.parse()?,
                state: state.map(Cow::into_owned),
            },
            Wire::PresenceUpdate { doc, peers } => Frame::PresenceUpdate {
                doc: doc.parse()?,
                peers: peers.into_owned(),
            },
            Wire::PresenceRemoved { doc, peers } => Frame::PresenceRemoved {
                doc: doc.parse()?,
                peers: peers.into_owned(),
            },
            Wire::Access { doc, access } => Frame::Access {
                doc: doc.parse()?,
                access,
            },
        })
    }
}

/// `Update` and `Remote` carry at most `max` bytes of update.
pub(crate) fn check_update(
    doc: &DocId,
    seq: Option<u64>,
    update: &[u8],
    max: usize,
) -> Result<(), ProtocolError> {
    if update.len() > max {
        return Err(ProtocolError::UpdateTooLarge {
            doc: doc.clone(),
            seq,
            len: update.len(),
            max,
        });
    }
    Ok(())
}
