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
pub(crate) mod metrics;
mod outbox;
pub(crate) mod persist;
pub(crate) mod room;
pub(crate) mod rooms;
pub(crate) mod wire;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use weft_protocol::DocId;

use crate::auth::Grant;
use crate::listener::Peer;
use crate::registry::Loaded;
use crate::state::AppState;
use crate::ws::{self, WatchLimits};

use room::RoomCmd;
pub(crate) use room::RoomError;

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
        move |socket, verdict| conn::serve(rooms, socket, verdict, admitted, shutdown, doc, grant),
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
    if !relay.yjs.is_loaded(doc.as_str()) {
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
    match relay.yjs.ask(&doc, |reply| RoomCmd::State { reply }).await {
        Ok((_, bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
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
    let result = relay
        .yjs
        .ask(&doc, |reply| {
            RoomCmd::Update(Box::new(room::Incoming {
                conn: None,
                bytes: body.clone(),
                shape,
                reply: Some(reply),
            }))
        })
        .await;
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => room_error(e),
    }
}
