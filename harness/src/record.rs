//! The one event record of a case: everything that happened, stamped on
//! the case's clock.
//!
//! A [`Recorder`] is a cheap, clonable handle: every thread of a case (each
//! side, the case's supervisor, and later a program's log reader or a
//! packet capture) writes through its own clone, stamping events with the
//! `Instant` they happened at; the record turns that into time since the
//! case started. When the case ends, [`Recorder::finish`] hands back the
//! [`Timeline`], oldest event first. [`crate::report`] only renders it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::model::{CallResult, Side, Socket, TcpState};

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
    #[serde(rename = "at_ms", serialize_with = "millis::serialize")]
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
        #[serde(rename = "took_ms", serialize_with = "millis::serialize")]
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
        /// The step that checked it (1-based), when a step did.
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<usize>,
        /// How many times a `within` check sampled the kernel before this
        /// reading (1 for a check without `within`).
        samples: u32,
        /// A reading a `within` check saw on the way, when the state changed
        /// between samples; not the check's evidence (its last reading is),
        /// and left out of `hangup diff`, since how many a run sees is
        /// timing.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        on_the_way: bool,
    },
    /// A line a program under test printed.
    Output {
        /// `out` or `err`.
        stream: &'static str,
        /// The line, without its newline (invalid UTF-8 replaced).
        line: String,
    },
    /// A TCP segment the case's capture saw arrive (the event's side is
    /// its sender's, when the case tells).
    Packet {
        /// Its sender's address.
        from: std::net::SocketAddr,
        /// Its receiver's address.
        to: std::net::SocketAddr,
        /// Its receiver's side, when the case tells.
        #[serde(skip_serializing_if = "Option::is_none")]
        to_side: Option<Side>,
        /// Its flags, `SYN|ACK`.
        flags: crate::model::TcpFlags,
        /// Its sequence number, from the sender's first (its SYN's) as 0.
        seq: u32,
        /// Its acknowledgement number on the same scale of the other
        /// direction (with ACK).
        ack: u32,
        /// The window it advertises, unscaled.
        window: u16,
        /// The bytes of data it carries.
        len: u32,
        /// The fault that took it (dropped or rejected it), as the kernel
        /// logged it, when one did: it never reached its receiver.
        #[serde(skip_serializing_if = "Option::is_none")]
        lost_to: Option<String>,
        /// The delay that held it, and for how long (ms), as hangup let it
        /// go: it reached its receiver that much later than the capture
        /// saw it (the capture sees a packet before the input hook).
        #[serde(skip_serializing_if = "Option::is_none")]
        held: Option<(String, f64)>,
    },
    /// Anything else worth a line (setup, sleeps, marks, the deadline).
    Note {
        /// The text.
        text: String,
    },
}

/// A handle on a case's record; clones write to the same record.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Arc<OnceLock<Instant>>,
    events: Arc<Mutex<Vec<Event>>>,
    artifacts: Arc<Artifacts>,
}

/// Where a case's artifact folder goes, and the folder once it is made.
#[derive(Debug)]
struct Artifacts {
    /// The folder it is made in.
    root: PathBuf,
    /// The start of its name (`hangup-<suite>-<case>-`).
    prefix: String,
    folder: OnceLock<Result<PathBuf, String>>,
}

impl Recorder {
    /// A record whose artifact folder, when something asks for it, is made
    /// in `root` with a name starting with `prefix`; its clock starts at
    /// [`start_clock`](Self::start_clock).
    pub fn new(root: PathBuf, prefix: String) -> Recorder {
        Recorder {
            start: Arc::default(),
            events: Arc::default(),
            artifacts: Arc::new(Artifacts {
                root,
                prefix,
                folder: OnceLock::new(),
            }),
        }
    }

    /// Starts the case's clock (once: later calls change nothing), when the
    /// case is ready to run: its namespace made, its sysctls set.
    pub fn start_clock(&self, at: Instant) {
        let _ = self.start.set(at);
    }

    /// The case's artifact folder, made on first use: whatever a case
    /// writes beside its events (a capture, a program's log) asks for it
    /// when it starts and streams into it; the runner asks at the end when
    /// it keeps the case's files. A case that never asks makes no folder:
    /// on this project's CI machine a `mkdir` and `rmdir` in the temp
    /// folder cost ~3 ms under load, four times a whole no-wait case.
    /// The same error (as text) every time once making it failed.
    pub fn artifacts(&self) -> Result<&Path, String> {
        let made = self.artifacts.folder.get_or_init(|| {
            std::fs::create_dir_all(&self.artifacts.root)
                .and_then(|()| {
                    tempfile::Builder::new()
                        .prefix(&self.artifacts.prefix)
                        .tempdir_in(&self.artifacts.root)
                })
                .map(tempfile::TempDir::keep)
                .map_err(|e| {
                    format!(
                        "failed to make an artifact folder in {}: {e}",
                        self.artifacts.root.display()
                    )
                })
        });
        made.as_deref().map_err(Clone::clone)
    }

    /// The artifact folder if something made it.
    pub fn artifacts_made(&self) -> Option<&Path> {
        self.artifacts.folder.get()?.as_deref().ok()
    }

    /// When the case's clock started, once it has.
    pub fn start(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    /// Time on the case's clock at `instant` (zero before the start).
    pub fn at(&self, instant: Instant) -> Duration {
        self.start().map_or(Duration::ZERO, |start| {
            instant.saturating_duration_since(start)
        })
    }

    /// Records what happened at `when`, on `side` (or the case as a whole).
    pub fn push(&self, when: Instant, side: Option<Side>, kind: EventKind) {
        let event = Event {
            at: self.at(when),
            side,
            kind,
        };
        // A panic while holding the lock leaves a whole Vec behind.
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    /// The record so far, oldest first (calls are recorded when they end
    /// but stamped when they began, so the order is by stamp).
    pub fn finish(&self) -> Timeline {
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        events.sort_by_key(|e| e.at);
        Timeline { events }
    }
}

/// Where a program's events (its output lines, its traced calls, its exit)
/// go: the record of the case it serves now. A program started for one
/// case routes to that case alone; one that serves a whole suite is
/// switched to each case in turn, and back to its own record between
/// them, so every event lands in exactly one record.
#[derive(Debug, Clone)]
pub struct Route(Arc<Mutex<Recorder>>);

impl Route {
    /// A route to `to`.
    pub fn new(to: Recorder) -> Route {
        Route(Arc::new(Mutex::new(to)))
    }

    /// From now on, events go to `to`.
    pub fn switch(&self, to: Recorder) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    /// Records an event in the record the route leads to now, stamped on
    /// that record's clock.
    pub fn push(&self, when: Instant, side: Option<Side>, kind: EventKind) {
        let to = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        to.push(when, side, kind);
    }
}

impl Timeline {
    /// Adds an event at `at` on the case's clock (for timelines built by
    /// hand, as tests do; a case records through a [`Recorder`]).
    pub fn push(&mut self, at: Duration, side: Option<Side>, kind: EventKind) {
        self.events.push(Event { at, side, kind });
    }
}

/// Durations in reports are milliseconds, as a number with microseconds as
/// its fraction: what people and scripts reading the JSON expect.
pub mod millis {
    use std::time::Duration;

    /// Serializes `d` as milliseconds.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_micros() as f64) / 1000.0)
    }
}
