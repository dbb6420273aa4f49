//! What changed between two runs: the upgrade diff.
//!
//! `hangup run ... --json base.json` against one version of a program,
//! again with `--json new.json` against the next, then `hangup diff
//! base.json new.json`: every observation that changed, per case, not just
//! pass or fail. A case's observations are read from its JSON timeline:
//!
//! - each call, by side, step and action: its outcome (ok, EOF, the errno),
//!   the bytes it moved, the events a poll saw ready, and how long it took
//!   when that changed beyond the timing tolerance;
//! - each state the kernel reported, by socket and the step that checked it;
//! - what a `log` check counted, and how the program under test ended;
//! - on the wire, when both runs captured packets: whether each side sent
//!   a FIN and whether it sent an RST, and whose FIN came first (a close
//!   that became a reset, or a server that now closes first); not how many
//!   segments, which delayed ACKs, coalescing and retransmission timers
//!   change from run to run;
//! - the case's verdict.
//!
//! What differs between any two runs by design is left out: the program's
//! own output lines (ports, pids), when things happened, and the command it
//! was started with. An observation met again (a loop's rounds, a state
//! checked twice by one step) is told apart by its count.
//!
//! A difference can be accepted: an accept file lists differences exactly
//! as [`Difference`]'s display writes them, one a line (`#` starts a
//! comment), and the diff then fails only on the others.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::JSON_FORMAT;
use crate::suite::Tolerance;
use crate::verdict::millis;

/// One observation that changed in one case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Difference {
    /// The case's test name.
    pub case: String,
    /// What changed, e.g. `server state (step 5): CLOSE_WAIT -> gone`.
    pub what: String,
}

/// `case: what`, the form an accept file lists.
impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.case, self.what)
    }
}

/// Why two reports could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Not a hangup JSON report of a format this version reads.
    #[error("{which} is not a hangup JSON report of format {JSON_FORMAT}: {why}")]
    NotAReport {
        /// `base` or `new`.
        which: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// Compares the last round of two JSON reports (as `hangup run --json`
/// writes them); a call's duration counts as changed when the two differ
/// by more than `tolerance` allows for the longer of them.
pub fn diff(base: &Value, new: &Value, tolerance: Tolerance) -> Result<Vec<Difference>, DiffError> {
    let base_cases = last_round(base, "base")?;
    let new_cases = last_round(new, "new")?;
    let names: BTreeSet<&String> = base_cases.keys().chain(new_cases.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let mut add = |what: String| {
            out.push(Difference {
                case: name.clone(),
                what,
            })
        };
        match (base_cases.get(name), new_cases.get(name)) {
            (Some(_), None) => add("only in base".into()),
            (None, Some(_)) => add("only in new".into()),
            (None, None) => {}
            (Some(a), Some(b)) => {
                let (verdict_a, verdict_b) = (verdict(a), verdict(b));
                if verdict_a != verdict_b {
                    add(format!("verdict: {verdict_a} -> {verdict_b}"));
                }
                let (mut obs_a, mut obs_b) = (observations(a), observations(b));
                // Packets are compared only when both runs captured them
                // (`--no-capture` in one leaves them out of both).
                let captured =
                    |obs: &[(String, Seen)]| obs.iter().any(|(k, _)| k.starts_with(WIRE));
                if !(captured(&obs_a) && captured(&obs_b)) {
                    obs_a.retain(|(k, _)| !k.starts_with(WIRE));
                    obs_b.retain(|(k, _)| !k.starts_with(WIRE));
                }
                let in_b: BTreeMap<&str, &Seen> =
                    obs_b.iter().map(|(k, v)| (k.as_str(), v)).collect();
                let in_a: BTreeMap<&str, &Seen> =
                    obs_a.iter().map(|(k, v)| (k.as_str(), v)).collect();
                // Observations one run made and the other did not: named one
                // by one when few, else the first and a count (a case that
                // stopped early misses everything after).
                let mut unseen_in_new = Vec::new();
                for (key, x) in &obs_a {
                    match in_b.get(key.as_str()) {
                        Some(y) if x.value != y.value => {
                            add(format!("{key}: {} -> {}", x.value, y.value));
                        }
                        Some(y) => {
                            if let (Some(ta), Some(tb)) = (x.took, y.took) {
                                let slack = tolerance.slack(ta.max(tb));
                                if ta.abs_diff(tb) > slack {
                                    add(format!("{key}: took {} -> {}", millis(ta), millis(tb)));
                                }
                            }
                        }
                        None => unseen_in_new.push(format!("{key}: {} -> (not seen)", x.value)),
                    }
                }
                let unseen_in_base: Vec<String> = obs_b
                    .iter()
                    .filter(|(key, _)| !in_a.contains_key(key.as_str()))
                    .map(|(key, y)| format!("{key}: (not seen) -> {}", y.value))
                    .collect();
                for (unseen, run) in [(unseen_in_new, "new"), (unseen_in_base, "base")] {
                    if unseen.len() <= FOLD_AFTER {
                        unseen.into_iter().for_each(&mut add);
                    } else {
                        let more = unseen.len() - 1;
                        let first = unseen.into_iter().next().unwrap_or_default();
                        add(first);
                        add(format!("and {more} more observations not seen in {run}"));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The cases of a report's last round, by test name.
fn last_round<'a>(
    report: &'a Value,
    which: &'static str,
) -> Result<BTreeMap<String, &'a Value>, DiffError> {
    let not = |why: &str| DiffError::NotAReport {
        which,
        why: why.to_string(),
    };
    match report.get("format").and_then(Value::as_u64) {
        Some(format) if format == u64::from(JSON_FORMAT) => {}
        Some(other) => return Err(not(&format!("its format is {other}"))),
        None => return Err(not("it has no `format`")),
    }
    let cases = report
        .get("rounds")
        .and_then(Value::as_array)
        .and_then(|rounds| rounds.last())
        .and_then(|round| round.get("cases"))
        .and_then(Value::as_array)
        .ok_or_else(|| not("it has no round with cases"))?;
    let mut by_name = BTreeMap::new();
    for case in cases {
        let name = case
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| not("a case has no `name`"))?;
        by_name.insert(name.to_string(), case);
    }
    Ok(by_name)
}

/// `passed`, `ignored`, or `failed (expectation)` and the like.
fn verdict(case: &Value) -> String {
    let status = case.get("status").and_then(Value::as_str).unwrap_or("?");
    match case.get("kind").and_then(Value::as_str) {
        Some(kind) if status == "failed" => format!("failed ({kind})"),
        _ => status.to_string(),
    }
}

/// One observation: what was seen, and for a call how long it took.
struct Seen {
    value: String,
    took: Option<Duration>,
}

/// How many observations seen in one run only are listed one by one.
const FOLD_AFTER: usize = 3;

/// How the note of a timeline that shows only its first packets starts
/// (`runner::case`'s).
pub const TIMELINE_CUT_SHORT: &str = "the timeline shows the first ";

/// What the keys of packet observations start with.
const WIRE: &str = "on the wire: ";

/// Whether each side that sent or received a segment sent a FIN, and an
/// RST, and whose FIN came first; nothing when no packet was captured.
fn wire(events: &[Value]) -> Vec<(String, Seen)> {
    let packets: Vec<&Value> = events.iter().filter(|e| e["event"] == "packet").collect();
    // A timeline that keeps only the first packets cannot say that a side
    // sent no FIN: leave the wire out (of both runs, then).
    let cut_short = events.iter().any(|e| {
        e["event"] == "note"
            && e["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(TIMELINE_CUT_SHORT))
    });
    if packets.is_empty() || cut_short {
        return Vec::new();
    }
    let flags = |e: &Value, flag: &str| {
        e["flags"]
            .as_str()
            .is_some_and(|f| f.split('|').any(|x| x == flag))
    };
    let mut sides = BTreeSet::new();
    for packet in &packets {
        for key in ["side", "to_side"] {
            if let Some(side) = packet[key].as_str() {
                sides.insert(side);
            }
        }
    }
    let seen = |value: String| Seen { value, took: None };
    let mut out = Vec::new();
    for side in sides {
        for flag in ["FIN", "RST"] {
            let sent = packets
                .iter()
                .any(|p| p["side"].as_str() == Some(side) && flags(p, flag));
            out.push((
                format!("{WIRE}{side} sent {flag}"),
                seen(if sent { "yes" } else { "no" }.into()),
            ));
        }
    }
    let first = packets
        .iter()
        .find(|p| flags(p, "FIN"))
        .map_or("none", |p| p["side"].as_str().unwrap_or("?"));
    out.push((format!("{WIRE}first FIN"), seen(first.into())));
    out
}

/// A case's observations in the order they happened, each keyed by what
/// was observed (see the module docs).
fn observations(case: &Value) -> Vec<(String, Seen)> {
    let mut out = Vec::new();
    let mut met: BTreeMap<String, usize> = BTreeMap::new();
    let events = case
        .pointer("/timeline/events")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for event in events {
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("");
        let side = text("side");
        let seen = match text("event") {
            "call" => {
                let result = &event["result"];
                let mut value = match &result["outcome"] {
                    Value::String(word) => word.to_lowercase(),
                    Value::Object(errno) => errno
                        .get("Errno")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string(),
                    other => other.to_string(),
                };
                if let Some(bytes) = result["bytes"].as_u64().filter(|b| *b > 0) {
                    value.push_str(&format!(", {bytes} B"));
                }
                if let Some(ready) = result.get("ready").and_then(Value::as_array) {
                    let names: Vec<&str> = ready.iter().filter_map(Value::as_str).collect();
                    value.push_str(&format!(", ready: {}", names.join(" ")));
                }
                let took = event["took_ms"]
                    .as_f64()
                    .map(|ms| Duration::from_micros((ms * 1000.0) as u64));
                let key = format!("{side} #{} {}", event["step"], text("action"));
                Some((key, Seen { value, took }))
            }
            // A reading on the way depends on timing, not on the program.
            "state" if event["on_the_way"].as_bool() == Some(true) => None,
            "state" => {
                let key = format!("{} state (step {})", text("socket"), event["step"]);
                Some((
                    key,
                    Seen {
                        value: text("state").to_string(),
                        took: None,
                    },
                ))
            }
            "note" => {
                let note = text("text");
                // A log or syscall check's count, and how the program
                // ended; other notes carry pids, ports or times.
                let kept = note.starts_with("log ")
                    || note.starts_with("syscall ")
                    || (note.starts_with("program ")
                        && !note.starts_with("program started")
                        && !note.starts_with("program ready"));
                // The count comes last, after the pattern, which may
                // itself hold ": ".
                kept.then(|| match note.rsplit_once(": ") {
                    Some((what, value)) => (
                        format!("{side} {what}"),
                        Seen {
                            value: value.to_string(),
                            took: None,
                        },
                    ),
                    None => (
                        format!("{side} program"),
                        Seen {
                            value: note.trim_start_matches("program ").to_string(),
                            took: None,
                        },
                    ),
                })
            }
            _ => None,
        };
        if let Some((key, seen)) = seen {
            let count = met.entry(key.clone()).or_insert(0);
            *count += 1;
            let key = if *count == 1 {
                key
            } else {
                format!("{key} [{count}]")
            };
            out.push((key, seen));
        }
    }
    out.extend(wire(events));
    out
}

/// The differences an accept file lists: one a line, exactly as
/// [`Difference`] displays them; blank lines and `#` comments are skipped.
pub fn accepted(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The differences between the two versions of each case that a suite
/// runs against two versions of its program (`compare`), from one run's
/// `reports`: each pair compared as `hangup diff` compares two runs, named
/// `<suite>::<case> (<base> -> <new>)`.
pub fn between_versions(
    suites: &[crate::suite::Suite],
    reports: &[super::CaseReport],
    tolerance: Tolerance,
) -> Vec<Difference> {
    let mut out = Vec::new();
    for suite in suites {
        let pairs = suite.cases.iter().filter_map(|case| {
            let version = case.version.as_ref().filter(|v| v.base)?;
            let new = suite.cases.iter().find(|other| {
                other
                    .version
                    .as_ref()
                    .is_some_and(|v| !v.base && v.case == version.case)
            })?;
            Some((case, version, new))
        });
        for (base, version, new) in pairs {
            let found = |case: &crate::suite::Case| {
                let name = case.test_name(suite);
                reports.iter().find(|r| r.name == name)
            };
            let (Some(a), Some(b)) = (found(base), found(new)) else {
                continue;
            };
            let new_name = new.version.as_ref().map_or("", |v| v.name.as_str());
            let label = format!(
                "{}::{} ({} -> {new_name})",
                suite.name, version.case, version.name
            );
            // Each as a one-case report of its own, under the one name.
            let as_report = |report: &super::CaseReport| {
                let mut case = serde_json::to_value(report).unwrap_or(Value::Null);
                case["name"] = Value::String(label.clone());
                serde_json::json!({ "format": JSON_FORMAT, "rounds": [{ "round": 1, "cases": [case] }] })
            };
            if let Ok(differences) = diff(&as_report(a), &as_report(b), tolerance) {
                out.extend(differences);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(status: &str, state: &str, took_ms: f64) -> Value {
        json!({
            "format": 1,
            "rounds": [{ "round": 1, "cases": [{
                "name": "s::c",
                "status": status,
                "kind": if status == "failed" { Some("expectation") } else { None },
                "timeline": { "events": [
                    { "at_ms": 0.1, "side": "client", "event": "call", "step": 3, "action": "recv (timeout 200 ms)",
                      "took_ms": took_ms, "result": { "outcome": { "Errno": "EAGAIN" }, "bytes": 0 } },
                    { "at_ms": 5.0, "side": "server", "event": "state", "socket": "server", "state": state,
                      "source": "sock_diag", "step": 5, "samples": 3 },
                    { "at_ms": 6.0, "side": "server", "event": "output", "stream": "err", "line": "port 41234" },
                    { "at_ms": 7.0, "side": "server", "event": "note", "text": "program started: ./s (pid 77)" },
                ] },
            }] }],
        })
    }

    fn whats(differences: &[Difference]) -> Vec<String> {
        differences.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_same_observations_are_no_difference_whatever_the_pids_and_ports() {
        let mut other = report("passed", "gone", 200.0);
        other["rounds"][0]["cases"][0]["timeline"]["events"][2]["line"] = json!("port 50000");
        other["rounds"][0]["cases"][0]["timeline"]["events"][3]["text"] =
            json!("program started: ./s (pid 99)");
        let found = diff(&report("passed", "gone", 200.0), &other, Tolerance::DEFAULT);
        assert_eq!(whats(&found.expect("comparable")), Vec::<String>::new());
    }

    /// A report whose case saw these packets: (sender, receiver, flags).
    fn wire_report(packets: &[(&str, &str, &str)]) -> Value {
        let mut r = report("passed", "gone", 200.0);
        let events = r["rounds"][0]["cases"][0]["timeline"]["events"]
            .as_array_mut()
            .expect("events");
        for (from, to, flags) in packets {
            events.push(json!({ "side": from, "event": "packet", "to_side": to, "flags": flags,
                "from": "127.0.0.1:1", "to": "127.0.0.1:2", "seq": 0, "ack": 0, "window": 0, "len": 0 }));
        }
        r
    }

    #[test]
    fn a_close_that_became_a_reset_is_named_and_segment_counts_are_not() {
        let graceful = wire_report(&[
            ("client", "server", "FIN|ACK"),
            ("server", "client", "ACK"),
            ("server", "client", "FIN|ACK"),
            ("client", "server", "ACK"),
        ]);
        // Another delayed ACK, and the same closes: no difference.
        let mut again = graceful.clone();
        again["rounds"][0]["cases"][0]["timeline"]["events"]
            .as_array_mut()
            .expect("events")
            .push(
                json!({ "side": "client", "event": "packet", "to_side": "server", "flags": "ACK" }),
            );
        let found = diff(&graceful, &again, Tolerance::DEFAULT).expect("comparable");
        assert_eq!(whats(&found), Vec::<String>::new());

        let reset = wire_report(&[
            ("server", "client", "RST|ACK"),
            ("client", "server", "FIN|ACK"),
        ]);
        let found = diff(&graceful, &reset, Tolerance::DEFAULT).expect("comparable");
        assert_eq!(
            whats(&found),
            [
                "s::c: on the wire: server sent FIN: yes -> no",
                "s::c: on the wire: server sent RST: no -> yes",
            ]
        );
        let server_first = wire_report(&[
            ("server", "client", "FIN|ACK"),
            ("client", "server", "FIN|ACK"),
        ]);
        let found = diff(&graceful, &server_first, Tolerance::DEFAULT).expect("comparable");
        assert_eq!(
            whats(&found),
            ["s::c: on the wire: first FIN: client -> server"]
        );
        // One run whose timeline kept only its first packets: it cannot
        // say no FIN came, so packets are not compared.
        let mut cut_short = reset.clone();
        cut_short["rounds"][0]["cases"][0]["timeline"]["events"]
            .as_array_mut()
            .expect("events")
            .push(json!({ "event": "note", "text": format!("{TIMELINE_CUT_SHORT}5000 packets; ...") }));
        let found = diff(&graceful, &cut_short, Tolerance::DEFAULT).expect("comparable");
        assert_eq!(whats(&found), Vec::<String>::new());
        // One run without a capture: packets are not compared.
        let found = diff(
            &graceful,
            &report("passed", "gone", 200.0),
            Tolerance::DEFAULT,
        );
        assert_eq!(whats(&found.expect("comparable")), Vec::<String>::new());
    }

    #[test]
    fn a_changed_state_verdict_and_timing_are_each_named() {
        let found = diff(
            &report("passed", "gone", 200.0),
            &report("failed", "CLOSE_WAIT", 900.0),
            Tolerance::DEFAULT,
        )
        .expect("comparable");
        assert_eq!(
            whats(&found),
            [
                "s::c: verdict: passed -> failed (expectation)",
                "s::c: client #3 recv (timeout 200 ms): took 200 ms -> 900 ms",
                "s::c: server state (step 5): gone -> CLOSE_WAIT",
            ]
        );
        // A case that stopped early misses what came after: folded.
        let mut short = report("failed", "gone", 200.0);
        let events = &mut short["rounds"][0]["cases"][0]["timeline"]["events"];
        let mut many = report("passed", "gone", 200.0);
        let all = many["rounds"][0]["cases"][0]["timeline"]["events"]
            .as_array_mut()
            .expect("events");
        for step in 10..20 {
            all.push(
                json!({ "side": "client", "event": "call", "step": step, "action": "close",
                "took_ms": 0.0, "result": { "outcome": "Ok", "bytes": 0 } }),
            );
        }
        *events = json!([]);
        let folded = whats(&diff(&many, &short, Tolerance::DEFAULT).expect("comparable"));
        assert_eq!(
            folded,
            [
                "s::c: verdict: passed -> failed (expectation)",
                "s::c: client #3 recv (timeout 200 ms): EAGAIN -> (not seen)",
                "s::c: and 11 more observations not seen in new",
            ]
        );
        // Within the tolerance: no difference.
        let close = diff(
            &report("passed", "gone", 200.0),
            &report("passed", "gone", 240.0),
            Tolerance::DEFAULT,
        );
        assert!(close.expect("comparable").is_empty());
    }

    #[test]
    fn a_log_count_is_told_apart_by_its_whole_pattern() {
        let with = |events: Value| {
            let mut r = report("passed", "gone", 200.0);
            r["rounds"][0]["cases"][0]["timeline"]["events"] = events;
            r
        };
        let notes = |quiet: u32, raised: u32| {
            with(json!([
                { "side": "client", "event": "note",
                  "text": format!("log \"^app: send returned\": {quiet} matching") },
                { "side": "client", "event": "note",
                  "text": format!("log \"^app: send raised\": {raised} matching") },
            ]))
        };
        let found = diff(&notes(1, 0), &notes(0, 1), Tolerance::DEFAULT).expect("comparable");
        assert_eq!(
            whats(&found),
            [
                "s::c: client log \"^app: send returned\": 1 matching -> 0 matching",
                "s::c: client log \"^app: send raised\": 0 matching -> 1 matching",
            ]
        );
    }

    #[test]
    fn cases_only_in_one_report_and_reports_of_another_format_are_said() {
        let mut other = report("passed", "gone", 200.0);
        other["rounds"][0]["cases"][0]["name"] = json!("s::d");
        let found = diff(&report("passed", "gone", 200.0), &other, Tolerance::DEFAULT);
        assert_eq!(
            whats(&found.expect("comparable")),
            ["s::c: only in base", "s::d: only in new"]
        );
        let err = diff(&json!({ "format": 99 }), &other, Tolerance::DEFAULT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "base is not a hangup JSON report of format 1: its format is 99"
        );
    }

    #[test]
    fn an_accept_file_lists_differences_one_a_line() {
        let accepted = accepted("# known\n\ns::c: only in base\n  s::d: x -> y  \n");
        assert!(accepted.contains("s::c: only in base"));
        assert!(accepted.contains("s::d: x -> y"));
        assert_eq!(accepted.len(), 2);
    }
}
