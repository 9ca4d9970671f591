//! Two `weft-edit` processes in tmux, one relay (issue #14): keys typed
//! into each with `tmux send-keys` reach the other; both screens converge
//! on the same text (polled with `tmux capture-pane`, bounded); each shows
//! the other user (presence) and its sync status; quitting leaves the text
//! in each editor's SQLite store; an editor whose relay is unreachable
//! says offline and still edits. tmux is installed by `.ci/install-tmux.sh`;
//! without it this test fails rather than skips.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use weft_relay::{Relay, RelayConfig};

/// Bound on every wait for a screen.
const WAIT: Duration = Duration::from_secs(60);

/// A private tmux server (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        let socket = format!("weft-edit-test-{}", std::process::id());
        Tmux { socket }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (installed by .ci/install-tmux.sh)")
    }

    /// Starts `command` in a detached 80×12 session `name`.
    fn start(&self, name: &str, command: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "80",
            "-y",
            "12",
            "-e",
            "TERM=xterm-256color",
            command,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
    }

    /// Types `text` literally.
    fn type_text(&self, name: &str, text: &str) {
        let out = self.run(&["send-keys", "-t", name, "-l", text]);
        assert!(out.status.success(), "send-keys: {out:?}");
    }

    /// Presses a key by tmux name (`Enter`, `C-q`, ...).
    fn press(&self, name: &str, key: &str) {
        let out = self.run(&["send-keys", "-t", name, key]);
        assert!(out.status.success(), "send-keys: {out:?}");
    }

    /// The screen as text (`escapes`: with colour escape sequences).
    fn screen(&self, name: &str, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", name];
        if escapes {
            args.push("-e");
        }
        let out = self.run(&args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn alive(&self, name: &str) -> bool {
        self.run(&["has-session", "-t", name]).status.success()
    }

    /// Polls `name`'s screen until `done` holds; panics with the screen
    /// after [`WAIT`].
    fn wait_for(&self, name: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen(name, false);
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The text rows of an editor screen (all but the status and help rows),
/// trailing spaces dropped.
fn text_rows(screen: &str) -> Vec<String> {
    let rows: Vec<&str> = screen.lines().collect();
    let body = rows.len().saturating_sub(2);
    rows[..body]
        .iter()
        .map(|r| r.trim_end().to_owned())
        .collect()
}

fn status_row(screen: &str) -> String {
    let rows: Vec<&str> = screen.lines().collect();
    rows.get(rows.len().saturating_sub(2))
        .map(|r| r.to_string())
        .unwrap_or_default()
}

fn editor(data: &Path, relay: &str, name: &str) -> String {
    format!(
        "{} notes --relay {relay} --data {} --name {name}",
        env!("CARGO_BIN_EXE_weft-edit"),
        data.display()
    )
}

fn stored_text(data: &Path) -> String {
    let client = weft_client::Client::open_sqlite(data.join("weft-edit.db")).expect("store");
    let doc = client.replica("notes").expect("doc");
    doc.read(|d| d.text("body").map(|t| t.to_string()).unwrap_or_default())
}

#[test]
fn two_editors_in_tmux_converge_through_a_relay_and_undo_reaches_the_other() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let relay = runtime
        .block_on(Relay::start(RelayConfig::insecure_local()))
        .expect("relay");
    let url = format!("ws://{}/ws", relay.local_addr());
    let ann_data = tempfile::tempdir().unwrap();
    let bo_data = tempfile::tempdir().unwrap();
    let tmux = Tmux::new();
    tmux.start("ann", &editor(ann_data.path(), &url, "ann"));
    tmux.start("bo", &editor(bo_data.path(), &url, "bo"));
    for name in ["ann", "bo"] {
        tmux.wait_for(name, "synced", |s| status_row(s).contains("[synced]"));
    }
    // Each sees the other (presence), before anyone typed.
    // (capture-pane drops trailing spaces: the last name has none.)
    tmux.wait_for("ann", "bo present", |s| status_row(s).contains(" bo"));
    tmux.wait_for("bo", "ann present", |s| status_row(s).contains(" ann"));

    // Ann types; bo sees it, then types at its end; ann sees that. (Keys
    // typed into both at the same instant are not asserted here: the
    // editor turns a key into a char index on the text it shows, and a
    // remote edit landing between that and the transaction can misplace
    // the key — see docs/architecture.md, "Editor".)
    tmux.type_text("ann", "Hello from ann");
    tmux.wait_for("bo", "ann's text", |s| {
        text_rows(s).first().map(String::as_str) == Some("Hello from ann")
    });
    tmux.press("bo", "End");
    tmux.type_text("bo", " and hi from bo");
    let line = "Hello from ann and hi from bo".to_string();
    for name in ["ann", "bo"] {
        tmux.wait_for(name, "both edits", |s| text_rows(s).first() == Some(&line));
    }
    // A new line from ann reaches bo, and bo's edit on it reaches ann.
    tmux.press("ann", "End");
    tmux.press("ann", "Enter");
    tmux.type_text("ann", "second line");
    tmux.wait_for("bo", "ann's second line", |s| {
        text_rows(s).get(1).map(String::as_str) == Some("second line")
    });
    tmux.press("bo", "Down");
    tmux.press("bo", "End");
    tmux.type_text("bo", "!");
    for name in ["ann", "bo"] {
        tmux.wait_for(name, "the final text", |s| {
            text_rows(s).get(1).map(String::as_str) == Some("second line!")
                && status_row(s).contains("[synced]")
        });
    }
    // Other users' cursors are drawn in their colour: ann's colour as a
    // cell background on bo's screen.
    let (r, g, b) = weft_edit::view::parse_color(&weft_edit::view::color_for("ann")).unwrap();
    let coloured = format!("48;2;{r};{g};{b}");
    let deadline = Instant::now() + WAIT;
    while !tmux.screen("bo", true).contains(&coloured) {
        assert!(
            Instant::now() < deadline,
            "ann's cursor colour never drawn on bo's screen:\n{}",
            tmux.screen("bo", true)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Undo in bo takes back only bo's edits (its "!" last) and reaches
    // ann; redo brings them back, also on both screens.
    tmux.press("bo", "C-z");
    for name in ["ann", "bo"] {
        tmux.wait_for(name, "bo's undo", |s| {
            text_rows(s).get(1).map(String::as_str) == Some("second line")
                && text_rows(s)
                    .first()
                    .is_some_and(|r| r.starts_with("Hello from ann"))
        });
    }
    tmux.press("bo", "C-y");
    for name in ["ann", "bo"] {
        tmux.wait_for(name, "bo's redo", |s| {
            text_rows(s).first() == Some(&line)
                && text_rows(s).get(1).map(String::as_str) == Some("second line!")
                && status_row(s).contains("[synced]")
        });
    }

    // Quit both: nothing to save, the text is in each store.
    let expected = format!("{line}\nsecond line!");
    for name in ["ann", "bo"] {
        tmux.press(name, "C-q");
    }
    let deadline = Instant::now() + WAIT;
    while tmux.alive("ann") || tmux.alive("bo") {
        assert!(Instant::now() < deadline, "editors did not quit on Ctrl-Q");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stored_text(ann_data.path()), expected);
    assert_eq!(stored_text(bo_data.path()), expected);

    // With the relay gone, an editor says offline and still edits; its
    // edit is stored locally.
    runtime.block_on(relay.shutdown());
    tmux.start("ann", &editor(ann_data.path(), &url, "ann"));
    tmux.wait_for("ann", "offline", |s| status_row(s).contains("[offline"));
    tmux.type_text("ann", "~");
    tmux.wait_for("ann", "the offline edit", |s| {
        text_rows(s).iter().any(|r| r.contains('~'))
    });
    tmux.press("ann", "C-q");
    let deadline = Instant::now() + WAIT;
    while tmux.alive("ann") {
        assert!(Instant::now() < deadline, "editor did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stored_text(ann_data.path()).contains('~'));
}
