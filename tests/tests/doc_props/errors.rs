//! Every documented error path returns its error and changes nothing.

use weft_core::doc::{Kind, MAX_DEPTH, MAX_KEY_BYTES};
use weft_core::{Doc, DocError, ReplicaId};

fn doc(n: u64) -> Doc {
    Doc::new(ReplicaId::new(n))
}

/// Runs `f` on `d` and checks the document did not change, byte for byte.
fn unchanged<T>(d: &mut Doc, f: impl FnOnce(&mut Doc) -> T) -> T {
    let before = d.save();
    let version = d.version().clone();
    let out = f(d);
    assert_eq!(d.save(), before, "a failed operation changed the document");
    assert_eq!(d.version(), &version);
    out
}

fn value_type_err<T: std::fmt::Debug>(r: Result<T, DocError>, at: &str) {
    match r {
        Err(DocError::ValueType { path, .. }) => assert_eq!(path, at),
        other => panic!("expected ValueType at {at}, got {other:?}"),
    }
}

/// Regression: scalars were decoded with `postcard::from_bytes`, which
/// ignores trailing bytes, so a `String` register read as `u64` returned the
/// string's length and a `u16` read as `u8` returned its low varint byte.
#[test]
fn value_type_rejects_a_prefix_of_another_type() {
    let mut d = doc(1);
    d.transact(|tx| {
        tx.root().put("r", &"hello".to_string())?;
        tx.root().put("w", &300u16)?;
        tx.root().put_multi("mv", &"two words".to_string())?;
        tx.set::<String>("s")?.add(&"hi".to_string())?;
        tx.map("m")?.put("r", &"nested".to_string())
    })
    .unwrap();
    value_type_err(d.register::<u64>("r"), "r");
    value_type_err(d.register::<u8>("w"), "w");
    value_type_err(d.register::<bool>("w"), "w");
    value_type_err(d.root().multi_value::<u32>("mv"), "mv");
    value_type_err(d.set::<u8>("s").unwrap().to_vec(), "s");
    value_type_err(d.map("m").unwrap().register::<u64>("r"), "m/r");
    // The right types still read back.
    assert_eq!(d.register::<String>("r").unwrap().as_deref(), Some("hello"));
    assert_eq!(d.register::<u16>("w").unwrap(), Some(300));
    assert_eq!(
        d.root().multi_value::<String>("mv").unwrap(),
        vec!["two words".to_string()]
    );
    assert_eq!(
        d.set::<String>("s").unwrap().to_vec().unwrap(),
        vec!["hi".to_string()]
    );
}

fn type_mismatch<T: std::fmt::Debug>(r: Result<T, DocError>, at: &str, want: Kind, has: Kind) {
    match r {
        Err(DocError::TypeMismatch {
            path,
            expected,
            found,
        }) => assert_eq!((path.as_str(), expected, found), (at, want, has)),
        other => panic!("expected TypeMismatch at {at}, got {other:?}"),
    }
}

/// A transaction body, boxed so that differently-typed closures fit in one list.
type Edit = Box<dyn Fn(&mut weft_core::doc::Transaction<'_>) -> Result<(), DocError>>;

#[test]
fn type_mismatch_root_and_nested_reading_and_writing() {
    let mut d = doc(1);
    d.transact(|tx| {
        tx.counter("n")?.increment(1)?;
        tx.text("t")?.insert(0, "x")?;
        tx.map("m")?.counter("c")?.increment(2)?;
        tx.map("m")?.map("inner")?.set::<u8>("s")?.add(&1)
    })
    .unwrap();
    // Reading, root.
    type_mismatch(
        d.text("n").map(|t| t.to_string()),
        "n",
        Kind::Text,
        Kind::Counter,
    );
    type_mismatch(d.counter("t"), "t", Kind::Counter, Kind::Text);
    type_mismatch(d.map("n").map(|m| m.keys()), "n", Kind::Map, Kind::Counter);
    type_mismatch(d.register::<u8>("t"), "t", Kind::Register, Kind::Text);
    type_mismatch(d.set::<u8>("m").map(|s| s.len()), "m", Kind::Set, Kind::Map);
    // Reading, nested.
    let m = d.map("m").unwrap();
    type_mismatch(
        m.text("c").map(|t| t.len()),
        "m/c",
        Kind::Text,
        Kind::Counter,
    );
    type_mismatch(
        m.root_free_multi("c"),
        "m/c",
        Kind::MultiValue,
        Kind::Counter,
    );
    type_mismatch(
        m.map("inner").unwrap().counter("s"),
        "m/inner/s",
        Kind::Counter,
        Kind::Set,
    );
    // Writing, root and nested: each error is reported at the call, and the
    // whole transaction (including the edits before it) is discarded.
    let cases: Vec<(&str, Kind, Kind, Edit)> = vec![
        (
            "n",
            Kind::Text,
            Kind::Counter,
            Box::new(|tx| tx.text("n").map(drop)),
        ),
        (
            "t",
            Kind::Counter,
            Kind::Text,
            Box::new(|tx| tx.counter("t").map(drop)),
        ),
        (
            "t",
            Kind::Register,
            Kind::Text,
            Box::new(|tx| tx.root().put("t", &1u8)),
        ),
        (
            "t",
            Kind::MultiValue,
            Kind::Text,
            Box::new(|tx| tx.root().put_multi("t", &1u8)),
        ),
        (
            "n",
            Kind::Set,
            Kind::Counter,
            Box::new(|tx| tx.set::<u8>("n").map(drop)),
        ),
        (
            "n",
            Kind::Map,
            Kind::Counter,
            Box::new(|tx| tx.map("n").map(drop)),
        ),
        (
            "m/c",
            Kind::Text,
            Kind::Counter,
            Box::new(|tx| tx.map("m")?.text("c").map(drop)),
        ),
        (
            "m/inner",
            Kind::Counter,
            Kind::Map,
            Box::new(|tx| tx.map("m")?.counter("inner").map(drop)),
        ),
        (
            "m/inner/s",
            Kind::Register,
            Kind::Set,
            Box::new(|tx| tx.map("m")?.map("inner")?.put("s", &0u8)),
        ),
        // A kind created earlier in the same transaction counts too.
        (
            "fresh",
            Kind::Counter,
            Kind::Text,
            Box::new(|tx| {
                tx.text("fresh")?.insert(0, "abc")?;
                tx.counter("fresh").map(drop)
            }),
        ),
    ];
    for (at, want, has, edit) in cases {
        let r = unchanged(&mut d, |d| {
            d.transact(|tx| {
                tx.text("t")?.insert(0, "lost")?;
                tx.counter("n")?.increment(5)?;
                edit(tx)
            })
        });
        type_mismatch(r, at, want, has);
    }
    assert_eq!(d.text("t").unwrap().to_string(), "x");
    assert_eq!(d.counter("n").unwrap(), 1);
    assert_eq!(d.root().kind_of("fresh"), None);
}

/// `MapRef::multi_value` through a helper, so the mismatch check reads like
/// the others.
trait MultiExt {
    fn root_free_multi(&self, key: &str) -> Result<Vec<u8>, DocError>;
}

impl MultiExt for weft_core::doc::MapRef<'_> {
    fn root_free_multi(&self, key: &str) -> Result<Vec<u8>, DocError> {
        self.multi_value::<u8>(key)
    }
}

fn out_of_range<T: std::fmt::Debug>(r: Result<T, DocError>, at: &str, idx: usize, length: usize) {
    match r {
        Err(DocError::IndexOutOfRange { path, index, len }) => {
            assert_eq!((path.as_str(), index, len), (at, idx, length))
        }
        other => panic!("expected IndexOutOfRange at {at}, got {other:?}"),
    }
}

#[test]
fn index_out_of_range_insert_delete_and_overflowing_range() {
    let mut d = doc(1);
    d.transact(|tx| tx.text("t")?.insert(0, "a€😀")).unwrap();
    assert_eq!(d.text("t").unwrap().len(), 3, "lengths are in chars");
    let r = unchanged(&mut d, |d| d.transact(|tx| tx.text("t")?.insert(4, "x")));
    out_of_range(r, "t", 4, 3);
    let r = unchanged(&mut d, |d| d.transact(|tx| tx.text("t")?.delete(2, 5)));
    out_of_range(r, "t", 7, 3);
    let r = unchanged(&mut d, |d| d.transact(|tx| tx.text("t")?.delete(4, 0)));
    out_of_range(r, "t", 4, 3);
    let r = unchanged(&mut d, |d| {
        d.transact(|tx| tx.text("t")?.delete(1, usize::MAX))
    });
    out_of_range(r, "t", usize::MAX, 3);
    let r = unchanged(&mut d, |d| {
        d.transact(|tx| tx.text("t")?.delete(usize::MAX, usize::MAX))
    });
    out_of_range(r, "t", usize::MAX, 3);
    // Lengths follow the transaction's own edits, nested texts too.
    let r = unchanged(&mut d, |d| {
        d.transact(|tx| {
            let mut m = tx.map("m")?;
            let mut t = m.text("body")?;
            t.insert(0, "abcd")?;
            t.delete(0, 2)?;
            assert_eq!(t.len(), 2);
            t.insert(3, "x")
        })
    });
    out_of_range(r, "m/body", 3, 2);
    // Boundaries are accepted.
    d.transact(|tx| {
        let mut t = tx.text("t")?;
        t.insert(3, "!")?;
        t.delete(0, 4)?;
        t.delete(0, 0)
    })
    .unwrap();
    assert_eq!(d.text("t").unwrap().to_string(), "");
}

#[test]
fn counter_overflow_is_refused_within_and_across_transactions() {
    let mut d = doc(1);
    let overflow = |r: Result<Vec<u8>, DocError>, at: &str| match r {
        Err(DocError::Overflow { path, .. }) => assert_eq!(path, at),
        other => panic!("expected Overflow at {at}, got {other:?}"),
    };
    let r = unchanged(&mut d, |d| {
        d.transact(|tx| {
            let mut c = tx.counter("n")?;
            c.increment(u64::MAX)?;
            c.increment(u64::MAX)
        })
    });
    overflow(r, "n");
    let r = unchanged(&mut d, |d| {
        d.transact(|tx| {
            let mut m = tx.map("m")?;
            let mut c = m.counter("c")?;
            c.decrement(u64::MAX)?;
            c.decrement(1)
        })
    });
    overflow(r, "m/c");
    // Increments and decrements are separate 64-bit totals: both may be full.
    d.transact(|tx| tx.counter("n")?.increment(u64::MAX))
        .unwrap();
    d.transact(|tx| tx.counter("n")?.decrement(u64::MAX))
        .unwrap();
    assert_eq!(d.counter("n").unwrap(), 0);
    let r = unchanged(&mut d, |d| d.transact(|tx| tx.counter("n")?.increment(1)));
    overflow(r, "n");
    let r = unchanged(&mut d, |d| d.transact(|tx| tx.counter("n")?.decrement(1)));
    overflow(r, "n");
    // Another replica has its own totals.
    let mut e = doc(2);
    e.apply(&d.diff(e.version())).unwrap();
    e.transact(|tx| tx.counter("n")?.increment(u64::MAX))
        .unwrap();
    assert_eq!(e.counter("n").unwrap(), i128::from(u64::MAX));
}

#[test]
fn limits_on_key_length_and_depth() {
    let mut d = doc(1);
    let limit = |r: Result<Vec<u8>, DocError>| match r {
        Err(DocError::Limit { .. }) => {}
        other => panic!("expected Limit, got {other:?}"),
    };
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    let ok = "k".repeat(MAX_KEY_BYTES);
    limit(unchanged(&mut d, |d| {
        d.transact(|tx| tx.text(&long).map(drop))
    }));
    limit(unchanged(&mut d, |d| {
        d.transact(|tx| tx.map("m")?.put(&long, &1u8))
    }));
    limit(unchanged(&mut d, |d| {
        d.transact(|tx| tx.map(&long).map(drop))
    }));
    d.transact(|tx| tx.counter(&ok)?.increment(1)).unwrap();
    assert_eq!(d.counter(&ok).unwrap(), 1);

    // MAX_DEPTH steps are fine (MAX_DEPTH - 1 maps and a value), one more is not.
    fn nest(m: &mut weft_core::doc::MapMut<'_, '_>, maps: usize) -> Result<(), DocError> {
        if maps == 0 {
            return m.counter("leaf")?.increment(1);
        }
        nest(&mut m.map("d")?, maps - 1)
    }
    d.transact(|tx| nest(&mut tx.root(), MAX_DEPTH - 1))
        .unwrap();
    limit(unchanged(&mut d, |d| {
        d.transact(|tx| nest(&mut tx.root(), MAX_DEPTH))
    }));
    let mut m = d.root();
    for _ in 0..MAX_DEPTH - 1 {
        m = m.map("d").unwrap();
    }
    assert_eq!(m.counter("leaf").unwrap(), 1);
    assert_eq!(m.path().steps().len(), MAX_DEPTH - 1);
}

#[test]
fn serialize_errors_are_reported() {
    struct Refuses;
    impl serde::Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused"))
        }
    }
    let mut d = doc(1);
    let r = unchanged(&mut d, |d| d.transact(|tx| tx.root().put("r", &Refuses)));
    assert!(
        matches!(r, Err(DocError::Serialize { ref path, .. }) if path == "r"),
        "{r:?}"
    );
    let r = unchanged(&mut d, |d| {
        d.transact(|tx| tx.set::<Refuses>("s")?.add(&Refuses))
    });
    assert!(
        matches!(r, Err(DocError::Serialize { ref path, .. }) if path == "s"),
        "{r:?}"
    );
}

fn decode_err<T: std::fmt::Debug>(r: Result<T, DocError>) -> DecodeError {
    match r {
        Err(DocError::Decode(e)) => e,
        other => panic!("expected a Decode error, got {other:?}"),
    }
}

use weft_core::codec::{FORMAT_VERSION, HEADER_LEN};
use weft_core::doc::Limits;
use weft_core::DecodeError;

/// A document with some history, its last update and its snapshot.
fn sample() -> (Doc, Vec<u8>, Vec<u8>) {
    let mut d = doc(1);
    d.transact(|tx| {
        tx.text("t")?.insert(0, "hello")?;
        tx.counter("n")?.increment(3)
    })
    .unwrap();
    let u = d
        .transact(|tx| {
            tx.map("m")?.put("r", &7u32)?;
            tx.set::<u8>("s")?.add(&1)
        })
        .unwrap();
    let snap = d.save();
    (d, u, snap)
}

#[test]
fn decode_errors_on_apply_and_load() {
    let (src, update, snap) = sample();
    let mut d = doc(2);
    d.transact(|tx| tx.text("mine")?.insert(0, "keep")).unwrap();
    let first = src.diff(&weft_core::VersionVector::new());

    let e = decode_err(unchanged(&mut d, |d| d.apply(b"garbage bytes")));
    assert_eq!(e, DecodeError::BadMagic);
    let e = decode_err(unchanged(&mut d, |d| d.apply(&update[..3])));
    assert_eq!(e, DecodeError::Truncated(3));
    for cut in HEADER_LEN..update.len() {
        let e = decode_err(unchanged(&mut d, |d| d.apply(&update[..cut])));
        assert!(
            matches!(e, DecodeError::Malformed(_) | DecodeError::Invalid(_)),
            "cut at {cut}: {e:?}"
        );
    }
    let mut trailing = update.clone();
    trailing.push(0);
    let e = decode_err(unchanged(&mut d, |d| d.apply(&trailing)));
    assert_eq!(e, DecodeError::TrailingBytes(1));
    // Wrong kind both ways.
    let e = decode_err(unchanged(&mut d, |d| d.apply(&snap)));
    assert!(
        matches!(
            e,
            DecodeError::WrongKind {
                expected: "Update",
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode_err(Doc::load(&update, ReplicaId::new(3)));
    assert!(
        matches!(
            e,
            DecodeError::WrongKind {
                expected: "Snapshot",
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode_err(Doc::load(&first, ReplicaId::new(3)));
    assert!(
        matches!(
            e,
            DecodeError::WrongKind {
                expected: "Snapshot",
                ..
            }
        ),
        "{e:?}"
    );
    // A newer format version (and version zero) are refused.
    for bytes in [&update, &snap] {
        for v in [FORMAT_VERSION + 1, u8::MAX, 0] {
            let mut newer = bytes.clone();
            newer[4] = v;
            let want = DecodeError::UnsupportedVersion {
                found: v,
                supported: FORMAT_VERSION,
            };
            if bytes == &update {
                assert_eq!(decode_err(unchanged(&mut d, |d| d.apply(&newer))), want);
            } else {
                assert_eq!(decode_err(Doc::load(&newer, ReplicaId::new(3))), want);
            }
        }
    }
    // Garbage and truncated snapshots.
    assert_eq!(
        decode_err(Doc::load(b"", ReplicaId::new(3))),
        DecodeError::Truncated(0)
    );
    assert_eq!(
        decode_err(Doc::load(b"not weft at all", ReplicaId::new(3))),
        DecodeError::BadMagic
    );
    for cut in HEADER_LEN..snap.len() {
        assert!(
            Doc::load(&snap[..cut], ReplicaId::new(3)).is_err(),
            "cut at {cut}"
        );
    }
    // Inputs over the size limit.
    let small = Limits {
        max_input_bytes: HEADER_LEN + 4,
        ..Limits::default()
    };
    let mut tiny = doc(4).with_limits(small);
    let e = decode_err(unchanged(&mut tiny, |d| d.apply(&update)));
    assert!(
        matches!(e, DecodeError::TooLarge { max, .. } if max == HEADER_LEN + 4),
        "{e:?}"
    );
    let e = decode_err(Doc::load_with_limits(&snap, ReplicaId::new(3), small));
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e:?}");
    // After all that, the valid inputs still work.
    d.apply(&first).unwrap();
    assert_eq!(d.text("t").unwrap().to_string(), "hello");
    assert_eq!(d.text("mine").unwrap().to_string(), "keep");
    assert_eq!(Doc::load(&snap, ReplicaId::new(3)).unwrap(), src);
}
