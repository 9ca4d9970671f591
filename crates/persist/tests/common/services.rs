//! Real PostgreSQL and Redis servers for tests, started by the test process
//! itself on free loopback ports in temporary directories (never mocks,
//! never skipped). `.ci/install-services.sh` installs the binaries.
//!
//! * `WEFT_TEST_POSTGRES_URL` (a superuser URL without a database name
//!   part, e.g. `postgres://me@127.0.0.1:5432`) uses that server instead.
//! * Postgres refuses to run as root: as root it runs as the `postgres`
//!   user (`runuser`), with its directory handed to that user.
//! * A watcher shell stops every server once the test process is gone
//!   (however it ends) and removes its directory, so nothing leaks.
//!
//! Shared by weft-persist's and weft-relay's tests (`#[path]`).
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run .ci/install-services.sh")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("no /usr/lib/postgresql/*/bin/postgres: run .ci/install-services.sh")
}

/// Runs `cmd` as the unprivileged `postgres` user when we are root.
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Starts a watcher that runs `stop` once process `pid` is gone.
fn watch(pid: u32, stop: &str) {
    let script = format!("while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop}");
    let watcher = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watcher");
    // It outlives this process on purpose (it cleans up after it).
    std::mem::forget(watcher);
}

fn wait_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A Postgres server this process started (or was given).
#[derive(Debug)]
pub struct Postgres {
    /// Base URL, no database.
    base: String,
    port: u16,
    dir: Option<PathBuf>,
    bin: Option<PathBuf>,
}

static PG: OnceLock<Postgres> = OnceLock::new();
static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// The shared server of this test process, started on first use.
    pub fn shared() -> &'static Postgres {
        PG.get_or_init(Postgres::start)
    }

    /// A server of its own (for tests that restart it).
    pub fn start() -> Postgres {
        if let Ok(url) = std::env::var("WEFT_TEST_POSTGRES_URL") {
            let port = url
                .rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches('/').parse().ok())
                .unwrap_or(5432);
            return Postgres {
                base: url.trim_end_matches('/').to_owned(),
                port,
                dir: None,
                bin: None,
            };
        }
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("weft-pg-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown the Postgres directory");
        }
        let out = as_pg_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "weft", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            base: String::new(),
            port: 0,
            dir: Some(dir.clone()),
            bin: Some(bin),
        };
        pg.launch();
        watch(
            std::process::id(),
            &format!(
                "{ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
                ctl = if is_root() {
                    format!(
                        "runuser -u postgres -- {}",
                        pg.bin
                            .as_ref()
                            .map(|b| b.join("pg_ctl"))
                            .unwrap_or_default()
                            .display()
                    )
                } else {
                    pg.bin
                        .as_ref()
                        .map(|b| b.join("pg_ctl"))
                        .unwrap_or_default()
                        .display()
                        .to_string()
                },
                data = data.display(),
                dir = dir.display(),
            ),
        );
        pg
    }

    /// Starts the server on a fresh free port (first start or after `stop`
    /// when `same_port` is false).
    fn launch(&mut self) {
        let (Some(dir), Some(bin)) = (&self.dir, &self.bin) else {
            return;
        };
        let data = dir.join("data");
        if self.port == 0 {
            self.port = free_port();
        }
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200 -c shared_buffers=32MB",
            self.port,
            dir.display()
        );
        let out = as_pg_user(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.join("log"))
            .args(["-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        assert!(wait_port(self.port, Duration::from_secs(20)), "postgres up");
        self.base = format!("postgres://weft@127.0.0.1:{}", self.port);
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        let (Some(dir), Some(bin)) = (&self.dir, &self.bin) else {
            panic!("cannot stop a server given by WEFT_TEST_POSTGRES_URL");
        };
        let out = as_pg_user(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl stop");
        assert!(out.status.success(), "pg_ctl stop failed");
    }

    /// Starts it again on the same port after [`Postgres::stop`].
    pub fn restart(&mut self) {
        self.launch();
    }

    /// A fresh, empty database; its URL.
    pub fn new_database(&self) -> String {
        let name = format!(
            "weft_{}_{}",
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let psql = self.bin.clone().unwrap_or_else(pg_bin).join("psql");
        let out = Command::new(psql)
            .arg(format!("{}/postgres", self.base))
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "CREATE DATABASE failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{}/{name}", self.base)
    }

    /// Runs one SQL statement on `url` with psql; its output (unaligned).
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let psql = self.bin.clone().unwrap_or_else(pg_bin).join("psql");
        let out = Command::new(psql)
            .arg(url)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A Redis server this process started.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    dir: PathBuf,
    pid: Option<u32>,
}

impl Redis {
    /// Starts `redis-server` on a free loopback port (no persistence: a
    /// restart loses everything, the worst case for the bus).
    pub fn start() -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("weft-redis-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let mut r = Redis {
            port: free_port(),
            dir,
            pid: None,
        };
        r.launch();
        r
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: run .ci/install-services.sh");
        let pid = child.id();
        self.pid = Some(pid);
        watch(
            std::process::id(),
            &format!("kill -9 {pid} 2>/dev/null; rm -rf {}", self.dir.display()),
        );
        assert!(wait_port(self.port, Duration::from_secs(10)), "redis up");
        // Reaped by the watcher's kill or by `kill`; the handle is dropped.
        std::mem::forget(child);
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server (everything in it is lost).
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.launch();
    }
}
