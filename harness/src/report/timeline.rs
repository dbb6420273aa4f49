//! The timeline of one case: calls and kernel states on both sides, in
//! time order, rendered as two columns (client left, server right).

use std::time::Duration;

use crate::model::CallResult;
use crate::model::Outcome;
use crate::model::TcpState;
use crate::model::{Side, Socket};
use crate::verdict::millis;

/// Everything that happened in a case, in the order it was recorded.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timeline {
    /// The events, oldest first.
    pub events: Vec<Event>,
}

/// One thing that happened, and when (from the start of the case).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    /// Time since the case's scripts started.
    pub at: Duration,
    /// Whose event; `None` for the case as a whole.
    pub side: Option<Side>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Where a state reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateSource {
    /// The kernel's socket table, by 4-tuple (listed, or gone).
    SockDiag,
    /// `TCP_INFO` on a socket the kernel no longer lists but the side still
    /// holds (reset into CLOSE).
    TcpInfo,
    /// The side had made no connection there yet, so there was nothing to
    /// ask the kernel about.
    NoConnectionYet,
}

/// What happened.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum EventKind {
    /// A socket call a script made, with its result.
    Call {
        /// 1-based step number in the side's script.
        step: usize,
        /// The call, e.g. `send 1000 bytes`.
        action: String,
        /// How long the call took.
        took: Duration,
        /// How it ended.
        result: CallResult,
    },
    /// A kernel state read for one of the side's connections.
    State {
        /// Which socket (the proxy has two).
        socket: Socket,
        /// The state.
        state: TcpState,
        /// Where it came from.
        source: StateSource,
    },
    /// Anything else worth a line (setup, sleeps, marks, the deadline).
    Note {
        /// The text.
        text: String,
    },
}

impl Timeline {
    /// Adds an event.
    pub fn push(&mut self, at: Duration, side: Option<Side>, kind: EventKind) {
        self.events.push(Event { at, side, kind });
    }

    /// Renders the timeline in two columns, client left, server right.
    ///
    /// A proxy, when the case has one, gets the middle column.
    pub fn render(&self) -> String {
        const WIDTH: usize = 46;
        let columns: Vec<Side> = [Side::Client, Side::Proxy, Side::Server]
            .into_iter()
            .filter(|side| {
                *side != Side::Proxy || self.events.iter().any(|e| e.side == Some(Side::Proxy))
            })
            .collect();
        let mut out = format!("{:>9}", "ms");
        for side in &columns {
            out.push_str(&format!("  {:<WIDTH$}", side.name()));
        }
        let mut out = out.trim_end().to_string();
        out.push('\n');
        for event in &self.events {
            let text = event.kind.describe();
            let ms = format!("{:.1}", event.at.as_secs_f64() * 1000.0);
            let line = match event
                .side
                .and_then(|side| columns.iter().position(|c| *c == side))
            {
                Some(column) => format!(
                    "{ms:>9}  {:<indent$}{text}",
                    "",
                    indent = column * (WIDTH + 2)
                ),
                None => format!("{ms:>9}  -- {text}"),
            };
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

impl EventKind {
    /// One line for the timeline.
    pub fn describe(&self) -> String {
        match self {
            EventKind::Call {
                step,
                action,
                took,
                result,
            } => {
                let outcome = match result.outcome {
                    Outcome::Ok if result.ready.is_some() => {
                        format!("ready: {}", result.ready.unwrap_or_default())
                    }
                    Outcome::Ok if result.bytes > 0 => format!("{} B", result.bytes),
                    Outcome::Ok => "ok".to_string(),
                    Outcome::Eof if result.bytes > 0 => format!("EOF after {} B", result.bytes),
                    Outcome::Eof => "EOF".to_string(),
                    Outcome::Errno(errno) if result.bytes > 0 => {
                        format!("{} after {} B", errno.name(), result.bytes)
                    }
                    Outcome::Errno(errno) => errno.name().to_string(),
                };
                format!("#{step} {action} -> {outcome} ({})", millis(*took))
            }
            EventKind::State {
                socket,
                state,
                source,
            } => {
                // The proxy has two sockets: name which; the others have one.
                let whose = match socket {
                    Socket::ProxyClient => "to client ",
                    Socket::ProxyServer => "to server ",
                    Socket::Client | Socket::Server => "",
                };
                match source {
                    StateSource::SockDiag => format!("[{whose}{}]", state.name()),
                    StateSource::TcpInfo => format!("[{whose}{}] via TCP_INFO", state.name()),
                    StateSource::NoConnectionYet => {
                        format!("[{whose}{}]: no connection yet", state.name())
                    }
                }
            }
            EventKind::Note { text } => text.clone(),
        }
    }
}
