//! The bus between relay nodes: Redis streams, sharded by document.
//!
//! A node publishes every update it stored (after the Postgres commit,
//! after the ack) and every presence change on stream
//! `weft:bus:{crc32(doc) % SHARDS}`, and a heartbeat on `weft:nodes`.
//! Each node reads all shards from where it was (one `XREAD BLOCK` loop
//! on a connection of its own) and hands each entry to the document's
//! task if the document is loaded here; entries of its own are skipped.
//!
//! The bus only accelerates delivery. The store is the truth: a node that
//! missed entries (Redis restarted or unreachable, a stream trimmed past
//! what it read, a document queue full) notices a gap in the document's
//! seqs, or is told on reconnect, and catches up from the store
//! (`document/cluster.rs`). Publishing never waits: when the publisher
//! queue is full or Redis is down, entries are dropped and counted.
//!
//! Entry fields: `t` kind (`u` update, `p` presence, `h` heartbeat), `n`
//! node id, `d` document, `s` store seq, `u` update bytes, `f` presence
//! frame (a `weft-protocol` frame, versioned like every frame).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use weft_protocol::DocId;

/// Streams the documents are spread over.
pub(crate) const SHARDS: u32 = 16;
/// Approximate length each stream is trimmed to (`XADD MAXLEN ~`): a node
/// that falls further behind than this catches up from the store.
const STREAM_MAXLEN: u32 = 100_000;
/// Entries queued for publishing before new ones are dropped.
const PUBLISH_QUEUE: usize = 65_536;
/// Bytes of entries queued for publishing before new ones are dropped
/// (while Redis is slow or down, updates up to the size limit must not
/// pile up to `PUBLISH_QUEUE` × that in memory).
const PUBLISH_QUEUE_BYTES: usize = 64 << 20;
/// Entries read per `XREAD`.
const READ_COUNT: u32 = 1024;
/// How long one `XREAD` blocks.
const READ_BLOCK_MS: u64 = 1000;
/// Heartbeat period; a node silent for `NODE_EXPIRY` is gone.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a silent node's presence stays.
pub(crate) const NODE_EXPIRY: Duration = Duration::from_secs(5);
const NODES_STREAM: &str = "weft:nodes";

/// One entry read from the bus.
#[derive(Debug)]
pub(crate) enum BusEvent {
    /// An update another node stored as `seq`.
    Update {
        doc: DocId,
        seq: u64,
        update: Vec<u8>,
    },
    /// A presence frame of a client of node `node`.
    Presence {
        doc: DocId,
        node: String,
        frame: Vec<u8>,
    },
    /// Node `node` is alive.
    Heartbeat { node: String },
    /// The reader (re)connected: entries may have been missed meanwhile.
    Reconnected,
}

/// What this node publishes.
#[derive(Debug)]
enum Outgoing {
    Update {
        doc: DocId,
        seq: u64,
        update: Vec<u8>,
    },
    Presence {
        doc: DocId,
        frame: Vec<u8>,
    },
}

/// The publishing side of the bus (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Bus {
    tx: mpsc::Sender<Outgoing>,
    /// Bytes of the entries in `tx`'s queue.
    queued: Arc<AtomicUsize>,
}

impl Outgoing {
    /// The bytes this entry holds.
    fn bytes(&self) -> usize {
        match self {
            Outgoing::Update { update, .. } => update.len(),
            Outgoing::Presence { frame, .. } => frame.len(),
        }
    }
}

fn shard(doc: &str) -> u32 {
    crc32(doc.as_bytes()) % SHARDS
}

/// CRC-32 (IEEE) of `bytes`: the shard function, the same one the store's
/// record checksums use.
fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn stream_key(shard: u32) -> String {
    format!("weft:bus:{shard}")
}

async fn connect(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_millis(READ_BLOCK_MS) + Duration::from_secs(5));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

impl Bus {
    /// Starts the publisher, the heartbeat and the reader of `url`; bus
    /// events go to `events` (the hub) until `stop` turns true.
    pub(crate) fn start(
        url: &str,
        node: Arc<str>,
        events: mpsc::Sender<BusEvent>,
        stop: watch::Receiver<bool>,
    ) -> Result<Bus, String> {
        let client = redis::Client::open(url).map_err(|e| format!("bus URL {url}: {e}"))?;
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(publisher(
            client.clone(),
            node.clone(),
            rx,
            queued.clone(),
            stop.clone(),
        ));
        tokio::spawn(reader(client, node, events, stop));
        Ok(Bus { tx, queued })
    }

    /// Queues an update stored as `seq` for the other nodes (never waits).
    pub(crate) fn publish_update(&self, doc: &DocId, seq: u64, update: &[u8]) {
        self.send(Outgoing::Update {
            doc: doc.clone(),
            seq,
            update: update.to_vec(),
        });
    }

    /// Queues a presence frame of one of this node's clients.
    pub(crate) fn publish_presence(&self, doc: &DocId, frame: Vec<u8>) {
        self.send(Outgoing::Presence {
            doc: doc.clone(),
            frame,
        });
    }

    fn send(&self, out: Outgoing) {
        let n = out.bytes();
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before.saturating_add(n) > PUBLISH_QUEUE_BYTES || self.tx.try_send(out).is_err() {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            ::metrics::counter!("weft_relay_bus_dropped_total").increment(1);
        }
    }
}

async fn publisher(
    client: redis::Client,
    node: Arc<str>,
    mut rx: mpsc::Receiver<Outgoing>,
    queued: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut batch: Vec<Outgoing> = Vec::new();
        let mut beat = false;
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = heartbeat.tick() => beat = true,
            got = rx.recv() => match got {
                Some(o) => batch.push(o),
                None => return,
            },
        }
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let taken: usize = batch.iter().map(Outgoing::bytes).sum();
        queued.fetch_sub(taken, Ordering::AcqRel);
        if conn.is_none() {
            match connect(&client).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    debug!(error = %e, "bus publisher cannot connect");
                    if !batch.is_empty() {
                        ::metrics::counter!("weft_relay_bus_dropped_total")
                            .increment(batch.len() as u64);
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut pipe = redis::pipe();
        if beat {
            pipe.cmd("XADD")
                .arg(NODES_STREAM)
                .arg("MAXLEN")
                .arg("~")
                .arg(1000)
                .arg("*")
                .arg("t")
                .arg("h")
                .arg("n")
                .arg(&*node)
                .ignore();
        }
        for o in &batch {
            match o {
                Outgoing::Update { doc, seq, update } => {
                    pipe.cmd("XADD")
                        .arg(stream_key(shard(doc.as_str())))
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(STREAM_MAXLEN)
                        .arg("*")
                        .arg("t")
                        .arg("u")
                        .arg("n")
                        .arg(&*node)
                        .arg("d")
                        .arg(doc.as_str())
                        .arg("s")
                        .arg(*seq)
                        .arg("u")
                        .arg(update.as_slice())
                        .ignore();
                }
                Outgoing::Presence { doc, frame } => {
                    pipe.cmd("XADD")
                        .arg(stream_key(shard(doc.as_str())))
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(STREAM_MAXLEN)
                        .arg("*")
                        .arg("t")
                        .arg("p")
                        .arg("n")
                        .arg(&*node)
                        .arg("d")
                        .arg(doc.as_str())
                        .arg("f")
                        .arg(frame.as_slice())
                        .ignore();
                }
            }
        }
        if let Err(e) = pipe.query_async::<()>(c).await {
            debug!(error = %e, dropped = batch.len(), "bus publish failed");
            ::metrics::counter!("weft_relay_bus_dropped_total").increment(batch.len() as u64);
            conn = None;
        } else {
            ::metrics::counter!("weft_relay_bus_published_total").increment(batch.len() as u64);
        }
    }
}

/// The id of each stream's last entry (`0-0` for an empty stream).
async fn last_ids(
    conn: &mut MultiplexedConnection,
    keys: &[String],
) -> redis::RedisResult<Vec<String>> {
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("XREVRANGE")
            .arg(k)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
    }
    let replies: Vec<redis::streams::StreamRangeReply> = pipe.query_async(conn).await?;
    Ok(replies
        .into_iter()
        .map(|r| {
            r.ids
                .first()
                .map_or_else(|| "0-0".to_owned(), |e| e.id.clone())
        })
        .collect())
}

fn field<T: redis::FromRedisValue>(map: &HashMap<String, Value>, key: &str) -> Option<T> {
    map.get(key).and_then(|v| redis::from_redis_value(v).ok())
}

async fn reader(
    client: redis::Client,
    node: Arc<str>,
    events: mpsc::Sender<BusEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let mut keys: Vec<String> = (0..SHARDS).map(stream_key).collect();
    keys.push(NODES_STREAM.to_owned());
    let mut backoff = Duration::from_millis(100);
    let mut connected_once = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut conn = match connect(&client).await {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "bus reader cannot connect");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Start from what is published from now on (each stream's last
        // entry id, read once: `$` would re-mean "now" at every XREAD and
        // lose what arrives between two reads); whatever was missed while
        // disconnected comes from the store.
        let mut ids = match last_ids(&mut conn, &keys).await {
            Ok(ids) => ids,
            Err(e) => {
                warn!(error = %e, "bus: cannot read stream positions; reconnecting");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if connected_once {
            info!("bus reconnected: catching up from the store");
            ::metrics::counter!("weft_relay_bus_reconnects_total").increment(1);
        }
        connected_once = true;
        if events.send(BusEvent::Reconnected).await.is_err() {
            return;
        }
        loop {
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(READ_BLOCK_MS)
                .arg("STREAMS")
                .arg(&keys)
                .arg(&ids);
            let reply = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                r = cmd.query_async::<Option<StreamReadReply>>(&mut conn) => r,
            };
            let reply = match reply {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %e, "bus read failed; reconnecting");
                    break;
                }
            };
            for key in reply.keys {
                let Some(i) = keys.iter().position(|k| *k == key.key) else {
                    continue;
                };
                for entry in key.ids {
                    ids[i] = entry.id.clone();
                    let Some(from) = field::<String>(&entry.map, "n") else {
                        continue;
                    };
                    let kind = field::<String>(&entry.map, "t").unwrap_or_default();
                    if kind == "h" {
                        if *from != *node {
                            let _ = events.try_send(BusEvent::Heartbeat { node: from });
                        }
                        continue;
                    }
                    if *from == *node {
                        continue;
                    }
                    let Some(doc) =
                        field::<String>(&entry.map, "d").and_then(|d| DocId::new(d).ok())
                    else {
                        continue;
                    };
                    let event = match kind.as_str() {
                        "u" => {
                            let (Some(seq), Some(update)) = (
                                field::<u64>(&entry.map, "s"),
                                field::<Vec<u8>>(&entry.map, "u"),
                            ) else {
                                continue;
                            };
                            BusEvent::Update { doc, seq, update }
                        }
                        "p" => {
                            let Some(frame) = field::<Vec<u8>>(&entry.map, "f") else {
                                continue;
                            };
                            BusEvent::Presence {
                                doc,
                                node: from,
                                frame,
                            }
                        }
                        _ => continue,
                    };
                    // Waits when the hub is busy: the stream keeps the rest.
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_ieee_checksum_and_shards_spread() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let used: std::collections::HashSet<u32> =
            (0..200).map(|i| shard(&format!("doc-{i}"))).collect();
        assert_eq!(used.len(), SHARDS as usize);
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    /// While nothing drains the queue (Redis down), large updates stop
    /// being queued at the byte cap, long before the entry cap.
    #[tokio::test]
    async fn the_publish_queue_is_bounded_in_bytes() {
        let (tx, mut rx) = mpsc::channel(PUBLISH_QUEUE);
        let bus = Bus {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
        };
        let doc = DocId::new("d").unwrap();
        let update = vec![7u8; 1 << 20];
        for seq in 0..200 {
            bus.publish_update(&doc, seq, &update);
        }
        let mut held = 0usize;
        let mut entries = 0;
        while let Ok(o) = rx.try_recv() {
            held += o.bytes();
            entries += 1;
        }
        assert!(held <= PUBLISH_QUEUE_BYTES, "{held} bytes queued");
        assert_eq!(
            entries,
            PUBLISH_QUEUE_BYTES >> 20,
            "{entries} of 200 queued"
        );
        assert_eq!(bus.queued.load(Ordering::Acquire), held);
    }
}
