//! Standard output that a reader which went away does not crash.
//!
//! `println!` panics when stdout is closed (`hangup schema | head -c 10`):
//! Rust ignores SIGPIPE, so the write fails with `EPIPE` and `println!`
//! turns that into a panic. Every line the command prints goes through
//! [`line`] instead, which writes through a locked stdout and, once a write
//! fails, prints nothing more: like ripgrep, the command ends quietly, and
//! still finishes its other work (a `--junit` file, the exit code).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first failed write: later lines would fail the same way.
static GONE: AtomicBool = AtomicBool::new(false);

/// Prints `args` and a newline; never panics.
pub(crate) fn line(args: fmt::Arguments<'_>) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(err) = written {
        GONE.store(true, Ordering::Relaxed);
        // A closed pipe is the reader's choice; anything else (a full disk)
        // is worth a word.
        if err.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("hangup: cannot write to standard output: {err}");
        }
    }
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
