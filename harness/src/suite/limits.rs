//! The largest sizes and durations a suite may ask for, checked when it is
//! parsed.
//!
//! A suite states what a case does, so a size or duration out of all
//! proportion is a typo (`send = 1_000_000_000_000`) that would otherwise
//! show up at run time as an allocation that aborts the harness, or as
//! `Duration` arithmetic that overflows and panics. Refusing it at parse
//! time, with the limit in the message, keeps `check` the place where a
//! suite's mistakes are found. Counts (cases, steps, faults) are bounded
//! for the same reason: each costs memory, a trial, a kernel transaction
//! or a report entry, and a generated suite can ask for millions. The
//! README's suite-format section lists these.

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

/// The most `[[case]]` tables one suite file holds: checked before any is
/// read. Each case is a trial `cargo test` lists and a namespace the run
/// makes, and the reference suites hold 1 to 6; a file of more is a
/// generator gone wrong, and a folder of files holds as many as needed.
pub const MAX_CASES_PER_FILE: usize = 10_000;

/// The most cases one suite file makes once each case is expanded: a
/// program's `compare` makes two of it (`<case>@<version>`), and a
/// sweep (one request script hung up at every phase in every way,
/// expanded by `suite` into ordinary cases) makes one per cell, which
/// count against this too; a sweep's phase counts (`{ chunks = N }`,
/// `{ body_bytes = { count = N, ... } }`) are refused above it before any
/// phase is made. The same number as
/// [`MAX_CASES_PER_FILE`]: what it bounds (trials listed, cases run,
/// entries in each report) does not care whether a case was written out.
pub const MAX_GENERATED_CASES: usize = 10_000;

/// The most times `compare` runs the version compared against
/// (`baseline_runs`): each run is a case of its own, and two already tell
/// what differs between runs of one version by timing alone (noise).
pub const MAX_BASELINE_RUNS: usize = 10;

/// The most masks (`mask`) one program table lists: each is matched
/// against every output line the diff compares, and a few describe every
/// variable part of a program's output.
pub const MAX_MASKS: usize = 64;

/// The most steps one case holds, over all its scripts, the steps inside
/// loops included as written (a loop's repetitions are bounded by its
/// `times`). The longest reference case has 40; each step is a line of
/// the timeline and an entry of the report.
pub const MAX_STEPS_PER_CASE: usize = 10_000;

/// The most faults (`drop`, `reject`, `delay`, `cut`) one case puts in
/// place, a fault inside a `loop` counted once per round it may run (its
/// `times`), so no loop puts more. A thousand is far beyond any scenario
/// (a link that flaps a thousand times in a loop); what they cost the
/// kernel is bounded with their rules, by [`MAX_FAULT_RULES_PER_CASE`].
/// Measured (`hangup run` of a generated case, release build, an idle
/// 2-core machine): a thousand one-rule faults put in 0.23 s and all
/// lifted in 0.01 s; a debug build takes 0.8 s for the whole case.
/// Before lifts read the kernel's rules back once per fault, the same
/// case had lifted 407 of them after 50 s.
pub const MAX_FAULTS_PER_CASE: usize = 1_000;

/// The most nf_tables rules a case's faults make: a fault makes one per
/// port it matches, and [`RULES_WITH_DATA`](crate::fault::RULES_WITH_DATA)
/// (22) of them when it narrows by `data`; 5,500 is 250 faults that
/// narrow by `data` on one port each, or a thousand on five ports.
///
/// Each fault is put by a step of its own, so in a transaction of its
/// own, and the kernel rebuilds the whole chain's rules at each commit
/// (about 1.1 µs a rule on this machine): putting F faults costs the
/// kernel about F × R / 2 rule copies, where R is the rules in place.
/// Measured (release build, idle 2-core machine): at 22,000 rules (a
/// thousand faults, each with `data`) putting them took 13 s of kernel
/// time and lifting them 3.3 s, more than half the default deadline; at
/// this limit, in the worst order (4,400 rules in the first 8 faults,
/// then 992 of one rule), 2.7 s and 0.13 s (3.8 s for the whole case in
/// a debug build). `tests/fault_limits.rs` runs a case at each limit.
pub const MAX_FAULT_RULES_PER_CASE: usize = 250 * crate::fault::RULES_WITH_DATA;

/// The least `probability` a fault may have: 2^-32. nf_tables draws one
/// 32-bit random number per packet (`meta random`) and takes the packet
/// when it is below the threshold `probability × 2^32`, so 2^-32 is the
/// least chance the kernel can express. A smaller one would round to a
/// rule that never fires (a fault that cannot take anything, so a check
/// that cannot fail) or to 2^-32 instead of the chance written.
pub const MIN_PROBABILITY: f64 = 1.0 / 4_294_967_296.0;

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

/// The longest congestion control algorithm name `set = { congestion }`
/// takes: the kernel reads at most `TCP_CA_NAME_MAX - 1` (15) bytes of it
/// and silently cuts the rest, so a longer name would ask for another
/// algorithm than the one written.
pub const MAX_CONGESTION_NAME: usize = 15;

/// The largest `set = { notsent_lowat }`: the kernel reads the option as
/// a C `int`, so a larger count would reach it as a negative number.
pub const MAX_NOTSENT_LOWAT: u32 = i32::MAX as u32;
