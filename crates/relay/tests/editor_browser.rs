//! The editor the relay serves at `/`, end to end: Debian's chromium
//! (driven by npm `playwright-core`, `web/editor/e2e.mjs`) opens two pages on
//! one document through the real `weft-relay` binary; both must show the
//! same text and each other's cursor. A screenshot is kept under the
//! target directory (`tmp/editor-e2e.png`). Also checks that the embedded
//! bundle is what the lockfile builds.
//!
//! Needs `web/editor/node_modules` and `/usr/bin/chromium`: run
//! `.ci/install-node-deps.sh` once (CI does). Without them this test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn editor_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/editor")
}

fn need_installed(dir: &Path) {
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("node_modules/esbuild").is_dir(),
        "web/editor/node_modules is missing: run `.ci/install-node-deps.sh`"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run `.ci/install-node-deps.sh` (installs Debian's chromium)"
    );
}

fn run_bounded(mut cmd: Command, what: &str, limit: Duration) {
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{what} failed: {status}");
            return;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} ran over {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_embedded_bundle_is_what_the_lockfile_builds() {
    let dir = editor_dir();
    need_installed(&dir);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("editor-rebuilt.js");
    let mut cmd = Command::new("npm");
    cmd.args([
        "run",
        "--silent",
        "build",
        "--",
        &format!("--outfile={}", out.display()),
    ])
    .current_dir(&dir);
    run_bounded(cmd, "npm run build", Duration::from_secs(60));
    let rebuilt = std::fs::read(&out).expect("rebuilt bundle");
    let shipped = std::fs::read(dir.join("dist/editor.js")).expect("dist/editor.js");
    assert!(
        rebuilt == shipped,
        "web/editor/dist/editor.js differs from what `npm run build` makes: rebuild and commit it"
    );
}

#[test]
fn two_browser_pages_edit_one_document_and_see_each_others_cursor() {
    let dir = editor_dir();
    need_installed(&dir);
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("editor-e2e.png");
    let _ = std::fs::remove_file(&shot);
    let mut cmd = Command::new("node");
    cmd.arg("e2e.mjs")
        .current_dir(&dir)
        .env("WEFT_RELAY_BIN", env!("CARGO_BIN_EXE_weft-relay"))
        .env("WEFT_SCREENSHOT", &shot);
    run_bounded(cmd, "the browser test", Duration::from_secs(90));
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "a real screenshot"
    );
}
