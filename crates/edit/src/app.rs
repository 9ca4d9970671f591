//! The terminal side: opens the document, runs the key loop on this
//! (blocking) thread while the client syncs on a tokio runtime in the
//! background, and draws the text, the other users' cursors and the status
//! line with ratatui. Local edits go through [`Replica::transact`], which
//! is durable (SQLite, fsynced) when it returns: there is nothing to save.

use crate::model::{Buffer, Edit, Key, Outcome};
use crate::undo::UndoHook;
use crate::view::{parse_color, screen_position, visible_rows, Viewport};
use crate::Options;
use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::{DefaultTerminal, Frame};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weft_client::{
    Access, Client, ConnectionState, Cursor, Peers, PresenceState, Replica, SyncConfig, SyncStatus,
};

/// The top-level text of a document that the editor edits.
pub const TEXT: &str = "body";

/// Why the editor stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The client failed (store, document id, relay settings).
    #[error("{0}")]
    Client(#[from] weft_client::Error),
    /// The terminal failed.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// The settings are unusable.
    #[error("{0}")]
    Usage(String),
}

/// One editor session on one document.
struct Session {
    client: Client,
    doc: Replica,
    buffer: Buffer,
    view: Viewport,
    /// The cursor as a stable position (what peers are sent).
    anchor: Option<Cursor>,
    /// Set by the document's observer on every change.
    changed: Arc<AtomicBool>,
    undo: Box<dyn UndoHook>,
    user: String,
    color: String,
    /// The cursor last announced in presence.
    announced: Option<usize>,
    /// A message for the status line (errors, undo notes).
    note: Option<String>,
    relay: Option<String>,
}

/// Runs the editor until the user quits. Needs a terminal.
///
/// ```no_run
/// use weft_edit::{app, undo::Unavailable, Options};
/// let options = Options::new("notes", "/tmp/weft-edit-data".into());
/// app::run(options, Box::new(Unavailable)).unwrap();
/// ```
pub fn run(options: Options, undo: Box<dyn UndoHook>) -> Result<(), AppError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("weft-edit-sync")
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&options.data)?;
    let client = Client::open_sqlite(options.data.join("weft-edit.db"))?;
    let doc = client.replica(&options.doc)?;
    if let Some(relay) = &options.relay {
        let mut config = SyncConfig::new(relay.clone());
        config.client_name = Some(format!("weft-edit/{}", env!("CARGO_PKG_VERSION")));
        if let Some(token) = &options.token {
            config = config.with_token(token.clone());
        }
        if let Some(pem) = &options.root_certificate {
            config = config.with_root_certificate_pem(pem.clone());
        }
        let _enter = runtime.enter();
        client.connect(config)?;
    }
    let mut undo = undo;
    undo.attach(&doc);
    let changed = Arc::new(AtomicBool::new(true));
    let flag = changed.clone();
    let subscription = doc.subscribe(move |_| flag.store(true, Ordering::Release));
    let mut session = Session {
        client,
        buffer: Buffer::default(),
        view: Viewport::default(),
        anchor: None,
        changed,
        undo,
        user: options.user.clone(),
        color: options.color.clone(),
        announced: None,
        note: None,
        relay: options.relay.clone(),
        doc,
    };
    session.refresh_text();
    let mut terminal = ratatui::init();
    let result = session.event_loop(&mut terminal);
    ratatui::restore();
    session.doc.unsubscribe(subscription);
    session.doc.clear_presence();
    // Give the sync task a moment to send what the relay lacks.
    if session.relay.is_some() {
        runtime.block_on(async {
            session.doc.wait_synced(Duration::from_millis(1500)).await;
            session.client.disconnect().await;
        });
    }
    drop(session);
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The editor's key for a terminal key, if it has one.
fn key_of(event: KeyEvent) -> Option<Key> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    Some(match event.code {
        KeyCode::Char('q') if ctrl => Key::Quit,
        KeyCode::Char('z') if ctrl => Key::Undo,
        KeyCode::Char('y') if ctrl => Key::Redo,
        KeyCode::Char('s') if ctrl => Key::SyncNow,
        KeyCode::Char(_) if ctrl => return None,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Tab => Key::Tab,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Delete => Key::Delete,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        _ => return None,
    })
}

impl Session {
    fn event_loop(&mut self, terminal: &mut DefaultTerminal) -> Result<(), AppError> {
        let mut status = self.doc.status();
        let mut peers = self.doc.peers();
        let mut connection = self.client.connection();
        let mut dirty = true;
        loop {
            if self.changed.load(Ordering::Acquire) {
                self.refresh_text();
                dirty = true;
            }
            if status.has_changed().unwrap_or(false)
                | peers.has_changed().unwrap_or(false)
                | connection.has_changed().unwrap_or(false)
            {
                status.borrow_and_update();
                peers.borrow_and_update();
                connection.borrow_and_update();
                dirty = true;
            }
            if dirty {
                terminal.draw(|frame| self.draw(frame))?;
                dirty = false;
            }
            if !event::poll(Duration::from_millis(50))? {
                continue;
            }
            let page = usize::from(terminal.size()?.height.saturating_sub(2)).max(1);
            match event::read()? {
                TermEvent::Key(key) => {
                    let Some(key) = key_of(key) else { continue };
                    if !self.on_key(key, page) {
                        return Ok(());
                    }
                    dirty = true;
                }
                TermEvent::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }

    /// Handles one key; `false` to quit.
    fn on_key(&mut self, key: Key, page: usize) -> bool {
        self.note = None;
        // Edits are char indexes into the text this buffer shows: take any
        // remote change first, so the index means the same in the document
        // (otherwise a key typed just after a remote edit lands elsewhere).
        if self.changed.load(Ordering::Acquire) {
            self.refresh_text();
        }
        match self.buffer.handle(key, page) {
            Outcome::Quit => return false,
            Outcome::Edit(edit) => {
                let result = self.doc.transact(|tx| {
                    let mut text = tx.text(TEXT)?;
                    match &edit {
                        Edit::Insert { at, text: s } => text.insert(*at, s),
                        Edit::Delete { at, len } => text.delete(*at, *len),
                    }
                });
                match result {
                    Ok(_) => self.undo.after_local_edit(&self.doc),
                    Err(e) => self.note = Some(e.to_string()),
                }
                // The document is the truth (a refused edit is undone
                // here); the cursor is where the edit left it (the old
                // anchor predates the edit).
                self.anchor = None;
                self.refresh_text();
            }
            Outcome::Undo | Outcome::Redo => {
                let done = if key == Key::Undo {
                    self.undo.undo(&self.doc)
                } else {
                    self.undo.redo(&self.doc)
                };
                match done {
                    Ok(true) => self.refresh_text(),
                    Ok(false) => self.note = Some(self.undo.describe()),
                    Err(e) => self.note = Some(e.to_string()),
                }
            }
            Outcome::SyncNow => {
                self.client.reconnect_now();
                self.note = Some("connecting now".into());
            }
            Outcome::Moved | Outcome::Nothing => {}
        }
        self.anchor_cursor();
        true
    }

    /// Takes the document's text, the cursor moved with the change
    /// ([`Buffer::take_text`]).
    fn refresh_text(&mut self) {
        // Cleared before reading: whatever changes after this is read on
        // the next turn, and the change this read includes (a local edit's
        // own event among them) is not read twice.
        self.changed.store(false, Ordering::Release);
        let text = self
            .doc
            .read(|d| d.text(TEXT).map(|t| t.to_string()).unwrap_or_default());
        // The cursor's stable anchor follows concurrent edits exactly; if
        // it cannot be resolved, the text diff moves it.
        match self
            .anchor
            .as_ref()
            .and_then(|c| self.doc.resolve_cursor(c))
        {
            Some((_, head)) => self.buffer.replace_text(&text, head),
            None => self.buffer.take_text(&text),
        }
        self.anchor_cursor();
    }

    /// Re-anchors the cursor and announces it in presence when it moved.
    fn anchor_cursor(&mut self) {
        let at = self.buffer.cursor();
        match self.doc.cursor(TEXT, at, at) {
            Ok(cursor) => {
                if self.announced != Some(at) {
                    self.announced = Some(at);
                    let state = PresenceState {
                        user: self.user.clone(),
                        color: self.color.clone(),
                        cursor: Some(cursor.clone()),
                        extra: Vec::new(),
                    };
                    if let Err(e) = self.doc.set_presence(state) {
                        self.note = Some(e.to_string());
                    }
                }
                self.anchor = Some(cursor);
            }
            Err(e) => self.note = Some(e.to_string()),
        }
    }

    fn draw(&mut self, frame: &mut Frame<'_>) {
        let [body, status_row, help_row] = Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        self.view.width = usize::from(body.width).max(1);
        self.view.height = usize::from(body.height).max(1);
        let (line, col) = self.buffer.line_col();
        self.view.follow(line, col);
        let chars = self.buffer.chars();
        let peers = self.doc.peers().borrow().clone();
        // Other users' cursors: (x, y) → colour.
        let mut marks: Vec<(u16, u16, Color)> = Vec::new();
        for state in peers.values() {
            let Some(cursor) = &state.cursor else {
                continue;
            };
            let Some((_, head)) = self.doc.resolve_cursor(cursor) else {
                continue;
            };
            if let Some((x, y)) = screen_position(chars, head, &self.view) {
                let (r, g, b) = parse_color(&state.color).unwrap_or((200, 200, 200));
                marks.push((x, y, Color::Rgb(r, g, b)));
            }
        }
        let rows = visible_rows(chars, &self.view);
        let lines: Vec<Line<'_>> = rows
            .into_iter()
            .enumerate()
            .map(|(y, row)| styled_row(&row, y, &marks))
            .collect();
        frame.render_widget(Paragraph::new(lines), body);
        if let Some((x, y)) = self.view.to_screen(line, col) {
            frame.set_cursor_position(Position::new(body.x + x, body.y + y));
        }
        frame.render_widget(
            Paragraph::new(self.status_line(&peers, line, col))
                .style(Style::default().add_modifier(Modifier::REVERSED)),
            status_row,
        );
        let help = self.note.clone().unwrap_or_else(|| {
            "^Q quit  ^Z undo  ^Y redo  ^S sync now  (every edit is saved as you type)".into()
        });
        frame.render_widget(Paragraph::new(help), help_row);
    }

    fn status_line(&self, peers: &Peers, line: usize, col: usize) -> Line<'static> {
        let status = match (*self.doc.status().borrow(), self.relay.is_some()) {
            (_, false) => "local only".to_string(),
            (SyncStatus::Offline, true) => match &*self.client.connection().borrow() {
                ConnectionState::BackingOff { retry_in, .. } => {
                    format!("offline (retry in {}s)", retry_in.as_secs())
                }
                _ => "offline".to_string(),
            },
            (SyncStatus::Connecting, true) => "connecting".to_string(),
            (SyncStatus::Syncing { pending }, true) => format!("syncing {pending}"),
            (SyncStatus::Synced, true) => "synced".to_string(),
            (SyncStatus::ReadOnly { unsent }, true) if unsent > 0 => {
                format!("read-only ({unsent} unsent)")
            }
            (SyncStatus::ReadOnly { .. }, true) => "read-only".to_string(),
            (SyncStatus::Refused { code }, true) => format!("refused: {code}"),
        };
        let read_only = *self.doc.access().borrow() == Some(Access::ReadOnly);
        let mut spans = vec![
            Span::raw(format!(" {} ", self.doc.id())),
            Span::raw(format!("[{status}]")),
            Span::raw(if read_only { " (view only)" } else { "" }),
            Span::raw(format!("  Ln {}, Col {}  ", line + 1, col + 1)),
        ];
        let (r, g, b) = parse_color(&self.color).unwrap_or((200, 200, 200));
        spans.push(Span::styled(
            format!(" {} ", self.user),
            Style::default().bg(Color::Rgb(r, g, b)).fg(Color::Black),
        ));
        for state in peers.values() {
            let (r, g, b) = parse_color(&state.color).unwrap_or((200, 200, 200));
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                format!(" {} ", state.user),
                Style::default().bg(Color::Rgb(r, g, b)).fg(Color::Black),
            ));
        }
        Line::from(spans)
    }
}

/// One row with other users' cursors as coloured cells (a coloured space
/// past the end of the row).
fn styled_row(row: &str, y: usize, marks: &[(u16, u16, Color)]) -> Line<'static> {
    let mut cells: Vec<(char, Option<Color>)> = row.chars().map(|c| (c, None)).collect();
    for (x, my, color) in marks {
        if usize::from(*my) != y {
            continue;
        }
        let x = usize::from(*x);
        while cells.len() <= x {
            cells.push((' ', None));
        }
        cells[x].1 = Some(*color);
    }
    let mut spans = Vec::new();
    let mut run = String::new();
    let mut run_color: Option<Color> = None;
    for (c, color) in cells {
        if color != run_color && !run.is_empty() {
            spans.push(span(std::mem::take(&mut run), run_color));
        }
        run_color = color;
        run.push(c);
    }
    if !run.is_empty() {
        spans.push(span(run, run_color));
    }
    Line::from(spans)
}

fn span(text: String, color: Option<Color>) -> Span<'static> {
    match color {
        Some(c) => Span::styled(text, Style::default().bg(c).fg(Color::Black)),
        None => Span::raw(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_cursors_colour_their_cells() {
        let marks = [(1, 0, Color::Red), (5, 0, Color::Blue), (0, 1, Color::Red)];
        let line = styled_row("abc", 0, &marks);
        let texts: Vec<String> = line.spans.iter().map(|s| s.content.to_string()).collect();
        assert_eq!(texts, ["a", "b", "c  ", " "]);
        assert_eq!(line.spans[1].style.bg, Some(Color::Red));
        assert_eq!(line.spans[0].style.bg, None);
        assert_eq!(line.spans[3].style.bg, Some(Color::Blue));
    }

    #[test]
    fn keys_map_to_editor_keys() {
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(key_of(ctrl('q')), Some(Key::Quit));
        assert_eq!(key_of(ctrl('z')), Some(Key::Undo));
        assert_eq!(key_of(ctrl('x')), None);
        assert_eq!(
            key_of(KeyEvent::new(KeyCode::Char('é'), KeyModifiers::NONE)),
            Some(Key::Char('é'))
        );
    }
}
