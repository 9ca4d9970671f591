//! Prometheus metrics of Yjs rooms.

use metrics::{counter, describe_counter, describe_gauge, gauge, Counter, Gauge};

/// Yjs rooms loaded (gauge).
pub(crate) const ROOMS: &str = "weft_relay_yjs_rooms_loaded";
/// Open Yjs connections (gauge).
pub(crate) const CONNECTIONS: &str = "weft_relay_yjs_connections";
/// Yjs updates received (counter).
pub(crate) const UPDATES_IN: &str = "weft_relay_yjs_updates_in_total";
/// Bytes of Yjs updates received (counter).
pub(crate) const UPDATE_BYTES_IN: &str = "weft_relay_yjs_update_bytes_in_total";
/// Yjs changes stored durably (counter).
pub(crate) const UPDATES_STORED: &str = "weft_relay_yjs_updates_stored_total";
/// Messages refused, by `reason` (counter).
pub(crate) const REFUSED: &str = "weft_relay_yjs_refused_total";
/// Readers that fell behind (counter).
pub(crate) const LAGGING: &str = "weft_relay_yjs_lagging_total";
/// Lagging readers resynced with the whole state (counter).
pub(crate) const RESYNCS: &str = "weft_relay_yjs_resyncs_total";
/// Awareness messages received (counter).
pub(crate) const AWARENESS_IN: &str = "weft_relay_yjs_awareness_in_total";
/// Awareness states sent late because a connection was over its rate (counter).
pub(crate) const AWARENESS_COALESCED: &str = "weft_relay_yjs_awareness_coalesced_total";
/// Logs folded into one snapshot (counter).
pub(crate) const COMPACTIONS: &str = "weft_relay_yjs_compactions_total";
/// Bytes written to Yjs clients (counter).
pub(crate) const BYTES_OUT: &str = "weft_relay_yjs_bytes_out_total";

pub(crate) fn describe() {
    describe_gauge!(ROOMS, "Yjs rooms loaded");
    describe_gauge!(CONNECTIONS, "Open Yjs connections");
    describe_counter!(UPDATES_IN, "Yjs updates received");
    describe_counter!(UPDATE_BYTES_IN, "Bytes of Yjs updates received");
    describe_counter!(UPDATES_STORED, "Yjs changes stored durably");
    describe_counter!(REFUSED, "Yjs messages refused, by reason");
    describe_counter!(LAGGING, "Yjs readers that fell behind");
    describe_counter!(RESYNCS, "Lagging Yjs readers resynced with the whole state");
    describe_counter!(AWARENESS_IN, "Awareness messages received");
    describe_counter!(
        AWARENESS_COALESCED,
        "Awareness states sent late (over rate)"
    );
    describe_counter!(COMPACTIONS, "Yjs logs folded into one snapshot");
    describe_counter!(BYTES_OUT, "Bytes written to Yjs clients");
}

pub(crate) fn rooms_loaded() -> Gauge {
    gauge!(ROOMS)
}
pub(crate) fn connections() -> Gauge {
    gauge!(CONNECTIONS)
}
pub(crate) fn updates_in() -> Counter {
    counter!(UPDATES_IN)
}
pub(crate) fn update_bytes_in() -> Counter {
    counter!(UPDATE_BYTES_IN)
}
pub(crate) fn updates_stored() -> Counter {
    counter!(UPDATES_STORED)
}
pub(crate) fn refused(reason: &'static str) -> Counter {
    counter!(REFUSED, "reason" => reason)
}
pub(crate) fn lagging() -> Counter {
    counter!(LAGGING)
}
pub(crate) fn resyncs() -> Counter {
    counter!(RESYNCS)
}
pub(crate) fn awareness_in() -> Counter {
    counter!(AWARENESS_IN)
}
pub(crate) fn awareness_coalesced() -> Counter {
    counter!(AWARENESS_COALESCED)
}
pub(crate) fn compactions() -> Counter {
    counter!(COMPACTIONS)
}
pub(crate) fn bytes_out() -> Counter {
    counter!(BYTES_OUT)
}
