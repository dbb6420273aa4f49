//! A sweep's cells as a matrix: phases down, kinds across, each cell its
//! verdict and the key evidence of what the program did.
//!
//! Built from the case reports alone (each cell is a case with a
//! [`Cell`](crate::suite::sweep::Cell)), so the JSON report's matrix, the terminal's grid and `diff`
//! of two matrices read the same facts. The evidence is typed: the
//! program's first failed socket call and its errno (EAGAIN and EINTR
//! aside), the calls that failed outside the sweep's `errnos`, the states
//! its end of the cell's connection was seen in, whether it sent a FIN or
//! a reset on it, and what each `log` check counted.

use std::fmt::Write as _;

use crate::model::{Escaped, Outcome, Side, Socket, TcpFlags, TcpState};
use crate::record::{EventKind, Timeline};
use crate::suite::VersionRun;
use crate::suite::sweep::{Kind, Phase};

use super::step::StepRef;
use crate::verdict::Mismatch;

/// One sweep's matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Matrix {
    /// The suite it is in.
    pub suite: String,
    /// The sweep's name.
    pub sweep: String,
    /// The version of the program its cells ran, and which run of it,
    /// when the suite compares two: each version's cells make a matrix
    /// of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionRun>,
    /// Its phases, in the order it names them (rows).
    pub phases: Vec<Phase>,
    /// Its kinds, in the order of [`Kind::ALL`] (columns).
    pub kinds: Vec<Kind>,
    /// One entry per cell that ran (or was skipped), in run order; a
    /// (phase, kind) pair with none did not apply.
    pub cells: Vec<CellReport>,
}

/// One cell: its verdict and its key evidence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct CellReport {
    /// Where the client hung up.
    pub phase: Phase,
    /// How.
    pub kind: Kind,
    /// The case's test name, `<suite>::<sweep>::<phase>::<kind>`.
    pub case: String,
    /// How it ended.
    pub verdict: Verdict,
    /// The step that failed, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<StepRef>,
    /// What it expected and observed, when an expectation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<Mismatch>,
    /// What the program did.
    pub evidence: Evidence,
}

/// A cell's verdict.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check held.
    Passed,
    /// A check did not hold, or the cell could not run.
    Failed,
    /// Not run.
    Skipped,
}

impl Verdict {
    /// As the grid shows it: a word, never a colour alone.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "ok",
            Verdict::Failed => "FAILED",
            Verdict::Skipped => "skipped",
        }
    }
}

/// What the program did in a cell, on the cell's connection (the client's
/// first: a `serving` check's fresh one is left out).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[non_exhaustive]
pub struct Evidence {
    /// The program's first traced socket call on the connection that
    /// failed: the call (`writev`) and its errno. EAGAIN and EINTR are
    /// left aside ([`Errno::is_routine`](crate::model::Errno::is_routine)):
    /// an event loop meets them on every connection, and they say nothing
    /// of the hang-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failed_call: Option<FailedCall>,
    /// The states its end of the connection was read in, in order, each
    /// change once (only what a check read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<TcpState>,
    /// The calls an `errnos` check (the sweep's `errnos`) found failing
    /// on the connection with an errno outside its set, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_errnos: Vec<FailedCall>,
    /// Whether the capture saw it send a FIN on the connection.
    pub sent_fin: bool,
    /// Whether the capture saw it send a reset on the connection.
    pub sent_rst: bool,
    /// Each `log` check's pattern and the lines it counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<LogEvidence>,
}

/// A program's socket call that failed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct FailedCall {
    /// The call, as strace names it.
    pub syscall: String,
    /// Its outcome (an errno).
    pub outcome: Outcome,
}

/// What one `log` check counted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct LogEvidence {
    /// The regular expression.
    pub pattern: String,
    /// How many lines matched.
    pub count: u64,
}

impl Evidence {
    /// The evidence in `timeline`, on the client's first connection,
    /// while the scripts ran: what the program's stop at the end of the
    /// case does to the connection (a FIN as it exits) is not the cell's.
    pub(super) fn of(timeline: &Timeline) -> Evidence {
        let mut evidence = Evidence::default();
        let end = timeline
            .events
            .iter()
            .filter(|e| e.kind.step().is_some())
            .map(|e| e.at)
            .max()
            .unwrap_or_default();
        // The cell's connection: the client's first SYN names its address.
        let client = timeline.events.iter().find_map(|event| match &event.kind {
            EventKind::Packet { from, flags, .. }
                if event.side == Some(Side::Client) && *flags == TcpFlags::SYN =>
            {
                Some(*from)
            }
            _ => None,
        });
        // When the client began its next connection (a `serving` check's):
        // what the program accepts before then can only be the cell's.
        let next = client.and_then(|first| {
            timeline.events.iter().find_map(|event| match &event.kind {
                EventKind::Packet { from, flags, .. }
                    if event.side == Some(Side::Client)
                        && *flags == TcpFlags::SYN
                        && *from != first =>
                {
                    Some(event.at)
                }
                _ => None,
            })
        });
        // The program's fds for it: a call that failed once the kernel
        // forgot the peer (after a reset) is told by its fd. A connection
        // the client reset before the program accepted it has no peer even
        // at its accept: the first such accept before the client's next
        // connection is the cell's. An fd accepted for another peer is no
        // longer the cell's.
        let mut fds = Vec::new();
        let mut claimed = false;
        for event in timeline.events.iter().take_while(|e| e.at <= end) {
            match &event.kind {
                EventKind::Traced { call } if evidence.first_failed_call.is_none() => {
                    if let Some(fd) = call.accepted {
                        let before_next = next.is_none_or(|next| event.at < next);
                        if call.peer == client || (call.peer.is_none() && !claimed && before_next) {
                            claimed = true;
                            fds.push(fd);
                        } else {
                            fds.retain(|&f| f != fd);
                        }
                    }
                    let on_it = client.is_none()
                        || call.peer == client
                        || (call.peer.is_none() && fds.contains(&call.fd));
                    let failed = match call.result.outcome {
                        Outcome::Errno(errno) => !errno.is_routine(),
                        _ => false,
                    };
                    if on_it && failed {
                        evidence.first_failed_call = Some(FailedCall {
                            syscall: call.syscall.clone(),
                            outcome: call.result.outcome,
                        });
                    }
                }
                EventKind::State {
                    socket: Socket::Server,
                    state,
                    ..
                } if evidence.states.last() != Some(state) => evidence.states.push(*state),
                EventKind::Packet { to, flags, .. }
                    if event.side == Some(Side::Server) && Some(*to) == client =>
                {
                    evidence.sent_fin |= flags.contains(TcpFlags::FIN);
                    evidence.sent_rst |= flags.contains(TcpFlags::RST);
                }
                EventKind::Errnos { outside, .. } => {
                    evidence
                        .outside_errnos
                        .extend(outside.iter().map(|c| FailedCall {
                            syscall: c.syscall.clone(),
                            outcome: c.outcome,
                        }));
                }
                EventKind::LogCount { pattern, count, .. } => evidence.log.push(LogEvidence {
                    pattern: pattern.clone(),
                    count: *count,
                }),
                _ => {}
            }
        }
        evidence
    }

    /// One line: `write EPIPE · CLOSE_WAIT -> gone · failed outside
    /// `errnos`: writev ETIMEDOUT · FIN · log "x": 1`.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(call) = &self.first_failed_call {
            parts.push(format!("{} {}", call.syscall, call.outcome));
        }
        if !self.states.is_empty() {
            let states: Vec<String> = self.states.iter().map(|s| s.to_string()).collect();
            parts.push(states.join(" -> "));
        }
        if !self.outside_errnos.is_empty() {
            let calls: Vec<String> = self
                .outside_errnos
                .iter()
                .map(|c| format!("{} {}", c.syscall, c.outcome))
                .collect();
            parts.push(format!("failed outside `errnos`: {}", calls.join(", ")));
        }
        match (self.sent_fin, self.sent_rst) {
            (true, true) => parts.push("sent FIN and RST".into()),
            (true, false) => parts.push("sent FIN".into()),
            (false, true) => parts.push("sent RST".into()),
            (false, false) => {}
        }
        for log in &self.log {
            parts.push(format!("log \"{}\": {}", Escaped(&log.pattern), log.count));
        }
        parts.join(" · ")
    }
}

impl Matrix {
    /// `<suite>::<sweep>`, with `@<version>` (and `#<run>`) when its
    /// cells ran one version of two, escaped for the terminal.
    pub fn title(&self) -> String {
        let version = self.version.as_ref().map(VersionRun::suffix);
        Escaped(&format!(
            "{}::{}{}",
            self.suite,
            self.sweep,
            version.unwrap_or_default()
        ))
        .to_string()
    }

    /// The cell at (`phase`, `kind`), if it ran.
    pub fn cell(&self, phase: &Phase, kind: Kind) -> Option<&CellReport> {
        self.cells
            .iter()
            .find(|c| &c.phase == phase && c.kind == kind)
    }

    /// The matrix as the terminal shows it: a grid of verdicts (`-`: the
    /// kind does not apply to the phase) when it fits in `width` columns,
    /// else a line per cell; then a line per failed cell with its evidence.
    pub fn render(&self, width: usize) -> String {
        let failed = self
            .cells
            .iter()
            .filter(|c| c.verdict == Verdict::Failed)
            .count();
        let mut out = format!(
            "sweep {}: {} cells, {} passed, {failed} failed\n",
            self.title(),
            self.cells.len(),
            self.cells
                .iter()
                .filter(|c| c.verdict == Verdict::Passed)
                .count(),
        );
        let rows: Vec<String> = self.phases.iter().map(Phase::name).collect();
        let first = rows.iter().map(String::len).max().unwrap_or(0).max(5);
        // Long kind names take two header lines, split at an `_`.
        let heads: Vec<(&str, &str)> = self.kinds.iter().map(|k| two_lines(k.name())).collect();
        let columns: Vec<usize> = heads
            .iter()
            .map(|(a, b)| a.len().max(b.len()).max("FAILED".len()))
            .collect();
        let grid_width = 2 + first + columns.iter().map(|w| w + 2).sum::<usize>();
        if grid_width <= width {
            for line in 0..2 {
                let _ = write!(out, "  {:first$}", "");
                for ((a, b), w) in heads.iter().zip(&columns) {
                    let _ = write!(out, "  {:w$}", if line == 0 { a } else { b });
                }
                out.truncate(out.trim_end().len());
                out.push('\n');
            }
            for (phase, row) in self.phases.iter().zip(&rows) {
                let _ = write!(out, "  {row:first$}");
                for (kind, w) in self.kinds.iter().zip(&columns) {
                    let word = self.cell(phase, *kind).map_or("-", |c| c.verdict.word());
                    let _ = write!(out, "  {word:w$}");
                }
                out.truncate(out.trim_end().len());
                out.push('\n');
            }
        } else {
            for cell in &self.cells {
                let _ = writeln!(
                    out,
                    "  {}::{}: {}",
                    cell.phase.name(),
                    cell.kind.name(),
                    cell.verdict.word()
                );
            }
        }
        for cell in self.cells.iter().filter(|c| c.verdict == Verdict::Failed) {
            let step = cell.failed_step.as_ref().map_or_else(String::new, |step| {
                format!(" at `{}`", Escaped(&step.source))
            });
            let observed = cell.mismatch.as_ref().map_or_else(String::new, |m| {
                format!(": observed {}", Escaped(&m.observed))
            });
            let _ = writeln!(
                out,
                "  FAILED {}::{}{step}{observed}",
                cell.phase.name(),
                cell.kind.name(),
            );
            let evidence = cell.evidence.line();
            if !evidence.is_empty() {
                let _ = writeln!(out, "         the program: {evidence}");
            }
        }
        out
    }
}

/// One sweep in two runs, cell by cell: the typed comparison that the
/// terminal ([`render_changes`]) and the HTML page write.
#[derive(Debug, Clone)]
pub struct SweepChange<'a> {
    /// The base run's matrix (none: only the new run has the sweep).
    pub base: Option<&'a Matrix>,
    /// The new run's (none: it lost the sweep).
    pub new: Option<&'a Matrix>,
    /// Every phase either has, in order.
    pub phases: Vec<Phase>,
    /// Every kind either has, in [`Kind::ALL`]'s order.
    pub kinds: Vec<Kind>,
}

/// What changed in a cell between two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellChange {
    /// Nothing.
    None,
    /// Only its evidence: what the program did.
    Evidence,
    /// Its verdict, or whether it ran at all.
    Verdict,
}

impl<'a> SweepChange<'a> {
    /// The cell at `phase` and `kind` in each run.
    pub fn cells(
        &self,
        phase: &Phase,
        kind: Kind,
    ) -> (Option<&'a CellReport>, Option<&'a CellReport>) {
        (
            self.base.and_then(|m| m.cell(phase, kind)),
            self.new.and_then(|m| m.cell(phase, kind)),
        )
    }

    /// What changed at `phase` and `kind`, and the cell's word: its
    /// verdict, `base->new` where it changed (`ok->FAILED`; `+` a cell
    /// only the new run has, `-` one it lost), `*` after it where only
    /// the evidence did, `-` where neither run has the cell.
    pub fn cell(&self, phase: &Phase, kind: Kind) -> (String, CellChange) {
        match self.cells(phase, kind) {
            (None, None) => ("-".into(), CellChange::None),
            (Some(x), Some(y)) if x.verdict == y.verdict && x.evidence == y.evidence => {
                (y.verdict.word().into(), CellChange::None)
            }
            (Some(x), Some(y)) if x.verdict == y.verdict => {
                (format!("{}*", y.verdict.word()), CellChange::Evidence)
            }
            (Some(x), Some(y)) => (
                format!("{}->{}", x.verdict.word(), y.verdict.word()),
                CellChange::Verdict,
            ),
            (None, Some(y)) => (format!("+{}", y.verdict.word()), CellChange::Verdict),
            (Some(x), None) => (format!("-{}", x.verdict.word()), CellChange::Verdict),
        }
    }

    /// The cells that changed, row by row.
    pub fn changed(&self) -> Vec<(&Phase, Kind, CellChange)> {
        self.phases
            .iter()
            .flat_map(|p| self.kinds.iter().map(move |k| (p, *k)))
            .map(|(p, k)| (p, k, self.cell(p, k).1))
            .filter(|(_, _, change)| *change != CellChange::None)
            .collect()
    }

    /// `<suite>::<sweep>`, and `(v1 -> v2)` after it when the two are two
    /// versions of one run; escaped for the terminal.
    pub fn title(&self) -> String {
        let Some(any) = self.new.or(self.base) else {
            return String::new();
        };
        match (
            self.base.and_then(|m| m.version.as_ref()),
            self.new.and_then(|m| m.version.as_ref()),
        ) {
            (Some(x), Some(y)) if x != y => Escaped(&format!(
                "{}::{} ({} -> {})",
                any.suite, any.sweep, x.name, y.name
            ))
            .to_string(),
            _ => any.title(),
        }
    }
}

/// A cell as one run saw it: its verdict and what the program did, or
/// `(no such cell)`.
pub fn cell_said(cell: Option<&CellReport>) -> String {
    cell.map_or_else(
        || "(no such cell)".to_string(),
        |c| {
            let line = c.evidence.line();
            if line.is_empty() {
                c.verdict.word().to_string()
            } else {
                format!("{}: {line}", c.verdict.word())
            }
        },
    )
}

/// Two runs' sweeps paired, sweep by sweep: each of the new run's with
/// the base's of the same suite, sweep and version, then the sweeps only
/// the base has.
pub fn sweep_changes<'a>(base: &'a [Matrix], new: &'a [Matrix]) -> Vec<SweepChange<'a>> {
    let base: Vec<&Matrix> = base.iter().collect();
    let new: Vec<&Matrix> = new.iter().collect();
    paired(&base, &new, |b, n| {
        b.suite == n.suite && b.sweep == n.sweep && b.version == n.version
    })
}

/// One run's sweeps of a program in two versions (`compare`), paired: the
/// version compared against (its first run) with the new version.
pub fn version_sweep_changes(matrices: &[Matrix]) -> Vec<SweepChange<'_>> {
    let of = |base: bool| -> Vec<&Matrix> {
        matrices
            .iter()
            .filter(|m| {
                m.version
                    .as_ref()
                    .is_some_and(|v| v.base == base && (!base || v.run == 1))
            })
            .collect()
    };
    paired(&of(true), &of(false), |b, n| {
        b.suite == n.suite && b.sweep == n.sweep
    })
}

/// Pairs a matrix of `base` with one of `new` where `same` says they are
/// the same sweep.
fn paired<'a>(
    base: &[&'a Matrix],
    new: &[&'a Matrix],
    same: impl Fn(&Matrix, &Matrix) -> bool,
) -> Vec<SweepChange<'a>> {
    let mut pairs: Vec<(Option<&Matrix>, Option<&Matrix>)> = new
        .iter()
        .map(|n| (base.iter().copied().find(|b| same(b, n)), Some(*n)))
        .collect();
    pairs.extend(
        base.iter()
            .filter(|b| !new.iter().any(|n| same(b, n)))
            .map(|b| (Some(*b), None)),
    );
    pairs
        .into_iter()
        .map(|(b, n)| {
            let mut phases: Vec<Phase> = Vec::new();
            let mut kinds: Vec<Kind> = Vec::new();
            for m in [b, n].into_iter().flatten() {
                for p in &m.phases {
                    if !phases.contains(p) {
                        phases.push(p.clone());
                    }
                }
                for k in &m.kinds {
                    if !kinds.contains(k) {
                        kinds.push(*k);
                    }
                }
            }
            kinds.sort_by_key(|k| Kind::ALL.iter().position(|all| all == k));
            SweepChange {
                base: b,
                new: n,
                phases,
                kinds,
            }
        })
        .collect()
}

/// Two runs' sweeps cell by cell, as `hangup diff` shows them: for each
/// sweep of either run, its grid with each cell's word
/// ([`SweepChange::cell`]), then a line per changed cell with what the
/// program did in each run. Empty when neither run has a sweep.
pub fn render_changes(base: &[Matrix], new: &[Matrix]) -> String {
    render(&sweep_changes(base, new))
}

/// One run's sweeps of a program in two versions (`compare`), cell by
/// cell as [`render_changes`] shows two runs: each sweep's matrix of the
/// version compared against (its first run) beside the new version's.
/// Empty when no sweep ran in two versions.
pub fn render_version_changes(matrices: &[Matrix]) -> String {
    render(&version_sweep_changes(matrices))
}

/// Sweeps in two runs, for the terminal.
fn render(sweeps: &[SweepChange<'_>]) -> String {
    let mut out = String::new();
    for sweep in sweeps {
        let (phases, kinds) = (&sweep.phases, &sweep.kinds);
        let rows: Vec<String> = phases.iter().map(Phase::name).collect();
        let first = rows.iter().map(String::len).max().unwrap_or(0).max(5);
        let columns: Vec<usize> = kinds
            .iter()
            .map(|k| {
                let (a, b) = two_lines(k.name());
                phases
                    .iter()
                    .map(|p| sweep.cell(p, *k).0.len())
                    .chain([a.len(), b.len(), "FAILED".len()])
                    .max()
                    .unwrap_or(6)
            })
            .collect();
        let changed = sweep.changed();
        let verdicts = changed
            .iter()
            .filter(|(_, _, c)| *c == CellChange::Verdict)
            .count();
        let _ = writeln!(
            out,
            "sweep {}: {verdicts} cell(s) changed verdict, {} only what the program did (*)",
            sweep.title(),
            changed.len() - verdicts
        );
        for line in 0..2 {
            let _ = write!(out, "  {:first$}", "");
            for (kind, w) in kinds.iter().zip(&columns) {
                let (a, b) = two_lines(kind.name());
                let _ = write!(out, "  {:w$}", if line == 0 { a } else { b });
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        }
        for (phase, row) in phases.iter().zip(&rows) {
            let _ = write!(out, "  {row:first$}");
            for (kind, w) in kinds.iter().zip(&columns) {
                let _ = write!(out, "  {:w$}", sweep.cell(phase, *kind).0);
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        }
        for (phase, kind, _) in changed {
            let (before, after) = sweep.cells(phase, kind);
            let _ = writeln!(
                out,
                "  {}::{}: {} -> {}",
                phase.name(),
                kind.name(),
                cell_said(before),
                cell_said(after)
            );
        }
    }
    out
}

/// A kind's name as two header lines: names up to 7 characters on the
/// second line alone; longer ones split at the `_` that leaves the shorter
/// longest line (`vanish` over `then_reset`).
fn two_lines(name: &str) -> (&str, &str) {
    if name.len() <= 7 {
        return ("", name);
    }
    name.match_indices('_')
        .map(|(i, _)| (&name[..i], &name[i + 1..]))
        .min_by_key(|(a, b)| a.len().max(b.len()))
        .unwrap_or(("", name))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::model::CallResult;
    use crate::record::{Event, StepId, TracedSyscall};

    fn at(ms: u64, side: Side, kind: EventKind) -> Event {
        Event {
            at: Duration::from_millis(ms),
            side: Some(side),
            kind,
        }
    }

    fn syn(from: SocketAddr, to: SocketAddr) -> EventKind {
        EventKind::Packet {
            from,
            to,
            to_side: Some(Side::Server),
            flags: TcpFlags::SYN,
            seq: 0,
            ack: 0,
            window: 65495,
            len: 0,
            lost_to: None,
            held: None,
        }
    }

    fn traced(
        syscall: &str,
        fd: i64,
        accepted: Option<i64>,
        outcome: Outcome,
        peer: Option<SocketAddr>,
    ) -> EventKind {
        EventKind::Traced {
            call: TracedSyscall {
                syscall: syscall.into(),
                tid: 2,
                fd,
                accepted,
                result: CallResult {
                    outcome,
                    bytes: 0,
                    ready: None,
                    short: None,
                },
                took: Duration::ZERO,
                local: None,
                peer,
            },
        }
    }

    /// A client that reset its connection before the program accepted
    /// it: the kernel has forgotten the peer by the accept, so neither the
    /// accept nor the read that fails says whose connection it was. It is
    /// still the cell's: the program accepted nothing else before the
    /// client's next connection. The next one's calls on the same fd
    /// number are not.
    #[test]
    fn a_call_on_a_connection_reset_before_its_accept_is_the_cells() {
        let server: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let first: SocketAddr = "127.0.0.1:40001".parse().expect("addr");
        let next: SocketAddr = "127.0.0.1:40002".parse().expect("addr");
        let reset = Outcome::Errno(crate::model::Errno::from_raw(nix::libc::ECONNRESET));
        let mark = EventKind::Mark {
            step: StepId {
                index: 9,
                body: None,
                round: None,
            },
            label: "end".into(),
        };
        let timeline = |read: Outcome| Timeline {
            events: vec![
                at(1, Side::Client, syn(first, server)),
                at(
                    5,
                    Side::Server,
                    traced("accept4", 3, Some(19), Outcome::Ok, None),
                ),
                at(6, Side::Server, traced("read", 19, None, read, None)),
                at(
                    7,
                    Side::Server,
                    traced("close", 19, None, Outcome::Ok, None),
                ),
                at(10, Side::Client, syn(next, server)),
                at(
                    11,
                    Side::Server,
                    traced("accept4", 3, Some(19), Outcome::Ok, Some(next)),
                ),
                at(12, Side::Server, traced("writev", 19, None, reset, None)),
                at(20, Side::Client, mark.clone()),
            ],
        };
        let failed = Evidence::of(&timeline(reset)).first_failed_call;
        assert_eq!(
            failed,
            Some(FailedCall {
                syscall: "read".into(),
                outcome: reset,
            })
        );
        // Its read returned EOF: the next connection's failed writev on
        // fd 19 is not the cell's.
        assert_eq!(
            Evidence::of(&timeline(Outcome::Eof)).first_failed_call,
            None
        );
    }

    /// An event loop's EAGAIN is no failure of the connection: the first
    /// failed call is the EPIPE after it; an `errnos` check's calls
    /// outside its set are the evidence's too, and its line names them.
    #[test]
    fn routine_errnos_are_no_failed_call_and_errnos_checks_are_evidence() {
        let server: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let client: SocketAddr = "127.0.0.1:40001".parse().expect("addr");
        let errno = |raw| Outcome::Errno(crate::model::Errno::from_raw(raw));
        let step = StepId {
            index: 4,
            body: None,
            round: None,
        };
        let timeline = Timeline {
            events: vec![
                at(1, Side::Client, syn(client, server)),
                at(
                    5,
                    Side::Server,
                    traced("read", 7, None, errno(nix::libc::EAGAIN), Some(client)),
                ),
                at(
                    6,
                    Side::Server,
                    traced("read", 7, None, errno(nix::libc::EINTR), Some(client)),
                ),
                at(
                    9,
                    Side::Server,
                    traced("writev", 7, None, errno(nix::libc::EPIPE), Some(client)),
                ),
                at(
                    12,
                    Side::Client,
                    EventKind::Errnos {
                        step,
                        allowed: vec![crate::model::Errno::from_raw(nix::libc::ECONNRESET)],
                        calls: 3,
                        outside: vec![crate::record::FailedSyscall {
                            syscall: "writev".into(),
                            fd: 7,
                            outcome: errno(nix::libc::EPIPE),
                        }],
                    },
                ),
            ],
        };
        let evidence = Evidence::of(&timeline);
        let epipe = FailedCall {
            syscall: "writev".into(),
            outcome: errno(nix::libc::EPIPE),
        };
        assert_eq!(evidence.first_failed_call, Some(epipe.clone()));
        assert_eq!(evidence.outside_errnos, [epipe]);
        assert_eq!(
            evidence.line(),
            "writev EPIPE (Broken pipe) · failed outside `errnos`: writev EPIPE (Broken pipe)"
        );
    }

    fn matrix(cells: &[(Phase, Kind, Verdict, Option<&str>)]) -> Matrix {
        let mut phases = Vec::new();
        for (p, ..) in cells {
            if !phases.contains(p) {
                phases.push(p.clone());
            }
        }
        Matrix {
            suite: "s".into(),
            sweep: "w".into(),
            version: None,
            phases,
            kinds: vec![Kind::Close, Kind::Abort],
            cells: cells
                .iter()
                .map(|(phase, kind, verdict, failed)| CellReport {
                    phase: phase.clone(),
                    kind: *kind,
                    case: format!("s::w::{}::{}", phase.name(), kind.name()),
                    verdict: *verdict,
                    failed_step: None,
                    mismatch: None,
                    evidence: Evidence {
                        first_failed_call: failed.map(|errno| FailedCall {
                            syscall: "write".into(),
                            outcome: Outcome::Errno(
                                errno.parse::<crate::model::Errno>().expect("errno"),
                            ),
                        }),
                        ..Evidence::default()
                    },
                })
                .collect(),
        }
    }

    /// A diff of two matrices shows every cell, marks what changed, and
    /// says what the program did in each run.
    #[test]
    fn two_runs_compare_cell_by_cell() {
        use Kind::{Abort, Close};
        use Phase::{Connected, FirstByte};
        use Verdict::{Failed, Passed};
        let base = matrix(&[
            (Connected, Close, Passed, None),
            (Connected, Abort, Passed, None),
            (FirstByte, Close, Passed, Some("EPIPE")),
            (FirstByte, Abort, Passed, Some("ECONNRESET")),
        ]);
        let new = matrix(&[
            (Connected, Close, Passed, None),
            (Connected, Abort, Passed, None),
            (FirstByte, Close, Failed, Some("EPIPE")),
            (FirstByte, Abort, Passed, Some("EPIPE")),
        ]);
        let shown = render_changes(std::slice::from_ref(&base), &[new]);
        assert!(
            shown.starts_with(
                "sweep s::w: 1 cell(s) changed verdict, 1 only what the program did (*)\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("  first_byte  ok->FAILED  ok*\n"), "{shown}");
        assert!(
            shown.contains("  first_byte::abort: ok: write ECONNRESET (Connection reset by peer) -> ok: write EPIPE (Broken pipe)\n"),
            "{shown}"
        );
        // Against itself: nothing changed, and the grid still shows.
        let same = render_changes(std::slice::from_ref(&base), std::slice::from_ref(&base));
        assert!(
            same.starts_with("sweep s::w: 0 cell(s) changed verdict, 0 only"),
            "{same}"
        );
        assert!(render_changes(&[], &[]).is_empty());
    }

    #[test]
    fn long_kind_names_split_at_the_best_underscore() {
        assert_eq!(two_lines("close"), ("", "close"));
        assert_eq!(two_lines("half_close"), ("half", "close"));
        assert_eq!(two_lines("vanish_then_reset"), ("vanish", "then_reset"));
        assert_eq!(two_lines("stop_reading"), ("stop", "reading"));
    }
}
