//! Checks of what the kernel, the program and the network hold: each
//! action's one definition.

use serde_json::json;

use super::control::outgoing;
use super::def::{ANY, ActionDef, Build, Described, StepKind, Uses};
use super::modifiers::ModValue;
use super::values::{self, Flag, RawPattern, RawQueues, RawStates, SideName, SyscallName};
use super::{Action, Check, LineCount, Pattern, Segments, within_suffix};
use crate::model::{FlagMatch, TcpFlags};

/// The check a definition built (its own variant; see `describe`).
fn check(action: Described<'_>) -> &Check {
    match action {
        Described::Check(check) => check,
        other => unreachable!("a check's definition describes {other:?}"),
    }
}

/// How many a counting check wants, and over how long.
const COUNTING: [Uses; 3] = [
    Uses::key("within"),
    Uses::key("count"),
    Uses::key("at_most"),
];

/// The checks, in the order the README lists them.
pub(super) const DEFS: &[ActionDef] = &[
    ActionDef {
        keyword: "released",
        kind: StepKind::Check,
        written: "released = true",
        summary: "the program under test (or a process it started) holds none of the case's connections in its fd table, no socket left in CLOSE_WAIT or reset into CLOSE, and none waiting in its listeners' accept queues; a failure names each socket; the fds it opened since it became ready are said beside, not judged (a runtime opens some lazily)",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[Uses::key("within")],
        value_schema: || json!({ "const": true, "description": "Written `true`." }),
        step_rules: None,
        build: |b| {
            let Flag = b.value()?;
            Some(Action::Check(Check::Released {
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::Released { within } => write!(f, "released{}", within_suffix(*within)),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "accept_queue",
        kind: StepKind::Check,
        written: "accept_queue = { server = 80 }",
        summary: "how many connections wait in the accept queue of the `server`'s (the program's) or the `proxy`'s listener, as the kernel counts them: handshakes done, not yet accepted",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[Uses::key("within")],
        value_schema: || {
            json!({
                "type": "object",
                "properties": {
                    "server": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "description": "Connections waiting in the server's (or the program's) listener's accept queue." },
                    "proxy": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "description": "Connections waiting in the proxy's listener's accept queue." },
                },
                "minProperties": 1,
                "additionalProperties": false,
            })
        },
        step_rules: None,
        build: |b| {
            let queues: RawQueues = b.value()?;
            Some(Action::Check(Check::AcceptQueue {
                expected: queues.into_expected(),
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::AcceptQueue { expected, within } => {
                f.write_str("accept_queue")?;
                for (side, n) in expected {
                    write!(f, " {side} {n}")?;
                }
                f.write_str(&within_suffix(*within))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "log",
        kind: StepKind::Check,
        written: "log = \"Broken pipe\"",
        summary: "count the program under test's output lines matching a regular expression: one or more (waiting up to `within`), or `count`/`at_most` of them over `within`",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &COUNTING,
        value_schema: || json!({ "type": "string" }),
        step_rules: None,
        build: |b| {
            let RawPattern(pattern) = b.value()?;
            Some(Action::Check(Check::Log {
                pattern: Pattern(pattern),
                lines: line_count(b),
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::Log {
                pattern,
                lines,
                within,
            } => {
                write!(f, "log {:?}", pattern.0.as_str())?;
                write!(f, "{}", lines.suffix())?;
                f.write_str(&within_suffix(*within))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "syscall",
        kind: StepKind::Check,
        written: "syscall = \"write\", expect = \"EPIPE\"",
        summary: "the program under test's own socket calls on its end of the connection that returned after this side's latest socket call began, or are still in flight (the program is traced: seccomp and ptrace): one or more with `expect`'s outcome (waiting up to `within`), or `count`/`at_most` of them over `within`; `write`, `read`, `close`, `shutdown` and `accept` name every call of their kind (writev, sendmsg, sendfile, accept4, ...), or name one call (`sendmsg`)",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[Uses::key("expect"), COUNTING[0], COUNTING[1], COUNTING[2]],
        value_schema: || json!({ "enum": crate::model::syscall::names() }),
        step_rules: None,
        build: |b| {
            let SyscallName(which) = b.value()?;
            // The outcomes the program's calls are counted by, not a
            // judgement of a call of the side's own.
            let results = b.outcomes("expect").unwrap_or_default();
            Some(Action::Check(Check::Syscall {
                which,
                results,
                calls: line_count(b),
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::Syscall {
                which,
                results,
                calls,
                within,
            } => {
                write!(f, "syscall {which}")?;
                if !results.is_empty() {
                    let names: Vec<String> = results.iter().map(ToString::to_string).collect();
                    write!(f, " expect {}", names.join(" or "))?;
                }
                write!(f, "{}", calls.suffix())?;
                f.write_str(&within_suffix(*within))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "errnos",
        kind: StepKind::Check,
        written: "errnos = [\"EPIPE\", \"ECONNRESET\"]",
        summary: "an invariant of the program under test's own socket calls on its end of the connection, over the connection's whole life: each that failed, failed with one of these errnos (EAGAIN and EINTR, routine for any event loop, always may); a call that failed otherwise fails the step, named with its errno; judged once, or watched for `within` (the program is traced, as for `syscall`)",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[Uses::key("within")],
        value_schema: values::schema::errnos,
        step_rules: None,
        build: |b| {
            let value = b.raw_value().clone();
            let reader = &mut b.reader;
            let allowed = values::errno_list(&value, |at, why| reader.problem(at, why))?;
            Some(Action::Check(Check::Errnos {
                allowed,
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::Errnos { allowed, within } => {
                let names: Vec<String> = allowed.iter().map(|e| e.name()).collect();
                write!(f, "errnos only [{}]", names.join(", "))?;
                f.write_str(&within_suffix(*within))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "taken",
        kind: StepKind::Check,
        written: "taken = \"pause\"",
        summary: "count the packets the fault with this `name` took (dropped, rejected, or held by a `delay`), by the kernel's counter of its rules (lifted or not): one or more (waiting up to `within`), or `count`/`at_most` of them over `within`; e.g. wait until a paused side's ACK was really lost before lifting the fault",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &COUNTING,
        value_schema: values::schema::label,
        step_rules: None,
        build: |b| {
            Some(Action::Check(Check::Taken {
                name: b.value()?,
                packets: line_count(b),
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::Taken {
                name,
                packets,
                within,
            } => {
                write!(f, "taken by {name:?}")?;
                write!(f, "{}", packets.suffix())?;
                f.write_str(&within_suffix(*within))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "sent",
        kind: StepKind::Check,
        written: "sent = \"server\", flags = \"RST\", count = 0",
        summary: "count the TCP segments a side sent, as the case's packet capture saw them arrive (from its start), narrowed by `to`, `flags`, `data`, `window` (`0`: a zero window, the slow reader's): one or more (waiting up to `within`), or `count`/`at_most` of them over `within`; `count = 0` says none was sent",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[
            Uses::key("to"),
            Uses::key("flags"),
            Uses::key("data"),
            Uses::key("window"),
            Uses::key("since"),
            COUNTING[0],
            COUNTING[1],
            COUNTING[2],
        ],
        value_schema: values::schema::side,
        step_rules: None,
        build: |b| {
            let SideName(from) = b.value()?;
            let segments = Segments {
                outgoing: outgoing(b, from),
                window: b.number("window").and_then(|w| u16::try_from(w).ok()),
                since: b.text("since").map(str::to_string),
            };
            Some(Action::Check(Check::Sent {
                segments,
                packets: line_count(b),
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::Sent {
                segments,
                packets,
                within,
            } => {
                write!(f, "sent {segments}")?;
                write!(f, "{}", packets.suffix())?;
                f.write_str(&within_suffix(*within))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "first",
        kind: StepKind::Check,
        written: "first = \"client\", flags = \"FIN\"",
        summary: "the first TCP segment with these `flags` came from this side (the first FIN: who closed first), waiting up to `within` for one",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[
            Uses::required(
                "flags",
                " (the first segment with which flags: \"FIN\", \"RST\")",
            ),
            Uses::key("within"),
        ],
        value_schema: values::schema::side,
        step_rules: None,
        build: |b| {
            let SideName(from) = b.value()?;
            let flags = match b.get("flags") {
                Some(ModValue::Flags(flags)) => *flags,
                _ => FlagMatch::named(TcpFlags(0)),
            };
            Some(Action::Check(Check::First {
                from,
                flags,
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::First {
                from,
                flags,
                within,
            } => {
                write!(f, "first {flags} from {from}")?;
                f.write_str(&within_suffix(*within))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "state",
        kind: StepKind::Check,
        written: "state = { client = \"FIN_WAIT2\", server = \"CLOSE_WAIT\" }",
        summary: "assert kernel TCP states of `client`, `server`, `proxy_client` (the proxy's socket facing the client) and `proxy_server`",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[Uses::key("within")],
        value_schema: || {
            json!({
                "type": "object",
                "properties": {
                    "client": values::schema::state("The state the client's socket must be in."),
                    "server": values::schema::state("The state the server's socket must be in."),
                    "proxy_client": values::schema::state("The state the proxy's socket facing the client (the one it accepted) must be in."),
                    "proxy_server": values::schema::state("The state the proxy's socket facing the server (the one it made) must be in."),
                },
                "minProperties": 1,
                "additionalProperties": false,
            })
        },
        step_rules: None,
        build: |b| {
            let states: RawStates = b.value()?;
            let expected = states.into_expected();
            if expected.is_empty() {
                let at = b.at.clone();
                b.problem(
                    at,
                    "expected a state for `client`, `server`, `proxy_client` or `proxy_server`, found none",
                );
            }
            Some(Action::Check(Check::State {
                expected,
                within: b.duration("within"),
            }))
        },
        describe: |a, f| match check(a) {
            Check::State { expected, within } => {
                let states: Vec<String> = expected
                    .iter()
                    .map(|(socket, state)| format!("{socket} {}", state.name()))
                    .collect();
                write!(f, "state {}", states.join(", "))?;
                f.write_str(&within_suffix(*within))
            }
            _ => unreachable!(),
        },
    },
];

/// How many a counting check wants: `count`, `at_most` (not both), or one
/// or more.
fn line_count(b: &mut Build<'_, '_>) -> LineCount {
    let count = b.number("count").and_then(|n| u32::try_from(n).ok());
    let at_most = b.number("at_most").and_then(|n| u32::try_from(n).ok());
    match (count, at_most) {
        (Some(_), Some(_)) => {
            if let Some(at) = b.span("at_most") {
                let message = format!(
                    "expected `count` or `at_most` with `{}`, found both",
                    b.def.keyword
                );
                b.problem(at, message);
            }
            LineCount::AtLeastOne
        }
        (Some(n), None) => LineCount::Exactly(n),
        (None, Some(n)) => LineCount::AtMost(n),
        (None, None) => LineCount::AtLeastOne,
    }
}
