//! The editor's buffer and cursor, without any I/O: keys in, [`Edit`]s
//! out. The document (a weft `Text`) is the truth; this model holds a copy
//! of its characters and the cursor as a char index, applies local edits
//! optimistically (the app applies the same [`Edit`] to the document) and
//! takes the document's text again after remote changes
//! ([`Buffer::replace_text`]).

/// A key, as the editor understands it (decoded from the terminal by the
/// app; tests build them directly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter: a line break.
    Enter,
    /// Tab: inserts a tab character.
    Tab,
    /// Delete the character before the cursor.
    Backspace,
    /// Delete the character under the cursor.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor up a line (keeping the column it started from).
    Up,
    /// Cursor down a line.
    Down,
    /// Start of the line.
    Home,
    /// End of the line.
    End,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// Undo the local user's last change.
    Undo,
    /// Redo it.
    Redo,
    /// Connect to the relay now (skip a reconnect backoff).
    SyncNow,
    /// Leave the editor (everything is already saved).
    Quit,
}

/// A change to the text, in chars, for the app to apply to the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Insert `text` at char index `at`.
    Insert {
        /// Char index.
        at: usize,
        /// What to insert.
        text: String,
    },
    /// Delete `len` chars from char index `at`.
    Delete {
        /// Char index.
        at: usize,
        /// How many chars.
        len: usize,
    },
}

/// What a key did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The text changed locally: apply this to the document.
    Edit(Edit),
    /// Only the cursor moved.
    Moved,
    /// Nothing happened (say, Backspace at the start).
    Nothing,
    /// Undo was asked for.
    Undo,
    /// Redo was asked for.
    Redo,
    /// Sync now was asked for.
    SyncNow,
    /// Quit was asked for.
    Quit,
}

/// The text and the cursor.
///
/// ```
/// use weft_edit::model::{Buffer, Edit, Key, Outcome};
/// let mut b = Buffer::default();
/// assert_eq!(b.handle(Key::Char('h'), 10), Outcome::Edit(Edit::Insert { at: 0, text: "h".into() }));
/// b.handle(Key::Char('i'), 10);
/// b.handle(Key::Enter, 10);
/// assert_eq!(b.text(), "hi\n");
/// assert_eq!(b.line_col(), (1, 0));
/// b.handle(Key::Up, 10);
/// assert_eq!(b.line_col(), (0, 0));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buffer {
    chars: Vec<char>,
    cursor: usize,
    /// The column vertical moves aim for (where they started).
    goal: Option<usize>,
}

impl Buffer {
    /// A buffer holding `text`, the cursor at its start.
    ///
    /// ```
    /// use weft_edit::model::Buffer;
    /// assert_eq!(Buffer::new("ab").text(), "ab");
    /// ```
    pub fn new(text: &str) -> Buffer {
        Buffer {
            chars: text.chars().collect(),
            cursor: 0,
            goal: None,
        }
    }

    /// The text.
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// The text's chars.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Length in chars.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The cursor, a char index in `0..=len`.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Moves the cursor to `at` (clamped to the text).
    pub fn set_cursor(&mut self, at: usize) {
        self.cursor = at.min(self.chars.len());
        self.goal = None;
    }

    /// Takes the document's text after a change (remote or local) with the
    /// cursor where the document says it now is (resolved from its stable
    /// anchor), clamped to the text.
    ///
    /// ```
    /// use weft_edit::model::Buffer;
    /// let mut b = Buffer::new("world");
    /// b.set_cursor(5);
    /// b.replace_text("hello world", 11); // someone typed in front
    /// assert_eq!(b.cursor(), 11);
    /// ```
    pub fn replace_text(&mut self, text: &str, cursor: usize) {
        self.chars = text.chars().collect();
        self.cursor = cursor.min(self.chars.len());
    }

    /// Takes the document's new text, moving the cursor with the change:
    /// the text before the changed region and after it is matched (common
    /// prefix and suffix); a cursor before or at the change stays (text
    /// inserted at the cursor goes after it, so a user's own run of typing
    /// is never split), one after it moves by the change's length, one
    /// inside a replaced region goes to its end.
    ///
    /// ```
    /// use weft_edit::model::Buffer;
    /// let mut b = Buffer::new("world");
    /// b.set_cursor(5);
    /// b.take_text("hello world"); // someone typed in front
    /// assert_eq!(b.cursor(), 11);
    /// b.set_cursor(5);
    /// b.take_text("hello, world"); // someone typed at the cursor
    /// assert_eq!(b.cursor(), 5);
    /// ```
    pub fn take_text(&mut self, text: &str) {
        let new: Vec<char> = text.chars().collect();
        let old = &self.chars;
        let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
        let room = old.len().min(new.len()) - prefix;
        let suffix = old
            .iter()
            .rev()
            .zip(new.iter().rev())
            .take(room)
            .take_while(|(a, b)| a == b)
            .count();
        let c = self.cursor.min(old.len());
        self.cursor = if c <= prefix {
            c
        } else if c >= old.len() - suffix {
            new.len() - (old.len() - c)
        } else {
            new.len() - suffix
        };
        self.chars = new;
    }

    /// The cursor's (line, column), both from 0, in chars.
    pub fn line_col(&self) -> (usize, usize) {
        line_col(&self.chars, self.cursor)
    }

    /// Applies `key`; `page` is the number of lines a page moves.
    pub fn handle(&mut self, key: Key, page: usize) -> Outcome {
        match key {
            Key::Char(c) => self.insert(c.to_string()),
            Key::Tab => self.insert("\t".into()),
            Key::Enter => self.insert("\n".into()),
            Key::Backspace => {
                if self.cursor == 0 {
                    return Outcome::Nothing;
                }
                self.cursor -= 1;
                self.chars.remove(self.cursor);
                self.goal = None;
                Outcome::Edit(Edit::Delete {
                    at: self.cursor,
                    len: 1,
                })
            }
            Key::Delete => {
                if self.cursor >= self.chars.len() {
                    return Outcome::Nothing;
                }
                self.chars.remove(self.cursor);
                self.goal = None;
                Outcome::Edit(Edit::Delete {
                    at: self.cursor,
                    len: 1,
                })
            }
            Key::Left => self.move_to(self.cursor.saturating_sub(1)),
            Key::Right => self.move_to((self.cursor + 1).min(self.chars.len())),
            Key::Home => {
                let (line, _) = self.line_col();
                self.move_to(line_start(&self.chars, line))
            }
            Key::End => {
                let (line, _) = self.line_col();
                self.move_to(line_end(&self.chars, line))
            }
            Key::Up => self.vertical(-1),
            Key::Down => self.vertical(1),
            Key::PageUp => self.vertical(-(page.max(1) as isize)),
            Key::PageDown => self.vertical(page.max(1) as isize),
            Key::Undo => Outcome::Undo,
            Key::Redo => Outcome::Redo,
            Key::SyncNow => Outcome::SyncNow,
            Key::Quit => Outcome::Quit,
        }
    }

    fn insert(&mut self, text: String) -> Outcome {
        let at = self.cursor;
        let n = text.chars().count();
        self.chars.splice(at..at, text.chars());
        self.cursor += n;
        self.goal = None;
        Outcome::Edit(Edit::Insert { at, text })
    }

    fn move_to(&mut self, at: usize) -> Outcome {
        self.goal = None;
        if at == self.cursor {
            return Outcome::Nothing;
        }
        self.cursor = at;
        Outcome::Moved
    }

    fn vertical(&mut self, lines: isize) -> Outcome {
        let (line, col) = self.line_col();
        let goal = *self.goal.get_or_insert(col);
        let last = line_count(&self.chars) - 1;
        let target = line.saturating_add_signed(lines).min(last);
        if target == line {
            return Outcome::Nothing;
        }
        let start = line_start(&self.chars, target);
        let end = line_end(&self.chars, target);
        self.cursor = (start + goal).min(end);
        Outcome::Moved
    }
}

/// (line, column) of char index `at` in `chars`.
///
/// ```
/// use weft_edit::model::line_col;
/// let text: Vec<char> = "ab\ncd".chars().collect();
/// assert_eq!(line_col(&text, 4), (1, 1));
/// ```
pub fn line_col(chars: &[char], at: usize) -> (usize, usize) {
    let at = at.min(chars.len());
    let before = &chars[..at];
    let line = before.iter().filter(|c| **c == '\n').count();
    let col = before.iter().rev().take_while(|c| **c != '\n').count();
    (line, col)
}

/// Number of lines (an empty text has one).
pub fn line_count(chars: &[char]) -> usize {
    chars.iter().filter(|c| **c == '\n').count() + 1
}

/// Char index where line `line` starts (the end of the text past the last
/// line).
pub fn line_start(chars: &[char], line: usize) -> usize {
    if line == 0 {
        return 0;
    }
    let mut seen = 0;
    for (i, c) in chars.iter().enumerate() {
        if *c == '\n' {
            seen += 1;
            if seen == line {
                return i + 1;
            }
        }
    }
    chars.len()
}

/// Char index of the end of line `line` (its `\n`, or the end of the
/// text).
pub fn line_end(chars: &[char], line: usize) -> usize {
    let start = line_start(chars, line);
    chars[start..]
        .iter()
        .position(|c| *c == '\n')
        .map_or(chars.len(), |p| start + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[Key]) -> Buffer {
        let mut b = Buffer::default();
        for k in keys {
            b.handle(*k, 5);
        }
        b
    }

    fn chars(s: &str) -> Vec<Key> {
        s.chars()
            .map(|c| if c == '\n' { Key::Enter } else { Key::Char(c) })
            .collect()
    }

    /// Applying the edits a key sequence produces to a plain string gives
    /// the buffer's text: what the app sends the document is what the
    /// user sees.
    #[test]
    fn edits_replay_to_the_buffer_text() {
        let keys = [
            chars("hello\nworld"),
            vec![Key::Up, Key::End, Key::Backspace, Key::Backspace],
            chars("p!"),
            vec![Key::Down, Key::Home, Key::Delete, Key::Char('W')],
            vec![Key::PageUp, Key::Left, Key::Right, Key::Tab],
        ]
        .concat();
        let mut b = Buffer::default();
        let mut model: Vec<char> = Vec::new();
        for k in keys {
            if let Outcome::Edit(edit) = b.handle(k, 5) {
                match edit {
                    Edit::Insert { at, text } => {
                        model.splice(at..at, text.chars());
                    }
                    Edit::Delete { at, len } => {
                        model.drain(at..at + len);
                    }
                }
            }
            assert_eq!(model.iter().collect::<String>(), b.text());
        }
        assert_eq!(b.text(), "h\telp!\nWorld");
    }

    #[test]
    fn vertical_moves_keep_their_column() {
        let mut b = typed(&chars("long line\nab\nanother line"));
        assert_eq!(b.line_col(), (2, 12));
        b.handle(Key::Up, 5);
        assert_eq!(b.line_col(), (1, 2), "clamped to a short line");
        b.handle(Key::Up, 5);
        assert_eq!(b.line_col(), (0, 9), "back to the goal column, clamped");
        assert_eq!(b.handle(Key::Up, 5), Outcome::Nothing);
        b.handle(Key::PageDown, 5);
        assert_eq!(b.line_col(), (2, 12));
        b.handle(Key::Home, 5);
        assert_eq!(b.line_col(), (2, 0));
        b.handle(Key::End, 5);
        assert_eq!(b.line_col(), (2, 12));
    }

    #[test]
    fn edges_do_nothing() {
        let mut b = Buffer::default();
        assert_eq!(b.handle(Key::Backspace, 5), Outcome::Nothing);
        assert_eq!(b.handle(Key::Delete, 5), Outcome::Nothing);
        assert_eq!(b.handle(Key::Left, 5), Outcome::Nothing);
        assert_eq!(b.handle(Key::Right, 5), Outcome::Nothing);
        assert_eq!(b.handle(Key::Down, 5), Outcome::Nothing);
        assert_eq!(b.handle(Key::Quit, 5), Outcome::Quit);
        assert_eq!(b.handle(Key::Undo, 5), Outcome::Undo);
        assert!(b.is_empty());
    }

    #[test]
    fn backspace_joins_lines_and_multibyte_chars_count_once() {
        let mut b = typed(&chars("añ\n€x"));
        b.handle(Key::Home, 5);
        assert_eq!(
            b.handle(Key::Backspace, 5),
            Outcome::Edit(Edit::Delete { at: 2, len: 1 })
        );
        assert_eq!(b.text(), "añ€x");
        assert_eq!(b.line_col(), (0, 2));
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn take_text_moves_the_cursor_with_the_change() {
        let mut b = Buffer::new("abcdef");
        b.set_cursor(3);
        b.take_text("abXYcdef"); // before the cursor
        assert_eq!(b.cursor(), 5);
        b.take_text("abXYcdef!"); // after it
        assert_eq!(b.cursor(), 5);
        b.take_text("abXYZef!"); // a replaced region around it
        assert_eq!(b.cursor(), 5);
        b.take_text(""); // everything gone
        assert_eq!(b.cursor(), 0);
    }

    #[test]
    fn remote_text_clamps_the_cursor() {
        let mut b = typed(&chars("abcdef"));
        b.replace_text("ab", 6);
        assert_eq!(b.cursor(), 2);
        assert_eq!(line_count(b.chars()), 1);
        assert_eq!(line_start(b.chars(), 3), 2);
        assert_eq!(line_end(b.chars(), 0), 2);
    }
}
