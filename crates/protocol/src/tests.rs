//! Unit tests: every frame round trip and every decode / validation error.

use crate::*;
use weft_core::doc::{Kind, Path};
use weft_core::{codec, Bias, DecodeError, Doc, Dot, ReplicaId, StablePosition, VersionVector};

fn doc(id: &str) -> DocId {
    DocId::new(id).unwrap()
}

fn vv(pairs: &[(u64, u64)]) -> VersionVector {
    pairs.iter().map(|&(r, n)| (ReplicaId::new(r), n)).collect()
}

fn update_bytes() -> Vec<u8> {
    let mut d = Doc::new(ReplicaId::new(9));
    d.transact(|tx| {
        tx.text("body")?.insert(0, "hi")?;
        Ok(())
    })
    .unwrap()
}

fn presence() -> PresenceState {
    let pos = StablePosition {
        anchor: Some(Dot::new(ReplicaId::new(9), 1)),
        bias: Bias::Right,
    };
    PresenceState {
        user: "Ada Lovelace".into(),
        color: "#3366FF".into(),
        cursor: Some(Cursor {
            text: Path::root()
                .child("meta", Kind::Map)
                .child("body", Kind::Text),
            anchor: pos,
            head: StablePosition {
                anchor: None,
                bias: Bias::Left,
            },
        }),
        extra: vec![1, 2, 3],
    }
}

/// One frame of every type, in wire-index order.
fn samples() -> Vec<Frame> {
    vec![
        Frame::hello(Some("weft-client/0.1".into()), Some("tok".into())),
        Frame::Welcome {
            protocol_version: 1,
            server_name: "relay-1".into(),
            peer: PeerId(42),
            limits: Limits::default(),
        },
        Frame::error(
            ErrorCode::RateLimited,
            Some(doc("notes")),
            Some(7),
            "slow down",
        ),
        Frame::Ping { nonce: u64::MAX },
        Frame::Pong { nonce: 0 },
        Frame::Subscribe {
            doc: doc("notes"),
            version: vv(&[(1, 3), (9, 1)]),
        },
        Frame::Synced {
            doc: doc("notes"),
            update: update_bytes(),
            version: vv(&[(9, 1)]),
        },
        Frame::Unsubscribe { doc: doc("notes") },
        Frame::Update {
            doc: doc("notes"),
            seq: 1,
            update: update_bytes(),
        },
        Frame::Ack {
            doc: doc("notes"),
            seq: 1,
        },
        Frame::Remote {
            doc: doc("notes"),
            update: update_bytes(),
        },
        Frame::Presence {
            doc: doc("notes"),
            state: Some(presence()),
        },
        Frame::PresenceUpdate {
            doc: doc("notes"),
            peers: vec![(PeerId(1), presence()), (PeerId(2), presence())],
        },
        Frame::PresenceRemoved {
            doc: doc("notes"),
            peers: vec![PeerId(1), PeerId(u64::MAX)],
        },
        Frame::Access {
            doc: doc("notes"),
            access: Access::ReadOnly,
        },
    ]
}

fn decode(bytes: &[u8]) -> Result<Frame, ProtocolError> {
    Frame::decode(bytes, &Limits::default())
}

fn header() -> Vec<u8> {
    let mut h = b"WEFT".to_vec();
    h.push(codec::FORMAT_VERSION);
    h.push(codec::kind::PROTOCOL_FRAME);
    h
}

#[test]
fn every_frame_round_trips() {
    let frames = samples();
    assert_eq!(frames.len() as u32, crate::wire::FRAME_TYPES);
    for (index, frame) in frames.iter().enumerate() {
        let bytes = frame.encode();
        assert_eq!(&bytes[..6], &header()[..], "{}", frame.name());
        assert_eq!(usize::from(bytes[6]), index, "{} wire index", frame.name());
        assert_eq!(frame.encoded_len(), bytes.len(), "{}", frame.name());
        assert_eq!(decode(&bytes).as_ref(), Ok(frame), "{}", frame.name());
        assert_eq!(frame.validate(&Limits::default()), Ok(()));
    }
    // The empty-ish variants too.
    for frame in [
        Frame::Hello {
            min_version: 0,
            max_version: u16::MAX,
            client_name: None,
            token: None,
        },
        Frame::error(ErrorCode::Unknown(4242), None, None, ""),
        Frame::Subscribe {
            doc: doc("x"),
            version: VersionVector::new(),
        },
        Frame::Presence {
            doc: doc("x"),
            state: None,
        },
        Frame::Presence {
            doc: doc("x"),
            state: Some(PresenceState {
                user: String::new(),
                color: "#00000000".into(),
                cursor: None,
                extra: Vec::new(),
            }),
        },
        Frame::PresenceUpdate {
            doc: doc("x"),
            peers: Vec::new(),
        },
        Frame::Remote {
            doc: doc("x"),
            update: Vec::new(),
        },
    ] {
        assert_eq!(decode(&frame.encode()), Ok(frame));
    }
}

#[test]
fn directions_and_docs() {
    let frames = samples();
    let to_server: Vec<&str> = frames
        .iter()
        .filter(|f| f.direction() == Direction::ToServer)
        .map(Frame::name)
        .collect();
    assert_eq!(
        to_server,
        ["Hello", "Subscribe", "Unsubscribe", "Update", "Presence"]
    );
    let both: Vec<&str> = frames
        .iter()
        .filter(|f| f.direction() == Direction::Both)
        .map(Frame::name)
        .collect();
    assert_eq!(both, ["Ping", "Pong"]);
    let without_doc: Vec<&str> = frames
        .iter()
        .filter(|f| f.doc().is_none())
        .map(Frame::name)
        .collect();
    assert_eq!(without_doc, ["Hello", "Welcome", "Ping", "Pong"]);
    assert_eq!(frames[2].doc(), Some(&doc("notes")));
}

#[test]
fn header_errors_are_typed() {
    let good = Frame::Ping { nonce: 5 }.encode();
    assert_eq!(
        decode(&[]),
        Err(ProtocolError::Decode(DecodeError::Truncated(0)))
    );
    assert_eq!(
        decode(&good[..5]),
        Err(ProtocolError::Decode(DecodeError::Truncated(5)))
    );
    let mut bad = good.clone();
    bad[0] = b'w';
    assert_eq!(
        decode(&bad),
        Err(ProtocolError::Decode(DecodeError::BadMagic))
    );
    for version in [0, codec::FORMAT_VERSION + 1] {
        let mut v = good.clone();
        v[4] = version;
        let err = decode(&v).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::Decode(DecodeError::UnsupportedVersion { found, .. }) if found == version
        ));
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
    }
    // A core value is not a frame.
    let core = codec::encode(&vv(&[(1, 1)]));
    assert_eq!(
        decode(&core),
        Err(ProtocolError::Decode(DecodeError::WrongKind {
            expected: "Frame",
            found: codec::kind::VERSION_VECTOR
        }))
    );
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        decode(&long),
        Err(ProtocolError::Decode(DecodeError::TrailingBytes(1)))
    );
    let err = decode(&good[..good.len() - 1]).unwrap_err();
    assert!(matches!(
        err,
        ProtocolError::Decode(DecodeError::Malformed(_))
    ));
    assert_eq!(err.code(), ErrorCode::BadFrame);
    // Header only: no frame type.
    assert!(matches!(
        decode(&header()),
        Err(ProtocolError::Decode(DecodeError::Malformed(_)))
    ));
}

#[test]
fn size_is_checked_before_parsing() {
    let limits = Limits {
        max_frame_bytes: 8,
        ..Limits::default()
    };
    // Garbage that would be BadMagic is refused for its size first.
    assert_eq!(
        Frame::decode(&[0xff; 9], &limits),
        Err(ProtocolError::FrameTooLarge { len: 9, max: 8 })
    );
    assert_eq!(
        Frame::decode(&Frame::Ping { nonce: 1 }.encode(), &limits),
        Ok(Frame::Ping { nonce: 1 })
    );
    let big = Frame::Ping { nonce: u64::MAX };
    assert_eq!(
        big.validate(&limits),
        Err(ProtocolError::FrameTooLarge { len: 17, max: 8 })
    );
    assert_eq!(
        Frame::decode(&big.encode(), &limits).unwrap_err().code(),
        ErrorCode::FrameTooLarge
    );
}

#[test]
fn unknown_access_values_are_bad_frames() {
    let access = Frame::Access {
        doc: doc("d"),
        access: Access::ReadWrite,
    };
    let mut bytes = access.encode();
    assert_eq!(bytes.last(), Some(&1));
    let last = bytes.len() - 1;
    bytes[last] = 2;
    assert_eq!(decode(&bytes).unwrap_err().code(), ErrorCode::BadFrame);
}

#[test]
fn unknown_frame_types_are_named() {
    let mut b = header();
    b.push(15);
    assert_eq!(decode(&b), Err(ProtocolError::UnknownFrame(15)));
    let mut b = header();
    b.extend_from_slice(&[0x80, 0x01, 0x00]);
    assert_eq!(decode(&b), Err(ProtocolError::UnknownFrame(128)));
    let mut b = header();
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(decode(&b), Err(ProtocolError::UnknownFrame(u32::MAX)));
    // An over-long varint is malformed, not a frame type.
    let mut b = header();
    b.extend_from_slice(&[0xff; 6]);
    assert!(matches!(
        decode(&b),
        Err(ProtocolError::Decode(DecodeError::Malformed(_)))
    ));
    assert_eq!(ProtocolError::UnknownFrame(14).code(), ErrorCode::BadFrame);
}

/// Replaces the first occurrence of `from` in `bytes` by `to` (same length).
fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[test]
fn invalid_doc_ids_are_typed() {
    let sub = Frame::Subscribe {
        doc: doc("abc"),
        version: VersionVector::new(),
    }
    .encode();
    let err = decode(&patch(&sub, b"abc", b"a/c")).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::InvalidDocId(InvalidDocId::BadChar {
            index: 1,
            found: '/'
        })
    );
    assert_eq!(err.code(), ErrorCode::InvalidDocId);
    // Empty id: Unsubscribe (7) with a zero-length string.
    let mut b = header();
    b.extend_from_slice(&[7, 0]);
    assert_eq!(
        decode(&b),
        Err(ProtocolError::InvalidDocId(InvalidDocId::Empty))
    );
    // `..` in an Error frame's optional doc.
    let e = Frame::error(ErrorCode::Forbidden, Some(doc("ab")), None, "").encode();
    assert_eq!(
        decode(&patch(&e, b"ab", b"..")),
        Err(ProtocolError::InvalidDocId(InvalidDocId::DotSegment))
    );
    // Too long: 129 bytes.
    let mut b = header();
    b.extend_from_slice(&[7, 129, 1]);
    b.extend_from_slice(&[b'a'; 129]);
    assert_eq!(
        decode(&b),
        Err(ProtocolError::InvalidDocId(InvalidDocId::TooLong {
            len: 129
        }))
    );
    // Not UTF-8 at all: malformed.
    let mut b = header();
    b.extend_from_slice(&[7, 1, 0xff]);
    assert!(matches!(
        decode(&b),
        Err(ProtocolError::Decode(DecodeError::Malformed(_)))
    ));
}

#[test]
fn invalid_version_vectors_are_malformed() {
    let sub = Frame::Subscribe {
        doc: doc("d"),
        version: vv(&[(1, 3), (2, 5)]),
    }
    .encode();
    // Zero counter.
    assert!(matches!(
        decode(&patch(&sub, &[1, 3], &[1, 0])),
        Err(ProtocolError::Decode(DecodeError::Malformed(_)))
    ));
    // Replicas out of order.
    assert!(matches!(
        decode(&patch(&sub, &[2, 5], &[1, 5])),
        Err(ProtocolError::Decode(DecodeError::Malformed(_)))
    ));
}

#[test]
fn update_size_is_bounded() {
    let limits = Limits {
        max_update_bytes: 4,
        ..Limits::default()
    };
    let update = Frame::Update {
        doc: doc("d"),
        seq: 9,
        update: vec![0; 5],
    };
    let expected = ProtocolError::UpdateTooLarge {
        doc: doc("d"),
        seq: Some(9),
        len: 5,
        max: 4,
    };
    assert_eq!(
        Frame::decode(&update.encode(), &limits),
        Err(expected.clone())
    );
    assert_eq!(update.validate(&limits), Err(expected.clone()));
    assert_eq!(expected.code(), ErrorCode::UpdateTooLarge);
    let Frame::Error {
        code, doc: d, seq, ..
    } = expected.error_frame()
    else {
        panic!("not an error frame");
    };
    assert_eq!(
        (code, d, seq),
        (ErrorCode::UpdateTooLarge, Some(doc("d")), Some(9))
    );

    let remote = Frame::Remote {
        doc: doc("d"),
        update: vec![0; 5],
    };
    let err = Frame::decode(&remote.encode(), &limits).unwrap_err();
    assert!(matches!(
        err,
        ProtocolError::UpdateTooLarge {
            seq: None,
            len: 5,
            ..
        }
    ));
    assert_eq!(err.code(), ErrorCode::FrameTooLarge);
    // Exactly at the limit is fine, and a Synced diff is bounded by the
    // frame size only.
    let at_limit = Frame::Update {
        doc: doc("d"),
        seq: 1,
        update: vec![0; 4],
    };
    assert!(Frame::decode(&at_limit.encode(), &limits).is_ok());
    let synced = Frame::Synced {
        doc: doc("d"),
        update: vec![0; 100],
        version: VersionVector::new(),
    };
    assert!(Frame::decode(&synced.encode(), &limits).is_ok());
}

fn presence_frame(state: PresenceState) -> Frame {
    Frame::Presence {
        doc: doc("d"),
        state: Some(state),
    }
}

/// The error for `state`, from both `validate` and `decode` (which must
/// agree), also inside a `PresenceUpdate`.
fn presence_error(state: PresenceState, limits: &Limits) -> ProtocolError {
    let frame = presence_frame(state.clone());
    let err = Frame::decode(&frame.encode(), limits).unwrap_err();
    assert_eq!(frame.validate(limits), Err(err.clone()));
    let update = Frame::PresenceUpdate {
        doc: doc("d"),
        peers: vec![(PeerId(1), presence()), (PeerId(2), state)],
    };
    assert_eq!(Frame::decode(&update.encode(), limits), Err(err.clone()));
    assert_eq!(err.code(), ErrorCode::BadFrame);
    err
}

#[test]
fn presence_bounds() {
    let limits = Limits::default();
    let ok = presence();
    assert_eq!(ok.validate(4096), Ok(()));
    assert_eq!(ok.encoded_len(), postcard_len(&ok));

    let mut s = ok.clone();
    s.extra = vec![0; 5000];
    let len = s.encoded_len();
    assert_eq!(
        presence_error(s, &limits),
        ProtocolError::PresenceTooLarge { len, max: 4096 }
    );

    let mut s = ok.clone();
    s.user = "x".repeat(MAX_USER_BYTES + 1);
    assert_eq!(
        presence_error(s, &limits),
        ProtocolError::FieldTooLong {
            field: "user",
            len: MAX_USER_BYTES + 1,
            max: MAX_USER_BYTES
        }
    );
    let mut s = ok.clone();
    s.user = "Ada\u{202e}".into(); // a bidi override is a format char, allowed
    assert_eq!(s.validate(4096), Ok(()));
    s.user = "Ada\n".into();
    assert_eq!(
        presence_error(s, &limits),
        ProtocolError::ControlCharacter { field: "user" }
    );

    for color in [
        "",
        "red",
        "#12345",
        "#1234567",
        "#12345g",
        "336699",
        "#33669900ff",
    ] {
        let mut s = ok.clone();
        s.color = color.into();
        assert_eq!(
            presence_error(s, &limits),
            ProtocolError::InvalidPresence("color is not #rrggbb or #rrggbbaa"),
            "{color}"
        );
    }

    let with_path = |text: Path| {
        let mut s = ok.clone();
        s.cursor.as_mut().unwrap().text = text;
        s
    };
    assert_eq!(
        presence_error(with_path(Path::root()), &limits),
        ProtocolError::InvalidPresence("cursor path does not name a text")
    );
    assert_eq!(
        presence_error(with_path(Path::root().child("n", Kind::Counter)), &limits),
        ProtocolError::InvalidPresence("cursor path does not name a text")
    );
    assert_eq!(
        presence_error(
            with_path(Path::root().child("t", Kind::Text).child("u", Kind::Text)),
            &limits
        ),
        ProtocolError::InvalidPresence("cursor path steps through a value that is not a map")
    );
    let mut deep = Path::root();
    for i in 0..weft_core::doc::MAX_DEPTH {
        deep = deep.child(i.to_string(), Kind::Map);
    }
    assert_eq!(
        presence_error(with_path(deep.child("t", Kind::Text)), &limits),
        ProtocolError::InvalidPresence("cursor path deeper than the limit")
    );
    let big = Limits {
        max_presence_bytes: 1 << 20,
        ..Limits::default()
    };
    let long_key = "k".repeat(weft_core::doc::MAX_KEY_BYTES + 1);
    assert_eq!(
        presence_error(with_path(Path::root().child(long_key, Kind::Text)), &big),
        ProtocolError::InvalidPresence("cursor path key longer than the limit")
    );
    let mut s = ok.clone();
    s.cursor.as_mut().unwrap().head.anchor = Some(Dot::new(ReplicaId::new(1), 0));
    assert_eq!(
        presence_error(s, &limits),
        ProtocolError::InvalidPresence("cursor anchored to a zero counter")
    );
}

fn postcard_len(state: &PresenceState) -> usize {
    let frame = presence_frame(state.clone()).encode();
    // header, frame type, doc "d" (2 bytes), Some tag.
    frame.len() - 6 - 1 - 2 - 1
}

#[test]
fn string_fields_are_bounded() {
    let limits = Limits::default();
    let check = |frame: Frame, expected: ProtocolError| {
        assert_eq!(frame.validate(&limits), Err(expected.clone()));
        assert_eq!(Frame::decode(&frame.encode(), &limits), Err(expected));
    };
    check(
        Frame::hello(Some("n".repeat(MAX_NAME_BYTES + 1)), None),
        ProtocolError::FieldTooLong {
            field: "client_name",
            len: MAX_NAME_BYTES + 1,
            max: MAX_NAME_BYTES,
        },
    );
    check(
        Frame::hello(Some("a\u{7}".into()), None),
        ProtocolError::ControlCharacter {
            field: "client_name",
        },
    );
    check(
        Frame::hello(None, Some("t".repeat(MAX_TOKEN_BYTES + 1))),
        ProtocolError::FieldTooLong {
            field: "token",
            len: MAX_TOKEN_BYTES + 1,
            max: MAX_TOKEN_BYTES,
        },
    );
    assert!(Frame::hello(None, Some("t".repeat(MAX_TOKEN_BYTES)))
        .validate(&limits)
        .is_ok());
    check(
        Frame::Welcome {
            protocol_version: 1,
            server_name: "s".repeat(MAX_NAME_BYTES + 1),
            peer: PeerId(0),
            limits,
        },
        ProtocolError::FieldTooLong {
            field: "server_name",
            len: MAX_NAME_BYTES + 1,
            max: MAX_NAME_BYTES,
        },
    );
    check(
        Frame::Error {
            code: ErrorCode::Internal,
            doc: None,
            seq: None,
            message: "m".repeat(MAX_MESSAGE_BYTES + 1),
        },
        ProtocolError::FieldTooLong {
            field: "message",
            len: MAX_MESSAGE_BYTES + 1,
            max: MAX_MESSAGE_BYTES,
        },
    );
}

#[test]
fn error_messages_are_cut_at_char_boundaries() {
    // 'é' is two bytes: 1023 bytes of 'a' then 'é' crosses the limit.
    let msg = format!("{}é tail", "a".repeat(MAX_MESSAGE_BYTES - 1));
    let Frame::Error { message, .. } = Frame::error(ErrorCode::Internal, None, None, msg) else {
        panic!("not an error frame");
    };
    assert_eq!(message, "a".repeat(MAX_MESSAGE_BYTES - 1));
    let Frame::Error { message, .. } = Frame::error(ErrorCode::Internal, None, None, "short")
    else {
        panic!("not an error frame");
    };
    assert_eq!(message, "short");
    // Every protocol error turns into a valid Error frame.
    let long = ProtocolError::FieldTooLong {
        field: "token",
        len: usize::MAX,
        max: 1,
    };
    assert!(long.error_frame().validate(&Limits::default()).is_ok());
}

#[test]
fn unknown_error_codes_survive() {
    let frame = Frame::error(ErrorCode::Unknown(4242), None, Some(3), "from the future");
    let back = decode(&frame.encode()).unwrap();
    assert_eq!(back, frame);
    let Frame::Error { code, .. } = back else {
        panic!("not an error frame");
    };
    assert_eq!(code.scope(), ErrorScope::Connection);
}

#[test]
fn negotiation() {
    assert_eq!(negotiate(1..=1, 1..=1), Ok(1));
    assert_eq!(negotiate(1..=5, 3..=9), Ok(5));
    assert_eq!(negotiate(3..=9, 1..=5), Ok(5));
    assert_eq!(negotiate(0..=0, 0..=3), Err(ErrorCode::UnsupportedVersion));
    assert_eq!(negotiate(0..=1, 0..=3), Ok(1));
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 3..=1;
    assert_eq!(
        negotiate(reversed, 1..=3),
        Err(ErrorCode::UnsupportedVersion)
    );
    assert_eq!(negotiate(2..=3, 1..=1), Err(ErrorCode::UnsupportedVersion));
}

#[test]
fn server_handshake_order() {
    let mut hs = Handshake::new(Role::Server);
    assert_eq!(hs.role(), Role::Server);
    // Nothing before Hello, not even a ping; nothing a server would send.
    assert_eq!(
        hs.receive(&Frame::Ping { nonce: 0 }),
        Err(ErrorCode::UnexpectedFrame)
    );
    assert_eq!(hs.receive(&samples()[5]), Err(ErrorCode::UnexpectedFrame));
    assert_eq!(hs.receive(&samples()[1]), Err(ErrorCode::UnexpectedFrame));
    assert_eq!(hs.receive(&samples()[2]), Err(ErrorCode::UnexpectedFrame));
    // A Hello with no common version is refused and changes nothing.
    let future = Frame::Hello {
        min_version: 3,
        max_version: 4,
        client_name: None,
        token: None,
    };
    assert_eq!(hs.receive(&future), Err(ErrorCode::UnsupportedVersion));
    assert_eq!(hs.version(), None);
    let wide = Frame::Hello {
        min_version: 1,
        max_version: 9,
        client_name: None,
        token: None,
    };
    assert_eq!(hs.receive(&wide), Ok(()));
    assert_eq!(hs.version(), Some(PROTOCOL_VERSION));
    assert_eq!(hs.receive(&wide), Err(ErrorCode::UnexpectedFrame));
    for frame in samples() {
        let expected = match frame.direction() {
            Direction::ToClient => Err(ErrorCode::UnexpectedFrame),
            _ if matches!(frame, Frame::Hello { .. }) => Err(ErrorCode::UnexpectedFrame),
            _ => Ok(()),
        };
        assert_eq!(hs.receive(&frame), expected, "{}", frame.name());
    }
}

#[test]
fn client_handshake_order() {
    let welcome = |v: u16| Frame::Welcome {
        protocol_version: v,
        server_name: "s".into(),
        peer: PeerId(1),
        limits: Limits::default(),
    };
    let mut hs = Handshake::new(Role::Client);
    assert_eq!(hs.receive(&samples()[6]), Err(ErrorCode::UnexpectedFrame));
    assert_eq!(
        hs.receive(&Frame::hello(None, None)),
        Err(ErrorCode::UnexpectedFrame)
    );
    assert_eq!(hs.receive(&welcome(0)), Err(ErrorCode::UnsupportedVersion));
    assert_eq!(hs.receive(&welcome(3)), Err(ErrorCode::UnsupportedVersion));
    // A refusal may come first.
    assert_eq!(hs.receive(&samples()[2]), Ok(()));
    assert_eq!(hs.version(), None);
    assert_eq!(hs.receive(&welcome(1)), Ok(()));
    assert_eq!(hs.version(), Some(1));
    assert_eq!(hs.receive(&welcome(1)), Err(ErrorCode::UnexpectedFrame));
    for frame in samples() {
        let expected = match frame.direction() {
            Direction::ToServer => Err(ErrorCode::UnexpectedFrame),
            _ if matches!(frame, Frame::Welcome { .. }) => Err(ErrorCode::UnexpectedFrame),
            // Version 1 has no Access frame.
            _ if matches!(frame, Frame::Access { .. }) => Err(ErrorCode::UnexpectedFrame),
            _ => Ok(()),
        };
        assert_eq!(hs.receive(&frame), expected, "{}", frame.name());
    }
    // On version 2 the server announces each document's access.
    let mut v2 = Handshake::new(Role::Client);
    assert_eq!(v2.receive(&welcome(2)), Ok(()));
    let access = Frame::Access {
        doc: DocId::new("d").unwrap(),
        access: Access::ReadWrite,
    };
    assert_eq!(v2.receive(&access), Ok(()));
    // A server never receives it.
    let mut server = Handshake::new(Role::Server);
    assert_eq!(server.receive(&Frame::hello(None, None)), Ok(()));
    assert_eq!(server.receive(&access), Err(ErrorCode::UnexpectedFrame));
    // A client speaking 1..=3 accepts a server's 3.
    let mut newer = Handshake::with_versions(Role::Client, 1..=3);
    assert_eq!(newer.receive(&welcome(3)), Ok(()));
    assert_eq!(newer.version(), Some(3));
}

#[test]
fn error_frames_for_decode_errors() {
    let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
        (b"nope".to_vec(), ErrorCode::BadFrame),
        (vec![0; 40], ErrorCode::BadFrame),
        (
            [header(), vec![7, 1, b'/']].concat(),
            ErrorCode::InvalidDocId,
        ),
        ([header(), vec![99]].concat(), ErrorCode::BadFrame),
    ];
    for (bytes, code) in cases {
        let err = decode(&bytes).unwrap_err();
        let frame = err.error_frame();
        assert_eq!(
            frame,
            Frame::error(code, None, None, err.to_string()),
            "{err}"
        );
        assert_eq!(code.scope(), ErrorScope::Connection);
    }
}
