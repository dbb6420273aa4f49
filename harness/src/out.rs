//! Standard output that a reader which went away does not crash.
//!
//! `println!` panics when stdout is closed (`hangup schema | head -c 10`):
//! Rust ignores SIGPIPE, so the write fails with `EPIPE` and `println!`
//! turns that into a panic. Every line the command prints goes through
//! [`line`] instead, which writes through a locked stdout and, once a write
//! fails, prints nothing more: like ripgrep, the command ends quietly, and
//! still finishes its other work (a `--junit` file, the exit code).
//!
//! Standard error gets the same care through [`err_line`]: `eprintln!`
//! panics just as `println!` does (`hangup check bad.toml 2>&1 | head`
//! exited 101 with a panic), and a message that cannot be shown has
//! nowhere else to go, so it is dropped.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first failed write: later lines would fail the same way.
static GONE: AtomicBool = AtomicBool::new(false);

/// The status line under the printed lines, on a terminal only ([`status`]):
/// each line clears it, prints, and draws it again below.
static STATUS: Mutex<Option<String>> = Mutex::new(None);

/// Shows `text` as the status line below what is printed (on a terminal:
/// the caller decides), or clears it (`None`). It is redrawn after each
/// line, so it stays the last line until cleared.
pub(crate) fn status(text: Option<String>) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut shown = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    let mut stdout = io::stdout().lock();
    // `\r` and erase-line: the old status goes, the cursor stays on its line.
    let mut bytes = b"\r\x1b[K".to_vec();
    if let Some(text) = &text {
        bytes.extend_from_slice(text.as_bytes());
    }
    let _ = stdout.write_all(&bytes).and_then(|()| stdout.flush());
    *shown = text;
}

/// Prints `args` and a newline; never panics.
pub(crate) fn line(args: fmt::Arguments<'_>) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let shown = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    let mut stdout = io::stdout().lock();
    let cleared = match shown.as_ref() {
        Some(_) => stdout.write_all(b"\r\x1b[K"),
        None => Ok(()),
    };
    let written = cleared
        .and_then(|()| stdout.write_fmt(args))
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| match shown.as_ref() {
            Some(text) => stdout.write_all(text.as_bytes()),
            None => Ok(()),
        })
        .and_then(|()| stdout.flush());
    if let Err(err) = written {
        GONE.store(true, Ordering::Relaxed);
        // A closed pipe is the reader's choice; anything else (a full disk)
        // is worth a word.
        if err.kind() != io::ErrorKind::BrokenPipe {
            err_line(format_args!(
                "hangup: cannot write to standard output: {err}"
            ));
        }
    }
}

/// Prints `args` and a newline to standard error; never panics.
pub(crate) fn err_line(args: fmt::Arguments<'_>) {
    let mut stderr = io::stderr().lock();
    // Nothing can be done about a stderr that is gone: the exit code
    // still says how the command ended.
    let _ = stderr
        .write_fmt(args)
        .and_then(|()| stderr.write_all(b"\n"));
}

/// `println!` that ends quietly when stdout is closed; see [`line`].
macro_rules! out {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics; see [`err_line`].
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::out::err_line(format_args!($($arg)*))
    };
}
