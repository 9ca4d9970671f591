//! A document id names a weft document or a Yjs room, never both: the id
//! is claimed by whichever kind is loaded under it or stored under it.

use std::sync::Arc;

use weft_persist::Store;
use weft_protocol::DocId;

use crate::registry::Loaded;
use crate::yjs::persist;

/// Whether a weft document may open under `doc` (blocking: call off the
/// async workers): `Err` with the reason if `doc` is a Yjs room, loaded
/// (`yjs`) or stored.
pub(crate) fn check_weft_open(
    store: &dyn Store,
    yjs: &dyn Loaded,
    doc: &str,
) -> Result<(), String> {
    if yjs.is_loaded(doc) || persist::exists(store, doc)? {
        return Err(format!(
            "{doc} is a Yjs document; open it with a Yjs provider at /yjs/{doc}"
        ));
    }
    Ok(())
}

/// Why a weft document is unavailable: "… is a Yjs document …" when that
/// is why, else the generic reason.
pub(crate) async fn unavailable_reason(
    store: Arc<dyn Store>,
    yjs: Arc<dyn Loaded>,
    doc: &DocId,
) -> String {
    let key = doc.as_str().to_owned();
    match tokio::task::spawn_blocking(move || check_weft_open(&*store, &*yjs, &key)).await {
        Ok(Err(reason)) => reason,
        _ => "document unavailable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use weft_persist::MemoryStore;

    #[test]
    fn a_yjs_id_refuses_weft_and_a_weft_id_is_seen() {
        let store = MemoryStore::new();
        let rooms: Registry<()> = Registry::new(4, 4, None, metrics::Gauge::noop());
        assert!(check_weft_open(&store, &rooms, "d").is_ok());
        let mut room = persist::RoomStore::load(&store, "d").unwrap().store;
        let stored = room.submit(&store, &[&[0, 0]]).unwrap().wait();
        assert!(stored.iter().all(Result::is_ok));
        let refused = check_weft_open(&store, &rooms, "d").unwrap_err();
        assert!(refused.contains("is a Yjs document"), "{refused}");
        // A weft document under "w": the Yjs side sees it.
        let mut doc = weft_core::Doc::new(weft_core::ReplicaId::new(1));
        let u = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
        store.append("w", &u).unwrap();
        assert!(persist::weft_exists(&store, "w").unwrap());
        assert!(check_weft_open(&store, &rooms, "w").is_ok());
    }

    #[test]
    fn a_loaded_yjs_room_claims_its_id_before_anything_is_stored() {
        let store = MemoryStore::new();
        let rooms: Registry<()> = Registry::new(4, 4, None, metrics::Gauge::noop());
        let got = rooms.get(&DocId::new("fresh").unwrap());
        assert!(matches!(got, crate::registry::Got::Start { .. }));
        assert!(check_weft_open(&store, &rooms, "fresh").is_err());
        assert!(check_weft_open(&store, &rooms, "other").is_ok());
    }
}
