//! [`SyncConfig`]: which relay, which credentials, how to back off and
//! batch; [`ClientLimits`]: what a relay can make the client hold.

use crate::{Backoff, Error, Result};
use std::time::Duration;
use weft_core::doc::Limits;

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
    /// Further relays serving the same documents (cluster mode,
    /// `docs/scale-out.md`): after a connection is lost — the relay died,
    /// or said `ShuttingDown` — the client tries the next URL in turn
    /// (`url`, then these, round-robin), with the usual backoff.
    pub fallback_urls: Vec<String>,
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
    /// For `wss://`: trust the operating system's root certificates
    /// (default `true`).
    pub system_roots: bool,
    /// For `wss://`: further trusted root certificates, each PEM (one or
    /// more `CERTIFICATE` blocks), e.g. a private or test CA.
    pub root_certificates: Vec<Vec<u8>>,
}

impl SyncConfig {
    /// Defaults for `url`: no token, backoff 250 ms → 30 s, 10 s connect
    /// timeout, 1 MiB batches, 64 updates in flight, 200 ms retry delay.
    pub fn new(url: impl Into<String>) -> SyncConfig {
        SyncConfig {
            url: url.into(),
            fallback_urls: Vec::new(),
            token: None,
            client_name: Some(format!("weft-client/{}", env!("CARGO_PKG_VERSION"))),
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            max_batch_bytes: 1 << 20,
            max_in_flight: 64,
            retry_delay: Duration::from_millis(200),
            system_roots: true,
            root_certificates: Vec::new(),
        }
    }

    /// Trusts the root certificate(s) in `pem` for `wss://` too (a private
    /// CA, a self-signed test CA). Checked by [`SyncConfig::validate`].
    ///
    /// ```
    /// use weft_client::SyncConfig;
    /// let config = SyncConfig::new("wss://relay.example:443/ws").with_root_certificate_pem(b"not a pem");
    /// assert!(config.validate().is_err()); // no CERTIFICATE block
    /// ```
    pub fn with_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> SyncConfig {
        self.root_certificates.push(pem.into());
        self
    }

    /// Whether `wss://` trusts the operating system's root certificates
    /// (turn off to trust only the added ones).
    pub fn with_system_roots(mut self, trust: bool) -> SyncConfig {
        self.system_roots = trust;
        self
    }

    /// Sets the token.
    pub fn with_token(mut self, token: impl Into<String>) -> SyncConfig {
        self.token = Some(token.into());
        self
    }

    /// Adds a relay to fail over to (see [`SyncConfig::fallback_urls`]).
    ///
    /// ```
    /// use weft_client::SyncConfig;
    /// let config = SyncConfig::new("ws://relay-a:8787/ws")
    ///     .with_fallback_url("ws://relay-b:8787/ws")
    ///     .with_fallback_url("ws://relay-c:8787/ws");
    /// assert_eq!(config.urls().count(), 3);
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn with_fallback_url(mut self, url: impl Into<String>) -> SyncConfig {
        self.fallback_urls.push(url.into());
        self
    }

    /// Every relay URL, in the order they are tried.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.fallback_urls.iter().map(String::as_str))
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

    /// Checks the URL (`ws://host[:port]/path`, or `wss://` for TLS) and,
    /// for `wss://`, that the trusted roots load.
    ///
    /// ```
    /// use weft_client::SyncConfig;
    /// assert!(SyncConfig::new("ws://127.0.0.1:8787/ws").validate().is_ok());
    /// // Trusting no root at all cannot verify any relay.
    /// assert!(SyncConfig::new("wss://relay.example/ws").with_system_roots(false).validate().is_err());
    /// assert!(SyncConfig::new("https://relay.example/ws").validate().is_err());
    /// assert!(SyncConfig::new("wss:///ws").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.tls().map(|_| ())
    }

    /// [`SyncConfig::validate`], returning the rustls configuration for
    /// `wss://` (one for every URL: each may be `ws://` or `wss://`).
    pub(crate) fn tls(&self) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
        for url in self.urls() {
            let rest = url
                .strip_prefix("ws://")
                .or_else(|| url.strip_prefix("wss://"))
                .ok_or_else(|| Error::InvalidUrl(url.to_owned()))?;
            if rest.is_empty() || rest.starts_with('/') {
                return Err(Error::InvalidUrl(url.to_owned()));
            }
        }
        crate::tls::client_config(self)
    }
}

/// How much a relay can make the client hold and apply, per document:
/// every update a relay sends is checked against these before it is
/// applied or stored, and presence is capped. Set with
/// [`Client::with_limits`](crate::Client::with_limits); documents opened
/// afterwards use them.
///
/// Defaults (chosen for an app's documents, tighter than a relay's):
///
/// | limit | default | beyond it |
/// |---|---|---|
/// | `doc.max_input_bytes` | 64 MiB | the update is refused (frames are at most 32 MiB anyway) |
/// | `doc.max_decoded_bytes` | 16 MiB | an update whose compressed sections inflate past this is refused before anything is allocated |
/// | `doc.max_update_authors` | 65,536 | an update carrying transactions of more replicas is refused |
/// | `doc.max_pending_updates` | 262,144 | an update waiting for a missing dependency is refused (not stored) once this many wait |
/// | `doc.max_pending_bytes` | 16 MiB | the same, counted at the waiting updates' *decoded* size |
/// | `max_presence_peers` | 1,024 | presence of further new peers is ignored until `PresenceRemoved` frees a slot |
///
/// `doc.allow_own_replica` is always off for the client's documents: each
/// session edits under a fresh replica id, so a remote update carrying
/// transactions of that id is forged (it is refused). A refused update is
/// reported ([`ClientEvent::RemoteUpdateRefused`](crate::ClientEvent::RemoteUpdateRefused)),
/// neither applied nor stored, and the connection goes on.
///
/// ```
/// use weft_client::{Client, ClientLimits};
/// let mut limits = ClientLimits::default().with_max_presence_peers(64);
/// limits.doc.max_decoded_bytes = 4 << 20; // 4 MiB per update
/// let client = Client::in_memory().with_limits(limits);
/// assert_eq!(client.limits().max_presence_peers, 64);
/// let doc = client.replica("d").unwrap();
/// assert_eq!(doc.read(|d| d.limits().max_decoded_bytes), 4 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientLimits {
    /// What each document accepts from the relay
    /// ([`weft_core::doc::Limits`]; see the table above).
    pub doc: Limits,
    /// Most other peers whose presence is kept per document (at least 1).
    pub max_presence_peers: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            doc: Limits {
                max_decoded_bytes: 16 << 20,
                max_pending_bytes: 16 << 20,
                allow_own_replica: false,
                ..Limits::default()
            },
            max_presence_peers: 1024,
        }
    }
}

impl ClientLimits {
    /// Replaces the document limits (`allow_own_replica` is ignored: always
    /// off).
    pub fn with_doc_limits(mut self, doc: Limits) -> ClientLimits {
        self.doc = doc;
        self
    }

    /// Sets the presence cap per document (at least 1).
    pub fn with_max_presence_peers(mut self, peers: usize) -> ClientLimits {
        self.max_presence_peers = peers.max(1);
        self
    }

    /// The limits a document is opened with: `doc`, own-replica updates
    /// refused.
    pub(crate) fn doc_limits(&self) -> Limits {
        Limits {
            allow_own_replica: false,
            ..self.doc
        }
    }
}
