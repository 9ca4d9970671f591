//! [`SyncConfig`]: which relay, which credentials, how to back off and batch.

use crate::{Backoff, Error, Result};
use std::time::Duration;

/// How the client syncs with a relay.
///
/// ```
/// use std::time::Duration;
/// use weft_client::SyncConfig;
/// let config = SyncConfig::new("ws://127.0.0.1:8787/ws")
///     .with_token("eyJ...")
///     .with_max_batch_bytes(256 << 10);
/// assert_eq!(config.max_batch_bytes, 256 << 10);
/// assert!(config.validate().is_ok());
/// assert!(SyncConfig::new("http://example.invalid").validate().is_err());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SyncConfig {
    /// The relay's WebSocket endpoint, e.g. `ws://127.0.0.1:8787/ws`.
    pub url: String,
    /// Bearer token sent in `Hello` (HS256 JWT for an authenticating relay).
    pub token: Option<String>,
    /// Name sent in `Hello` (≤ 128 bytes, no control characters).
    pub client_name: Option<String>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Give up on one connection attempt (TCP + WebSocket + `Welcome`) after this.
    pub connect_timeout: Duration,
    /// A catch-up diff larger than this is sent as the store's records
    /// instead, one bounded update per frame (also capped by the relay's
    /// `max_update_bytes`).
    pub max_batch_bytes: usize,
    /// Updates awaiting acknowledgement per document before sending waits.
    pub max_in_flight: usize,
    /// First delay before resending an update the relay asked to retry
    /// (`RateLimited`, `StoreUnavailable`); doubles per consecutive retry.
    pub retry_delay: Duration,
}

impl SyncConfig {
    /// Defaults for `url`: no token, backoff 250 ms → 30 s, 10 s connect
    /// timeout, 1 MiB batches, 64 updates in flight, 200 ms retry delay.
    pub fn new(url: impl Into<String>) -> SyncConfig {
        SyncConfig {
            url: url.into(),
            token: None,
            client_name: Some(format!("weft-client/{}", env!("CARGO_PKG_VERSION"))),
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            max_batch_bytes: 1 << 20,
            max_in_flight: 64,
            retry_delay: Duration::from_millis(200),
        }
    }

    /// Sets the token.
    pub fn with_token(mut self, token: impl Into<String>) -> SyncConfig {
        self.token = Some(token.into());
        self
    }

    /// Sets the reconnect backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> SyncConfig {
        self.backoff = backoff;
        self
    }

    /// Sets the batch cap (at least 1 byte).
    pub fn with_max_batch_bytes(mut self, bytes: usize) -> SyncConfig {
        self.max_batch_bytes = bytes.max(1);
        self
    }

    /// Checks the URL scheme (only `ws://`: the client has no TLS stack;
    /// put a TLS-terminating proxy in front of a public relay).
    pub fn validate(&self) -> Result<()> {
        let rest = self
            .url
            .strip_prefix("ws://")
            .ok_or_else(|| Error::InvalidUrl(self.url.clone()))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(Error::InvalidUrl(self.url.clone()));
        }
        Ok(())
    }
}
