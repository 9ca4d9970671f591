//! Property tests: arbitrary frames round-trip; arbitrary bytes, arbitrary
//! bodies behind a valid header and mutated valid encodings never panic the
//! decoder, and whatever decodes re-encodes to an equal frame.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use weft_core::doc::{Kind, Path};
use weft_core::{Bias, Dot, ReplicaId, StablePosition, VersionVector};
use weft_protocol::{
    Cursor, DocId, ErrorCode, Frame, Limits, PeerId, PresenceState, ProtocolError,
};

fn doc_id() -> impl Strategy<Value = DocId> {
    "[A-Za-z0-9._~-]{1,24}".prop_filter_map("`.` and `..` are not ids", |s| DocId::new(s).ok())
}

fn version() -> impl Strategy<Value = VersionVector> {
    btree_map(any::<u64>(), 1..=u64::MAX, 0..5)
        .prop_map(|m| m.into_iter().map(|(r, n)| (ReplicaId::new(r), n)).collect())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// Up to 20 chars of no control character: at most 80 bytes.
fn name() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{0,20}"
}

fn position() -> impl Strategy<Value = StablePosition> {
    (option::of((any::<u64>(), 1..=u64::MAX)), any::<bool>()).prop_map(|(anchor, right)| {
        StablePosition {
            anchor: anchor.map(|(r, c)| Dot::new(ReplicaId::new(r), c)),
            bias: if right { Bias::Right } else { Bias::Left },
        }
    })
}

fn cursor() -> impl Strategy<Value = Cursor> {
    (
        vec(("[a-z]{0,6}", any::<u32>()), 0..4),
        "\\PC{0,8}",
        any::<u32>(),
        position(),
        position(),
    )
        .prop_map(|(maps, key, generation, anchor, head)| {
            let mut text = Path::root();
            for (k, g) in maps {
                text = text.child_gen(k, Kind::Map, g);
            }
            Cursor {
                text: text.child_gen(key, Kind::Text, generation),
                anchor,
                head,
            }
        })
}

fn presence() -> impl Strategy<Value = PresenceState> {
    (
        name(),
        prop_oneof!["#[0-9a-fA-F]{6}", "#[0-9a-fA-F]{8}"],
        option::of(cursor()),
        bytes(64),
    )
        .prop_map(|(user, color, cursor, extra)| PresenceState {
            user,
            color,
            cursor,
            extra,
        })
}

fn limits() -> impl Strategy<Value = Limits> {
    any::<[u32; 5]>().prop_map(|[a, b, c, d, e]| Limits {
        max_frame_bytes: a,
        max_update_bytes: b,
        max_presence_bytes: c,
        max_docs: d,
        idle_timeout_ms: e,
    })
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            any::<u16>(),
            any::<u16>(),
            option::of(name()),
            option::of("\\PC{0,40}")
        )
            .prop_map(
                |(min_version, max_version, client_name, token)| Frame::Hello {
                    min_version,
                    max_version,
                    client_name,
                    token,
                }
            ),
        (any::<u16>(), name(), any::<u64>(), limits()).prop_map(
            |(protocol_version, server_name, peer, limits)| Frame::Welcome {
                protocol_version,
                server_name,
                peer: PeerId(peer),
                limits,
            }
        ),
        (
            any::<u16>(),
            option::of(doc_id()),
            option::of(any::<u64>()),
            "\\PC{0,40}"
        )
            .prop_map(|(code, doc, seq, message)| Frame::Error {
                code: ErrorCode::from_code(code),
                doc,
                seq,
                message,
            }),
        any::<u64>().prop_map(|nonce| Frame::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Frame::Pong { nonce }),
        (doc_id(), version()).prop_map(|(doc, version)| Frame::Subscribe { doc, version }),
        (doc_id(), bytes(200), version()).prop_map(|(doc, update, version)| Frame::Synced {
            doc,
            update,
            version,
        }),
        doc_id().prop_map(|doc| Frame::Unsubscribe { doc }),
        (doc_id(), any::<u64>(), bytes(200)).prop_map(|(doc, seq, update)| Frame::Update {
            doc,
            seq,
            update
        }),
        (doc_id(), any::<u64>()).prop_map(|(doc, seq)| Frame::Ack { doc, seq }),
        (doc_id(), bytes(200)).prop_map(|(doc, update)| Frame::Remote { doc, update }),
        (doc_id(), option::of(presence())).prop_map(|(doc, state)| Frame::Presence { doc, state }),
        (doc_id(), vec((any::<u64>(), presence()), 0..4)).prop_map(|(doc, peers)| {
            Frame::PresenceUpdate {
                doc,
                peers: peers.into_iter().map(|(p, s)| (PeerId(p), s)).collect(),
            }
        }),
        (doc_id(), vec(any::<u64>(), 0..8)).prop_map(|(doc, peers)| Frame::PresenceRemoved {
            doc,
            peers: peers.into_iter().map(PeerId).collect(),
        }),
    ]
}

const TYPES: [&str; 14] = [
    "Hello",
    "Welcome",
    "Error",
    "Ping",
    "Pong",
    "Subscribe",
    "Synced",
    "Unsubscribe",
    "Update",
    "Ack",
    "Remote",
    "Presence",
    "PresenceUpdate",
    "PresenceRemoved",
];

fn tight() -> Limits {
    Limits {
        max_frame_bytes: 512,
        max_update_bytes: 32,
        max_presence_bytes: 64,
        ..Limits::default()
    }
}

/// Decodes under default and tight limits; whatever decodes must re-encode
/// to a frame that decodes equal, no longer than the input, and validate.
fn check_decode(bytes: &[u8]) -> Result<(), TestCaseError> {
    for limits in [Limits::default(), tight()] {
        match Frame::decode(bytes, &limits) {
            Ok(frame) => {
                let again = frame.encode();
                prop_assert!(again.len() <= bytes.len());
                prop_assert_eq!(frame.encoded_len(), again.len());
                prop_assert_eq!(Frame::decode(&again, &limits), Ok(frame.clone()));
                prop_assert_eq!(frame.validate(&limits), Ok(()));
            }
            Err(err) => {
                // Every failure maps to a sendable Error frame.
                let reply = err.error_frame();
                prop_assert_eq!(reply.validate(&Limits::default()), Ok(()));
            }
        }
    }
    Ok(())
}

fn header() -> Vec<u8> {
    b"WEFT\x01\x0e".to_vec()
}

proptest! {
    #[test]
    fn frames_round_trip(frame in frame()) {
        let bytes = frame.encode();
        prop_assert_eq!(TYPES[usize::from(bytes[6])], frame.name());
        prop_assert_eq!(frame.encoded_len(), bytes.len());
        prop_assert_eq!(frame.validate(&Limits::default()), Ok(()));
        prop_assert_eq!(Frame::decode(&bytes, &Limits::default()), Ok(frame.clone()));
        // Canonical: decoding and re-encoding gives the same bytes.
        prop_assert_eq!(Frame::decode(&bytes, &Limits::default()).unwrap().encode(), bytes.clone());
        // Decode and validate agree under tight limits too.
        let limits = tight();
        match Frame::decode(&bytes, &limits) {
            Ok(back) => {
                prop_assert_eq!(&back, &frame);
                prop_assert_eq!(frame.validate(&limits), Ok(()));
            }
            Err(err) => prop_assert_eq!(frame.validate(&limits), Err(err)),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in bytes(600)) {
        check_decode(&bytes)?;
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in bytes(300), kind in 0u8..16) {
        let mut bytes = header();
        bytes.push(kind);
        bytes.extend_from_slice(&body);
        check_decode(&bytes)?;
    }

    #[test]
    fn mutated_frames_never_panic(
        frame in frame(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in option::of(any::<prop::sample::Index>()),
        insert in option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut bytes = frame.encode();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some((at, byte)) = insert {
            let i = at.index(bytes.len() + 1);
            bytes.insert(i, byte);
        }
        if let Some(at) = cut {
            bytes.truncate(at.index(bytes.len() + 1));
        }
        check_decode(&bytes)?;
    }

    #[test]
    fn frames_over_the_limit_are_refused_unparsed(frame in frame(), slack in 1usize..8) {
        let bytes = frame.encode();
        let max = bytes.len().saturating_sub(slack);
        let limits = Limits { max_frame_bytes: max as u32, ..Limits::default() };
        prop_assert_eq!(
            Frame::decode(&bytes, &limits),
            Err(ProtocolError::FrameTooLarge { len: bytes.len(), max })
        );
        prop_assert_eq!(
            frame.validate(&limits),
            Err(ProtocolError::FrameTooLarge { len: bytes.len(), max })
        );
    }
}
