//! Judging one socket call: its outcome (ok, EOF or the errno), the bytes
//! it moved, the events a poll reported, what a read received and how
//! long it took. A timing check allows for the harness's own
//! [`Lateness`] on an overloaded machine, and says so.

use std::time::Duration;

use super::{Mismatch, MismatchKind, millis};
use crate::model::{CallResult, Outcome};
use crate::suite::{Expect, Tolerance};

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
    // A read to a mark of an HTTP response that its framing ended short
    // of never reached what the step reads to, whatever it expected.
    let framing_ok = result.short.is_none();
    if outcome_ok && bytes_ok && timing_ok && lower_ok && ready_ok && content_ok && framing_ok {
        return Ok(());
    }
    let mut observed = describe_result(result, took);
    if let Some(short) = result.short {
        observed.push_str(&format!(", short of its mark: {short}"));
    }
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
    } else if !content_ok || !framing_ok {
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
            short: None,
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
            short: None,
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
            short: None,
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
            short: None,
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
            short: None,
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

    /// A read to an HTTP response's 3rd chunk that met its last chunk
    /// after 2 fails though every read succeeded, saying why.
    #[test]
    fn a_read_its_response_ended_short_of_its_mark_fails() {
        let want = expect(vec![Outcome::Ok], None, None);
        let short = CallResult {
            outcome: Outcome::Ok,
            bytes: 2074,
            ready: None,
            short: Some(crate::model::Short::BodyEnded { chunks: 2 }),
        };
        let err = judge_call(
            &want,
            &short,
            b"",
            Duration::from_millis(3),
            Tolerance::DEFAULT,
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(err.kind, MismatchKind::Content);
        assert_eq!(
            err.observed,
            "ok, 2074 bytes after 3 ms, short of its mark: the body ended (its last chunk, of size 0) after 2 chunks"
        );
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
            short: None,
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
    fn bytes_and_eof_are_judged() {
        let want = expect(vec![Outcome::Ok], Some(5), None);
        let short = CallResult {
            outcome: Outcome::Ok,
            bytes: 4,
            ready: None,
            short: None,
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
            short: None,
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
