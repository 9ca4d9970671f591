//! A fault-injecting TCP proxy for the client tests: sits between clients
//! and a relay on 127.0.0.1 and can delay traffic, cut connections (also in
//! the middle of a WebSocket frame) and partition its clients.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use weft_tests::proxy::Proxy;
//! // An echo server standing in for the relay.
//! let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let target = upstream.local_addr().unwrap();
//! tokio::spawn(async move {
//!     let (mut s, _) = upstream.accept().await.unwrap();
//!     let mut buf = [0u8; 5];
//!     s.read_exact(&mut buf).await.unwrap();
//!     s.write_all(&buf).await.unwrap();
//! });
//! let proxy = Proxy::start(target).await.unwrap();
//! proxy.set_delay(Duration::from_millis(5));
//! let mut c = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
//! c.write_all(b"hello").await.unwrap();
//! let mut back = [0u8; 5];
//! c.read_exact(&mut back).await.unwrap();
//! assert_eq!(&back, b"hello");
//! assert_eq!(proxy.bytes_up(), 5);
//! # });
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug)]
struct Control {
    delay: Mutex<Duration>,
    partitioned: AtomicBool,
    /// Bumped to cut every open connection.
    cuts: watch::Sender<u64>,
    /// Cut each new connection after this many relay→client bytes (0: never).
    cut_after: AtomicUsize,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    connections: AtomicU64,
}

/// A TCP proxy on `127.0.0.1:0` in front of `upstream`; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    control: Arc<Control>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Binds `127.0.0.1:0` and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control {
            delay: Mutex::new(Duration::ZERO),
            partitioned: AtomicBool::new(false),
            cuts: watch::Sender::new(0),
            cut_after: AtomicUsize::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let ctl = control.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if ctl.partitioned.load(Ordering::SeqCst) {
                    drop(client); // refused: the client sees a reset/EOF
                    continue;
                }
                ctl.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(client, upstream, ctl.clone()));
            }
        });
        Ok(Proxy {
            addr,
            control,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relay's WebSocket URL through this proxy.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Delays every forwarded chunk, both directions, by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        *self.control.delay.lock().unwrap_or_else(|e| e.into_inner()) = delay;
    }

    /// Cuts every open connection now.
    pub fn cut_all(&self) {
        self.control.cuts.send_modify(|n| *n += 1);
    }

    /// Cuts each connection opened from now on once it has forwarded
    /// `bytes` relay→client bytes — usually in the middle of a frame
    /// (`None`: stop doing so).
    pub fn cut_after(&self, bytes: Option<usize>) {
        self.control
            .cut_after
            .store(bytes.unwrap_or(0), Ordering::SeqCst);
    }

    /// Partitions the clients behind this proxy: cuts open connections and
    /// refuses new ones until `partition(false)`.
    pub fn partition(&self, on: bool) {
        self.control.partitioned.store(on, Ordering::SeqCst);
        if on {
            self.cut_all();
        }
    }

    /// Client→relay bytes forwarded so far.
    pub fn bytes_up(&self) -> u64 {
        self.control.bytes_up.load(Ordering::SeqCst)
    }

    /// Relay→client bytes forwarded so far.
    pub fn bytes_down(&self) -> u64 {
        self.control.bytes_down.load(Ordering::SeqCst)
    }

    /// Connections accepted (not refused) so far.
    pub fn connections(&self) -> u64 {
        self.control.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_all();
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, ctl: Arc<Control>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let budget = match ctl.cut_after.load(Ordering::SeqCst) {
        0 => usize::MAX,
        n => n,
    };
    let mut cuts = ctl.cuts.subscribe();
    cuts.borrow_and_update();
    let up = pump(cr, sw, ctl.clone(), usize::MAX, true);
    let down = pump(sr, cw, ctl.clone(), budget, false);
    // Whichever ends first (EOF, error, budget, cut) ends both directions.
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cuts.changed() => {}
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    ctl: Arc<Control>,
    mut budget: usize,
    upward: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = *ctl.delay.lock().unwrap_or_else(|e| e.into_inner());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let take = n.min(budget);
        if to.write_all(&buf[..take]).await.is_err() {
            return;
        }
        let counter = if upward {
            &ctl.bytes_up
        } else {
            &ctl.bytes_down
        };
        counter.fetch_add(take as u64, Ordering::SeqCst);
        budget -= take;
        if budget == 0 {
            return; // cut, possibly mid-frame
        }
    }
}
