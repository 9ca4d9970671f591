//! What part of the text is on screen, and where things land on it —
//! without a terminal: the app draws what these functions compute.
//!
//! One char is one column (a tab is drawn as one space, a control
//! character as `?`, so columns and char indexes agree), lines are not
//! wrapped; the view scrolls horizontally and vertically to keep the
//! cursor visible.

use crate::model::{line_col, line_end, line_start};

/// The visible window onto the text: first line and column shown, and the
/// size in cells.
///
/// ```
/// use weft_edit::view::Viewport;
/// let mut v = Viewport { top: 0, left: 0, width: 10, height: 3 };
/// v.follow(5, 12); // cursor on line 5, column 12
/// assert_eq!((v.top, v.left), (3, 3));
/// assert_eq!(v.to_screen(5, 12), Some((9, 2)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Viewport {
    /// First line shown.
    pub top: usize,
    /// First column shown.
    pub left: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl Viewport {
    /// Scrolls the least so that (`line`, `col`) is visible.
    pub fn follow(&mut self, line: usize, col: usize) {
        let height = self.height.max(1);
        let width = self.width.max(1);
        if line < self.top {
            self.top = line;
        } else if line >= self.top + height {
            self.top = line + 1 - height;
        }
        if col < self.left {
            self.left = col;
        } else if col >= self.left + width {
            self.left = col + 1 - width;
        }
    }

    /// Screen cell (x, y) of text position (`line`, `col`), if visible.
    pub fn to_screen(&self, line: usize, col: usize) -> Option<(u16, u16)> {
        if line < self.top || line >= self.top + self.height {
            return None;
        }
        if col < self.left || col >= self.left + self.width {
            return None;
        }
        let x = u16::try_from(col - self.left).ok()?;
        let y = u16::try_from(line - self.top).ok()?;
        Some((x, y))
    }
}

/// How a char is drawn in one cell.
///
/// ```
/// use weft_edit::view::display_char;
/// assert_eq!(display_char('a'), 'a');
/// assert_eq!(display_char('\t'), ' ');
/// assert_eq!(display_char('\u{7}'), '?');
/// ```
pub fn display_char(c: char) -> char {
    match c {
        '\t' => ' ',
        c if c.is_control() => '?',
        c => c,
    }
}

/// The visible rows of `chars` in `view`, each at most `view.width`
/// display chars (rows past the text's end are absent).
///
/// ```
/// use weft_edit::view::{visible_rows, Viewport};
/// let text: Vec<char> = "first line\nsecond\nthird".chars().collect();
/// let v = Viewport { top: 1, left: 2, width: 3, height: 5 };
/// assert_eq!(visible_rows(&text, &v), ["con", "ird"]);
/// ```
pub fn visible_rows(chars: &[char], view: &Viewport) -> Vec<String> {
    let lines = crate::model::line_count(chars);
    (view.top..lines.min(view.top + view.height))
        .map(|line| {
            let start = line_start(chars, line);
            let end = line_end(chars, line);
            chars[start..end]
                .iter()
                .skip(view.left)
                .take(view.width)
                .map(|c| display_char(*c))
                .collect()
        })
        .collect()
}

/// Where char index `at` is on screen, if visible.
///
/// ```
/// use weft_edit::view::{screen_position, Viewport};
/// let text: Vec<char> = "ab\ncd".chars().collect();
/// let v = Viewport { top: 0, left: 0, width: 80, height: 24 };
/// assert_eq!(screen_position(&text, 4, &v), Some((1, 1)));
/// ```
pub fn screen_position(chars: &[char], at: usize, view: &Viewport) -> Option<(u16, u16)> {
    let (line, col) = line_col(chars, at);
    view.to_screen(line, col)
}

/// A `#rrggbb` or `#rrggbbaa` colour (presence colours are always one of
/// these: the protocol checks) as RGB.
///
/// ```
/// use weft_edit::view::parse_color;
/// assert_eq!(parse_color("#3366ff"), Some((0x33, 0x66, 0xff)));
/// assert_eq!(parse_color("#3366ff80"), Some((0x33, 0x66, 0xff)));
/// assert_eq!(parse_color("blue"), None);
/// ```
pub fn parse_color(color: &str) -> Option<(u8, u8, u8)> {
    let hex = color.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// A colour for a user name (the same name always gets the same one), from
/// a palette readable on dark and light terminals.
///
/// ```
/// use weft_edit::view::color_for;
/// assert_eq!(color_for("ann"), color_for("ann"));
/// assert!(color_for("ann").starts_with('#'));
/// ```
pub fn color_for(name: &str) -> String {
    const PALETTE: [&str; 8] = [
        "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
    ];
    // FNV-1a: stable across runs and platforms.
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    PALETTE[(hash % PALETTE.len() as u32) as usize].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_scrolls_the_least_in_every_direction() {
        let mut v = Viewport {
            top: 10,
            left: 10,
            width: 5,
            height: 4,
        };
        v.follow(11, 12);
        assert_eq!((v.top, v.left), (10, 10), "already visible");
        v.follow(2, 1);
        assert_eq!((v.top, v.left), (2, 1));
        v.follow(20, 30);
        assert_eq!((v.top, v.left), (17, 26));
        assert_eq!(v.to_screen(20, 30), Some((4, 3)));
        assert_eq!(v.to_screen(16, 30), None);
        assert_eq!(v.to_screen(20, 31), None);
    }

    #[test]
    fn rows_show_control_chars_as_one_cell() {
        let text: Vec<char> = "a\tb\u{1b}c\n\nlast".chars().collect();
        let v = Viewport {
            top: 0,
            left: 0,
            width: 80,
            height: 2,
        };
        assert_eq!(visible_rows(&text, &v), ["a b?c", ""]);
        assert_eq!(screen_position(&text, 5, &v), Some((5, 0)));
        assert_eq!(screen_position(&text, 7, &v), None, "line 2 is below");
    }

    #[test]
    fn colors_are_checked() {
        assert_eq!(parse_color("#zzzzzz"), None);
        assert_eq!(parse_color("#12345"), None);
        assert_eq!(parse_color("#ééé"), None);
        assert!(parse_color(&color_for("someone")).is_some());
    }
}
