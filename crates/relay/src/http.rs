//! The HTTP side: the WebSocket endpoint and the operational endpoints.
//!
//! | route | what |
//! |---|---|
//! | `GET /ws` | WebSocket upgrade; then the protocol of `docs/protocol.md` §7 |
//! | `GET /healthz` | `200 ok` while serving, `503` once shutting down |
//! | `GET /metrics` | Prometheus text format; with a metrics token, only for `Authorization: Bearer <token>`; with a metrics address, served there and not on the public one |
//! | `POST /v1/docs/{doc}/updates` | apply one encoded update like an `Update` frame (`weft_http.rs`); `204` once durable |
//! | `GET /v1/docs/{doc}/snapshot` | the document's current snapshot (`Doc::save` bytes) for backups; needs a token with read access to `doc` (`Authorization: Bearer …`) unless auth is off; `404` for a document the store does not hold |
//!
//! The public router is served on [`crate::listener::GuardedListener`]:
//! every socket is admitted at accept and must be upgraded within
//! `upgrade_timeout` (plain HTTP requests answered within it).

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;
use weft_protocol::{DocId, ErrorCode};

use crate::connection;
use crate::doc_cmd::DocCmd;
use crate::listener::Peer;
use crate::state::AppState;
use crate::ws::{self, WatchLimits};

/// The public router (`/metrics` only when `with_metrics`).
pub(crate) fn router(app: AppState, with_metrics: bool) -> Router {
    let mut router = Router::new()
        .route("/ws", get(ws))
        .route("/healthz", get(healthz))
        .route("/v1/docs/{doc}/snapshot", get(snapshot))
        .route(
            "/v1/docs/{doc}/updates",
            axum::routing::post(crate::weft_http::post_update).layer(
                axum::extract::DefaultBodyLimit::max(
                    app.relay.limits.wire.max_update_bytes as usize,
                ),
            ),
        )
        .merge(crate::yjs::routes(
            app.relay.limits.wire.max_update_bytes as usize,
        ));
    if with_metrics {
        router = router.route("/metrics", get(prometheus));
    }
    router.with_state(app)
}

/// The operator's router, for a separate metrics address.
pub(crate) fn metrics_router(app: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .with_state(app)
}

async fn ws(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    mut req: Request,
) -> Response {
    let (response, on_upgrade) = match ws::handshake(&mut req) {
        Ok(upgrade) => upgrade,
        Err(refused) => return refused.into_response(),
    };
    let limits = &app.relay.limits;
    let admitted = app.admission.admit(limits.max_connections);
    let config = ws::codec_config(limits);
    let watch_limits = WatchLimits::new(limits);
    let AppState {
        relay,
        shutdown,
        connections,
        ..
    } = app;
    ws::serve_upgraded(
        &connections,
        peer,
        on_upgrade,
        watch_limits,
        config,
        move |socket, verdict| connection::serve(relay, socket, verdict, admitted, shutdown),
    );
    response
}

async fn healthz(State(app): State<AppState>) -> Response {
    if *app.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn prometheus(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &app.metrics_token {
        if !bearer(&headers).is_some_and(|t| same(t.as_bytes(), expected.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a metrics token is required\n",
            )
                .into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
        .into_response()
}

/// The `Authorization: Bearer …` token.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Compares secrets in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn snapshot(
    State(app): State<AppState>,
    Path(doc): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(doc) = DocId::new(doc) else {
        return (StatusCode::BAD_REQUEST, "invalid document id\n").into_response();
    };
    match app.relay.auth.verify(bearer(&headers)) {
        Ok(grant) if grant.may_read(doc.as_str()) => {}
        Ok(_) => return (StatusCode::FORBIDDEN, "no access to this document\n").into_response(),
        Err(e) => return (StatusCode::UNAUTHORIZED, format!("{}\n", e.message)).into_response(),
    }
    let relay = &app.relay;
    // Asking the document task would create an empty document: check the
    // store first (a document exists once an update was stored).
    let store = relay.store.clone();
    let key = doc.as_str().to_owned();
    match tokio::task::spawn_blocking(move || store.stats(&key)).await {
        Ok(Ok(Some(_))) => {}
        Ok(Ok(None)) => return (StatusCode::NOT_FOUND, "no such document\n").into_response(),
        Ok(Err(_)) | Err(_) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
    let (reply, answer) = oneshot::channel();
    if relay
        .hub
        .send(&doc, DocCmd::Snapshot { reply })
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
