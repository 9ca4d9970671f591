//! Loader for the editing traces in `tests/data/traces` (format and
//! licences in `tests/data/traces/ATTRIBUTION.md`).
//!
//! Sequential and concurrent traces share one shape here: a concurrent trace
//! has per-transaction `parents` and `agent`; a sequential one leaves them
//! empty and zero.

use flate2::read::GzDecoder;
use serde::Deserialize;
use std::io::Read;
use std::path::PathBuf;

/// One edit: at char `pos`, delete `del` chars, then insert `ins`.
#[derive(Clone, Debug, Deserialize)]
pub struct Patch(pub usize, pub usize, pub String);

/// One transaction: patches applied in sequence by one agent.
#[derive(Clone, Debug, Deserialize)]
pub struct Txn {
    /// Indices of the txns this one happened after (concurrent traces).
    #[serde(default)]
    pub parents: Vec<usize>,
    /// The agent that made it (concurrent traces).
    #[serde(default)]
    pub agent: usize,
    /// The edits.
    pub patches: Vec<Patch>,
}

/// A whole trace.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// The document after every txn.
    pub end_content: String,
    /// Number of agents (concurrent traces; 1 otherwise).
    #[serde(default = "one")]
    pub num_agents: usize,
    /// The transactions.
    pub txns: Vec<Txn>,
}

fn one() -> usize {
    1
}

/// Sequential traces shipped in `tests/data/traces`.
pub const SEQUENTIAL: &[&str] = &["automerge-paper", "seph-blog1"];
/// Concurrent traces shipped in `tests/data/traces`.
pub const CONCURRENT: &[&str] = &["friendsforever", "clownschool"];

/// Path of trace `name`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/traces")
        .join(format!("{name}.json.gz"))
}

/// Loads and parses trace `name`.
///
/// # Panics
/// If the file is missing or malformed (test data is trusted).
pub fn load(name: &str) -> Trace {
    let file = std::fs::File::open(path(name)).expect("trace file exists");
    let mut json = String::new();
    GzDecoder::new(file)
        .read_to_string(&mut json)
        .expect("trace is gzip");
    serde_json::from_str(&json).expect("trace is valid json")
}
