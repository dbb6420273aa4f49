//! Pacing and coordination, a signal to the program, and faults on the
//! network: each action's one definition.

use std::time::Duration;

use serde_json::json;

use super::def::{ANY, ActionDef, Build, Described, StepKind, Uses};
use super::values::{self, DurationValue, SideName, SignalName};
use super::{Action, Control, Fault, HostCut, Lift, Loop, Outgoing, ms};
use crate::model::units::number;
use crate::model::{Reject, Side, Verdict};
use crate::sandbox::topology::Cut;
use crate::suite::limits::{MAX_DELAY, MIN_PROBABILITY};

/// The control step a definition built (its own variant; see `describe`).
fn control(action: Described<'_>) -> &Control {
    match action {
        Described::Control(control) => control,
        other => unreachable!("a control step's definition describes {other:?}"),
    }
}

/// A fault's keys, as `drop`, `reject` and `delay` take them.
const FAULT_KEYS: [Uses; 5] = [
    Uses::key("to"),
    Uses::key("flags"),
    Uses::key("data"),
    Uses::key("probability"),
    Uses::key("name"),
];

/// Describes a fault or a cut the way the timeline names them.
fn describe_fault(a: Described<'_>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match control(a) {
        Control::Fault(fault) => write!(f, "{fault}"),
        Control::Cut(cut) => write!(f, "{cut}"),
        _ => unreachable!(),
    }
}

/// The control steps, in the order the README lists them.
pub(super) const DEFS: &[ActionDef] = &[
    ActionDef {
        keyword: "sleep",
        kind: StepKind::Control,
        written: "sleep = \"100ms\"",
        summary: "wait",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[],
        value_schema: values::schema::duration,
        step_rules: None,
        build: |b| {
            let DurationValue(d) = b.value()?;
            Some(Action::Control(Control::Sleep(d)))
        },
        describe: |a, f| match control(a) {
            Control::Sleep(d) => write!(f, "sleep {}", ms(d)),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "mark",
        kind: StepKind::Control,
        written: "mark = \"label\"",
        summary: "let another side's `wait` for the label go on",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[],
        value_schema: || json!({ "type": "string" }),
        step_rules: None,
        build: |b| Some(Action::Control(Control::Mark(b.value()?))),
        describe: |a, f| match control(a) {
            Control::Mark(label) => write!(f, "mark {label:?}"),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "wait",
        kind: StepKind::Control,
        written: "wait = \"label\"",
        summary: "wait until another side marks the label",
        sides: ANY,
        on_connection: false,
        judged: true,
        bare: false,
        modifiers: &[Uses::key("timeout")],
        value_schema: || json!({ "type": "string" }),
        step_rules: None,
        build: |b| {
            Some(Action::Control(Control::Wait {
                label: b.value()?,
                timeout: b.duration("timeout"),
            }))
        },
        describe: |a, f| match control(a) {
            Control::Wait { label, .. } => write!(f, "wait {label:?}"),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "signal",
        kind: StepKind::Control,
        written: "signal = \"SIGTERM\"",
        summary: "send the program under test (its process group) a signal, e.g. to shut it down mid-case (S14); an exit that follows is its answer, not a crash; `SIGSTOP` and `SIGCONT` pause and resume it (its accept queue fills meanwhile), sent to the program and each process it started rather than the group, which holds hangup's init, a traced program's tracer",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[],
        value_schema: || json!({ "type": "string", "pattern": "^SIG[A-Z0-9]+$" }),
        step_rules: None,
        build: |b| {
            let SignalName(signal) = b.value()?;
            Some(Action::Control(Control::Signal(signal)))
        },
        describe: |a, f| match control(a) {
            Control::Signal(signal) => write!(f, "signal {signal} to the program"),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "drop",
        kind: StepKind::Control,
        written: "drop = \"server\"",
        summary: "from now on the network loses what this side sends (a paused or vanished host, a silent firewall): the sender's kernel believes it went out and retransmits; narrowed by `to`, `flags`, `data`, `probability`; until `lift` or the case's end",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &FAULT_KEYS,
        value_schema: values::schema::side,
        step_rules: None,
        build: |b| fault(b, Verdict::Drop),
        describe: describe_fault,
    },
    ActionDef {
        keyword: "reject",
        kind: StepKind::Control,
        written: "reject = \"client\", with = \"tcp-reset\"",
        summary: "as `drop`, and the sender is told: `with` a TCP reset or ICMP `port-unreachable`, `host-unreachable`, `admin-prohibited`",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[
            FAULT_KEYS[0],
            FAULT_KEYS[1],
            FAULT_KEYS[2],
            FAULT_KEYS[3],
            FAULT_KEYS[4],
            Uses::or("with", "tcp-reset"),
        ],
        value_schema: values::schema::side,
        step_rules: None,
        build: |b| {
            let with = match Reject::parse(b.text_or_default("with").unwrap_or("tcp-reset")) {
                Ok(with) => with,
                Err(why) => {
                    if let Some(at) = b.span("with") {
                        b.problem(at, why);
                    }
                    Reject::TcpReset
                }
            };
            fault(b, Verdict::Reject { with })
        },
        describe: describe_fault,
    },
    ActionDef {
        keyword: "delay",
        kind: StepKind::Control,
        written: "delay = \"server\", by = \"200ms\", jitter = \"50ms\"",
        summary: "from now on what this side sends arrives late: each packet is held in the receiver's kernel `by` this long (give or take up to `jitter`, which may reorder them) before it goes on; narrowed by `to`, `flags`, `data`, `probability`; until `lift` or the case's end",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[
            Uses::required("by", " (how long each packet is held, e.g. \"200ms\")"),
            Uses::or("jitter", "0s"),
            FAULT_KEYS[0],
            FAULT_KEYS[1],
            FAULT_KEYS[2],
            FAULT_KEYS[3],
            FAULT_KEYS[4],
        ],
        value_schema: values::schema::side,
        step_rules: None,
        build: |b| {
            let mut by = Duration::ZERO;
            match (b.duration("by"), b.span("by")) {
                (Some(d), _) if d > Duration::ZERO && d <= MAX_DELAY => by = d,
                (Some(d), Some(at)) => b.problem(
                    at,
                    format!(
                        "expected `by` above 0 and at most {}, found {}",
                        humantime::format_duration(MAX_DELAY),
                        humantime::format_duration(d)
                    ),
                ),
                _ => {}
            }
            let mut jitter = Duration::ZERO;
            if let (Some(j), Some(at)) = (b.duration("jitter"), b.span("jitter")) {
                if j <= by || b.span("by").is_none() {
                    jitter = j;
                } else {
                    b.problem(
                        at,
                        format!(
                            "expected `jitter` at most `by` ({}), found {}: a packet cannot arrive before it was sent",
                            humantime::format_duration(by),
                            humantime::format_duration(j)
                        ),
                    );
                }
            }
            fault(b, Verdict::Delay { by, jitter })
        },
        describe: describe_fault,
    },
    ActionDef {
        keyword: "cut",
        kind: StepKind::Control,
        written: "cut = \"client\", with = \"blackhole\"",
        summary: "in a `two_hosts` case, cut this side's host off from the other until `lift`: `with` its link down (a new connect fails with ENETUNREACH) or `blackhole`, a route that discards what it sends there (a new connect fails with EINVAL); what was sent before is queued and retransmitted into the void",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[Uses::or("with", "link_down"), Uses::key("name")],
        value_schema: values::schema::side,
        step_rules: None,
        build: |b| {
            let SideName(side) = b.value()?;
            let how = match b.text_or_default("with") {
                Some("blackhole") => Cut::Blackhole,
                Some("link_down") | None => Cut::LinkDown,
                Some(other) => {
                    let message = format!(
                        "expected how to cut a host off, `link_down` (the default) or `blackhole`, found `{other}`"
                    );
                    if let Some(at) = b.span("with") {
                        b.problem(at, message);
                    }
                    Cut::LinkDown
                }
            };
            let name = fault_name(b);
            Some(Action::Control(Control::Cut(HostCut { side, how, name })))
        },
        describe: describe_fault,
    },
    ActionDef {
        keyword: "lift",
        kind: StepKind::Control,
        written: "lift = \"pause\"",
        summary: "take away the fault with this `name`, or `\"all\"`; the timeline says how many packets each took",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[],
        value_schema: values::schema::label,
        step_rules: None,
        build: |b| {
            let name: String = b.value()?;
            Some(Action::Control(Control::Lift(if name == "all" {
                Lift::All
            } else {
                Lift::Named(name)
            })))
        },
        describe: |a, f| match control(a) {
            Control::Lift(Lift::Named(name)) => write!(f, "lift {name:?}"),
            Control::Lift(Lift::All) => f.write_str("lift all"),
            _ => unreachable!(),
        },
    },
    ActionDef {
        keyword: "loop",
        kind: StepKind::Control,
        written: "loop = [{ send = 100 }, { sleep = \"100ms\" }]",
        summary: "run these steps up to `times` rounds; a call whose outcome is one of `until` ends the loop (and is expected)",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[
            Uses::required("times", ": every loop is bounded"),
            Uses::key("until"),
        ],
        value_schema: || {
            json!({
                "type": "array",
                "minItems": 1,
                "items": {
                    "$ref": "#/$defs/step",
                    "not": { "type": "object", "required": ["loop"] },
                },
            })
        },
        // A loop is always bounded: `times` is required with it.
        step_rules: Some(|rules| rules["required"] = json!(["times"])),
        build: |b| {
            let mut times = 0;
            if let (Some(n), Some(at)) = (b.number("times"), b.span("times")) {
                match u32::try_from(n) {
                    Ok(n) if n > 0 => times = n,
                    _ => b.problem(at, "expected `times` of at least 1 round, found 0"),
                }
            }
            let until = b.outcomes("until").unwrap_or_default();
            let value = b.raw_value().clone();
            let body = b.steps(&value);
            Some(Action::Control(Control::Loop(Loop { body, times, until })))
        },
        describe: |a, f| match control(a) {
            Control::Loop(Loop { body, times, .. }) => {
                write!(f, "loop of {} steps, {times} rounds at most", body.len())
            }
            _ => unreachable!(),
        },
    },
];

/// A fault of what the step's side names sends, narrowed by the step's
/// keys.
fn fault(b: &mut Build<'_, '_>, verdict: Verdict) -> Option<Action> {
    let SideName(from) = b.value()?;
    let outgoing = outgoing(b, from);
    let mut probability = None;
    if let (Some(p), Some(at)) = (b.get("probability"), b.span("probability")) {
        let super::modifiers::ModValue::Fraction(p) = *p else {
            unreachable!("`probability` is read as a fraction")
        };
        // NaN is neither.
        if (MIN_PROBABILITY..=1.0).contains(&p) {
            probability = Some(p);
        } else {
            b.problem(
                at,
                format!(
                    "expected `probability` from 2^-32 ({}, the least chance nf_tables' 32-bit random number can express) to 1, found {}",
                    number(MIN_PROBABILITY),
                    number(p)
                ),
            );
        }
    }
    let name = fault_name(b);
    Some(Action::Control(Control::Fault(Fault {
        outgoing,
        probability,
        verdict,
        name,
    })))
}

/// The segments of `from` a fault (or a `sent` check) narrows to: `to`,
/// `flags`, `data`; `to` naming the sender itself is reported.
pub(super) fn outgoing(b: &mut Build<'_, '_>, from: Side) -> Outgoing {
    let to = match b.get("to") {
        Some(super::modifiers::ModValue::Side(to)) => Some(*to),
        _ => None,
    };
    if to == Some(from) {
        if let Some(at) = b.span("to") {
            b.problem(
                at,
                format!(
                    "expected `to` to name the side the {from} sends to, found the {from} itself"
                ),
            );
        }
    }
    let flags = match b.get("flags") {
        Some(super::modifiers::ModValue::Flags(flags)) => Some(*flags),
        _ => None,
    };
    Outgoing {
        from,
        to,
        flags,
        data: b.bool("data"),
    }
}

/// A fault's `name`: 1 to 64 characters, not "all" (which `lift` takes as
/// every fault).
fn fault_name(b: &mut Build<'_, '_>) -> Option<String> {
    let (text, at) = (b.text("name")?.to_string(), b.span("name")?);
    if text.is_empty() || text == "all" || text.len() > 64 {
        b.problem(
            at,
            format!(
                "expected a fault's `name` of 1 to 64 characters other than \"all\" (which `lift` takes as every fault), found {text:?}"
            ),
        );
        return None;
    }
    Some(text)
}
