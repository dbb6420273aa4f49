//! Judging things counted over a window: lines of a program's output
//! (`log`), packets a fault took (`taken`), segments a side sent (`sent`)
//! and a program's own socket calls (`syscall`). Each asks for one or
//! more, exactly n, or at most n, and a mismatch says how many were seen.

use std::time::Duration;

use super::{Mismatch, MismatchKind, millis};
use crate::model::{Errno, Outcome};
use crate::suite::LineCount;

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
    seen: u64,
) -> Result<(), Mismatch> {
    if counted(wanted, seen) {
        return Ok(());
    }
    let lines = |n: u64| {
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
                lines(u64::from(n))
            )
        }
        LineCount::AtMost(n) => format!(
            "at most {} of the program's output matching `{pattern}`{when}",
            lines(u64::from(n))
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

/// Judges an `errnos` invariant: of the `calls` the program made on
/// `connection` (its whole life so far), `outside` describe those that
/// failed with an errno `allowed` does not hold (EAGAIN and EINTR aside).
pub fn judge_errnos(
    allowed: &[Errno],
    within: Option<Duration>,
    connection: &str,
    calls: usize,
    outside: &[String],
) -> Result<(), Mismatch> {
    if outside.is_empty() {
        return Ok(());
    }
    let set = if allowed.is_empty() {
        "no errno".to_string()
    } else {
        let names: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        format!("only {}", names.join(" or "))
    };
    let over = within.map_or(String::new(), |d| format!(" over {}", millis(d)));
    let expected = format!(
        "the program's calls on {connection} to fail with {set} (EAGAIN and EINTR aside){over}"
    );
    const LISTED: usize = 8;
    let listed: Vec<&str> = outside.iter().take(LISTED).map(String::as_str).collect();
    let mut observed = format!(
        "{} of its {calls} calls failed otherwise: {}",
        outside.len(),
        listed.join(", ")
    );
    if outside.len() > LISTED {
        observed.push_str(&format!(", and {} more", outside.len() - LISTED));
    }
    Err(Mismatch {
        kind: MismatchKind::Syscall,
        expected,
        observed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn errnos_name_each_call_outside_the_set() {
        let epipe = Errno::from_raw(nix::libc::EPIPE);
        let on = "its connection 127.0.0.1:8080 <- 127.0.0.1:4000";
        assert!(judge_errnos(&[epipe], None, on, 3, &[]).is_ok());
        let outside = ["writev(fd 5) = ETIMEDOUT (Connection timed out) at +3.1 s".to_string()];
        let err = judge_errnos(&[epipe], None, on, 3, &outside).unwrap_err();
        assert_eq!(err.kind, MismatchKind::Syscall);
        assert_eq!(
            err.expected,
            "the program's calls on its connection 127.0.0.1:8080 <- 127.0.0.1:4000 to fail \
             with only EPIPE (Broken pipe) (EAGAIN and EINTR aside)"
        );
        assert_eq!(
            err.observed,
            "1 of its 3 calls failed otherwise: writev(fd 5) = ETIMEDOUT (Connection timed out) at +3.1 s"
        );
        let err = judge_errnos(&[], Some(Duration::from_secs(1)), on, 1, &outside).unwrap_err();
        assert!(
            err.expected
                .ends_with("to fail with no errno (EAGAIN and EINTR aside) over 1000 ms"),
            "{}",
            err.expected
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
}
