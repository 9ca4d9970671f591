//! Prometheus metrics: names, descriptions and the process-wide recorder.
//!
//! The recorder is global (one per process, installed by the first relay
//! started), so several relays in one test process share their counters.

use std::sync::OnceLock;

use metrics::{
    describe_counter, describe_gauge, describe_histogram, Counter, Gauge, Histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use weft_protocol::ErrorCode;

use crate::RelayError;

/// Open WebSocket connections (gauge).
pub const CONNECTIONS: &str = "weft_relay_connections";
/// Connections accepted since start (counter).
pub const CONNECTIONS_TOTAL: &str = "weft_relay_connections_total";
/// Documents loaded in memory (gauge).
pub const DOCS_LOADED: &str = "weft_relay_documents_loaded";
/// Client updates received (counter).
pub const UPDATES_IN: &str = "weft_relay_updates_in_total";
/// Bytes of client updates received (counter).
pub const UPDATE_BYTES_IN: &str = "weft_relay_update_bytes_in_total";
/// Updates stored durably (counter).
pub const UPDATES_STORED: &str = "weft_relay_updates_stored_total";
/// Frames sent to clients (counter).
pub const FRAMES_OUT: &str = "weft_relay_frames_out_total";
/// Bytes sent to clients (counter).
pub const BYTES_OUT: &str = "weft_relay_bytes_out_total";
/// Seconds from an update's arrival at its document to its fan-out (histogram).
pub const FANOUT_LAG: &str = "weft_relay_fanout_lag_seconds";
/// Seconds from an update's arrival at its document to its ack, i.e.
/// until its commit settled (histogram).
pub const ACK_LAG: &str = "weft_relay_ack_lag_seconds";
/// Seconds one batch of appends took to become durable (histogram).
pub const STORE_LATENCY: &str = "weft_relay_store_seconds";
/// Frames queued to clients and not yet written, all connections (gauge).
pub const QUEUED_FRAMES: &str = "weft_relay_outbound_queued_frames";
/// Commands queued to document tasks, sampled per batch (histogram).
pub const DOC_QUEUE_DEPTH: &str = "weft_relay_document_queue_depth";
/// Error frames sent, by `code` label (counter).
pub const ERRORS: &str = "weft_relay_errors_total";
/// Readers that fell behind and were caught up with a fresh diff (counter).
pub const SLOW_READER_RESYNCS: &str = "weft_relay_slow_reader_resyncs_total";

/// Sockets accepted and not yet upgraded to a WebSocket (gauge).
pub const PENDING_CONNECTIONS: &str = "weft_relay_pending_connections";
/// Sockets closed at accept, by `reason` label (`per_ip`, `pending`)
/// (counter).
pub const CONNECTIONS_REFUSED: &str = "weft_relay_connections_refused_total";
/// Sockets closed because they were not upgraded in time (counter).
pub const UPGRADE_TIMEOUTS: &str = "weft_relay_upgrade_timeouts_total";
/// Presence states replaced by a newer one before they were sent, because
/// the connection was over its presence rate (counter).
pub const PRESENCE_COALESCED: &str = "weft_relay_presence_coalesced_total";

/// Bucket bounds of every `_seconds` histogram: exported as Prometheus
/// histograms (not decaying summaries), so the rare slow commit or stalled
/// fan-out stays visible in `_bucket` counts, and quantiles can be
/// computed over any window.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Bucket bounds of the document queue depth.
const DEPTH_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0,
];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs (once) and returns the process-wide Prometheus recorder.
pub(crate) fn install() -> Result<PrometheusHandle, RelayError> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(DOC_QUEUE_DEPTH.into()), DEPTH_BUCKETS)
                })
                .map_err(|e| e.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(RelayError::Metrics)
}

fn describe() {
    describe_gauge!(CONNECTIONS, "Open WebSocket connections");
    describe_counter!(CONNECTIONS_TOTAL, "Connections accepted since start");
    describe_gauge!(DOCS_LOADED, "Documents loaded in memory");
    describe_counter!(UPDATES_IN, "Client updates received");
    describe_counter!(
        UPDATE_BYTES_IN,
        Unit::Bytes,
        "Bytes of client updates received"
    );
    describe_counter!(UPDATES_STORED, "Updates stored durably");
    describe_counter!(FRAMES_OUT, "Frames sent to clients");
    describe_counter!(BYTES_OUT, Unit::Bytes, "Bytes sent to clients");
    describe_histogram!(
        FANOUT_LAG,
        Unit::Seconds,
        "Update arrival at its document to fan-out"
    );
    describe_histogram!(STORE_LATENCY, Unit::Seconds, "Durable append of one batch");
    describe_histogram!(
        ACK_LAG,
        Unit::Seconds,
        "Update arrival at its document to its ack (after its commit)"
    );
    describe_gauge!(QUEUED_FRAMES, "Frames queued to clients, not yet written");
    describe_histogram!(DOC_QUEUE_DEPTH, "Commands waiting for a document task");
    describe_counter!(ERRORS, "Error frames sent, by code");
    describe_counter!(
        SLOW_READER_RESYNCS,
        "Slow readers caught up with a fresh diff"
    );
    describe_gauge!(
        PENDING_CONNECTIONS,
        "Sockets accepted and not yet upgraded to a WebSocket"
    );
    describe_counter!(CONNECTIONS_REFUSED, "Sockets closed at accept, by reason");
    describe_counter!(UPGRADE_TIMEOUTS, "Sockets not upgraded in time");
    describe_counter!(
        PRESENCE_COALESCED,
        "Presence states replaced by a newer one before they were sent"
    );
}

/// Sets the number of sockets waiting for their upgrade.
pub(crate) fn pending_connections(n: usize) {
    metrics::gauge!(PENDING_CONNECTIONS).set(n as f64);
}

/// Counts one socket closed at accept.
pub(crate) fn connection_refused(reason: &'static str) {
    metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// Counts one socket closed because it was not upgraded in time.
pub(crate) fn upgrade_timeout() {
    metrics::counter!(UPGRADE_TIMEOUTS).increment(1);
}

/// Counts one error frame sent with `code`.
pub(crate) fn error_sent(code: ErrorCode) {
    metrics::counter!(ERRORS, "code" => code.code().to_string()).increment(1);
}

/// Handles to the hot metrics, looked up once (a `counter!` lookup per
/// frame would cost more than the frame).
#[derive(Clone, Debug)]
pub(crate) struct Meters {
    pub(crate) connections: Gauge,
    pub(crate) connections_total: Counter,
    pub(crate) docs_loaded: Gauge,
    pub(crate) updates_in: Counter,
    pub(crate) update_bytes_in: Counter,
    pub(crate) updates_stored: Counter,
    pub(crate) frames_out: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) fanout_lag: Histogram,
    pub(crate) store_latency: Histogram,
    pub(crate) ack_lag: Histogram,
    pub(crate) queued_frames: Gauge,
    pub(crate) doc_queue_depth: Histogram,
    pub(crate) slow_reader_resyncs: Counter,
    pub(crate) presence_coalesced: Counter,
}

impl Meters {
    pub(crate) fn new() -> Meters {
        Meters {
            connections: metrics::gauge!(CONNECTIONS),
            connections_total: metrics::counter!(CONNECTIONS_TOTAL),
            docs_loaded: metrics::gauge!(DOCS_LOADED),
            updates_in: metrics::counter!(UPDATES_IN),
            update_bytes_in: metrics::counter!(UPDATE_BYTES_IN),
            updates_stored: metrics::counter!(UPDATES_STORED),
            frames_out: metrics::counter!(FRAMES_OUT),
            bytes_out: metrics::counter!(BYTES_OUT),
            fanout_lag: metrics::histogram!(FANOUT_LAG),
            store_latency: metrics::histogram!(STORE_LATENCY),
            ack_lag: metrics::histogram!(ACK_LAG),
            queued_frames: metrics::gauge!(QUEUED_FRAMES),
            doc_queue_depth: metrics::histogram!(DOC_QUEUE_DEPTH),
            slow_reader_resyncs: metrics::counter!(SLOW_READER_RESYNCS),
            presence_coalesced: metrics::counter!(PRESENCE_COALESCED),
        }
    }
}
