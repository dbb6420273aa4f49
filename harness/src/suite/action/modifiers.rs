//! Every modifier a step may hold besides its action, defined once: its
//! key, what it means, the JSON Schema of its value, and how its value is
//! read. Which actions take a modifier, and its default or whether it is
//! required there, is each action's own ([`Uses`](super::def::Uses)).

use std::ops::Range;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::json;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::values::{self, RawExpect};
use crate::model::{FlagMatch, Link, PollEvents, Side};
use crate::suite::limits::{MAX_READ_BYTES, MAX_SEND_BYTES};

/// A modifier's value, as its definition read it.
#[derive(Debug, Clone)]
pub enum ModValue {
    /// A duration (`timeout`, `within`, `after`, ...).
    Duration(Duration),
    /// A whole number (`max`, `count`, `window`, ...), within its type's
    /// range.
    Number(u64),
    /// `true` or `false`.
    Bool(bool),
    /// A word or a label (`since`, `name`, `with`).
    Text(String),
    /// A side (`to`).
    Side(Side),
    /// TCP flags (`flags`).
    Flags(FlagMatch),
    /// A probability (`probability`).
    Fraction(f64),
    /// poll events (`revents`).
    Events(PollEvents),
    /// Outcomes as written, and where (`expect`, `until`): each name is
    /// checked, and reported at itself, by the action that takes it.
    Outcomes(RawExpect, Range<usize>),
    /// A regular expression (`matches`).
    Pattern(regex::Regex),
    /// Which of the proxy's connections (`on`).
    Link(Link),
}

/// The one definition of a modifier.
pub struct ModifierDef {
    /// The key.
    pub keyword: &'static str,
    /// What it means, in a line (README and schema).
    pub summary: &'static str,
    /// The JSON Schema of its value.
    pub schema: fn() -> serde_json::Value,
    /// Reads its value.
    pub read: fn(&Spanned<DeValue<'_>>) -> Result<ModValue, toml::de::Error>,
}

impl std::fmt::Debug for ModifierDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModifierDef")
            .field("keyword", &self.keyword)
            .finish_non_exhaustive()
    }
}

/// A value read as `T`.
fn read<T: DeserializeOwned>(value: &Spanned<DeValue<'_>>) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value.clone()))
}

/// The definition of the modifier written `keyword`.
pub fn modifier(keyword: &str) -> Option<&'static ModifierDef> {
    MODIFIERS.iter().find(|def| def.keyword == keyword)
}

/// Every modifier, in the order the README lists them.
pub const MODIFIERS: &[ModifierDef] = &[
    ModifierDef {
        keyword: "timeout",
        summary: "give up after this long: the kernel's `SO_RCVTIMEO` (accept, recv, each read of recv_until: EAGAIN) or `SO_SNDTIMEO` (connect: EINPROGRESS, its SYN keeps going; send: for the whole step, EAGAIN with the bytes written so far); poll's own timeout; for wait, fail after it",
        schema: || values::schema::duration(),
        read: |v| Ok(ModValue::Duration(read::<values::DurationValue>(v)?.0)),
    },
    ModifierDef {
        keyword: "within",
        summary: "for `state` and `released`: poll until it holds, failing after this long; without it, sample once; for `log`, `syscall`, `errnos`, `taken`, `sent` and `first`, see there",
        schema: || values::schema::duration(),
        read: |v| Ok(ModValue::Duration(read::<values::DurationValue>(v)?.0)),
    },
    ModifierDef {
        keyword: "repeat",
        summary: "for `send` with text: send this many copies",
        schema: || json!({ "type": "integer", "minimum": 1, "maximum": MAX_SEND_BYTES }),
        read: |v| Ok(ModValue::Number(read::<usize>(v)? as u64)),
    },
    ModifierDef {
        keyword: "max",
        summary: "for `recv`: read at most this many bytes",
        schema: || json!({ "type": "integer", "minimum": 1, "maximum": MAX_READ_BYTES }),
        read: |v| Ok(ModValue::Number(read::<usize>(v)? as u64)),
    },
    ModifierDef {
        keyword: "backlog",
        summary: "for `listen`: the accept queue length",
        schema: || json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX }),
        read: |v| Ok(ModValue::Number(read::<u32>(v)?.into())),
    },
    ModifierDef {
        keyword: "from",
        summary: "for `connect`: bind this local port first (a 4-tuple in TIME_WAIT cannot be reused); an ephemeral port otherwise",
        schema: || json!({ "type": "integer", "minimum": 1, "maximum": 65535 }),
        read: |v| Ok(ModValue::Number(read::<u16>(v)?.into())),
    },
    ModifierDef {
        keyword: "nonblocking",
        summary: "for `connect`: make the call with O_NONBLOCK, so it returns EINPROGRESS at once",
        schema: || json!({ "type": "boolean" }),
        read: |v| Ok(ModValue::Bool(read::<bool>(v)?)),
    },
    ModifierDef {
        keyword: "again",
        summary: "for `connect`: call connect(2) again on the socket the side has (EALREADY while pending, the attempt's error once it failed, EISCONN once connected)",
        schema: || json!({ "type": "boolean" }),
        read: |v| Ok(ModValue::Bool(read::<bool>(v)?)),
    },
    ModifierDef {
        keyword: "revents",
        summary: "for `poll`: exactly the events that must be reported ready (`[]`: none, the poll timed out)",
        schema: || values::schema::poll_events_reported(),
        read: |v| Ok(ModValue::Events(read::<values::RawPollEvents>(v)?.0)),
    },
    ModifierDef {
        keyword: "times",
        summary: "for `loop`: the most rounds",
        schema: || json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX }),
        read: |v| Ok(ModValue::Number(read::<u32>(v)?.into())),
    },
    ModifierDef {
        keyword: "until",
        summary: "for `loop`: an outcome (or a list) that ends the loop when a call in it returns one; the loop fails if none came",
        schema: || values::schema::outcomes(),
        read: |v| Ok(ModValue::Outcomes(read::<values::RawExpect>(v)?, v.span())),
    },
    ModifierDef {
        keyword: "matches",
        summary: "for `recv` and `recv_until`: a regular expression what was received must match (as text; the first 64 KiB), e.g. `^HTTP/1\\.1 502` to tell a 502 from a 200",
        schema: || json!({ "type": "string" }),
        read: |v| Ok(ModValue::Pattern(read::<values::RawPattern>(v)?.0)),
    },
    ModifierDef {
        keyword: "count",
        summary: "for `log`, `syscall`, `taken` and `sent`: exactly this many matching lines, calls or packets (`0`: never logged, never called), counted once `within` has passed",
        schema: || json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX }),
        read: |v| Ok(ModValue::Number(read::<u32>(v)?.into())),
    },
    ModifierDef {
        keyword: "at_most",
        summary: "for `log`, `syscall`, `taken` and `sent`: no more than this many matching lines, calls or packets (`1`: logged at most once), counted once `within` has passed",
        schema: || json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX }),
        read: |v| Ok(ModValue::Number(read::<u32>(v)?.into())),
    },
    ModifierDef {
        keyword: "to",
        summary: "for `drop`, `reject`, `delay` and `sent`: only what the side sends to this side (`client`, `proxy`, `server`)",
        schema: || values::schema::side(),
        read: |v| Ok(ModValue::Side(read::<values::SideName>(v)?.0)),
    },
    ModifierDef {
        keyword: "flags",
        summary: "for `drop`, `reject`, `delay`, `sent` and `first`: only TCP segments with exactly these of SYN, FIN and RST set, and ACK when named: unnamed, ACK may be set or not (`\"SYN\"` is a SYN or a SYN|ACK, `\"RST\"` a reset with or without ACK, `\"FIN\"` the FIN|ACK Linux sends); `\"ACK\"` alone is a bare ACK; `!ACK` requires it clear (`\"RST|!ACK\"`: a bare reset, as a kernel answers a segment that carries an ACK); PSH is not looked at",
        schema: || json!({ "type": "string", "pattern": "^(SYN|FIN|RST|ACK|!ACK)(\\|(SYN|FIN|RST|ACK|!ACK))*$" }),
        read: |v| Ok(ModValue::Flags(read::<values::FlagsValue>(v)?.0)),
    },
    ModifierDef {
        keyword: "data",
        summary: "for `drop`, `reject`, `delay` and `sent`: `false`, only segments without data (with `flags = \"ACK\"`: a bare ACK, such as a handshake's last); `true`, only segments with data",
        schema: || json!({ "type": "boolean" }),
        read: |v| Ok(ModValue::Bool(read::<bool>(v)?)),
    },
    ModifierDef {
        keyword: "probability",
        summary: "for `drop`, `reject` and `delay`: the chance that each matching packet is taken, from 2^-32 (about 2.3e-10, the least nf_tables can draw) to 1",
        schema: || json!({ "type": "number", "minimum": crate::suite::limits::MIN_PROBABILITY, "maximum": 1 }),
        read: |v| Ok(ModValue::Fraction(read::<f64>(v)?)),
    },
    ModifierDef {
        keyword: "by",
        summary: "for `delay`: how long each packet is held, above 0 and at most 60s",
        schema: || values::schema::duration(),
        read: |v| Ok(ModValue::Duration(read::<values::DurationValue>(v)?.0)),
    },
    ModifierDef {
        keyword: "jitter",
        summary: "for `delay`: each packet's delay is drawn uniformly from `by` ± this (at most `by`); packets may overtake each other, as on a real path",
        schema: || values::schema::duration(),
        read: |v| Ok(ModValue::Duration(read::<values::DurationValue>(v)?.0)),
    },
    ModifierDef {
        keyword: "since",
        summary: "for `sent`: only segments that arrived after a side reached `mark = \"label\"` (between two steps: mark, then count)",
        schema: || json!({ "type": "string" }),
        read: |v| Ok(ModValue::Text(read::<String>(v)?)),
    },
    ModifierDef {
        keyword: "window",
        summary: "for `sent`: only segments advertising this window, unscaled as in the header (`0`: a zero window), resets aside",
        schema: || json!({ "type": "integer", "minimum": 0, "maximum": 65535 }),
        read: |v| Ok(ModValue::Number(read::<u16>(v)?.into())),
    },
    ModifierDef {
        keyword: "name",
        summary: "for `drop`, `reject`, `delay` and `cut`: what `lift` calls the fault",
        schema: || json!({ "type": "string", "minLength": 1, "maxLength": 64, "not": { "const": "all" } }),
        read: |v| Ok(ModValue::Text(read::<String>(v)?)),
    },
    ModifierDef {
        keyword: "with",
        summary: "for `reject`: `\"tcp-reset\"`, `\"port-unreachable\"`, `\"host-unreachable\"` or `\"admin-prohibited\"` (ICMP); for `cut`: `\"link_down\"` or `\"blackhole\"`",
        schema: || values::schema::with(),
        read: |v| Ok(ModValue::Text(read::<String>(v)?)),
    },
    ModifierDef {
        keyword: "on",
        summary: "in the proxy's script: which connection a step acts on, `\"client\"` (the one it accepted) or `\"server\"` (the one it made)",
        schema: || json!({ "enum": ["client", "server"] }),
        read: |v| Ok(ModValue::Link(read::<values::OnValue>(v)?.0)),
    },
    ModifierDef {
        keyword: "expect",
        summary: "the outcome: `\"ok\"`, `\"EOF\"` (a read returned 0) or an errno name; a list means any one of them; for `syscall`, the outcome of the program's call",
        schema: || values::schema::outcomes(),
        read: |v| Ok(ModValue::Outcomes(read::<values::RawExpect>(v)?, v.span())),
    },
    ModifierDef {
        keyword: "bytes",
        summary: "the bytes the call moved",
        schema: || json!({ "type": "integer", "minimum": 0 }),
        read: |v| Ok(ModValue::Number(read::<u64>(v)?)),
    },
    ModifierDef {
        keyword: "after",
        summary: "how long the call took, within the tolerance",
        schema: || values::schema::duration(),
        read: |v| Ok(ModValue::Duration(read::<values::DurationValue>(v)?.0)),
    },
    ModifierDef {
        keyword: "longer_than",
        summary: "a lower bound on how long the call took, no tolerance",
        schema: || values::schema::duration(),
        read: |v| Ok(ModValue::Duration(read::<values::DurationValue>(v)?.0)),
    },
];
