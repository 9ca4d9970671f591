//! One relay per SQLite `--data` directory: a second relay on the same
//! directory refuses to start with a clear error, and a lock left by a
//! relay killed with SIGKILL never blocks the next start.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::listening;

fn spawn(data: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .args(["--listen", "127.0.0.1:0", "--insecure-no-auth", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weft-relay")
}

/// Waits (bounded) for a relay that must refuse to start; its stderr.
fn refused(mut child: Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second relay did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(!status.success(), "the second relay must fail: {err}");
    err
}

#[test]
fn a_second_relay_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = spawn(dir.path());
    let addr = listening(&mut first);

    let err = refused(spawn(dir.path()));
    assert!(
        err.contains("is in use by another weft-relay"),
        "clear error expected, got: {err}"
    );
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "the error names the holder: {err}"
    );
    // The first relay is unaffected.
    assert!(std::net::TcpStream::connect(addr).is_ok());

    // SIGKILL leaves no lock behind: the next relay starts at once.
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    let mut next = spawn(dir.path());
    let again = listening(&mut next);
    assert!(std::net::TcpStream::connect(again).is_ok());
    // A different directory is never blocked by this one.
    let other = tempfile::tempdir().unwrap();
    let mut beside = spawn(other.path());
    let _ = listening(&mut beside);
    for mut c in [next, beside] {
        c.kill().expect("kill");
        c.wait().expect("reap");
    }
}
