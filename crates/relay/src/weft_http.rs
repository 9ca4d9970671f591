//! `POST /v1/docs/{doc}/updates`: server-side code writes a weft document
//! over HTTP, with the same checks, durability and fan-out as an `Update`
//! frame (`docs/protocol.md` §8.1).
//!
//! The body is one encoded update (`Doc::transact` / `Doc::diff` bytes). It
//! is decoded and checked once (`weft_core::Update::decode` under the
//! relay's update limits, on the blocking pool), then handed to the
//! document task as an update of a one-shot peer; the response waits for
//! that task's answer: `204` once the update is durable (and sent to the
//! subscribers), otherwise the protocol's error code as `X-Weft-Error` with
//! a status: `400` malformed/refused, `403` read-only or no access, `409`
//! missing dependencies, a replica owned by another subject or an id that
//! is a Yjs document, `413` too large, `503` unavailable, `504` no answer
//! within 30 s (an update waiting for dependencies the relay never gets).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use weft_core::Update;
use weft_protocol::{DocId, ErrorCode, Frame, PeerId};

use crate::doc_cmd::{update_limits, DocCmd, UpdateCmd};
use crate::doc_kind;
use crate::outbound;
use crate::state::AppState;

/// Peer ids of HTTP writers count down from the top, far from the ids
/// connections count up from.
static NEXT_HTTP_PEER: AtomicU64 = AtomicU64::new(u64::MAX);
/// How long the request waits for the document's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn refused(status: StatusCode, code: Option<ErrorCode>, message: &str) -> Response {
    let mut r = (status, format!("{message}\n")).into_response();
    if let Some(code) = code {
        if let Ok(v) = HeaderValue::from_str(code.name()) {
            r.headers_mut().insert("x-weft-error", v);
        }
    }
    r
}

pub(crate) async fn post_update(
    State(app): State<AppState>,
    Path(doc): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(doc) = DocId::new(doc) else {
        return refused(
            StatusCode::BAD_REQUEST,
            Some(ErrorCode::InvalidDocId),
            "invalid document id",
        );
    };
    let relay = app.relay;
    let grant = match relay.auth.verify(bearer(&headers)) {
        Ok(g) => g,
        Err(e) => return refused(StatusCode::UNAUTHORIZED, Some(e.code), &e.message),
    };
    if !grant.may_read(doc.as_str()) {
        return refused(
            StatusCode::FORBIDDEN,
            Some(ErrorCode::Forbidden),
            "no access to this document",
        );
    }
    if !grant.may_write(doc.as_str()) {
        return refused(
            StatusCode::FORBIDDEN,
            Some(ErrorCode::ReadOnly),
            "read-only token",
        );
    }
    let limits = update_limits(&relay.limits);
    let bytes = body.to_vec();
    let decoded = relay
        .heavy
        .run(move || Update::decode(bytes, &limits))
        .await;
    let update = match decoded {
        Some(Ok(u)) => u,
        Some(Err(e)) => {
            return refused(
                StatusCode::BAD_REQUEST,
                Some(ErrorCode::UpdateRejected),
                &e.to_string(),
            )
        }
        None => return refused(StatusCode::SERVICE_UNAVAILABLE, None, "decode task failed"),
    };
    // One id, one kind: say so clearly (the document task would only
    // answer `DocUnavailable`).
    let store = relay.store.clone();
    let rooms = relay.yjs.clone();
    let key = doc.as_str().to_owned();
    match tokio::task::spawn_blocking(move || doc_kind::check_weft_open(&*store, &*rooms, &key))
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            return refused(
                StatusCode::CONFLICT,
                Some(ErrorCode::DocUnavailable),
                &reason,
            )
        }
        Err(_) => return refused(StatusCode::SERVICE_UNAVAILABLE, None, "store unavailable"),
    }
    // The document task takes updates from subscribers only: subscribe
    // this one-shot peer at the update's own `to` version, so the catch-up
    // it is sent (and skips) is only what the writer did not build on.
    let (out, mut rx) = outbound::channel(64, 16 << 20, relay.meters.clone());
    let peer = PeerId(NEXT_HTTP_PEER.fetch_sub(1, Ordering::Relaxed));
    let (reply, subscribed) = oneshot::channel();
    let subscribe = DocCmd::Subscribe {
        peer,
        version: update.to().clone(),
        out: out.clone(),
        reply,
    };
    if relay.hub.send(&doc, subscribe).await.is_none() {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(ErrorCode::DocUnavailable),
            "document unavailable",
        );
    }
    match subscribed.await {
        Ok(Ok(())) => {}
        Ok(Err(code)) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(code),
                "document unavailable",
            )
        }
        Err(_) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(ErrorCode::DocUnavailable),
                "document unavailable",
            )
        }
    }
    let cmd = DocCmd::Update(Box::new(UpdateCmd {
        peer,
        subject: grant.subject.as_str().into(),
        seq: 1,
        update: Ok(update),
        out,
        received: Instant::now(),
    }));
    let frame = if relay.hub.send(&doc, cmd).await.is_none() {
        None
    } else {
        let deadline = tokio::time::Instant::now() + ANSWER_WAIT;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(bytes)) => match Frame::decode(&bytes, &relay.limits.wire) {
                    Ok(f @ (Frame::Ack { seq: 1, .. } | Frame::Error { .. })) => break Some(f),
                    // The catch-up, presence and other writers' updates.
                    Ok(_) => continue,
                    Err(_) => break None,
                },
                Ok(None) => break None,
                Err(_) => {
                    relay.hub.send_if_loaded(&doc, DocCmd::Leave { peer }).await;
                    return refused(
                        StatusCode::GATEWAY_TIMEOUT,
                        None,
                        "the document did not answer in time",
                    );
                }
            }
        }
    };
    // This peer is gone (an update still waiting for its dependencies is
    // dropped with it).
    relay.hub.send_if_loaded(&doc, DocCmd::Leave { peer }).await;
    match frame {
        Some(Frame::Ack { .. }) => StatusCode::NO_CONTENT.into_response(),
        Some(Frame::Error { code, message, .. }) => {
            let status = match code {
                ErrorCode::ReadOnly | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                ErrorCode::MissingDependencies
                | ErrorCode::ReplicaNotOwned
                | ErrorCode::ConflictingTransaction => StatusCode::CONFLICT,
                ErrorCode::UpdateTooLarge | ErrorCode::DocTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::DocUnavailable
                | ErrorCode::StoreUnavailable
                | ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            refused(status, Some(code), &message)
        }
        _ => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "no answer from the document",
        ),
    }
}
