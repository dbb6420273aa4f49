//! The largest sizes and durations a suite may ask for, checked when it is
//! parsed.
//!
//! A suite states what a case does, so a size or duration out of all
//! proportion is a typo (`send = 1_000_000_000_000`) that would otherwise
//! show up at run time as an allocation that aborts the harness, or as
//! `Duration` arithmetic that overflows and panics. Refusing it at parse
//! time, with the limit in the message, keeps `check` the place where a
//! suite's mistakes are found. The README's suite-format section lists
//! these.

use std::time::Duration;

/// The most one `send` step writes: filler bytes, or text × `repeat`. The
/// harness holds the whole payload in memory; a send meant to fill every
/// socket buffer on the way (tests use 200 MB) stays within it.
pub const MAX_SEND_BYTES: usize = 256 << 20;

/// The most one `recv` asks for (`max`): the harness allocates a buffer of
/// that size. `recv_until`'s byte count has no limit: it reads in 64 KiB
/// pieces and only counts (a suite reads "until reset" with a huge one).
pub const MAX_READ_BYTES: usize = 64 << 20;

/// The longest duration anywhere in a suite (`deadline`, `sleep`,
/// `timeout`, `within`, `after`, tolerance `floor`, ...): far beyond any
/// case, and small enough that sums and products of them cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// [`MAX_DURATION`] as a suite writes it.
pub const MAX_DURATION_WORDS: &str = "24h";

/// The most memory one compiled pattern (`log`, `ready`, `matches`) may
/// take. The regex crate's default, 10 MiB, lets a short pattern such as
/// `\w{90}\w{90}` take seconds to compile, so a suite of a few of them
/// stalls `check`; every pattern a suite needs is far smaller.
pub const MAX_PATTERN_SIZE: usize = 1 << 20;

/// The largest suite file: far beyond any hand-written suite (the
/// reference suites are 1 to 5 KiB each). TOML's document tree takes about
/// 70 times the file's size while it is parsed (a 6 MB file of 200,000
/// cases peaked at 433 MB in `hangup check`), so this also bounds memory.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// The most cases one suite file holds.
pub const MAX_CASES_PER_FILE: usize = 10_000;

/// The most steps one case holds, over all its scripts, the steps inside
/// loops included (a loop's repetitions are bounded by its `times`).
pub const MAX_STEPS_PER_CASE: usize = 10_000;

/// The most problems `check` prints for one file, in file order; the rest
/// are counted. A file of garbage has one problem per line, and a report
/// of thousands hides the first, which is usually the cause.
pub const MAX_PROBLEMS_SHOWN: usize = 50;

/// Compiles a suite's regular expression within [`MAX_PATTERN_SIZE`].
pub(crate) fn pattern(text: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(text)
        .size_limit(MAX_PATTERN_SIZE)
        .build()
}

/// "64 MiB (67108864 bytes)", for messages.
pub(crate) fn bytes_in_words(limit: usize) -> String {
    format!("{} MiB ({limit} bytes)", limit >> 20)
}

/// The longest a `delay` holds each packet: a path slower than a minute
/// is a cut (`cut`, `drop`), and the kernel holds every delayed packet
/// meanwhile.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
