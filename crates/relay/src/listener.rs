//! The public listening socket, guarded before any byte is read.
//!
//! [`GuardedListener`] is the [`axum::serve::Listener`] the public router is
//! served on. At accept it counts the socket against its IP address
//! (`max_connections_per_ip`) and against the sockets not yet upgraded to a
//! WebSocket (`max_pending_connections`); a socket over either limit is
//! closed at once. Each accepted socket is a [`GuardedStream`]: until the
//! `/ws` handler marks it upgraded (through the [`Peer`] it gets as
//! `ConnectInfo`), its reads and writes fail once `upgrade_timeout` has
//! passed since accept, so plain TCP, a half-sent request or an idle
//! keep-alive connection cannot hold a file descriptor for long. After the
//! upgrade it is a plain pass-through; the WebSocket layer has its own
//! deadlines (`ws.rs`, `connection.rs`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tracing::{debug, warn};

use crate::admission::{Admission, SocketPermit};
use crate::metrics;

/// The public listener: admission at accept, upgrade deadline per socket.
#[derive(Debug)]
pub(crate) struct GuardedListener {
    listener: TcpListener,
    admission: Arc<Admission>,
    upgrade_timeout: Duration,
}

impl GuardedListener {
    pub(crate) fn new(
        listener: TcpListener,
        admission: Arc<Admission>,
        upgrade_timeout: Duration,
    ) -> GuardedListener {
        GuardedListener {
            listener,
            admission,
            upgrade_timeout,
        }
    }
}

/// Who is connected: the remote address, and the socket's admission
/// permit (handlers get it as `ConnectInfo<Peer>`).
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    permit: Option<Arc<SocketPermit>>,
}

impl Peer {
    /// The socket was upgraded to a WebSocket: the upgrade deadline no
    /// longer applies, and it no longer counts as pending.
    pub(crate) fn upgraded(&self) {
        if let Some(p) = &self.permit {
            p.upgraded();
        }
    }
}

impl Connected<IncomingStream<'_, GuardedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Peer {
        stream.remote_addr().clone()
    }
}

impl Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (GuardedStream, Peer) {
        loop {
            let (tcp, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            };
            match self.admission.accept(addr.ip()) {
                Ok(permit) => {
                    // Frames are small and latency-bound: no Nagle delay.
                    let _ = tcp.set_nodelay(true);
                    let permit = Arc::new(permit);
                    let stream = GuardedStream {
                        tcp,
                        permit: permit.clone(),
                        deadline: Some(Box::pin(tokio::time::sleep(self.upgrade_timeout))),
                        timed_out: false,
                    };
                    let peer = Peer {
                        addr,
                        permit: Some(permit),
                    };
                    return (stream, peer);
                }
                Err(refusal) => {
                    debug!(%addr, reason = refusal.label(), "socket refused at accept");
                    metrics::connection_refused(refusal.label());
                    drop(tcp);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        Ok(Peer {
            addr: self.listener.local_addr()?,
            permit: None,
        })
    }
}

/// Errors of one connection (it was reset before we accepted it) are
/// skipped; others (out of file descriptors) are logged and accepting
/// pauses briefly, so a full fd table does not become a busy loop.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// An accepted socket: holds its admission permit; before the upgrade its
/// I/O fails after the upgrade deadline.
#[derive(Debug)]
pub(crate) struct GuardedStream {
    tcp: TcpStream,
    permit: Arc<SocketPermit>,
    /// The upgrade deadline, dropped once the socket is upgraded.
    deadline: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl GuardedStream {
    /// Fails once the upgrade deadline passed on a socket not upgraded
    /// (and registers `cx` to be woken when it passes).
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = &mut self.deadline else {
            return Ok(());
        };
        if !self.permit.is_pending() {
            self.deadline = None;
            return Ok(());
        }
        if deadline.as_mut().poll(cx).is_ready() {
            if !self.timed_out {
                self.timed_out = true;
                metrics::upgrade_timeout();
            }
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "not upgraded to a WebSocket in time",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Binds `addr` with a listen backlog of `backlog` (tokio's
/// `TcpListener::bind` uses 128, which drops SYNs under a connection
/// burst; the kernel also caps it at `net.core.somaxconn`).
pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog.max(1))
}
