//! Expectations against observations.
//!
//! Each function compares one expectation with what was seen and, on a
//! mismatch, says both in words a person reads without the suite open:
//! "expected EAGAIN (Resource temporarily unavailable) after 200 ms ±50 ms,
//! observed ok, 1000 bytes after 3 ms". The runner decides when to judge;
//! this module only judges.

use std::fmt;
use std::time::Duration;

use crate::model::CallResult;
use crate::model::Outcome;
use crate::model::Socket;
use crate::model::TcpState;
use crate::suite::{Expect, LineCount, Tolerance};

/// Which part of an expectation did not hold (the first, in this order,
/// when several did not).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MismatchKind {
    /// The outcome: ok, EOF or the errno.
    Outcome,
    /// The bytes the call moved.
    Bytes,
    /// The events a poll reported ready.
    Ready,
    /// What a read received (`matches`).
    Content,
    /// How long the call took (`after`, `longer_than`).
    Timing,
    /// A kernel TCP state.
    State,
    /// Lines of a program's output.
    Log,
    /// What a program holds in its fd table.
    Held,
    /// A program's own socket calls.
    Syscall,
    /// Connections waiting in a listener's accept queue.
    AcceptQueue,
    /// Packets a fault took.
    Taken,
    /// Segments a side sent, as the capture saw them.
    Packets,
}

/// What was expected and what was seen instead, in words (the events of
/// the case's timeline hold what was seen as data).
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Mismatch {
    /// Which part did not hold.
    pub kind: MismatchKind,
    /// The expectation, in words.
    pub expected: String,
    /// The observation, in words.
    pub observed: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, observed {}", self.expected, self.observed)
    }
}

/// Judges one call's result and duration against its expectation.
///
/// `lateness` is how late the harness's own timers woke in this case so
/// far (see [`Lateness`]): a call measured after a late wake-up is allowed
/// that much more, and the expectation says so.
pub fn judge_call(
    expect: &Expect,
    result: &CallResult,
    received: &[u8],
    took: Duration,
    tolerance: Tolerance,
    lateness: Duration,
) -> Result<(), Mismatch> {
    let late = Lateness::of(lateness);
    let outcome_ok = expect.result.contains(&result.outcome);
    let bytes_ok = expect.bytes.is_none_or(|want| want == result.bytes);
    let timing_ok = expect.after.is_none_or(|want| {
        took.abs_diff(want) <= tolerance.slack(want).saturating_add(late.allowance())
    });
    let lower_ok = expect.longer_than.is_none_or(|bound| took > bound);
    let ready_ok = expect.revents.is_none_or(|want| result.ready == Some(want));
    let content_ok = expect
        .matches
        .as_ref()
        .is_none_or(|pattern| pattern.0.is_match(&String::from_utf8_lossy(received)));
    if outcome_ok && bytes_ok && timing_ok && lower_ok && ready_ok && content_ok {
        return Ok(());
    }
    let mut observed = describe_result(result, took);
    if !content_ok {
        observed.push_str(&format!(", received {}", excerpt(received)));
    }
    if !timing_ok && late.is_notable() {
        observed.push_str(&format!(
            "; the case's threads ran up to {} late in this case (a timer woke late, or a side or the program waited for a CPU): the machine is overloaded",
            millis(lateness)
        ));
    }
    let kind = if !outcome_ok {
        MismatchKind::Outcome
    } else if !bytes_ok {
        MismatchKind::Bytes
    } else if !ready_ok {
        MismatchKind::Ready
    } else if !content_ok {
        MismatchKind::Content
    } else {
        MismatchKind::Timing
    };
    Err(Mismatch {
        kind,
        expected: describe_expect(expect, tolerance, late),
        observed,
    })
}

/// How late the harness's own threads ran in a case: how late its timers
/// woke (a `sleep` due at 100 ms that returned at 130 ms was 30 ms late),
/// or how long the side making a timed call waited for a CPU during it (as
/// the kernel counts it). On an overloaded machine the peers' calls are
/// late by about as much, through no fault of theirs:
/// a timing check allows that much more, and says so in its expectation
/// ("after 200 ms ±50 ms +30 ms of hangup's own lateness").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lateness(Duration);

impl Lateness {
    /// Below this, lateness is the scheduler's usual jitter and not named.
    const NOTABLE: Duration = Duration::from_millis(5);

    /// The lateness measured in a case.
    pub fn of(measured: Duration) -> Lateness {
        Lateness(measured)
    }

    /// Whether a report should name it.
    pub fn is_notable(self) -> bool {
        self.0 >= Self::NOTABLE
    }

    /// What a timing check allows on top of its tolerance.
    pub fn allowance(self) -> Duration {
        if self.is_notable() {
            self.0
        } else {
            Duration::ZERO
        }
    }
}

/// The expectation in words, e.g. "EPIPE (Broken pipe) after 200 ms ±50 ms".
pub fn describe_expect(expect: &Expect, tolerance: Tolerance, late: Lateness) -> String {
    let mut out = expect
        .result
        .iter()
        .map(Outcome::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    if let Some(bytes) = expect.bytes {
        out.push_str(&format!(", {bytes} bytes"));
    }
    if let Some(ready) = expect.revents {
        out.push_str(&format!(", ready: {ready}"));
    }
    if let Some(pattern) = &expect.matches {
        out.push_str(&format!(", received matching `{}`", pattern.0.as_str()));
    }
    if let Some(after) = expect.after {
        out.push_str(&format!(
            " after {} ±{}",
            millis(after),
            millis(tolerance.slack(after))
        ));
        if late.is_notable() {
            out.push_str(&format!(
                " +{} of hangup's own lateness",
                millis(late.allowance())
            ));
        }
    }
    if let Some(bound) = expect.longer_than {
        out.push_str(&format!(", taking longer than {}", millis(bound)));
    }
    out
}

/// A call's result in words, e.g. "ok, 1000 bytes after 3 ms".
pub fn describe_result(result: &CallResult, took: Duration) -> String {
    let ready = result
        .ready
        .map(|ready| format!(", ready: {ready}"))
        .unwrap_or_default();
    format!(
        "{}{ready}, {} bytes after {}",
        result.outcome,
        result.bytes,
        millis(took)
    )
}

/// Judges kernel states: every expected socket must be in its state.
pub fn judge_states(
    expected: &[(Socket, TcpState)],
    observed: &[(Socket, TcpState)],
) -> Result<(), Mismatch> {
    let holds = expected.iter().all(|want| observed.contains(want));
    if holds {
        return Ok(());
    }
    let words = |pairs: &[(Socket, TcpState)]| {
        pairs
            .iter()
            .map(|(socket, state)| format!("{socket} {}", state.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Mismatch {
        kind: MismatchKind::State,
        expected: words(expected),
        observed: words(observed),
    })
}

/// The start of what a read received, as a quoted line: escaped, cut at
/// 120 characters.
pub fn excerpt(received: &[u8]) -> String {
    const LONGEST: usize = 120;
    let text = String::from_utf8_lossy(received);
    let escaped: String = text.chars().flat_map(char::escape_default).collect();
    if escaped.chars().count() > LONGEST {
        let cut: String = escaped.chars().take(LONGEST).collect();
        format!("\"{cut}...\"")
    } else {
        format!("\"{escaped}\"")
    }
}

/// Whether `seen` is the count `wanted` asks for.
fn counted(wanted: LineCount, seen: u64) -> bool {
    match wanted {
        LineCount::AtLeastOne => seen >= 1,
        LineCount::Exactly(n) => seen == u64::from(n),
        LineCount::AtMost(n) => seen <= u64::from(n),
    }
}

/// ` within 300 ms` for one or more, ` over 300 ms` for a count watched
/// that long, or nothing.
fn counted_when(wanted: LineCount, within: Option<Duration>) -> String {
    match (wanted, within) {
        (LineCount::AtLeastOne, Some(d)) => format!(" within {}", millis(d)),
        (_, Some(d)) => format!(" over {}", millis(d)),
        (_, None) => String::new(),
    }
}

/// Judges a `log` check: `seen` lines matched `pattern`.
pub fn judge_log(
    pattern: &str,
    wanted: LineCount,
    within: Option<Duration>,
    seen: usize,
) -> Result<(), Mismatch> {
    if counted(wanted, seen as u64) {
        return Ok(());
    }
    let lines = |n: usize| {
        if n == 1 {
            "1 line".to_string()
        } else {
            format!("{n} lines")
        }
    };
    let when = counted_when(wanted, within);
    let expected = match wanted {
        LineCount::AtLeastOne => {
            format!("a line of the program's output matching `{pattern}`{when}")
        }
        LineCount::Exactly(n) => {
            format!(
                "{} of the program's output matching `{pattern}`{when}",
                lines(n as usize)
            )
        }
        LineCount::AtMost(n) => format!(
            "at most {} of the program's output matching `{pattern}`{when}",
            lines(n as usize)
        ),
    };
    Err(Mismatch {
        kind: MismatchKind::Log,
        expected,
        observed: format!("{} matching", lines(seen)),
    })
}

/// Judges a `taken` check: the fault `name` took `seen` packets.
pub fn judge_taken(
    name: &str,
    wanted: LineCount,
    within: Option<Duration>,
    seen: u64,
) -> Result<(), Mismatch> {
    if counted(wanted, seen) {
        return Ok(());
    }
    let packets = |n: u64| {
        if n == 1 {
            "1 packet".to_string()
        } else {
            format!("{n} packets")
        }
    };
    let when = counted_when(wanted, within);
    let expected = match wanted {
        LineCount::AtLeastOne => format!("the fault {name:?} to take a packet{when}"),
        LineCount::Exactly(n) => format!("the fault {name:?} to take {}{when}", packets(n.into())),
        LineCount::AtMost(n) => {
            format!(
                "the fault {name:?} to take at most {}{when}",
                packets(n.into())
            )
        }
    };
    Err(Mismatch {
        kind: MismatchKind::Taken,
        expected,
        observed: format!("it took {}", packets(seen)),
    })
}

/// Judges a `sent` check: `seen` segments matched `what` (`RST segments
/// the server sent`); `examples` are the first few, as the timeline shows
/// them; `otherwise` is what the side sent instead, when none matched.
pub fn judge_sent(
    what: &str,
    wanted: LineCount,
    within: Option<Duration>,
    seen: usize,
    examples: &[String],
    otherwise: &str,
) -> Result<(), Mismatch> {
    if counted(wanted, seen as u64) {
        return Ok(());
    }
    let when = counted_when(wanted, within);
    let expected = match wanted {
        LineCount::AtLeastOne => format!("one or more {what}{when}"),
        LineCount::Exactly(n) => format!("{n} {what}{when}"),
        LineCount::AtMost(n) => format!("at most {n} {what}{when}"),
    };
    let mut observed = format!("{seen}");
    if seen == 0 && !otherwise.is_empty() {
        observed.push_str(&format!(" ({otherwise})"));
    }
    if !examples.is_empty() {
        observed.push_str(&format!(": {}", examples.join("; ")));
        if seen > examples.len() {
            observed.push_str("; ...");
        }
    }
    Err(Mismatch {
        kind: MismatchKind::Packets,
        expected,
        observed,
    })
}

/// What a `syscall` check asked for, in words: "the program's write calls
/// with EPIPE on its connection 127.0.0.1:8080 <- 127.0.0.1:41234".
pub struct SyscallAsk<'a> {
    /// The calls' name (`write`, `sendmsg`).
    pub which: &'a str,
    /// The outcomes that count; none: any.
    pub results: &'a [Outcome],
    /// How many are wanted.
    pub wanted: LineCount,
    /// Over or within how long.
    pub within: Option<Duration>,
}

/// Judges a `syscall` check: `counted` of the program's calls matched;
/// `seen` describes every call of that name in the window (to say what
/// happened instead), `connection` the connection they were looked for on.
pub fn judge_syscall(
    ask: &SyscallAsk<'_>,
    connection: &str,
    counted: usize,
    seen: &[String],
) -> Result<(), Mismatch> {
    if self::counted(ask.wanted, counted as u64) {
        return Ok(());
    }
    let calls = |n: usize| {
        let name = ask.which;
        if n == 1 {
            format!("1 {name} call")
        } else {
            format!("{n} {name} calls")
        }
    };
    let with = if ask.results.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = ask.results.iter().map(ToString::to_string).collect();
        format!(" returning {}", names.join(" or "))
    };
    let when = counted_when(ask.wanted, ask.within);
    let how_many = match ask.wanted {
        LineCount::AtLeastOne => format!("a {} call", ask.which),
        LineCount::Exactly(n) => calls(n as usize),
        LineCount::AtMost(n) => format!("at most {}", calls(n as usize)),
    };
    let expected = format!(
        "{how_many}{with} by the program on {connection}{when} (of the calls returning after this side's latest call began)"
    );
    const LISTED: usize = 8;
    let mut observed = format!("{} matching", calls(counted));
    if !seen.is_empty() {
        let listed: Vec<&str> = seen.iter().take(LISTED).map(String::as_str).collect();
        observed.push_str(&format!(" (of these: {}", listed.join(", ")));
        if seen.len() > LISTED {
            observed.push_str(&format!(", and {} more", seen.len() - LISTED));
        }
        observed.push(')');
    }
    Err(Mismatch {
        kind: MismatchKind::Syscall,
        expected,
        observed,
    })
}

/// Judges a `released` check: the program holds `sockets` (its TCP
/// sockets but its listeners) and its listeners hold `queued` connections
/// it has not accepted. It passes when none of them is held against it
/// ([`HeldSocket::is_held_against`](crate::record::HeldSocket::is_held_against):
/// one of the case's connections, or a socket left in CLOSE_WAIT or
/// CLOSE) and none waits to be accepted. Its fds (`fds` now,
/// `fds_at_ready`, and the ones opened since) are said beside, not
/// judged: a runtime opens some lazily (a JVM's NIO a socketpair on its
/// first request), and a leaked connection is a socket, which is judged.
pub fn judge_released(
    sockets: &[crate::record::HeldSocket],
    queued: &[crate::record::QueuedAt],
    (fds, fds_at_ready, new_fds): (usize, Option<usize>, &[crate::record::OpenFd]),
    within: Option<Duration>,
) -> Result<(), Mismatch> {
    let against: Vec<&crate::record::HeldSocket> =
        sockets.iter().filter(|s| s.is_held_against()).collect();
    if against.is_empty() && queued.is_empty() {
        return Ok(());
    }
    let when = within
        .map(|d| format!(" within {}", millis(d)))
        .unwrap_or_default();
    let expected = format!(
        "the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE, and none waiting to be accepted{when}"
    );
    let held: Vec<String> = queued
        .iter()
        .map(ToString::to_string)
        .chain(against.iter().map(ToString::to_string))
        .collect();
    let observed = format!(
        "it holds {}; {}",
        held.join("; "),
        fds_in_words(fds, fds_at_ready, new_fds)
    );
    Err(Mismatch {
        kind: MismatchKind::Held,
        expected,
        observed,
    })
}

/// A program's fds as a `released` check tells them: `7 fds (6 at ready;
/// opened since: fd 8 socket UNIX-STREAM)`, `6 fds (as at ready)`.
pub fn fds_in_words(
    fds: usize,
    fds_at_ready: Option<usize>,
    new_fds: &[crate::record::OpenFd],
) -> String {
    let Some(at_ready) = fds_at_ready else {
        return format!("{fds} fds");
    };
    if new_fds.is_empty() && fds == at_ready {
        return format!("{fds} fds (as at ready)");
    }
    let mut out = format!("{fds} fds ({at_ready} at ready");
    if !new_fds.is_empty() {
        let named: Vec<String> = new_fds
            .iter()
            .map(|fd| match fd.pid {
                Some(pid) => format!("pid {pid} fd {}: {}", fd.fd, fd.target),
                None => format!("fd {}: {}", fd.fd, fd.target),
            })
            .collect();
        out.push_str(&format!("; opened since: {}", named.join(", ")));
    }
    out.push(')');
    out
}

/// `fd 7: CLOSE_WAIT 127.0.0.1:8080 <- 127.0.0.1:41234`, `pid 57 fd 7:
/// CLOSE (was 127.0.0.1:8080 <- 127.0.0.1:41234)`.
impl fmt::Display for crate::record::HeldSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pid) = self.pid {
            write!(f, "pid {pid} ")?;
        }
        write!(f, "fd {}: {}", self.fd, self.state.name())?;
        if let Some(local) = self.local {
            write!(f, " {local}")?;
        }
        if let Some(remote) = self.remote {
            write!(f, " <- {remote}")?;
        }
        if let Some((local, peer)) = self.was {
            write!(f, " (was {local} <- {peer})")?;
        }
        Ok(())
    }
}

/// `2 connections waiting in the accept queue of fd 4 (127.0.0.1:8080)`.
impl fmt::Display for crate::record::QueuedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.waiting {
            1 => f.write_str("1 connection")?,
            n => write!(f, "{n} connections")?,
        }
        write!(
            f,
            " waiting in the accept queue of fd {} ({})",
            self.fd, self.local
        )
    }
}

/// Judges an `accept_queue` check: per listening side, the count expected
/// and the count the kernel gave.
pub fn judge_accept_queue(
    counts: &[(crate::model::Side, u32, u32)],
    within: Option<Duration>,
) -> Result<(), Mismatch> {
    if counts.iter().all(|(_, expected, seen)| expected == seen) {
        return Ok(());
    }
    let when = within
        .map(|d| format!(" within {}", millis(d)))
        .unwrap_or_default();
    let each = |pick: fn(&(crate::model::Side, u32, u32)) -> u32| {
        counts
            .iter()
            .map(|c| format!("{} {}", c.0, waiting(pick(c))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Mismatch {
        kind: MismatchKind::AcceptQueue,
        expected: format!("in the accept queue: {}{when}", each(|c| c.1)),
        observed: each(|c| c.2),
    })
}

/// "1 connection waiting", "80 connections waiting".
pub fn waiting(n: u32) -> String {
    match n {
        1 => "1 connection waiting".to_string(),
        n => format!("{n} connections waiting"),
    }
}

/// A duration as people read timelines: "200 ms", "1.5 s".
pub fn millis(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Errno;

    fn expect(result: Vec<Outcome>, bytes: Option<u64>, after: Option<u64>) -> Expect {
        Expect {
            result,
            bytes,
            after: after.map(Duration::from_millis),
            longer_than: None,
            revents: None,
            matches: None,
        }
    }

    fn eagain() -> Outcome {
        Outcome::Errno("EAGAIN".parse::<Errno>().expect("known"))
    }

    #[test]
    fn an_errno_that_matches_passes_and_one_that_does_not_says_both() {
        let result = CallResult {
            outcome: Outcome::Ok,
            bytes: 1000,
            ready: None,
        };
        let want = expect(vec![eagain()], None, Some(200));
        let err = judge_call(
            &want,
            &result,
            &[],
            Duration::from_millis(3),
            Tolerance::DEFAULT,
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(
            err.expected,
            "EAGAIN (Resource temporarily unavailable) after 200 ms ±50 ms"
        );
        assert_eq!(err.observed, "ok, 1000 bytes after 3 ms");
        let seen = CallResult {
            outcome: eagain(),
            bytes: 0,
            ready: None,
        };
        assert_eq!(
            judge_call(
                &want,
                &seen,
                &[],
                Duration::from_millis(230),
                Tolerance::DEFAULT,
                Duration::ZERO
            ),
            Ok(())
        );
    }

    #[test]
    fn timing_uses_the_larger_of_floor_and_percent() {
        let tol = Tolerance {
            floor: Duration::from_millis(50),
            percent: 25,
        };
        assert_eq!(
            tol.slack(Duration::from_millis(100)),
            Duration::from_millis(50)
        );
        assert_eq!(
            tol.slack(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        let want = expect(vec![Outcome::Ok], None, Some(2000));
        let ok = CallResult {
            outcome: Outcome::Ok,
            bytes: 0,
            ready: None,
        };
        assert!(
            judge_call(
                &want,
                &ok,
                &[],
                Duration::from_millis(2450),
                tol,
                Duration::ZERO
            )
            .is_ok()
        );
        assert!(
            judge_call(
                &want,
                &ok,
                &[],
                Duration::from_millis(2550),
                tol,
                Duration::ZERO
            )
            .is_err()
        );
        assert!(
            judge_call(
                &want,
                &ok,
                &[],
                Duration::from_millis(1450),
                tol,
                Duration::ZERO
            )
            .is_err()
        );
    }

    #[test]
    fn the_run_may_widen_a_tolerance_but_never_narrow_it() {
        let suite = Tolerance {
            floor: Duration::from_millis(50),
            percent: 25,
        };
        let wider = suite.widened(Some(Duration::from_millis(200)), Some(50));
        assert_eq!(wider.floor, Duration::from_millis(200));
        assert_eq!(wider.percent, 50);
        assert_eq!(
            suite.widened(Some(Duration::from_millis(10)), Some(5)),
            suite
        );
        assert_eq!(suite.widened(None, None), suite);
    }

    #[test]
    fn the_harness_s_own_lateness_widens_a_timing_check_and_is_named() {
        let want = expect(vec![Outcome::Ok], None, Some(200));
        let ok = CallResult {
            outcome: Outcome::Ok,
            bytes: 0,
            ready: None,
        };
        let took = Duration::from_millis(290);
        // 90 ms off, 50 ms allowed: fails, and the machine's jitter is not named.
        let err = judge_call(
            &want,
            &ok,
            &[],
            took,
            Tolerance::DEFAULT,
            Duration::from_millis(2),
        )
        .unwrap_err();
        assert_eq!(err.expected, "ok after 200 ms ±50 ms");
        assert!(!err.observed.contains("late"), "{}", err.observed);
        // 30 ms of measured lateness: still fails, and says so.
        let err = judge_call(
            &want,
            &ok,
            &[],
            took,
            Tolerance::DEFAULT,
            Duration::from_millis(30),
        )
        .unwrap_err();
        assert_eq!(
            err.expected,
            "ok after 200 ms ±50 ms +30 ms of hangup's own lateness"
        );
        assert!(
            err.observed.ends_with(
                "the case's threads ran up to 30 ms late in this case (a timer woke late, or a side or the program waited for a CPU): the machine is overloaded"
            ),
            "{}",
            err.observed
        );
        // 45 ms: within 50 + 45.
        assert!(
            judge_call(
                &want,
                &ok,
                &[],
                took,
                Tolerance::DEFAULT,
                Duration::from_millis(45)
            )
            .is_ok()
        );
    }

    #[test]
    fn poll_readiness_is_judged_exactly() {
        let mut want = expect(vec![Outcome::Ok], None, None);
        want.revents = Some(crate::model::PollEvents::from_names(["in", "rdhup"]).expect("names"));
        let mut seen = CallResult {
            outcome: Outcome::Ok,
            bytes: 0,
            ready: Some(crate::model::PollEvents::from_names(["in"]).expect("names")),
        };
        let err = judge_call(
            &want,
            &seen,
            &[],
            Duration::ZERO,
            Tolerance::DEFAULT,
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(err.expected, "ok, ready: in rdhup");
        assert_eq!(err.observed, "ok, ready: in, 0 bytes after 0 ms");
        seen.ready = want.revents;
        assert!(
            judge_call(
                &want,
                &seen,
                &[],
                Duration::ZERO,
                Tolerance::DEFAULT,
                Duration::ZERO
            )
            .is_ok()
        );
    }

    #[test]
    fn syscall_counts_say_what_was_wanted_and_list_what_the_program_did() {
        let epipe = [Outcome::Errno(Errno::from_raw(nix::libc::EPIPE))];
        let ask = SyscallAsk {
            which: "write",
            results: &epipe,
            wanted: LineCount::AtLeastOne,
            within: Some(Duration::from_secs(1)),
        };
        let on = "its connection 127.0.0.1:8080 <- 127.0.0.1:4000";
        assert!(judge_syscall(&ask, on, 1, &[]).is_ok());
        let seen: Vec<String> = (0..10).map(|i| format!("writev(fd 7) = {i} B")).collect();
        let err = judge_syscall(&ask, on, 0, &seen).unwrap_err();
        assert_eq!(err.kind, MismatchKind::Syscall);
        assert_eq!(
            err.expected,
            "a write call returning EPIPE (Broken pipe) by the program on its connection \
             127.0.0.1:8080 <- 127.0.0.1:4000 within 1000 ms (of the calls returning after \
             this side's latest call began)"
        );
        assert!(
            err.observed
                .starts_with("0 write calls matching (of these: writev(fd 7) = 0 B, ")
        );
        assert!(err.observed.ends_with(", and 2 more)"), "{}", err.observed);
        let never = SyscallAsk {
            wanted: LineCount::Exactly(0),
            results: &[],
            ..ask
        };
        let err = judge_syscall(&never, on, 1, &seen[..1]).unwrap_err();
        assert!(
            err.expected.starts_with("0 write calls by the program"),
            "{}",
            err.expected
        );
        assert_eq!(
            err.observed,
            "1 write call matching (of these: writev(fd 7) = 0 B)"
        );
    }

    #[test]
    fn log_counts_are_judged_and_say_what_they_wanted() {
        let second = Some(Duration::from_secs(1));
        assert!(judge_log("abort", LineCount::AtLeastOne, second, 2).is_ok());
        let err = judge_log("abort", LineCount::AtLeastOne, second, 0).unwrap_err();
        assert_eq!(
            err.expected,
            "a line of the program's output matching `abort` within 1000 ms"
        );
        assert_eq!(err.observed, "0 lines matching");
        let err = judge_log("at ", LineCount::Exactly(0), second, 10).unwrap_err();
        assert_eq!(
            err.expected,
            "0 lines of the program's output matching `at ` over 1000 ms"
        );
        assert!(judge_log("x", LineCount::AtMost(1), None, 1).is_ok());
        let err = judge_log("x", LineCount::AtMost(1), None, 2).unwrap_err();
        assert_eq!(
            err.expected,
            "at most 1 line of the program's output matching `x`"
        );
        assert_eq!(err.kind, MismatchKind::Log);
    }

    #[test]
    fn what_a_read_received_is_matched_and_shown_when_it_does_not() {
        let mut want = expect(vec![Outcome::Ok], None, None);
        want.matches = Some(crate::suite::Pattern(
            regex::Regex::new(r"^HTTP/1\.1 200").expect("pattern"),
        ));
        let ok = CallResult {
            outcome: Outcome::Ok,
            bytes: 30,
            ready: None,
        };
        let bad_gateway = b"HTTP/1.1 502 Bad Gateway\r\n\r\n";
        let err = judge_call(
            &want,
            &ok,
            bad_gateway,
            Duration::ZERO,
            Tolerance::DEFAULT,
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(err.kind, MismatchKind::Content);
        assert_eq!(err.expected, r"ok, received matching `^HTTP/1\.1 200`");
        assert!(
            err.observed
                .ends_with(r#"received "HTTP/1.1 502 Bad Gateway\r\n\r\n""#),
            "{}",
            err.observed
        );
        let fine = b"HTTP/1.1 200 OK\r\n\r\n";
        assert!(
            judge_call(
                &want,
                &ok,
                fine,
                Duration::ZERO,
                Tolerance::DEFAULT,
                Duration::ZERO
            )
            .is_ok()
        );
    }

    #[test]
    fn a_release_judges_connections_and_tells_fds_beside() {
        use crate::record::{HeldSocket, OpenFd, QueuedAt};
        let socket = |state, of_the_case| HeldSocket {
            pid: None,
            fd: 7,
            state,
            local: Some("127.0.0.1:8080".parse().expect("addr")),
            remote: Some("127.0.0.1:40000".parse().expect("addr")),
            was: None,
            of_the_case,
        };
        let grown = [OpenFd {
            pid: None,
            fd: 8,
            target: "socket UNIX-STREAM".into(),
        }];
        // Nothing held, an fd more than at ready: it passes (the fd is said
        // in the timeline, not judged).
        assert!(judge_released(&[], &[], (8, Some(7), &grown), None).is_ok());
        // A connection of its own to something else, established: its
        // business.
        let own = [socket(TcpState::Established, false)];
        assert!(judge_released(&own, &[], (8, Some(8), &[]), None).is_ok());
        // One of the case's connections, in any state; or any socket left in
        // CLOSE_WAIT or CLOSE.
        for held in [
            socket(TcpState::Established, true),
            socket(TcpState::CloseWait, false),
            socket(TcpState::Close, false),
        ] {
            assert!(judge_released(&[held], &[], (8, Some(8), &[]), None).is_err());
        }
        let err = judge_released(
            &[socket(TcpState::CloseWait, true)],
            &[],
            (8, Some(7), &grown),
            Some(Duration::from_secs(1)),
        )
        .unwrap_err();
        assert_eq!(err.kind, MismatchKind::Held);
        assert_eq!(
            err.expected,
            "the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE, and none waiting to be accepted within 1000 ms"
        );
        assert_eq!(
            err.observed,
            "it holds fd 7: CLOSE_WAIT 127.0.0.1:8080 <- 127.0.0.1:40000; 8 fds (7 at ready; opened since: fd 8: socket UNIX-STREAM)"
        );
        let queued = [QueuedAt {
            fd: 4,
            local: "127.0.0.1:8080".parse().expect("addr"),
            waiting: 2,
        }];
        let err = judge_released(&[], &queued, (5, Some(5), &[]), None).unwrap_err();
        assert_eq!(
            err.observed,
            "it holds 2 connections waiting in the accept queue of fd 4 (127.0.0.1:8080); 5 fds (as at ready)"
        );
    }

    #[test]
    fn bytes_and_eof_are_judged() {
        let want = expect(vec![Outcome::Ok], Some(5), None);
        let short = CallResult {
            outcome: Outcome::Ok,
            bytes: 4,
            ready: None,
        };
        assert!(
            judge_call(
                &want,
                &short,
                &[],
                Duration::ZERO,
                Tolerance::DEFAULT,
                Duration::ZERO
            )
            .is_err()
        );
        let eof = CallResult {
            outcome: Outcome::Eof,
            bytes: 0,
            ready: None,
        };
        let err = judge_call(
            &expect(vec![Outcome::Ok], None, None),
            &eof,
            &[],
            Duration::ZERO,
            Tolerance::DEFAULT,
            Duration::ZERO,
        );
        assert_eq!(
            err.unwrap_err().observed,
            "EOF (read returned 0), 0 bytes after 0 ms"
        );
    }
}
