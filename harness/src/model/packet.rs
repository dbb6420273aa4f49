//! What a fault does to a packet and which TCP flags a segment carries,
//! named as `nft` and the field's packet listings name them.

use std::fmt;

/// The TCP flags a fault matches on (and, later, a capture shows), as the
/// bits of the header's flags byte.
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

    /// The flags a suite names (FIN, SYN, RST, ACK): PSH is left out,
    /// since whether a data segment carries it is the sender's choice, not
    /// a difference a suite means.
    pub const MATCHED: TcpFlags = TcpFlags(0x17);

    /// Each flag with its name, in the order `tcpdump` prints them.
    const NAMES: [(TcpFlags, &'static str); 5] = [
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
    ];

    /// Reads `"SYN"`, `"ACK"`, `"FIN|ACK"`: the names of the flags that
    /// must be set, all others of FIN, SYN, RST and ACK clear.
    pub fn parse(text: &str) -> Result<TcpFlags, String> {
        let mut flags = TcpFlags(0);
        for name in text.split('|').map(str::trim) {
            let Some((flag, _)) = TcpFlags::NAMES
                .iter()
                .filter(|(flag, _)| flag.0 & TcpFlags::MATCHED.0 != 0)
                .find(|(_, n)| *n == name)
            else {
                return Err(format!(
                    "expected TCP flags such as \"SYN\", \"ACK\" or \"FIN|ACK\" (of SYN, FIN, RST, ACK), found `{text}`"
                ));
            };
            flags.0 |= flag.0;
        }
        Ok(flags)
    }

    /// Whether every flag of `other` is set here.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// What a segment's flags byte is masked with, and must then equal,
    /// for it to match these flags as a suite names them: exactly these of
    /// SYN, FIN and RST; ACK set when named, free when not (a FIN is nearly
    /// always FIN|ACK, a reset RST or RST|ACK, as `tcpdump` prints `[F.]`,
    /// `[R.]`). So `"ACK"` alone is a bare ACK (`[.]`), none of the others
    /// set, and `"SYN|ACK"` needs the ACK.
    pub fn mask_and_value(self) -> (u8, u8) {
        const FIN_SYN_RST: u8 = 0x07;
        let mask = FIN_SYN_RST | (self.0 & TcpFlags::ACK.0);
        (mask, self.0 & mask)
    }

    /// Whether a segment with flags `seen` matches these (see
    /// [`TcpFlags::mask_and_value`]).
    pub fn matches(self, seen: TcpFlags) -> bool {
        let (mask, value) = self.mask_and_value();
        seen.0 & mask == value
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
/// [`TcpFlags::parse`]).
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
        assert_eq!(TcpFlags::parse("SYN"), Ok(TcpFlags::SYN));
        let fin_ack = TcpFlags::parse("FIN|ACK").unwrap();
        assert_eq!(fin_ack, TcpFlags(0x11));
        assert_eq!(fin_ack.to_string(), "FIN|ACK");
        assert_eq!(TcpFlags(0x12).to_string(), "SYN|ACK");
        assert!(TcpFlags::parse("PSH").is_err(), "PSH is not matched");
        assert!(TcpFlags::parse("syn").is_err());
        assert!(TcpFlags::parse("").is_err());
    }

    #[test]
    fn ack_is_free_but_a_bare_ack_is_bare() {
        let [syn, syn_ack, fin_ack, rst, rst_ack, ack, psh_ack] =
            [0x02, 0x12, 0x11, 0x04, 0x14, 0x10, 0x18].map(TcpFlags);
        let rule = |text| TcpFlags::parse(text).unwrap();
        assert!(rule("SYN").matches(syn) && rule("SYN").matches(syn_ack));
        assert!(rule("FIN").matches(fin_ack));
        assert!(rule("RST").matches(rst) && rule("RST").matches(rst_ack));
        assert!(rule("ACK").matches(ack) && rule("ACK").matches(psh_ack));
        assert!(!rule("ACK").matches(fin_ack) && !rule("ACK").matches(rst_ack));
        assert!(!rule("SYN").matches(rst) && !rule("FIN").matches(ack));
        assert!(!rule("SYN|ACK").matches(syn), "named ACK is required");
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
