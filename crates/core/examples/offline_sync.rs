//! Two replicas of one document edit a note while offline — its text, tags,
//! a like counter and a nested record — then exchange exactly what each is
//! missing (as encoded bytes, as over a network) and converge.
//!
//! Run with `cargo run -p weft-core --example offline_sync`.

use weft_core::{Doc, DocError, ReplicaId};

fn show(name: &str, doc: &Doc) -> Result<(), DocError> {
    let meta = doc.map("meta")?;
    println!(
        "  {name}: body={:?} tags={:?} likes={} title={:?} due={:?}",
        doc.text("body")?.to_string(),
        doc.set::<String>("tags")?.to_vec()?,
        doc.counter("likes")?,
        meta.register::<String>("title")?,
        meta.register::<String>("due")?,
    );
    Ok(())
}

fn main() -> Result<(), DocError> {
    let mut alice = Doc::new(ReplicaId::random());
    let mut bob = Doc::new(ReplicaId::random());

    // A shared starting point: alice writes, bob receives her update.
    let first = alice.transact(|tx| {
        tx.text("body")?.insert(0, "Buy milk.")?;
        tx.set::<String>("tags")?.add(&"shopping".to_string())?;
        tx.map("meta")?.put("title", "Groceries")?;
        Ok(())
    })?;
    bob.apply(&first)?;

    // Offline: both edit the same note.
    alice.transact(|tx| {
        tx.text("body")?.insert(9, " Eggs too.")?;
        tx.set::<String>("tags")?.remove(&"shopping".to_string())?;
        tx.counter("likes")?.increment(2)?;
        tx.map("meta")?.put("title", "Groceries (Sat)")?;
        Ok(())
    })?;
    bob.transact(|tx| {
        tx.text("body")?.insert(0, "TODO: ")?;
        tx.set::<String>("tags")?.add(&"shopping".to_string())?; // re-add: add wins
        tx.set::<String>("tags")?.add(&"weekend".to_string())?;
        tx.counter("likes")?.decrement(1)?;
        tx.map("meta")?.put("due", "Saturday")?; // another field: both kept
        Ok(())
    })?;
    println!("offline:");
    show("alice", &alice)?;
    show("bob  ", &bob)?;

    // Back online: each sends the other exactly what it lacks.
    let to_bob = alice.diff(bob.version());
    let to_alice = bob.diff(alice.version());
    bob.apply(&to_bob)?;
    alice.apply(&to_alice)?;

    println!(
        "synced ({} bytes exchanged):",
        to_bob.len() + to_alice.len()
    );
    show("alice", &alice)?;
    show("bob  ", &bob)?;
    let converged = alice == bob;
    println!("converged: {converged}");
    if converged {
        Ok(())
    } else {
        std::process::exit(1)
    }
}
