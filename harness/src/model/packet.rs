//! What a fault does to a packet and which TCP flags a segment carries,
//! named as `nft` and the field's packet listings name them.

use std::fmt;

/// The TCP flags a segment carries, as the bits of the header's flags
/// byte: what a capture saw (a suite's `flags` is a [`FlagMatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: the sender has no more to send.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN: the first segment of each direction.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST: the connection is over.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH: deliver what came so far.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK: the acknowledgement number is valid.
    pub const ACK: TcpFlags = TcpFlags(0x10);

    /// Each flag with its name, in the order `tcpdump` prints them.
    const NAMES: [(TcpFlags, &'static str); 5] = [
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
    ];

    /// Whether every flag of `other` is set here.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Written as it displays: `SYN|ACK`, `none`.
impl serde::Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read as it displays: any of SYN, FIN, RST, PSH, ACK joined by `|`, or
/// `none` (what a capture saw, PSH included; a suite's flags are read by
/// [`FlagMatch::parse`]).
impl<'de> serde::Deserialize<'de> for TcpFlags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        if text == "none" {
            return Ok(TcpFlags(0));
        }
        let mut flags = TcpFlags(0);
        for name in text.split('|') {
            let (flag, _) = TcpFlags::NAMES
                .iter()
                .find(|(_, n)| *n == name)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "expected TCP flags like \"FIN|ACK\", found \"{text}\""
                    ))
                })?;
            flags.0 |= flag.0;
        }
        Ok(flags)
    }
}

impl schemars::JsonSchema for TcpFlags {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TcpFlags".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::units::string_schema(
            "TCP flags as tcpdump names them, joined by `|` in the order SYN, FIN, RST, PSH, ACK (`FIN|ACK`), or `none`.",
        )
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = TcpFlags::NAMES
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// The segments a suite's `flags` names (`"FIN"`, `"SYN|ACK"`,
/// `"RST|!ACK"`): exactly the named ones of SYN, FIN and RST set, the
/// others clear; ACK set when named, clear when named `!ACK`, and either
/// when not named at all. ACK is free by default because Linux sets it on
/// nearly every segment (a FIN is FIN|ACK, most resets RST|ACK, as
/// `tcpdump` prints `[F.]`, `[R.]`), so `"RST"` means any reset; `!ACK`
/// picks out the segments that go without it: the bare RST a kernel
/// answers a segment carrying an ACK with (RFC 793: its sequence number is
/// that ACK, and it acknowledges nothing), as a SYN-ACK that reaches a
/// socket closed in SYN_SENT is answered.
///
/// Reports write it as the suite does, `RST|!ACK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagMatch {
    /// The flags that must be set (of SYN, FIN, RST and ACK).
    set: TcpFlags,
    /// Whether ACK must be clear (`!ACK`).
    no_ack: bool,
}

impl FlagMatch {
    /// The flags a suite names: FIN, SYN, RST and ACK, the only ones a
    /// match looks at. PSH is left out, since whether a data segment
    /// carries it is the sender's choice, not a difference a suite means.
    const NAMED: TcpFlags = TcpFlags(0x17);

    /// What the grammar is, for messages.
    const EXPECTED: &'static str = "expected TCP flags such as \"SYN\", \"ACK\", \"FIN|ACK\" or \"RST|!ACK\" (of SYN, FIN, RST and ACK, joined by `|`; `!ACK`: ACK clear)";

    /// Reads `"SYN"`, `"ACK"`, `"FIN|ACK"`, `"RST|!ACK"`: the names of
    /// the flags that must be set, and `!ACK` when ACK must be clear.
    /// `!` goes only before ACK: SYN, FIN and RST are clear unless named.
    pub fn parse(text: &str) -> Result<FlagMatch, String> {
        let mut set = TcpFlags(0);
        let mut no_ack = false;
        for word in text.split('|').map(str::trim) {
            if let Some(negated) = word.strip_prefix('!') {
                match negated.trim() {
                    "ACK" => no_ack = true,
                    "SYN" | "FIN" | "RST" => {
                        return Err(format!(
                            "expected `!` only before ACK (SYN, FIN and RST are clear unless named), found `{text}`"
                        ));
                    }
                    _ => return Err(format!("{}, found `{text}`", FlagMatch::EXPECTED)),
                }
                continue;
            }
            let Some((flag, _)) = TcpFlags::NAMES
                .iter()
                .filter(|(flag, _)| FlagMatch::NAMED.contains(*flag))
                .find(|(_, name)| *name == word)
            else {
                return Err(format!("{}, found `{text}`", FlagMatch::EXPECTED));
            };
            set.0 |= flag.0;
        }
        if no_ack && set.contains(TcpFlags::ACK) {
            return Err(format!(
                "expected ACK set or clear (`!ACK`), not both, found `{text}`"
            ));
        }
        Ok(FlagMatch { set, no_ack })
    }

    /// Exactly `set` of SYN, FIN and RST, ACK as named in `set` (free
    /// when not).
    pub const fn named(set: TcpFlags) -> FlagMatch {
        FlagMatch { set, no_ack: false }
    }

    /// What a segment's flags byte is masked with, and must then equal,
    /// for it to match: SYN, FIN and RST always; ACK when it is named
    /// either way (set or `!ACK`), so `"ACK"` alone is a bare ACK (`[.]`)
    /// and `"RST|!ACK"` a reset without one (`[R]`).
    pub fn mask_and_value(self) -> (u8, u8) {
        const FIN_SYN_RST: u8 = 0x07;
        let ack_named = self.no_ack || self.set.contains(TcpFlags::ACK);
        let mask = FIN_SYN_RST | if ack_named { TcpFlags::ACK.0 } else { 0 };
        (mask, self.set.0 & mask)
    }

    /// Whether a segment with flags `seen` matches (see
    /// [`FlagMatch::mask_and_value`]).
    pub fn matches(self, seen: TcpFlags) -> bool {
        let (mask, value) = self.mask_and_value();
        seen.0 & mask == value
    }
}

impl From<TcpFlags> for FlagMatch {
    fn from(set: TcpFlags) -> FlagMatch {
        FlagMatch::named(set)
    }
}

/// As a suite writes it: `SYN|ACK`, `RST|!ACK`.
impl fmt::Display for FlagMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<&str> = TcpFlags::NAMES
            .iter()
            .filter(|(flag, _)| self.set.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        if self.no_ack {
            words.push("!ACK");
        }
        if words.is_empty() {
            // Never parsed (an empty text is refused), only made in code.
            return f.write_str("none");
        }
        f.write_str(&words.join("|"))
    }
}

impl serde::Serialize for FlagMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FlagMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        FlagMatch::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for FlagMatch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FlagMatch".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::units::string_schema(
            "TCP flags as a suite's `flags` names them: any of SYN, FIN, RST and ACK joined by `|` in that order, then `!ACK` when ACK must be clear (`FIN`, `SYN|ACK`, `RST|!ACK`). SYN, FIN and RST are exactly as named; ACK, when not named, may be set or not.",
        )
    }
}

/// Which packets a fault takes, by one of their TCP ports: on one
/// namespace's loopback, who sent a packet is told by its ports. Reports
/// write `{"from": 8080}` or `{"to": 8080}`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum Port {
    /// TCP from this port (what a listener's connections send).
    #[serde(rename = "from")]
    Source(u16),
    /// TCP to this port (what a connecting side sends its peer).
    #[serde(rename = "to")]
    Destination(u16),
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Source(p) => write!(f, "from port {p}"),
            Port::Destination(p) => write!(f, "to port {p}"),
        }
    }
}

/// What a fault does with a packet it matches.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// It vanishes: the sender's kernel believes it sent it and
    /// retransmits, the receiver never sees it (a paused or vanished host,
    /// a silent firewall).
    Drop,
    /// It vanishes and the sender is told so, as a firewall that rejects.
    Reject {
        /// How the sender is told.
        with: Reject,
    },
    /// It arrives late: held in the receiver's kernel for `by`, give or
    /// take up to `jitter` (a long or congested path; with jitter, packets
    /// may overtake each other).
    Delay {
        /// How long each packet is held.
        #[serde(rename = "by_ms", with = "super::units::millis")]
        #[schemars(with = "f64")]
        by: std::time::Duration,
        /// Each packet's delay is drawn uniformly from `by ± jitter`.
        #[serde(rename = "jitter_ms", with = "super::units::millis")]
        #[schemars(with = "f64")]
        jitter: std::time::Duration,
    },
}

/// How a rejected packet's sender is told; written as a suite writes it
/// (`tcp-reset`, `port-unreachable`, ...).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Reject {
    /// A TCP RST, as if from the receiver.
    TcpReset,
    /// ICMP port unreachable.
    PortUnreachable,
    /// ICMP host unreachable.
    HostUnreachable,
    /// ICMP administratively prohibited.
    AdminProhibited,
}

impl Reject {
    /// Every kind, with the word a suite writes (as `nft` writes it).
    pub const ALL: [(Reject, &'static str); 4] = [
        (Reject::TcpReset, "tcp-reset"),
        (Reject::PortUnreachable, "port-unreachable"),
        (Reject::HostUnreachable, "host-unreachable"),
        (Reject::AdminProhibited, "admin-prohibited"),
    ];

    /// The word a suite writes.
    pub fn name(self) -> &'static str {
        Reject::ALL
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("tcp-reset", |(_, name)| name)
    }

    /// The kind a suite's word names.
    pub fn parse(text: &str) -> Result<Reject, String> {
        Reject::ALL
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(kind, _)| *kind)
            .ok_or_else(|| {
                let names: Vec<String> =
                    Reject::ALL.iter().map(|(_, n)| format!("`{n}`")).collect();
                format!(
                    "expected how to reject, one of {}, found `{text}`",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Drop => f.write_str("drop"),
            Verdict::Reject { with } => write!(f, "reject with {}", with.name()),
            Verdict::Delay { by, jitter } if jitter.is_zero() => {
                write!(f, "delay by {}", humantime::format_duration(*by))
            }
            Verdict::Delay { by, jitter } => write!(
                f,
                "delay by {} ± {}",
                humantime::format_duration(*by),
                humantime::format_duration(*jitter)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_and_print_as_suites_write_them() {
        let rule = |text| FlagMatch::parse(text).unwrap();
        assert_eq!(rule("SYN"), FlagMatch::named(TcpFlags::SYN));
        assert_eq!(rule("FIN|ACK"), FlagMatch::named(TcpFlags(0x11)));
        assert_eq!(rule("ACK|FIN").to_string(), "FIN|ACK");
        assert_eq!(rule("RST|!ACK").to_string(), "RST|!ACK");
        assert_eq!(rule("!ACK|RST"), rule("RST|!ACK"));
        assert_eq!(rule("RST | ! ACK"), rule("RST|!ACK"));
        assert_eq!(TcpFlags(0x12).to_string(), "SYN|ACK");
        assert!(FlagMatch::parse("PSH").is_err(), "PSH is not matched");
        assert!(FlagMatch::parse("syn").is_err());
        assert!(FlagMatch::parse("").is_err());
        assert!(FlagMatch::parse("RST|").is_err());
        assert!(FlagMatch::parse("!").is_err());
        assert!(FlagMatch::parse("!PSH").is_err());
    }

    #[test]
    fn not_is_only_for_ack_and_never_contradicts() {
        let both = FlagMatch::parse("RST|ACK|!ACK").unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let redundant = FlagMatch::parse("RST|!SYN").unwrap_err();
        assert!(redundant.contains("only before ACK"), "{redundant}");
    }

    #[test]
    fn ack_is_free_but_a_bare_ack_is_bare() {
        let [syn, syn_ack, fin_ack, rst, rst_ack, ack, psh_ack] =
            [0x02, 0x12, 0x11, 0x04, 0x14, 0x10, 0x18].map(TcpFlags);
        let rule = |text| FlagMatch::parse(text).unwrap();
        assert!(rule("SYN").matches(syn) && rule("SYN").matches(syn_ack));
        assert!(rule("FIN").matches(fin_ack));
        assert!(rule("RST").matches(rst) && rule("RST").matches(rst_ack));
        assert!(rule("ACK").matches(ack) && rule("ACK").matches(psh_ack));
        assert!(!rule("ACK").matches(fin_ack) && !rule("ACK").matches(rst_ack));
        assert!(!rule("SYN").matches(rst) && !rule("FIN").matches(ack));
        assert!(!rule("SYN|ACK").matches(syn), "named ACK is required");
    }

    #[test]
    fn not_ack_requires_the_ack_clear() {
        let [syn, syn_ack, rst, rst_ack, psh_rst] = [0x02, 0x12, 0x04, 0x14, 0x0c].map(TcpFlags);
        let rule = |text| FlagMatch::parse(text).unwrap();
        assert!(rule("RST|!ACK").matches(rst) && rule("RST|!ACK").matches(psh_rst));
        assert!(
            !rule("RST|!ACK").matches(rst_ack),
            "a reset with ACK is not bare"
        );
        assert!(rule("SYN|!ACK").matches(syn) && !rule("SYN|!ACK").matches(syn_ack));
        assert_eq!(rule("RST|!ACK").mask_and_value(), (0x17, 0x04));
        assert_eq!(rule("RST").mask_and_value(), (0x07, 0x04));
        assert_eq!(rule("RST|ACK").mask_and_value(), (0x17, 0x14));
    }

    #[test]
    fn flag_matches_round_trip_through_reports() {
        for text in ["SYN", "FIN|ACK", "RST|!ACK", "ACK", "!ACK"] {
            let rule = FlagMatch::parse(text).unwrap();
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<FlagMatch>(&json).unwrap(), rule);
        }
    }

    #[test]
    fn reject_kinds_round_trip() {
        for (kind, name) in Reject::ALL {
            assert_eq!(Reject::parse(name), Ok(kind));
            assert_eq!(kind.name(), name);
        }
        assert!(Reject::parse("icmp").unwrap_err().contains("tcp-reset"));
    }
}
