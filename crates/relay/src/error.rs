//! The relay's error type.

use std::io;

/// Why the relay could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Binding or accepting on the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Creating the data directory failed.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Another relay holds the data directory (one relay per SQLite
    /// directory; several relays share documents in cluster mode).
    #[error("data directory {path} is in use by another weft-relay ({holder}); stop it, or use another --data directory (several relays sharing documents need cluster mode: --store postgres://… --bus redis://…, see docs/scale-out.md)")]
    DataDirLocked {
        /// The directory.
        path: std::path::PathBuf,
        /// What the holder wrote in the lock file (its pid), if readable.
        holder: String,
    },
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] weft_persist::Error),
    /// The metrics recorder could not be installed.
    #[error("cannot install metrics: {0}")]
    Metrics(String),
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
}
