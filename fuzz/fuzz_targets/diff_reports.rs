//! Arbitrary bytes as the two reports `hangup diff` compares: reading them
//! (bounded, a case at a time), comparing them and rendering what the
//! command prints must never panic, abort or hang, and what is printed must
//! be safe for a terminal, whatever the reports hold.
//!
//! The input is split at its first NUL byte, which JSON never holds raw:
//! the bytes before it are the base report, those after it the new one.
//! An input without a NUL is the new report, compared against [`BASE`] (a
//! small valid report), so that a valid report alone is compared with
//! something. Both go through `hangup::report::diff::read_and_compare`, the
//! reading and rendering `hangup diff` does.
//!
//! What is printed, or the refusal, must hold no character a terminal
//! obeys (a control but newline and tab, which `Escaped` leaves: a tab
//! moves to the next tab stop, no further; a bidi control; a line or
//! paragraph separator); each difference is one line holding `: ` after
//! its case, and the last line is the one count, of as many differences as
//! there are lines before it: no string of a report can forge a line.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The base report of an input without a NUL: `suites/s07_abortive_close`.
const BASE: &[u8] = include_bytes!("../seeds/diff_reports/s07_abortive_close.json");

fuzz_target!(|data: &[u8]| {
    let (base, new) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (BASE, data),
    };
    match hangup::report::diff::read_and_compare(base, new) {
        Ok(shown) => shown_safely(&shown),
        Err(err) => {
            let refusal = err.to_string();
            assert!(!refusal.contains('\n'), "{refusal:?}");
            assert_nothing_obeyed(&refusal);
        }
    }
});

/// What a terminal obeys rather than shows; written out here, not taken
/// from hangup, so that a gap there is caught.
fn obeyed(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn assert_nothing_obeyed(text: &str) {
    assert!(!text.chars().any(obeyed), "{text:?}");
}

/// Each difference a line, a blank line, and the count of them last.
fn shown_safely(shown: &str) {
    assert_nothing_obeyed(shown);
    let lines: Vec<&str> = shown.split('\n').collect();
    let [differences @ .., blank, summary] = lines.as_slice() else {
        panic!("no count: {shown:?}");
    };
    assert_eq!(*blank, "", "{shown:?}");
    for line in differences {
        assert!(line.contains(": "), "{line:?} is not a difference");
    }
    let count = format!("{} differences in ", differences.len());
    assert!(
        summary.starts_with(&count) && summary.ends_with(" accepted") && !summary.contains(':'),
        "{summary:?} does not count {} differences",
        differences.len()
    );
}
