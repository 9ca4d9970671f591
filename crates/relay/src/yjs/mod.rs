//! Yjs rooms: the relay speaks the y-websocket protocol, so every Yjs
//! editor binding (CodeMirror, ProseMirror/Tiptap, Monaco, Quill, Lexical,
//! BlockNote…) syncs through weft with its stock `y-websocket` provider.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the collaborative editor (`?doc=…&token=…&name=…`), `GET /editor.js` its bundle |
//! | `GET /yjs/{doc}` | WebSocket upgrade; then y-protocols sync + awareness ([`wire`]). The URL `new WebsocketProvider('ws://HOST/yjs', doc, ydoc, { params: { token } })` builds |
//! | `GET /v1/yjs/{doc}/update` | the whole document as one Yjs v1 update (read access) |
//! | `POST /v1/yjs/{doc}/update` | apply a Yjs v1 update (write access): `204` once durable and sent to the room |
//!
//! The token goes in the `token` query parameter (what the provider's
//! `params` option sends) or an `Authorization: Bearer` header; it is
//! checked before the upgrade (`401`/`403`). A read-only token's updates
//! are refused (y-protocols' permission-denied message; the connection
//! stays, reading). A document id is either a weft document (`/ws`) or a
//! Yjs document, never both: the other kind is refused with close code
//! 4409 (HTTP `409`).
//!
//! Each room is one task owning a `yrs` document ([`room`]); an update is
//! checked ([`wire::check_update`]), applied, **stored durably, and only
//! then sent to the other clients**. Storage: [`persist`].

mod conn;
mod editor;
mod outbox;
pub(crate) mod persist;
mod room;
pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, oneshot};
use weft_protocol::DocId;

use crate::auth::Grant;
use crate::http::AppState;
use crate::listener::Peer;
use crate::state::Shared;
use crate::ws::{self, WatchLimits};

use room::RoomCmd;
pub(crate) use room::RoomError;

/// Commands queued to one room.
const ROOM_QUEUE: usize = 256;

/// The loaded Yjs rooms.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    rooms: Mutex<HashMap<DocId, (u64, mpsc::Sender<RoomCmd>)>>,
    next_generation: AtomicU64,
    next_conn: AtomicU64,
}

impl Rooms {
    pub(crate) fn new() -> Rooms {
        metrics::describe();
        Rooms::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DocId, (u64, mpsc::Sender<RoomCmd>)>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a Yjs room for `doc` is loaded (it claims the id even before
    /// anything is stored).
    pub(crate) fn contains(&self, doc: &str) -> bool {
        DocId::new(doc).is_ok_and(|d| self.lock().get(&d).is_some_and(|(_, h)| !h.is_closed()))
    }

    /// The room of `doc`, started if needed.
    fn get(
        self: &Arc<Self>,
        state: &Shared,
        doc: &DocId,
    ) -> Result<mpsc::Sender<RoomCmd>, RoomError> {
        let mut rooms = self.lock();
        if let Some((_, h)) = rooms.get(doc) {
            if !h.is_closed() {
                return Ok(h.clone());
            }
        }
        if state.hub.contains(doc) {
            return Err(RoomError::WeftDocument);
        }
        if rooms.len() >= state.limits.max_loaded_docs {
            return Err(RoomError::Unavailable("too many Yjs rooms loaded".into()));
        }
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        rooms.insert(doc.clone(), (generation, tx.clone()));
        tokio::spawn(room::run(
            state.clone(),
            self.clone(),
            doc.clone(),
            generation,
            rx,
        ));
        Ok(tx)
    }

    fn remove_if(&self, doc: &DocId, generation: u64) {
        let mut rooms = self.lock();
        if rooms.get(doc).is_some_and(|(g, _)| *g == generation) {
            rooms.remove(doc);
        }
    }
}

/// The Yjs routes (merged into the public router).
pub(crate) fn routes(max_update: usize) -> Router<AppState> {
    Router::new()
        .route("/", get(editor::index))
        .route("/editor.js", get(editor::bundle))
        .route("/yjs/{doc}", get(upgrade))
        .route(
            "/v1/yjs/{doc}/update",
            get(read_update)
                .post(post_update)
                .layer(DefaultBodyLimit::max(max_update)),
        )
}

/// The token: `?token=` or `Authorization: Bearer`.
fn token<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let from_query = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .filter(|t| !t.is_empty())
    });
    from_query.or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    })
}

/// Checks the document id and the token; the grant, or the response.
#[allow(clippy::result_large_err)]
fn authorize(
    app: &AppState,
    doc: String,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(DocId, Grant), Response> {
    let Ok(doc) = DocId::new(doc) else {
        return Err((StatusCode::BAD_REQUEST, "invalid document id\n").into_response());
    };
    match app.relay.auth.verify(token(uri, headers)) {
        // A Yjs room's state lives in its node's yrs document and store
        // keys no other node merges: served from two nodes it would fork,
        // and one node's writes would overwrite the other's. Refused until
        // rooms are placed on one owner node (docs/scale-out.md).
        Ok(_) if app.relay.cluster.is_some() => Err((
            StatusCode::NOT_IMPLEMENTED,
            "Yjs rooms are served by single-node relays only, not in cluster mode\n",
        )
            .into_response()),
        Ok(grant) if grant.may_read(doc.as_str()) => Ok((doc, grant)),
        Ok(_) => Err((StatusCode::FORBIDDEN, "no access to this document\n").into_response()),
        Err(e) => Err((StatusCode::UNAUTHORIZED, format!("{}\n", e.message)).into_response()),
    }
}

async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(doc): Path<String>,
    mut req: Request,
) -> Response {
    let (doc, grant) = match authorize(&app, doc, req.uri(), req.headers()) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (response, on_upgrade) = match ws::handshake(&mut req) {
        Ok(upgrade) => upgrade,
        Err(refused) => return refused.into_response(),
    };
    let limits = &app.relay.limits;
    let admitted = app.admission.admit(limits.max_connections);
    let config = ws::codec_config(limits);
    // No Hello here: the token came with the upgrade, so every message has
    // the same limit.
    let watch_limits = WatchLimits {
        first_message: u64::from(limits.wire.max_frame_bytes),
        ..WatchLimits::new(limits)
    };
    let AppState {
        relay,
        shutdown,
        connections,
        ..
    } = app;
    let rooms = relay.yjs.clone();
    ws::serve_upgraded(
        &connections,
        peer,
        on_upgrade,
        watch_limits,
        config,
        move |socket, verdict| {
            conn::serve(
                relay, rooms, socket, verdict, admitted, shutdown, doc, grant,
            )
        },
    );
    response
}

fn room_error(e: RoomError) -> Response {
    match e {
        RoomError::WeftDocument => (
            StatusCode::CONFLICT,
            "this id is a weft document (use /v1/docs/{doc}/…)\n",
        )
            .into_response(),
        RoomError::Closing | RoomError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "document unavailable, retry\n",
        )
            .into_response(),
        RoomError::Refused(room::close::TOO_LARGE, r) => {
            (StatusCode::PAYLOAD_TOO_LARGE, format!("{r}\n")).into_response()
        }
        RoomError::Refused(_, r) => (StatusCode::BAD_REQUEST, format!("{r}\n")).into_response(),
    }
}

/// Sends `make(reply)` to the room of `doc`, retrying while it unloads.
async fn ask<T>(
    relay: &Shared,
    doc: &DocId,
    make: impl Fn(oneshot::Sender<Result<T, RoomError>>) -> RoomCmd,
) -> Result<T, RoomError> {
    let mut last = RoomError::Closing;
    for _ in 0..5 {
        let room = relay.yjs.get(relay, doc)?;
        let (reply, answer) = oneshot::channel();
        if room.send(make(reply)).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        match answer.await {
            Ok(Err(RoomError::Closing)) | Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Ok(r) => return r,
        }
        last = RoomError::Closing;
    }
    Err(last)
}

async fn read_update(
    State(app): State<AppState>,
    Path(doc): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (doc, _) = match authorize(&app, doc, &uri, &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let relay = app.relay;
    if !relay.yjs.contains(doc.as_str()) {
        // Asking the room would create an empty one: check the store.
        let store = relay.store.clone();
        let key = doc.as_str().to_owned();
        match tokio::task::spawn_blocking(move || persist::exists(&*store, &key)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return (StatusCode::NOT_FOUND, "no such Yjs document\n").into_response()
            }
            _ => return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
        }
    }
    match ask(&relay, &doc, |reply| RoomCmd::State { reply }).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => room_error(e),
    }
}

async fn post_update(
    State(app): State<AppState>,
    Path(doc): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (doc, grant) = match authorize(&app, doc, &uri, &headers) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if !grant.may_write(doc.as_str()) {
        return (StatusCode::FORBIDDEN, "read-only token\n").into_response();
    }
    let shape = match wire::check_update(&body) {
        Ok(s) => s,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("invalid update: {e}\n")).into_response()
        }
    };
    let relay = app.relay;
    let result = ask(&relay, &doc, |reply| RoomCmd::Update {
        conn: None,
        bytes: body.clone(),
        shape,
        reply: Some(reply),
    })
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => room_error(e),
    }
}

/// Whether a weft document may open under `doc` (blocking: call off the
/// async workers): `Err` with the reason if `doc` is a Yjs document.
pub(crate) fn check_weft_open(
    store: &dyn weft_persist::Store,
    rooms: &Rooms,
    doc: &str,
) -> Result<(), String> {
    if rooms.contains(doc) || persist::exists(store, doc)? {
        return Err(format!(
            "{doc} is a Yjs document; open it with a Yjs provider at /yjs/{doc}"
        ));
    }
    Ok(())
}

/// Why a weft document is unavailable: "… is a Yjs document …" when that
/// is why, else the generic reason.
pub(crate) async fn unavailable_reason(state: &Shared, doc: &DocId) -> String {
    let store = state.store.clone();
    let rooms = state.yjs.clone();
    let key = doc.as_str().to_owned();
    match tokio::task::spawn_blocking(move || check_weft_open(&*store, &rooms, &key)).await {
        Ok(Err(reason)) => reason,
        _ => "document unavailable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_persist::{MemoryStore, Store};

    #[test]
    fn a_yjs_id_refuses_weft_and_a_weft_id_is_seen() {
        let store = MemoryStore::new();
        let rooms = Rooms::default();
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
}

/// Prometheus metrics of Yjs rooms.
pub(crate) mod metrics {
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
}
