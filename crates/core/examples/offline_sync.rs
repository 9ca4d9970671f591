//! Two replicas edit a shopping list, a record and a counter while offline,
//! then exchange what each is missing (encoded as bytes, as on a network) and
//! converge.
//!
//! Run with `cargo run -p weft-core --example offline_sync`.

use weft_core::{codec, wall_clock_ms, Crdt, LwwMap, OrSet, PnCounter, ReplicaId};

fn sync<T: Crdt>(a: &mut T, b: &mut T) -> usize
where
    T::Delta: codec::Encode,
{
    let to_b = codec::encode(&a.delta_since(&b.version()));
    let to_a = codec::encode(&b.delta_since(&a.version()));
    let bytes = to_a.len() + to_b.len();
    b.apply(&codec::decode(&to_b).expect("our own encoding decodes"));
    a.apply(&codec::decode(&to_a).expect("our own encoding decodes"));
    bytes
}

fn main() {
    let (alice, bob) = (ReplicaId::random(), ReplicaId::random());
    let now = wall_clock_ms();

    let mut list_a: OrSet<String> = OrSet::new();
    let mut note_a: LwwMap<String, String> = LwwMap::new();
    let mut likes_a = PnCounter::new();

    // Shared starting point.
    list_a.add(alice, "milk".into());
    list_a.add(alice, "bread".into());
    note_a.insert(alice, "title".into(), "Groceries".into(), now);
    let (mut list_b, mut note_b, mut likes_b) = (list_a.clone(), note_a.clone(), likes_a.clone());

    // Offline: both edit.
    list_a.remove(&"bread".to_string());
    list_a.add(alice, "eggs".into());
    note_a.insert(alice, "title".into(), "Groceries (Sat)".into(), now + 10);
    likes_a.increment(alice, 2).expect("no overflow");

    list_b.add(bob, "bread".into()); // re-add concurrent with alice's remove: add wins
    list_b.add(bob, "coffee".into());
    note_b.insert(bob, "shop".into(), "corner store".into(), now + 5);
    likes_b.decrement(bob, 1).expect("no overflow");

    println!("offline, alice: {:?}", list_a.iter().collect::<Vec<_>>());
    println!("offline, bob:   {:?}", list_b.iter().collect::<Vec<_>>());

    // Back online: exchange deltas.
    let mut bytes = sync(&mut list_a, &mut list_b);
    bytes += sync(&mut note_a, &mut note_b);
    bytes += sync(&mut likes_a, &mut likes_b);

    assert_eq!(list_a, list_b);
    assert_eq!(note_a, note_b);
    assert_eq!(likes_a, likes_b);
    println!("synced ({bytes} bytes exchanged):");
    println!("  list:  {:?}", list_a.iter().collect::<Vec<_>>());
    println!("  note:  {:?}", note_a.iter().collect::<Vec<_>>());
    println!("  likes: {}", likes_a.value());
    println!("converged: true");
}
