//! Text from outside hangup as people are shown it.
//!
//! hangup prints what others wrote: suite file names, case names, paths, a
//! program's output, the log patterns and names of a suite, and every
//! string of a report handed to `hangup diff`. Any of them may hold bytes
//! a terminal obeys rather than shows: a newline that starts a line of its
//! own (a forged `61 passed, 0 failed`), a carriage return that writes
//! over one, ESC and BEL sequences that clear the screen or retitle the
//! window, or bidirectional controls that reorder what is read.
//! [`Escaped`] is how every writer of text for people (the terminal, the
//! timeline, `case.log`, a failure's text) shows such a string: those
//! characters become visible escapes, so the text stays on its line and
//! the terminal obeys nothing in it.
//!
//! The escape is made where the text is written, never in the data: the
//! JSON report keeps every string exactly, and a string shown escaped is
//! shown, not encoded (a backslash stays a backslash, so an escape is not
//! always told from the same characters typed out).

use std::fmt::{self, Write};

/// Shows `T`'s text with each character [`is_escaped`] picks written as an
/// escape ([`write_escape`]): `\n`, `\r`, `\u{1b}`, `\u{202e}`. Whatever the
/// text holds, what is shown is one line with nothing a terminal obeys.
///
/// Wraps any `Display` (a `&str`, `path.display()`, another type), so the
/// escape is made while writing, with no copy of the text. Width and fill
/// flags of the format string are not applied.
///
/// ```
/// use hangup::model::Escaped;
///
/// let name = "s\n61 passed, 0 failed\u{1b}]0;owned\u{7}";
/// assert_eq!(
///     Escaped(name).to_string(),
///     r"s\n61 passed, 0 failed\u{1b}]0;owned\u{7}"
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Escaping(f).write_fmt(format_args!("{}", self.0))
    }
}

/// Writes what it is given to the inner writer, escaping as it goes.
struct Escaping<'a, W>(&'a mut W);

impl<W: Write> Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Runs of plain text are written whole: most text has no escape.
        let mut plain = 0;
        for (at, c) in text.char_indices() {
            if is_escaped(c) {
                self.0.write_str(&text[plain..at])?;
                write_escape(self.0, c)?;
                plain = at + c.len_utf8();
            }
        }
        self.0.write_str(&text[plain..])
    }
}

/// Whether `c` is shown as an escape: the C0 controls but tab (newline,
/// carriage return, ESC, BEL, NUL ...), DEL, the C1 controls (U+0080 to
/// U+009F, which some terminals obey as ESC sequences: U+009B is CSI), the
/// Unicode line and paragraph separators, and the bidirectional controls
/// (Unicode's `Bidi_Control`: U+061C, U+200E, U+200F, U+202A to U+202E,
/// U+2066 to U+2069), which reorder how the rest of a line reads.
///
/// A tab stays: it moves to the next tab stop and no further, and a
/// program's stack trace is indented with tabs.
pub fn is_escaped(c: char) -> bool {
    matches!(
        c,
        '\0'..='\u{8}'
            | '\n'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// How a character is written as an escape: `\n` and `\r` as Rust writes
/// them, any other as `\u{` its code point in hex `}` (`\u{1b}` for ESC,
/// `\u{7}` for BEL), the form Rust's `{:?}` uses, so a string quoted with
/// `{:?}` elsewhere in the same report reads the same.
pub fn write_escape(out: &mut impl Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str(r"\n"),
        '\r' => out.write_str(r"\r"),
        c => write!(out, "\\u{{{:x}}}", u32::from(c)),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::newline("a\nb", r"a\nb")]
    #[case::carriage_return("ok\r0 failed", r"ok\r0 failed")]
    #[case::esc_and_bel("\u{1b}]0;title\u{7}", r"\u{1b}]0;title\u{7}")]
    #[case::clear_screen("\u{1b}[2J", r"\u{1b}[2J")]
    #[case::nul_and_del("\0x\u{7f}", r"\u{0}x\u{7f}")]
    #[case::c1_csi("\u{9b}31m", r"\u{9b}31m")]
    #[case::next_line("a\u{85}b", r"a\u{85}b")]
    #[case::bidi_override("abc\u{202e}fed\u{202c}", r"abc\u{202e}fed\u{202c}")]
    #[case::bidi_isolate("\u{2066}x\u{2069}", r"\u{2066}x\u{2069}")]
    #[case::bidi_marks("\u{200e}\u{200f}\u{61c}", r"\u{200e}\u{200f}\u{61c}")]
    #[case::line_separators("a\u{2028}b\u{2029}", r"a\u{2028}b\u{2029}")]
    #[case::tab_stays("\tat Main.java:3", "\tat Main.java:3")]
    #[case::plain_stays("café ☕ 日本 \\n \"q\"", "café ☕ 日本 \\n \"q\"")]
    #[case::empty("", "")]
    fn controls_are_shown_as_escapes(#[case] text: &str, #[case] shown: &str) {
        assert_eq!(Escaped(text).to_string(), shown);
    }

    /// Whatever the text, what is shown is one line with no character a
    /// terminal obeys: every char from NUL to U+10FFFF, one at a time and
    /// all at once.
    #[test]
    fn no_character_is_shown_raw_that_a_terminal_obeys() {
        let every: String = (0..=0x10_ffff).filter_map(char::from_u32).collect();
        let shown = Escaped(&every).to_string();
        assert!(!shown.chars().any(is_escaped));
        assert!(!shown.contains(['\n', '\r', '\u{1b}', '\u{7}', '\u{9b}']));
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            let one = Escaped(c).to_string();
            assert_eq!(one == c.to_string(), !is_escaped(c), "{c:?}");
        }
    }

    /// Any `Display` is escaped as it is written, a path's included.
    #[test]
    fn a_path_is_escaped_as_it_is_displayed() {
        let path = std::path::Path::new("/tmp/s\n1 passed.toml");
        assert_eq!(
            Escaped(path.display()).to_string(),
            r"/tmp/s\n1 passed.toml"
        );
    }
}
