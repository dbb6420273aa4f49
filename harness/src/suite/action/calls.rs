//! The socket calls a side's peer makes: each action's one definition.

use serde_json::json;

use super::def::{ANY, ActionDef, Build, CONNECTING, Described, LISTENING, StepKind, Uses};
use super::values::{self, Endpoint, Flag, HowValue, RawOptions, RawPayload, RawPollEvents};
use super::{Action, Payload, SocketCall, Until, timeout_words};
use crate::model::PollEvents;
use crate::suite::limits::{MAX_READ_BYTES, MAX_SEND_BYTES, bytes_in_words};

/// The call a definition built (its own variant; see `describe`).
fn call(action: Described<'_>) -> &SocketCall {
    match action {
        Described::Socket(call) => call,
        other => unreachable!("a socket call's definition describes {other:?}"),
    }
}

/// The socket calls, in the order the README lists them.
pub(super) const DEFS: &[ActionDef] = &[
    ActionDef {
        keyword: "listen",
        kind: StepKind::Socket,
        written: "listen = 8080",
        summary: "bind and listen (a port means 127.0.0.1; or `\"[::1]:8080\"`)",
        sides: LISTENING,
        on_connection: false,
        judged: true,
        bare: false,
        modifiers: &[Uses::or("backlog", "128")],
        value_schema: values::schema::endpoint,
        step_rules: None,
        build: |b| {
            let Endpoint(addr) = b.value()?;
            let backlog = u32::try_from(b.number_or_default("backlog")).unwrap_or(u32::MAX);
            Some(Action::Socket(SocketCall::Listen { addr, backlog }))
        },
        describe: |a, f| match call(a) {
            SocketCall::Listen { addr, .. } => write!(f, "listen {addr}"),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "accept",
        kind: StepKind::Socket,
        written: "accept = true",
        summary: "accept one connection",
        sides: LISTENING,
        on_connection: false,
        judged: true,
        bare: true,
        modifiers: &[Uses::key("timeout")],
        value_schema: values::schema::flag,
        step_rules: None,
        build: |b| {
            let Flag = b.value()?;
            Some(Action::Socket(SocketCall::Accept {
                timeout: b.duration("timeout"),
            }))
        },
        describe: |a, f| match call(a) {
            SocketCall::Accept { timeout } => write!(f, "accept{}", timeout_words(timeout)),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "connect",
        kind: StepKind::Socket,
        written: "connect = 8080",
        summary: "connect (a failed connect keeps its socket, in CLOSE, as a program's would)",
        sides: CONNECTING,
        on_connection: false,
        judged: true,
        bare: false,
        modifiers: &[
            Uses::key("timeout"),
            Uses::key("from"),
            Uses::key("nonblocking"),
            Uses::key("again"),
        ],
        value_schema: values::schema::endpoint,
        step_rules: None,
        build: |b| {
            let Endpoint(addr) = b.value()?;
            let from = match b.number("from") {
                Some(0) => {
                    if let Some(at) = b.span("from") {
                        b.problem(at, "expected a local port from 1 to 65535, found 0");
                    }
                    None
                }
                port => port.and_then(|p| u16::try_from(p).ok()),
            };
            Some(Action::Socket(SocketCall::Connect {
                addr,
                timeout: b.duration("timeout"),
                from,
                nonblocking: b.switch("nonblocking"),
                again: b.switch("again"),
            }))
        },
        describe: |a, f| match call(a) {
            SocketCall::Connect {
                addr,
                timeout,
                from,
                nonblocking,
                again,
            } => {
                f.write_str(if *again { "connect again " } else { "connect " })?;
                write!(f, "{addr}")?;
                if let Some(port) = from {
                    write!(f, " from port {port}")?;
                }
                if *nonblocking {
                    f.write_str(" (O_NONBLOCK)")?;
                }
                f.write_str(&timeout_words(timeout))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "send",
        kind: StepKind::Socket,
        written: "send = \"text\"` / `send = 5_000_000",
        summary: "write all of it: literal text, or that many filler bytes",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &[Uses::key("timeout"), Uses::or("repeat", "1")],
        value_schema: || json!({ "type": ["string", "integer"], "minimum": 1, "maximum": MAX_SEND_BYTES }),
        // `repeat` copies text; a filler size has nothing to repeat.
        step_rules: Some(|rules| {
            rules["if"] = json!({ "required": ["repeat"] });
            rules["then"] = json!({
                "properties": {
                    "send": {
                        "type": "string",
                        "description": "With `repeat`, the payload is text to copy.",
                    },
                },
            });
        }),
        build: send,
        describe: |a, f| match call(a) {
            SocketCall::Send {
                payload: Payload::Text { text, repeat: 1 },
                timeout,
            } if text.len() <= 24 => write!(f, "send {text:?}{}", timeout_words(timeout)),
            SocketCall::Send { payload, timeout } => {
                write!(f, "send {} B{}", payload.len(), timeout_words(timeout))
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "recv",
        kind: StepKind::Socket,
        written: "recv = true",
        summary: "one read call",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: true,
        modifiers: &[
            Uses::key("timeout"),
            Uses::or("max", "65536"),
            Uses::key("matches"),
        ],
        value_schema: values::schema::flag,
        step_rules: None,
        build: |b| {
            let Flag = b.value()?;
            let max = match (b.number("max"), b.span("max")) {
                (Some(0), Some(at)) => {
                    b.problem(at, "expected `max` of at least 1 byte, found 0");
                    None
                }
                (Some(n), Some(at)) if n > MAX_READ_BYTES as u64 => {
                    b.problem(
                        at,
                        format!(
                            "expected `max` of at most {}, found {n}",
                            bytes_in_words(MAX_READ_BYTES)
                        ),
                    );
                    None
                }
                _ => Some(b.number_or_default("max")),
            };
            Some(Action::Socket(SocketCall::Recv {
                max: max.map_or(0, |n| n as usize),
                timeout: b.duration("timeout"),
            }))
        },
        describe: |a, f| match call(a) {
            SocketCall::Recv { timeout, .. } => write!(f, "recv{}", timeout_words(timeout)),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "recv_until",
        kind: StepKind::Socket,
        written: "recv_until = 1000` / `recv_until = \"\\r\\n\\r\\n\"",
        summary: "read until that many bytes, or that text; or an HTTP response from its first byte exactly to a mark of its framing, reading no byte past it: `{ chunks = 3 }` through the end of its chunked body's 3rd chunk, `{ body = 1000 }` through its headers' blank line and 1000 bytes after it; a response whose body ends first (its last chunk) or is not chunked fails the step, saying so",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &[Uses::key("timeout"), Uses::key("matches")],
        value_schema: || {
            json!({
                "type": ["integer", "string", "object"],
                "minimum": 1,
                "minLength": 1,
                "properties": {
                    "chunks": { "type": "integer", "minimum": 1, "description": "Through the end of this chunk of the response's chunked body." },
                    "body": { "type": "integer", "minimum": 0, "description": "Through the headers' blank line and this many bytes after it." },
                },
                "minProperties": 1,
                "maxProperties": 1,
                "additionalProperties": false,
            })
        },
        step_rules: None,
        build: |b| {
            let until: Until = b.value()?;
            Some(Action::Socket(SocketCall::RecvUntil {
                until,
                timeout: b.duration("timeout"),
            }))
        },
        describe: |a, f| match call(a) {
            SocketCall::RecvUntil {
                until: Until::Bytes(n),
                timeout,
            } => write!(f, "recv_until {n} B{}", timeout_words(timeout)),
            SocketCall::RecvUntil {
                until: Until::Pattern(p),
                timeout,
            } => write!(f, "recv_until {p:?}{}", timeout_words(timeout)),
            SocketCall::RecvUntil {
                until: Until::Chunks { chunks },
                timeout,
            } => write!(
                f,
                "recv_until the end of chunk {chunks}{}",
                timeout_words(timeout)
            ),
            SocketCall::RecvUntil {
                until: Until::Body { body },
                timeout,
            } => write!(f, "recv_until {body} B of body{}", timeout_words(timeout)),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "shutdown",
        kind: StepKind::Socket,
        written: "shutdown = \"write\"",
        summary: "`shutdown(2)`: `\"read\"`, `\"write\"` (FIN, keep reading) or `\"both\"`",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &[],
        value_schema: || json!({ "enum": ["read", "write", "both"] }),
        step_rules: None,
        build: |b| {
            let HowValue(how) = b.value()?;
            Some(Action::Socket(SocketCall::Shutdown { how }))
        },
        describe: |a, f| match call(a) {
            SocketCall::Shutdown { how } => {
                write!(f, "shutdown {}", format!("{how:?}").to_lowercase())
            }
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "close",
        kind: StepKind::Socket,
        written: "close = true",
        summary: "`close(2)`: FIN, or RST with unread data; with no connection, closes the listener",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: true,
        modifiers: &[],
        value_schema: values::schema::flag,
        step_rules: None,
        build: |b| {
            let Flag = b.value()?;
            Some(Action::Socket(SocketCall::Close))
        },
        describe: |_, f| f.write_str("close"),
    },
    ActionDef {
        keyword: "abort",
        kind: StepKind::Socket,
        written: "abort = true",
        summary: "close with `SO_LINGER {on, 0}`: RST, no TIME_WAIT",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: true,
        modifiers: &[],
        value_schema: values::schema::flag,
        step_rules: None,
        build: |b| {
            let Flag = b.value()?;
            Some(Action::Socket(SocketCall::Abort))
        },
        describe: |_, f| f.write_str("abort (SO_LINGER 0)"),
    },
    ActionDef {
        keyword: "set",
        kind: StepKind::Socket,
        written: "set = { linger = \"0s\" }",
        summary: "socket options: `linger` (`\"off\"` or whole seconds: SO_LINGER counts seconds), `nodelay`, `keepalive`, `rcvbuf`, `sndbuf`, `user_timeout` (TCP_USER_TIMEOUT, whole milliseconds; `\"0s\"`: the kernel's default), `notsent_lowat` (TCP_NOTSENT_LOWAT bytes; `0`: the default), `congestion` (TCP_CONGESTION, `\"reno\"`), `nonblocking` (O_NONBLOCK: calls return EAGAIN instead of waiting); before a socket exists, they apply to the next one; the outcome is the kernel's (ENOENT for a congestion control it lacks; as root of the machine, hangup does not ask for one the kernel has not loaded, which would make it run modprobe on the host)",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &[],
        value_schema: values::schema::options,
        step_rules: None,
        build: |b| {
            let options: RawOptions = b.value()?;
            Some(Action::Socket(SocketCall::Set(options.into_options())))
        },
        describe: |a, f| match call(a) {
            SocketCall::Set(options) => write!(f, "set {options}"),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "so_error",
        kind: StepKind::Socket,
        written: "so_error = true",
        summary: "`getsockopt(SO_ERROR)`: the pending error as the outcome (`ok` when none); reading it clears it",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: true,
        modifiers: &[],
        value_schema: values::schema::flag,
        step_rules: None,
        build: |b| {
            let Flag = b.value()?;
            Some(Action::Socket(SocketCall::SoError))
        },
        describe: |_, f| f.write_str("getsockopt SO_ERROR"),
    },
    ActionDef {
        keyword: "poll",
        kind: StepKind::Socket,
        written: "poll = [\"in\", \"rdhup\"]",
        summary: "`poll(2)` for `in`, `out`, `pri`, `rdhup` on the connection (with none, the listener); `err` and `hup` are always reported",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &[Uses::key("timeout"), Uses::key("revents")],
        value_schema: values::schema::poll_events_asked,
        step_rules: None,
        build: |b| {
            let RawPollEvents(events) = b.value()?;
            let asked: Vec<String> = events.names();
            let always = asked
                .iter()
                .find(|n| !PollEvents::REQUESTABLE.contains(&n.as_str()));
            if let Some(name) = always {
                let at = b.at.clone();
                b.problem(
                    at,
                    format!(
                        "expected events to poll for among {}, found `{name}`, which poll(2) always reports",
                        PollEvents::REQUESTABLE.join(", ")
                    ),
                );
            }
            Some(Action::Socket(SocketCall::Poll {
                events,
                timeout: b.duration("timeout"),
            }))
        },
        describe: |a, f| match call(a) {
            SocketCall::Poll { events, timeout } => {
                write!(f, "poll {events}{}", timeout_words(timeout))
            }
            _ => unreachable!(),
        },
    },
];

/// `send`: text (with `repeat` copies) or filler bytes, within
/// [`MAX_SEND_BYTES`] in all.
fn send(b: &mut Build<'_, '_>) -> Option<Action> {
    let raw: RawPayload = b.value()?;
    let timeout = b.duration("timeout");
    let mut payload = match raw {
        RawPayload::Text(text) => Payload::Text { text, repeat: 1 },
        RawPayload::Size(n) => Payload::Size(n),
    };
    if let (Some(repeat), Some(at)) = (b.number("repeat"), b.span("repeat")) {
        let repeat = usize::try_from(repeat).unwrap_or(usize::MAX);
        match &mut payload {
            Payload::Text { text, .. } if too_much_to_send(text.len(), repeat) => {
                let message = format!(
                    "expected at most {} to send in all, found {repeat} copies of {} bytes",
                    bytes_in_words(MAX_SEND_BYTES),
                    text.len()
                );
                b.problem(at, message);
            }
            // Like `send = 0`: a step that sends nothing is a mistake.
            Payload::Text { repeat: r, .. } if repeat > 0 => *r = repeat,
            Payload::Text { .. } => b.problem(at, "expected `repeat` of at least 1 copy, found 0"),
            Payload::Size(_) => b.problem(
                at,
                "`repeat` copies text, found it with a number of filler bytes: write the total size instead",
            ),
        }
    }
    Some(Action::Socket(SocketCall::Send { payload, timeout }))
}

/// Whether `copies` of `len` bytes of text exceed [`MAX_SEND_BYTES`]
/// (overflow included): the harness builds the whole payload in memory.
fn too_much_to_send(len: usize, copies: usize) -> bool {
    len.checked_mul(copies)
        .is_none_or(|total| total > MAX_SEND_BYTES)
}
