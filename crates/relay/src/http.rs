//! The HTTP side: the WebSocket endpoint and the operational endpoints.
//!
//! | route | what |
//! |---|---|
//! | `GET /ws` | WebSocket upgrade; then the protocol of `docs/protocol.md` §7 |
//! | `GET /healthz` | `200 ok` while serving, `503` once shutting down |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /v1/docs/{doc}/snapshot` | the document's current snapshot (`Doc::save` bytes) for backups; needs a token with read access to `doc` (`Authorization: Bearer …`) unless auth is off |

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{oneshot, watch};
use tokio_util::task::TaskTracker;
use weft_protocol::{DocId, ErrorCode};

use crate::admission::Admission;
use crate::connection;
use crate::document::DocCmd;
use crate::state::Shared;

/// Read buffer per connection: small, so idle connections stay cheap
/// (tungstenite allocates it up front; bigger messages are read in several
/// passes).
const READ_BUFFER: usize = 4096;
/// Frames are written when this much is buffered, or at each flush.
const WRITE_BUFFER: usize = 16 * 1024;

/// Everything the handlers need.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) relay: Shared,
    pub(crate) admission: std::sync::Arc<Admission>,
    pub(crate) prometheus: PrometheusHandle,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Every connection task, so shutdown can wait for them.
    pub(crate) connections: TaskTracker,
}

/// The router.
pub(crate) fn router(app: AppState) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .route("/v1/docs/{doc}/snapshot", get(snapshot))
        .with_state(app)
}

async fn ws(
    State(app): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limits = &app.relay.limits;
    let admitted = app.admission.admit(
        addr.ip(),
        limits.max_connections,
        limits.max_connections_per_ip,
    );
    // The WebSocket layer reads messages up to 1 MiB past the frame limit,
    // so a frame just over it still gets a `FrameTooLarge` error frame;
    // anything larger is not read at all and the connection just closes.
    let max = limits.wire.max_frame_bytes as usize + (1 << 20);
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            app.connections.track_future(connection::serve(
                app.relay.clone(),
                socket,
                admitted,
                app.shutdown.clone(),
            ))
        })
}

async fn healthz(State(app): State<AppState>) -> Response {
    if *app.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn prometheus(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
        .into_response()
}

async fn snapshot(
    State(app): State<AppState>,
    Path(doc): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(doc) = DocId::new(doc) else {
        return (StatusCode::BAD_REQUEST, "invalid document id\n").into_response();
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match app.relay.auth.verify(token) {
        Ok(grant) if grant.may_read(doc.as_str()) => {}
        Ok(_) => return (StatusCode::FORBIDDEN, "no access to this document\n").into_response(),
        Err(e) => return (StatusCode::UNAUTHORIZED, format!("{}\n", e.message)).into_response(),
    }
    let (reply, answer) = oneshot::channel();
    let relay = &app.relay;
    if relay
        .hub
        .send(relay, &doc, DocCmd::Snapshot { reply })
        .await
        .is_none()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match answer.await {
        Ok(Ok(bytes)) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Bytes::from(bytes),
        )
            .into_response(),
        Ok(Err(ErrorCode::DocUnavailable)) | Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "document unavailable\n").into_response()
        }
        Ok(Err(code)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}\n", code.name()),
        )
            .into_response(),
    }
}
