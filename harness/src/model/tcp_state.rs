//! TCP states by the names the kernel and `ss` use.
//!
//! [`TcpState`] is the state of one side's socket as the kernel reports it
//! (through sock_diag or `TCP_INFO`, see [`crate::observe`]), plus
//! [`TcpState::Gone`] for "the kernel holds no socket for this connection any
//! more". Suites write states by the same names `ss` prints (`TIME_WAIT`,
//! `CLOSE_WAIT`, ...), case-insensitively, and `gone`.
//!
//! The kernel's numbering (`include/net/tcp_states.h`) is read with
//! [`TcpState::from_kernel`]. `TCP_NEW_SYN_RECV` (12), the kernel's
//! lightweight request socket for a half-open passive connection, is folded
//! into [`TcpState::SynRecv`]: sock_diag already reports such sockets as
//! `SYN_RECV`, and `ss` shows them that way too.

use std::fmt;
use std::str::FromStr;

/// The TCP state of one side's socket, or [`TcpState::Gone`] when the kernel
/// no longer lists a socket for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// The connection is open: both handshakes are done and data flows both
    /// ways.
    Established,
    /// This side sent a SYN and waits for the peer's SYN-ACK (a connect in
    /// progress; stuck here when SYNs are dropped).
    SynSent,
    /// This side (a listener's child) got a SYN and answered SYN-ACK, and
    /// waits for the final ACK of the handshake.
    SynRecv,
    /// This side closed (sent FIN) and waits for the peer to acknowledge it;
    /// stuck here when the peer stops answering.
    FinWait1,
    /// This side's FIN was acknowledged; it waits for the peer's FIN, which
    /// never comes when the peer leaks its socket in CLOSE_WAIT.
    FinWait2,
    /// This side closed first and the close completed; the 4-tuple stays
    /// reserved for 60 s on Linux so stray segments cannot hit a new
    /// connection.
    TimeWait,
    /// The socket is closed and holds no connection (for example after a
    /// reset); the kernel lists it only while a process still holds it.
    Close,
    /// The peer sent FIN and this side has not closed yet: a leak when it
    /// lasts.
    CloseWait,
    /// This side closed after the peer's FIN and waits for the ACK of its own
    /// FIN.
    LastAck,
    /// A listening socket, waiting for connections.
    Listen,
    /// Both sides sent FIN at once and this side waits for the ACK of its FIN
    /// (a simultaneous close).
    Closing,
    /// The kernel holds no socket for this connection: it was released, reset,
    /// or its TIME_WAIT ran out.
    Gone,
}

impl TcpState {
    /// Every state, in the kernel's order, with [`TcpState::Gone`] last.
    pub const ALL: [TcpState; 12] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::Gone,
    ];

    /// The name `ss` prints for this state (`"ESTABLISHED"`, `"TIME_WAIT"`,
    /// ...), and `"gone"` for [`TcpState::Gone`].
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::Gone => "gone",
        }
    }

    /// The state for a kernel state code (`TCP_ESTABLISHED` = 1 through
    /// `TCP_CLOSING` = 11 in `include/net/tcp_states.h`); `TCP_NEW_SYN_RECV`
    /// (12) maps to [`TcpState::SynRecv`]. Any other code (0, or a newer
    /// kernel's pseudo-states such as `TCP_BOUND_INACTIVE`) is `None`.
    pub fn from_kernel(code: u8) -> Option<TcpState> {
        Some(match code {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 | 12 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            _ => return None,
        })
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A state name that [`TcpState::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTcpState(pub String);

impl fmt::Display for UnknownTcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = TcpState::ALL.iter().map(|s| s.name());
        if let Some(meant) = super::nearest::nearest(&self.0, names) {
            return write!(f, "unknown TCP state `{}`: did you mean {meant}?", self.0);
        }
        write!(f, "unknown TCP state `{}`, expected one of ", self.0)?;
        for (i, state) in TcpState::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(state.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownTcpState {}

impl FromStr for TcpState {
    type Err = UnknownTcpState;

    /// Parses a state by its [`TcpState::name`], ignoring ASCII case
    /// (`"time_wait"`, `"TIME_WAIT"`, `"Gone"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TcpState::ALL
            .into_iter()
            .find(|state| state.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownTcpState(s.to_owned()))
    }
}

/// Serialized as its [`TcpState::name`].
impl serde::Serialize for TcpState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Deserialized from a name as [`TcpState::from_str`] accepts it, so suites
/// can write `state = "time_wait"`.
impl<'de> serde::Deserialize<'de> for TcpState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TcpState;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TCP state name such as \"ESTABLISHED\" or \"gone\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TcpState, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A string: one of the names [`TcpState::name`] gives.
impl schemars::JsonSchema for TcpState {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TcpState".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
        schemars::json_schema!({
            "type": "string",
            "enum": names,
            "description": "A TCP state as the kernel and `ss` name it, or `gone`: the kernel holds no socket for the connection any more.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(1, TcpState::Established)]
    #[case(2, TcpState::SynSent)]
    #[case(3, TcpState::SynRecv)]
    #[case(4, TcpState::FinWait1)]
    #[case(5, TcpState::FinWait2)]
    #[case(6, TcpState::TimeWait)]
    #[case(7, TcpState::Close)]
    #[case(8, TcpState::CloseWait)]
    #[case(9, TcpState::LastAck)]
    #[case(10, TcpState::Listen)]
    #[case(11, TcpState::Closing)]
    #[case(12, TcpState::SynRecv)]
    fn kernel_codes_follow_tcp_states_h(#[case] code: u8, #[case] state: TcpState) {
        assert_eq!(TcpState::from_kernel(code), Some(state));
    }

    #[rstest]
    #[case(0)]
    #[case(13)]
    #[case(255)]
    fn codes_outside_tcp_states_h_are_unknown(#[case] code: u8) {
        assert_eq!(TcpState::from_kernel(code), None);
    }

    #[test]
    fn kernel_codes_cover_every_state_but_gone() {
        let from_kernel: Vec<TcpState> = (1..=11).filter_map(TcpState::from_kernel).collect();
        assert_eq!(from_kernel, TcpState::ALL[..11]);
        assert_eq!(TcpState::ALL[11], TcpState::Gone);
    }

    #[test]
    fn every_name_parses_back_in_any_case() {
        for state in TcpState::ALL {
            assert_eq!(state.name().parse::<TcpState>(), Ok(state));
            assert_eq!(state.name().to_lowercase().parse::<TcpState>(), Ok(state));
            assert_eq!(state.name().to_uppercase().parse::<TcpState>(), Ok(state));
            assert_eq!(state.to_string(), state.name());
        }
    }

    #[test]
    fn names_are_what_ss_prints() {
        assert_eq!(TcpState::CloseWait.name(), "CLOSE_WAIT");
        assert_eq!(TcpState::FinWait1.name(), "FIN_WAIT1");
        assert_eq!(TcpState::Gone.name(), "gone");
        assert_eq!(format!("{:>12}|", TcpState::Listen), "      LISTEN|");
    }

    #[rstest]
    #[case("TIME-WAIT", "TIME_WAIT")]
    #[case(" LISTEN", "LISTEN")]
    #[case("ESTABLISHD", "ESTABLISHED")]
    fn a_typo_is_told_the_state_it_meant(#[case] input: &str, #[case] meant: &str) {
        let err = input.parse::<TcpState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unknown TCP state `{input}`: did you mean {meant}?")
        );
    }

    #[rstest]
    #[case("")]
    #[case("HALF_OPEN")]
    #[case("nope")]
    fn unknown_names_list_the_known_ones(#[case] input: &str) {
        let err = input.parse::<TcpState>().unwrap_err();
        assert_eq!(err, UnknownTcpState(input.to_owned()));
        assert_eq!(
            err.to_string(),
            format!(
                "unknown TCP state `{input}`, expected one of ESTABLISHED, SYN_SENT, \
                 SYN_RECV, FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, \
                 LISTEN, CLOSING, gone"
            )
        );
    }

    #[test]
    fn serializes_as_the_name() {
        assert_eq!(
            serde_json::to_string(&TcpState::TimeWait).unwrap(),
            "\"TIME_WAIT\""
        );
        assert_eq!(serde_json::to_string(&TcpState::Gone).unwrap(), "\"gone\"");
        let back: Vec<TcpState> = serde_json::from_str(r#"["close_wait", "GONE"]"#).unwrap();
        assert_eq!(back, [TcpState::CloseWait, TcpState::Gone]);
        let err = serde_json::from_str::<TcpState>(r#""nope""#).unwrap_err();
        assert!(
            err.to_string().starts_with("unknown TCP state `nope`"),
            "{err}"
        );
    }
}
