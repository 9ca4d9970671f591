//! The relay under test: spawned on a fresh data directory, or a running one; its CPU and memory from /proc.

use super::*;

#[derive(Debug)]
pub(crate) enum Relay {
    External {
        addr: SocketAddr,
        pid: Option<u32>,
    },
    Spawned {
        addr: SocketAddr,
        child: Child,
        data: PathBuf,
        keep: bool,
    },
}

impl Relay {
    pub(crate) fn spawn(bin: Option<&Path>, extra: &[String], keep: bool) -> Res<Relay> {
        let bin = match bin {
            Some(b) => b.to_path_buf(),
            None => std::env::current_exe()?
                .parent()
                .ok_or("current_exe has no parent")?
                .join("weft-relay"),
        };
        let data = std::env::temp_dir().join(format!("weft-load-{}", run_id()));
        std::fs::create_dir_all(&data)?;
        let log = std::fs::File::create(data.join("relay-stderr.log"))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--data")
            .arg(data.join("db"))
            .arg("--insecure-no-auth")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Drain the rest so the relay never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(data.join("relay-stderr.log")).unwrap_or_default();
                return Err(format!(
                    "relay did not print its address ({other:?}); stderr:\n{}",
                    tail(&log, 40)
                )
                .into());
            }
        };
        let addr: SocketAddr = first
            .strip_prefix("weft-relay listening on ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| format!("unexpected first line from the relay: {first:?}"))?;
        if !addr.ip().is_loopback() {
            let _ = child.kill();
            return Err(format!("relay listens on non-loopback {addr}").into());
        }
        eprintln!(
            "# spawned {} (pid {}) on {addr}, data {}",
            bin.display(),
            child.id(),
            data.display()
        );
        Ok(Relay::Spawned {
            addr,
            child,
            data,
            keep,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        match self {
            Relay::External { addr, .. } | Relay::Spawned { addr, .. } => *addr,
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        match self {
            Relay::External { pid, .. } => *pid,
            Relay::Spawned { child, .. } => Some(child.id()),
        }
    }

    pub(crate) fn cpu(&self) -> Option<Duration> {
        self.pid().and_then(|p| proc_cpu(&p.to_string()))
    }

    pub(crate) fn rss(&self) -> Option<u64> {
        self.pid().and_then(|p| proc_rss(&p.to_string()))
    }

    /// SIGTERM, up to 10 s for a graceful exit, then SIGKILL.
    pub(crate) fn stop(&mut self, failed: bool) {
        let Relay::Spawned {
            child, data, keep, ..
        } = self
        else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("# relay exited with {status}");
                    }
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    eprintln!("# relay did not stop within 10 s of SIGTERM: killed");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        let log = std::fs::read_to_string(data.join("relay-stderr.log")).unwrap_or_default();
        if failed && !log.is_empty() {
            eprintln!("# relay stderr (tail):\n{}", tail(&log, 30));
        }
        if *keep || failed {
            eprintln!("# relay data kept in {}", data.display());
        } else {
            let _ = std::fs::remove_dir_all(&*data);
        }
    }
}

pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// utime + stime of a process (`/proc/PID/stat`), or of this one (`self`).
pub(crate) fn proc_cpu(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clk_tck() as f64))
}

pub(crate) fn clk_tck() -> u64 {
    static TCK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// Resident set size in bytes (`VmRSS` of `/proc/PID/status`).
pub(crate) fn proc_rss(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
