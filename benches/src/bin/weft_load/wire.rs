//! Protocol plumbing: connect, handshake, send and receive frames, subscribe.

use super::*;

/// Small buffers: 10,000 connections must stay cheap on this side too.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
}

pub(crate) fn client_limits() -> Limits {
    Limits {
        max_frame_bytes: 64 << 20,
        max_update_bytes: 64 << 20,
        ..Limits::default()
    }
}

pub(crate) async fn send(ws: &mut Ws, frame: &Frame) -> Res<usize> {
    let bytes = frame.encode();
    let n = bytes.len();
    ws.send(Message::Binary(bytes.into())).await?;
    Ok(n)
}

/// The next protocol frame and its encoded size; `None` when the socket
/// closed.
pub(crate) async fn recv(ws: &mut Ws) -> Res<Option<(Frame, usize)>> {
    loop {
        match ws.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Binary(b))) => {
                let frame = Frame::decode(&b, &client_limits())
                    .map_err(|e| format!("undecodable frame from the relay: {e}"))?;
                return Ok(Some((frame, b.len())));
            }
            Some(Ok(Message::Close(c))) => {
                return Err(format!("relay closed the connection: {c:?}").into())
            }
            Some(Ok(Message::Text(_))) => return Err("text message from the relay".into()),
            Some(Ok(_)) => continue, // WebSocket ping/pong: handled by tungstenite
        }
    }
}

/// Connects, says Hello (no token), waits for Welcome.
pub(crate) async fn connect(addr: SocketAddr) -> Res<(Ws, Limits)> {
    let url = format!("ws://{addr}/ws");
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true).await?;
    send(
        &mut ws,
        &Frame::hello(
            Some(format!("weft-load/{}", env!("CARGO_PKG_VERSION"))),
            None,
        ),
    )
    .await?;
    match recv(&mut ws).await? {
        Some((Frame::Welcome { limits, .. }, _)) => Ok((ws, limits)),
        Some((Frame::Error { code, message, .. }, _)) => {
            Err(format!("refused: {} ({}) {message}", code.name(), code.code()).into())
        }
        Some((other, _)) => Err(format!("expected Welcome, got {}", other.name()).into()),
        None => Err("closed before Welcome".into()),
    }
}

/// Subscribes with `version` and waits for the document's `Synced`,
/// answering pings and skipping anything else. Returns the `Synced` update
/// and the frame's encoded size.
pub(crate) async fn subscribe(
    ws: &mut Ws,
    doc: &DocId,
    version: &VersionVector,
) -> Res<(Vec<u8>, usize)> {
    send(
        ws,
        &Frame::Subscribe {
            doc: doc.clone(),
            version: version.clone(),
        },
    )
    .await?;
    loop {
        match recv(ws).await? {
            Some((Frame::Synced { doc: d, update, .. }, n)) if &d == doc => return Ok((update, n)),
            Some((Frame::Ping { nonce }, _)) => {
                send(ws, &Frame::Pong { nonce }).await?;
            }
            Some((Frame::Error { code, message, .. }, _)) => {
                return Err(format!(
                    "subscribe refused: {} ({}) {message}",
                    code.name(),
                    code.code()
                )
                .into())
            }
            Some(_) => continue,
            None => return Err("closed before Synced".into()),
        }
    }
}

/// The `from` and `to` version vectors at the head of an encoded document
/// update (`docs/protocol.md` §4), without decoding the rest.
pub(crate) fn update_range(update: &[u8]) -> Option<(VersionVector, VersionVector)> {
    weft_core::Update::peek_versions(update)
}
