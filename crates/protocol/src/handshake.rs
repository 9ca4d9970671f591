//! The rules both sides agree on before and around the handshake:
//! version negotiation and which frames may arrive when.
//!
//! ```text
//! client                                server
//!   │── Hello {min..max, token} ──────────►│  first frame, exactly once
//!   │◄───────── Welcome {version, peer} ───│  or Error {UnsupportedVersion |
//!   │                                      │           Unauthorized | …} + close
//!   │── Subscribe {doc, version} ─────────►│
//!   │◄──── Synced {doc, diff, version} ────│
//!   │── Update {doc, seq, bytes} ─────────►│
//!   │◄──────────────── Ack {doc, seq} ─────│  after durable storage
//!   │◄────────── Remote {doc, bytes} ──────│  other peers' updates
//! ```

use crate::{Direction, ErrorCode, Frame, ACCESS_VERSION, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use std::ops::RangeInclusive;

/// Picks the protocol version for a connection: the newest version in both
/// ranges. Version 0 does not exist; an empty or disjoint range is
/// [`ErrorCode::UnsupportedVersion`].
///
/// ```
/// use weft_protocol::{negotiate, ErrorCode};
/// assert_eq!(negotiate(1..=3, 1..=2), Ok(2));
/// assert_eq!(negotiate(2..=2, 1..=3), Ok(2));
/// assert_eq!(negotiate(4..=5, 1..=3), Err(ErrorCode::UnsupportedVersion));
/// ```
pub fn negotiate(
    client: RangeInclusive<u16>,
    server: RangeInclusive<u16>,
) -> Result<u16, ErrorCode> {
    let low = (*client.start()).max(*server.start()).max(1);
    let high = (*client.end()).min(*server.end());
    if low <= high {
        Ok(high)
    } else {
        Err(ErrorCode::UnsupportedVersion)
    }
}

/// Which side of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The sync client: receives server frames.
    Client,
    /// The relay: receives client frames.
    Server,
}

/// Checks the order of the frames received from the peer.
///
/// - A server's first received frame must be `Hello`; its version range is
///   negotiated against this side's. No second `Hello`.
/// - A client's first received frame must be `Welcome` (with a version the
///   client speaks) or an `Error` (the server refuses and closes). No second
///   `Welcome`.
/// - Nobody receives a frame only it may send ([`Frame::direction`]).
/// - A frame newer than the negotiated version ([`Frame::Access`] before
///   version 2) is refused.
///
/// A refused frame leaves the state unchanged; the server answers with
/// `Error { code }` and closes, a client closes.
///
/// ```
/// use weft_protocol::{ErrorCode, Frame, Handshake, Role};
/// let mut server = Handshake::new(Role::Server);
/// assert_eq!(server.receive(&Frame::Ping { nonce: 1 }), Err(ErrorCode::UnexpectedFrame));
/// assert_eq!(server.receive(&Frame::hello(None, None)), Ok(()));
/// assert_eq!(server.version(), Some(2));
/// assert_eq!(server.receive(&Frame::hello(None, None)), Err(ErrorCode::UnexpectedFrame));
/// assert_eq!(server.receive(&Frame::Ping { nonce: 2 }), Ok(()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    role: Role,
    supported: RangeInclusive<u16>,
    version: Option<u16>,
}

impl Handshake {
    /// A handshake for `role`, speaking the versions of this build.
    pub fn new(role: Role) -> Handshake {
        Handshake::with_versions(role, MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION)
    }

    /// A handshake for `role`, speaking `supported`.
    pub fn with_versions(role: Role, supported: RangeInclusive<u16>) -> Handshake {
        Handshake {
            role,
            supported,
            version: None,
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated version, once `Hello` (server) or `Welcome` (client)
    /// has been received.
    pub fn version(&self) -> Option<u16> {
        self.version
    }

    /// Checks `frame`, received from the peer, and records the handshake.
    pub fn receive(&mut self, frame: &Frame) -> Result<(), ErrorCode> {
        let own = match self.role {
            Role::Server => Direction::ToClient,
            Role::Client => Direction::ToServer,
        };
        if frame.direction() == own {
            return Err(ErrorCode::UnexpectedFrame);
        }
        match (self.version, frame) {
            (
                None,
                Frame::Hello {
                    min_version,
                    max_version,
                    ..
                },
            ) => {
                self.version = Some(negotiate(
                    *min_version..=*max_version,
                    self.supported.clone(),
                )?);
                Ok(())
            }
            (
                None,
                Frame::Welcome {
                    protocol_version, ..
                },
            ) => {
                if *protocol_version == 0 || !self.supported.contains(protocol_version) {
                    return Err(ErrorCode::UnsupportedVersion);
                }
                self.version = Some(*protocol_version);
                Ok(())
            }
            (None, Frame::Error { .. }) => Ok(()),
            (None, _) => Err(ErrorCode::UnexpectedFrame),
            // Only the peer's greeting is left after the direction check.
            (Some(_), Frame::Hello { .. } | Frame::Welcome { .. }) => {
                Err(ErrorCode::UnexpectedFrame)
            }
            // A frame the negotiated version does not have.
            (Some(v), Frame::Access { .. }) if v < ACCESS_VERSION => {
                Err(ErrorCode::UnexpectedFrame)
            }
            (Some(_), _) => Ok(()),
        }
    }
}
