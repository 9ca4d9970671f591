//! Golden bytes: the exact encoding of a few frames, as specified in
//! `docs/protocol.md` §7. If one of these fails, the wire format changed:
//! that needs a new protocol version (and a new section in the spec), not a
//! new expected value here.

use weft_core::doc::{Kind, Path};
use weft_core::{Bias, Dot, ReplicaId, StablePosition, VersionVector};
use weft_protocol::{Access, Cursor, DocId, ErrorCode, Frame, Limits, PeerId, PresenceState};

const HEADER: &str = "57 45 46 54 01 0e";

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn d() -> DocId {
    DocId::new("d").unwrap()
}

#[track_caller]
fn pin(frame: Frame, body: &str) {
    let bytes = frame.encode();
    assert_eq!(hex(&bytes), format!("{HEADER} {body}"), "{}", frame.name());
    assert_eq!(Frame::decode(&bytes, &Limits::default()), Ok(frame));
}

#[test]
fn hello() {
    pin(
        Frame::Hello {
            min_version: 1,
            max_version: 1,
            client_name: Some("c".into()),
            token: None,
        },
        // type 0, min 1, max 1, Some("c"), None
        "00 01 01 01 01 63 00",
    );
}

#[test]
fn welcome() {
    pin(
        Frame::Welcome {
            protocol_version: 1,
            server_name: "relay".into(),
            peer: PeerId(7),
            limits: Limits::default(),
        },
        // type 1, version 1, "relay", peer 7, limits: 32 MiB, 16 MiB, 4096,
        // 256, 30000 ms (varints)
        "01 01 05 72 65 6c 61 79 07 80 80 80 10 80 80 80 08 80 20 80 02 b0 ea 01",
    );
}

#[test]
fn error() {
    pin(
        Frame::error(ErrorCode::UpdateTooLarge, Some(d()), Some(2), "x"),
        // type 2, code 252, Some("d"), Some(2), "x"
        "02 fc 01 01 01 64 01 02 01 78",
    );
}

#[test]
fn subscribe() {
    let version: VersionVector = [(ReplicaId::new(1), 3)].into_iter().collect();
    pin(
        Frame::Subscribe { doc: d(), version },
        // type 5, "d", version {R1: 3}
        "05 01 64 01 01 03",
    );
}

#[test]
fn update_and_ack() {
    pin(
        Frame::Update {
            doc: d(),
            seq: 7,
            update: vec![1, 2, 3],
        },
        // type 8, "d", seq 7, 3 bytes
        "08 01 64 07 03 01 02 03",
    );
    pin(
        Frame::Ack { doc: d(), seq: 300 },
        // type 9, "d", seq 300
        "09 01 64 ac 02",
    );
}

#[test]
fn presence() {
    let state = PresenceState {
        user: "A".into(),
        color: "#00ff00".into(),
        cursor: Some(Cursor {
            text: Path::root().child("t", Kind::Text),
            anchor: StablePosition {
                anchor: Some(Dot::new(ReplicaId::new(2), 5)),
                bias: Bias::Right,
            },
            head: StablePosition {
                anchor: None,
                bias: Bias::Left,
            },
        }),
        extra: Vec::new(),
    };
    pin(
        Frame::Presence {
            doc: d(),
            state: Some(state),
        },
        // type 11, "d", Some, user "A", color "#00ff00",
        // cursor Some: path [("t", text = 4, generation 0)],
        // anchor (Some (R2, 5), Right), head (None, Left), extra []
        "0b 01 64 01 01 41 07 23 30 30 66 66 30 30 01 01 01 74 04 00 01 02 05 01 00 00 00",
    );
    pin(
        Frame::PresenceRemoved {
            doc: d(),
            peers: vec![PeerId(1), PeerId(2)],
        },
        // type 13, "d", [1, 2]
        "0d 01 64 02 01 02",
    );
}

#[test]
fn access() {
    // Protocol version 2.
    pin(
        Frame::Access {
            doc: d(),
            access: Access::ReadOnly,
        },
        // type 14, "d", 0 = read-only
        "0e 01 64 00",
    );
    pin(
        Frame::Access {
            doc: d(),
            access: Access::ReadWrite,
        },
        "0e 01 64 01",
    );
}
