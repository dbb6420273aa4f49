//! The two ends of a connection, named the way the seeds name them.

use std::fmt;

/// Which end of the connection a step, an observation or a failure is about.
///
/// Either side may be a scripted peer of the harness; later the server may be
/// a real program under test. Ordered client first so timelines read left to
/// right the way the ladder diagrams in the seeds do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The end that connects.
    Client,
    /// The end that listens and accepts.
    Server,
}

impl Side {
    /// Both sides, client first.
    pub const BOTH: [Side; 2] = [Side::Client, Side::Server];

    /// The lowercase name suites use as a key.
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    /// The other end of the connection.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
