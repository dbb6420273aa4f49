//! `hangup bench`: what the harness costs, measured on this machine.
//!
//! A benchmark run by hand (`cargo run --release -p hangup -- bench`),
//! never a timed test: it prints numbers and judges them against targets,
//! but exits 0 whether or not a target is met. It exits 1 only when a
//! measurement itself failed (a case that should pass did not, a netlink
//! call failed), because then the numbers mean nothing.
//!
//! Four figures, each as the median and p90 of many repetitions
//! (nearest-rank percentiles, see [`percentile`]):
//!
//! 1. **Per-case overhead.** A case that waits for nothing (a client
//!    connects to a closed port, gets ECONNREFUSED at once, and checks its
//!    state through sock_diag) run through the real [`runner::run_case`],
//!    beside the true floor of that work written without the harness
//!    ([`floor`]): a fresh thread, `unshare(CLONE_NEWNET)`, `lo` up with one
//!    ioctl, one refused connect and one sock_diag lookup, as raw syscalls.
//!    The two are measured alternately so that both see the same kernel
//!    (namespaces are freed asynchronously, and a backlog of them slows
//!    later `unshare`s). Target: the case ≤ 1.25× the floor.
//! 2. **A state read.** One [`SockDiag::lookup`] of a connected pair and one
//!    full [`SockDiag::tcp_sockets`] dump, beside spawning `ss -tan` in the
//!    same namespace with its output captured. Target: a state read ≥ 50×
//!    faster than `ss`. A dump walks the TCP hash table a new namespace
//!    shares with the host, so it costs what the host's table size makes it
//!    cost; both are reported.
//! 3. **Throughput.** `--cases` no-wait cases through [`runner::run_all`]
//!    with the CLI's default job count: wall time and cases per second.
//! 4. **Tracing.** A request loop against the `echo` fixture, interleaved
//!    five ways: traced by hangup's tracer, under the ptrace floor (the
//!    same filter and stops, a tracer that does nothing at them; see
//!    [`hangup::sut::trace_as_floor`]), under entry stops only, untraced,
//!    and without its loop. Target: hangup's tracer ≤ 1.25× the floor,
//!    round by round (`--tracing` measures this alone).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use hangup::model::TcpState;
use hangup::observe::SockDiag;
use hangup::runner::{self, RunOptions};
use hangup::sandbox::Privileges;
use hangup::suite::{Case, Suite};
use hangup::sut::Floor;

/// The no-wait case: connect to a port nothing listens on (the kernel
/// answers the SYN with RST on loopback at once), then one state check,
/// which asks sock_diag for the client's 4-tuple (and, as the refused
/// socket is no longer listed, `TCP_INFO` on the fd the client keeps).
const NO_WAIT_SUITE: &str = r#"
description = "hangup bench: a case that waits for nothing"

[[case]]
name = "refused_connect"
client = [
  { connect = 8080, expect = "ECONNREFUSED" },
  { state = { client = "CLOSE" } },
]
"#;

/// The no-wait case's work with a program under test beside it.
const PROGRAM_SUITE: &str = r#"
[program]
run = ["{fixture:echo}", "--port", "{port}"]
port = 9000

[[case]]
name = "refused_connect_beside_a_program"
client = [
  { connect = 8080, expect = "ECONNREFUSED" },
  { state = { client = "CLOSE" } },
]
"#;

/// A request loop against the `echo` fixture: the work whose slowdown
/// under syscall tracing the benchmark measures. `{trace}` is replaced by
/// a `syscall` check (which makes the case trace the program) or nothing;
/// `{rounds}` by the loop's length (none: no loop, the case's fixed cost).
const ECHO_LOOP_SUITE: &str = r#"
[program]
run = ["{fixture:echo}", "--port", "{port}"]
port = 9000

[[case]]
name = "echo_loop"
client = [
  { connect = 9000 },
  {loop}
  { shutdown = "write" },
  {trace}
  { recv = true, timeout = "5s", expect = "EOF" },
  "close",
]
"#;

/// The no-wait case with one fault in place: a rule on the client's FINs,
/// which this case never sends, so the case does what it does without
/// one and only the rule's setup is measured.
const FAULT_SUITE: &str = r#"
[[case]]
name = "refused_connect_with_a_fault"
client = [
  { drop = "client", flags = "FIN" },
  { connect = 8080, expect = "ECONNREFUSED" },
  { state = { client = "CLOSE" } },
]
"#;

/// The same with a delay instead: a rule on the client's FINs again, and
/// the netfilter queue's listener (a bound socket and a thread).
const DELAY_SUITE: &str = r#"
[[case]]
name = "refused_connect_with_a_delay"
client = [
  { delay = "client", flags = "FIN", by = "10ms" },
  { connect = 8080, expect = "ECONNREFUSED" },
  { state = { client = "CLOSE" } },
]
"#;

/// A sweep of 60 cells against the `stream` fixture, all served by one
/// suite-scoped program: 12 phases by the 5 kinds that need no fault or
/// signal. `{trace}` is replaced by `true` or `false`. The response is
/// sent at once (`--gap 0`), and a kind waits 50 ms (`hold`).
const SWEEP_SUITE: &str = r#"
[program]
run = ["{fixture:stream}", "--port", "{port}", "--chunks", "5", "--size", "1000", "--gap", "0"]
port = 9000
ready = "^listening on"
scope = "suite"

[[sweep]]
name = "bench"
request = "GET /stream\n"
phases = [
  "connected", { request_bytes = [1, 2, 4, 8] }, "request_sent", "first_byte",
  { response_bytes = [500, 1000, 2000, 3000, 4000] },
]
kinds = ["close", "abort", "timeout", "half_close", "stop_reading"]
hold = "50ms"
trace = {trace}
keep = [
  { released = true, within = "2s" },
  { log = "\tat ", count = 0 },
]
serving = { until = 5000, within = "5s" }

[[case]]
name = "written_by_hand"
client = [
  { connect = 9000 },
  { send = "GET /stream\n" },
  "close",
  { released = true, within = "2s" },
  { log = "\tat ", count = 0 },
  { connect = 9000 },
  { send = "GET /stream\n" },
  { recv_until = 5000, timeout = "5s" },
  "close",
]
"#;

/// Target: the 60-cell sweep's wall time.
const SWEEP_TARGET: Duration = Duration::from_secs(10);

/// Samples of the no-wait case with capture on and off, and with a fault.
const CAPTURE_SAMPLES: usize = 300;
/// Target: capturing a case's packets costs it at most this factor.
const CAPTURE_TARGET: f64 = 1.5;

/// Round trips in the echo loop.
const ECHO_ROUNDS: usize = 1000;
/// Samples of each echo loop case.
const ECHO_SAMPLES: usize = 40;
/// Target: hangup's tracer costs a request loop at most this factor of
/// what the ptrace floor costs it.
const TRACE_TARGET: f64 = 1.25;

/// Samples of a case with a program (a process start and stop each).
const PROGRAM_SAMPLES: usize = 100;

/// Overhead samples, each one case and one bare namespace: ~1.5 ms a pair.
const OVERHEAD_SAMPLES: usize = 1000;
/// Runs of each kind thrown away first (page faults, lazy statics).
const WARMUP: usize = 20;
const LOOKUP_SAMPLES: usize = 10_000;
const DUMP_SAMPLES: usize = 1000;
/// `ss` costs milliseconds per spawn.
const SS_SAMPLES: usize = 200;

/// Target: a no-wait case costs at most this many times the true floor.
const OVERHEAD_TARGET: f64 = 1.25;
/// Target: a state read is at least this many times faster than `ss`.
const STATE_READ_TARGET: f64 = 50.0;

/// Median and p90 of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// How many samples.
    pub n: usize,
    /// 50th percentile.
    pub median: Duration,
    /// 90th percentile.
    pub p90: Duration,
}

impl Stats {
    /// Stats of `samples` (sorted here); `None` when there are none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Stats> {
        samples.sort_unstable();
        Some(Stats {
            n: samples.len(),
            median: percentile(&samples, 50.0)?,
            p90: percentile(&samples, 90.0)?,
        })
    }
}

/// The nearest-rank `p`th percentile (0 < p ≤ 100) of `sorted`: the
/// smallest sample with at least p % of the samples at or below it. No
/// interpolation, so the answer is always a measured value.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Runs the benchmark and prints its table; see the [module docs](self).
pub fn run(cases: usize, tracing_only: bool, privileges: Privileges) -> ExitCode {
    match measure_and_print(cases, tracing_only, privileges) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            err!("hangup bench: a measurement failed: {why}");
            ExitCode::from(1)
        }
    }
}

fn measure_and_print(
    cases: usize,
    tracing_only: bool,
    privileges: Privileges,
) -> Result<(), String> {
    let jobs = hangup::runner::default_jobs();
    let suite = no_wait_suite()?;
    let case = suite.cases[0].clone();

    out!("hangup bench");
    out!(
        "machine: {} CPUs (nproc), Linux {}, {} build, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel_release(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        match privileges {
            Privileges::Root => "running as root".to_string(),
            Privileges::UserNamespace { uid, gid } =>
                format!("rootless: in a user namespace (uid {uid}, gid {gid} outside)"),
        },
    );
    out!();
    if tracing_only {
        err!("measuring syscall tracing on an echo loop ({ECHO_SAMPLES} samples each)...");
        let tracing = tracing_cost()?;
        out!(
            "{:<46} {:>6} {:>11} {:>11}",
            "measurement",
            "n",
            "median",
            "p90"
        );
        print_tracing(tracing);
        return Ok(());
    }

    err!("measuring per-case overhead ({OVERHEAD_SAMPLES} samples)...");
    let (overhead, bare) = overhead(&suite, &case)?;
    err!("measuring state reads...");
    let reads = state_reads()?;
    err!("running {cases} no-wait cases with {jobs} jobs...");
    let throughput = throughput(&suite, &case, cases, jobs)?;
    err!("measuring packet capture and a fault ({CAPTURE_SAMPLES} samples each)...");
    let packets = capture_and_fault_cost(&suite)?;
    err!("measuring a per-case program ({PROGRAM_SAMPLES} samples)...");
    let program = program_cost(&suite)?;
    err!("measuring syscall tracing on an echo loop ({ECHO_SAMPLES} samples each)...");
    let tracing = tracing_cost()?;
    err!("running a sweep of 60 cells, traced and untraced...");
    let sweeps = sweep_cost()?;

    out!(
        "{:<46} {:>6} {:>11} {:>11}",
        "measurement",
        "n",
        "median",
        "p90"
    );
    row("no-wait case via run_case (setup+observe+end)", overhead);
    row("true floor: thread+unshare+lo up+connect+lookup", bare);
    ratio_line(
        "case / true floor",
        ratio(overhead.median, bare.median),
        ratio(overhead.p90, bare.p90),
        format!("target ≤ {OVERHEAD_TARGET}×"),
        ratio(overhead.median, bare.median) <= OVERHEAD_TARGET,
    );
    out!(
        "  {:<44} {:>6} {:>11} {:>11}",
        "harness's own share (case − floor)",
        "",
        fmt_duration(overhead.median.saturating_sub(bare.median)),
        fmt_duration(overhead.p90.saturating_sub(bare.p90)),
    );
    row("sock_diag lookup (one socket)", reads.lookup);
    row("sock_diag dump (tcp_sockets, v4+v6)", reads.dump);
    match reads.ss {
        Some(ss) => {
            row("spawn `ss -tan`, output captured", ss);
            // A state read is what a `state` step does: one lookup by 4-tuple.
            let median = ratio(ss.median, reads.lookup.median);
            ratio_line(
                "ss / state read (lookup)",
                median,
                ratio(ss.p90, reads.lookup.p90),
                format!("target ≥ {STATE_READ_TARGET}×"),
                median >= STATE_READ_TARGET,
            );
            // The whole-table dump is no state read; shown for what it costs.
            out!(
                "  {:<44} {:>6} {:>10.1}× {:>10.1}×  (no target: not used by state checks)",
                "ss / dump",
                "",
                ratio(ss.median, reads.dump.median),
                ratio(ss.p90, reads.dump.p90),
            );
        }
        None => out!("{:<46} skipped: `ss` is not installed", "spawn `ss -tan`"),
    }
    out!(
        "  (a dump walks the TCP hash table the namespace shares with the host, sized by RAM; \
         state checks use lookups)"
    );
    out!(
        "{:<46} {:>6} {:>11} {:>8.0} cases/s",
        format!("{cases} no-wait cases via run_all, {jobs} jobs"),
        cases,
        fmt_duration(throughput),
        cases as f64 / throughput.as_secs_f64()
    );
    row(
        "no-wait case, packets captured (the default)",
        packets.captured,
    );
    row("the same case, --no-capture", packets.uncaptured);
    let median = ratio(packets.captured.median, packets.uncaptured.median);
    ratio_line(
        "captured / not captured",
        median,
        ratio(packets.captured.p90, packets.uncaptured.p90),
        format!("target ≤ {CAPTURE_TARGET}×"),
        median <= CAPTURE_TARGET,
    );
    for (what, stats, per, why) in [
        (
            "the same case with one drop rule (captured)",
            packets.faulted,
            "with a fault / without",
            "an nf_tables table, chain and rule",
        ),
        (
            "the same case with one delay rule (captured)",
            packets.delayed,
            "with a delay / without",
            "and the netfilter queue's listener",
        ),
    ] {
        row(what, stats);
        out!(
            "  {:<44} {:>6} {:>10.2}× {:>10.2}×  ({why}; no target)",
            per,
            "",
            ratio(stats.median, packets.captured.median),
            ratio(stats.p90, packets.captured.p90),
        );
    }
    match program {
        Some(ProgramCosts {
            with,
            without,
            served,
            first_served,
        }) => {
            row("no-wait case with a program (echo fixture)", with);
            row("the same case without one", without);
            out!(
                "  {:<44} {:>6} {:>11} {:>11}  (start, ready, stop: per case)",
                "a per-case program's cost (with − without)",
                "",
                fmt_duration(with.median.saturating_sub(without.median)),
                fmt_duration(with.p90.saturating_sub(without.p90)),
            );
            row("the same case, served by a suite's program", served);
            // Below 1×: a served case joins the program's namespace, where
            // a case without a program makes one.
            out!(
                "  {:<44} {:>6} {:>10.2}× {:>10.2}×  (no start or stop; joins a namespace, makes none)",
                "served / without a program",
                "",
                ratio(served.median, without.median),
                ratio(served.p90, without.p90),
            );
            out!(
                "  {:<44} {:>6} {:>11}  (start and ready: once per suite)",
                "its first case, which starts it",
                1,
                fmt_duration(first_served),
            );
        }
        None => out!(
            "{:<46} skipped: no `echo` fixture beside this binary (cargo build --release -p hangup-fixtures)",
            "a per-case program"
        ),
    }
    print_tracing(tracing);
    match sweeps {
        Some(costs) => print_sweeps(&costs, overhead),
        None => out!(
            "{:<46} skipped: no `stream` fixture beside this binary (cargo build --release -p hangup-fixtures)",
            "a sweep"
        ),
    }
    Ok(())
}

/// The echo loops' rows and their ratios: hangup's tracer against the
/// untraced loop and against the ptrace floor.
fn print_tracing(tracing: Option<EchoLoops>) {
    let Some(EchoLoops {
        traced,
        floor,
        entry_only,
        untraced,
        fixed,
        paired,
    }) = tracing
    else {
        out!(
            "{:<46} skipped: no `echo` fixture beside this binary (cargo build --release -p hangup-fixtures)",
            "syscall tracing"
        );
        return;
    };
    row(&format!("echo: {ECHO_ROUNDS} round trips, traced"), traced);
    row(
        &format!("echo: {ECHO_ROUNDS} round trips, ptrace floor"),
        floor,
    );
    row(
        &format!("echo: {ECHO_ROUNDS} round trips, entry stops only"),
        entry_only,
    );
    row(
        &format!("echo: {ECHO_ROUNDS} round trips, untraced"),
        untraced,
    );
    row("echo: the same case without the loop", fixed);
    out!(
        "  (floor: hangup's filter and stops, each filtered call's seccomp stop and exit stop, a tracer that does nothing)"
    );
    // The loop's own time: the case less its fixed cost (start, connect,
    // stop), which the untraced case without a loop shows.
    let looped = |d: Duration, f: Duration| d.saturating_sub(f);
    let loop_ratio = |a: Stats, b: Stats| {
        (
            ratio(
                looped(a.median, fixed.median),
                looped(b.median, fixed.median),
            ),
            ratio(looped(a.p90, fixed.p90), looped(b.p90, fixed.p90)),
        )
    };
    let (median, p90) = loop_ratio(traced, untraced);
    out!(
        "  {:<44} {:>6} {:>10.1}× {:>10.1}×",
        "traced / untraced loop (less fixed cost)",
        "",
        median,
        p90
    );
    let (median, p90) = loop_ratio(floor, untraced);
    out!(
        "  {:<44} {:>6} {:>10.1}× {:>10.1}×",
        "floor / untraced loop (less fixed cost)",
        "",
        median,
        p90
    );
    let (median, p90) = loop_ratio(entry_only, untraced);
    out!(
        "  {:<44} {:>6} {:>10.1}× {:>10.1}×  (no results: one stop per call, as SECCOMP_RET_USER_NOTIF)",
        "entry stops only / untraced loop",
        "",
        median,
        p90
    );
    let (median, p90) = loop_ratio(traced, floor);
    out!(
        "  {:<44} {:>6} {:>10.2}× {:>10.2}×",
        "tracer / floor loop, of the medians",
        "",
        median,
        p90
    );
    let (median, p90) = paired;
    out!(
        "  {:<44} {:>6} {:>10.2}× {:>10.2}×  target ≤ {TRACE_TARGET}× (median): {}",
        "tracer / floor loop, round by round",
        "",
        median,
        p90,
        if median <= TRACE_TARGET {
            "PASS"
        } else {
            "FAIL"
        }
    );
    out!(
        "  {:<44} {:>6} {:>11} {:>11}",
        "added per round trip: tracer, floor (median)",
        "",
        fmt_duration(looped(traced.median, untraced.median) / ECHO_ROUNDS as u32),
        fmt_duration(looped(floor.median, untraced.median) / ECHO_ROUNDS as u32),
    );
}

/// A sweep's cost, traced and not.
struct SweepCosts {
    /// Wall time of the whole sweep (60 cells and the hand-written case),
    /// traced and untraced.
    wall: [Duration; 2],
    /// Each cell's time, traced and untraced.
    cells: [Stats; 2],
    /// The cells that wait for nothing (`close`, `abort`), traced.
    no_wait_cells: Stats,
    /// The hand-written case that does what `request_sent::close` does.
    by_hand: Stats,
}

fn print_sweeps(costs: &SweepCosts, no_wait: Stats) {
    for (i, what) in ["traced", "untraced"].iter().enumerate() {
        let wall = costs.wall[i];
        out!(
            "{:<46} {:>6} {:>11}  target < {} s: {}",
            format!("sweep of 60 cells (stream, suite scope), {what}"),
            1,
            fmt_duration(wall),
            SWEEP_TARGET.as_secs(),
            if wall < SWEEP_TARGET { "PASS" } else { "FAIL" }
        );
        row(&format!("  a cell, {what}"), costs.cells[i]);
    }
    row(
        "  a cell that waits for nothing, traced",
        costs.no_wait_cells,
    );
    row(
        "  the same written by hand as a case, traced",
        costs.by_hand,
    );
    out!(
        "  {:<44} {:>6} {:>10.2}× {:>10.2}×  (no target)",
        "no-wait cell / hand-written case",
        "",
        ratio(costs.no_wait_cells.median, costs.by_hand.median),
        ratio(costs.no_wait_cells.p90, costs.by_hand.p90),
    );
    out!(
        "  {:<44} {:>6} {:>10.2}× {:>10.2}×  (program, request, released, serving; no target)",
        "no-wait cell / no-wait case",
        "",
        ratio(costs.no_wait_cells.median, no_wait.median),
        ratio(costs.no_wait_cells.p90, no_wait.p90),
    );
}

/// Runs the bench sweep traced and untraced, its cells one at a time as a
/// suite-scoped program serves them; `None` when `stream` is not built.
fn sweep_cost() -> Result<Option<SweepCosts>, String> {
    let places = hangup::sut::Places::for_suite(Path::new("bench.toml"));
    if !places
        .fixtures
        .iter()
        .any(|dir| dir.join("stream").is_file())
    {
        return Ok(None);
    }
    let mut wall = [Duration::ZERO; 2];
    let mut cells: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut no_wait = Vec::new();
    let mut by_hand = Vec::new();
    for (i, trace) in ["true", "false"].iter().enumerate() {
        let text = SWEEP_SUITE.replace("{trace}", trace);
        let suite = hangup::suite::parse_suite(Path::new("bench_sweep.toml"), text.as_bytes())
            .map_err(|e| format!("the embedded sweep is invalid: {e}"))?;
        let cases = suite.cases.iter().filter(|c| c.cell.is_some()).count();
        if cases != 60 {
            return Err(format!("the bench sweep made {cases} cells, not 60"));
        }
        // The hand-written case, sampled on the same program before the
        // traced sweep (the first run, which starts the program, left
        // out); the program is stopped before the sweep, whose wall time
        // includes its start.
        if i == 0 {
            let mut hand = suite.clone();
            let written = hand
                .cases
                .iter()
                .find(|c| c.cell.is_none())
                .cloned()
                .ok_or("the bench sweep has no hand-written case")?;
            // One run, as the sweep is one: a run's own start (its temp
            // folder's first use) is not a case's cost.
            hand.cases = (0..21)
                .map(|n| {
                    let mut copy = written.clone();
                    copy.name = format!("{}_{n}", written.name);
                    // Traced as the cells are, as a `syscall` check would.
                    copy.trace = true;
                    copy
                })
                .collect();
            let reports = runner::run_all(
                std::slice::from_ref(&hand),
                &RunOptions::default(),
                1,
                false,
                &|_: &hangup::report::CaseReport| {},
            );
            for report in &reports {
                passed(report)?;
            }
            by_hand.extend(reports.iter().skip(1).map(|r| r.duration));
            if let Some(why) = runner::stop_suite_programs().into_iter().next() {
                return Err(why);
            }
        }
        let started = Instant::now();
        let reports = runner::run_all(
            std::slice::from_ref(&suite),
            &RunOptions::default(),
            runner::default_jobs(),
            false,
            &|_: &hangup::report::CaseReport| {},
        );
        wall[i] = started.elapsed();
        if let Some(why) = runner::stop_suite_programs().into_iter().next() {
            return Err(why);
        }
        for report in &reports {
            passed(report)?;
            let Some(cell) = &report.cell else { continue };
            cells[i].push(report.duration);
            if i == 0
                && matches!(
                    cell.kind,
                    hangup::suite::sweep::Kind::Close | hangup::suite::sweep::Kind::Abort
                )
            {
                no_wait.push(report.duration);
            }
        }
    }
    let [traced, untraced] = cells;
    Ok(Some(SweepCosts {
        wall,
        cells: [
            Stats::of(traced).ok_or("no samples")?,
            Stats::of(untraced).ok_or("no samples")?,
        ],
        no_wait_cells: Stats::of(no_wait).ok_or("no samples")?,
        by_hand: Stats::of(by_hand).ok_or("no samples")?,
    }))
}

/// An error naming the case, unless it passed.
fn passed(report: &hangup::report::CaseReport) -> Result<(), String> {
    if report.passed() {
        Ok(())
    } else {
        Err(format!(
            "a bench case did not pass:\n{}",
            report.render_failure()
        ))
    }
}

/// The echo loop case traced, under the ptrace floor, untraced, and
/// without its loop.
struct EchoLoops {
    traced: Stats,
    floor: Stats,
    /// Under the floor of one stop per call (entry stops only).
    entry_only: Stats,
    untraced: Stats,
    fixed: Stats,
    /// Each round's traced loop over the same round's floor loop (both
    /// less the median fixed cost): median and p90. Side by side in time,
    /// so that a machine whose load comes and goes weighs on both alike.
    paired: (f64, f64),
}

/// Runs the echo loop case traced by hangup's tracer, traced by the
/// floor's (the untraced case with [`hangup::sut::trace_as_floor`] on),
/// untraced, and without its loop, in turn, so that the machine's drift
/// touches all four alike. `None` when the fixture is not built.
fn tracing_cost() -> Result<Option<EchoLoops>, String> {
    let places = hangup::sut::Places::for_suite(Path::new("bench.toml"));
    if !places.fixtures.iter().any(|dir| dir.join("echo").is_file()) {
        return Ok(None);
    }
    let round = r#"loop = [{ send = "0123456789abcdef0123456789abcdef" }, { recv_until = 32, timeout = "5s" }]"#;
    let suite = |looped: bool, traced: bool| {
        let text = ECHO_LOOP_SUITE
            .replace(
                "{loop}",
                &if looped {
                    format!("{{ {round}, times = {ECHO_ROUNDS} }},")
                } else {
                    String::new()
                },
            )
            .replace(
                "{trace}",
                if traced {
                    r#"{ syscall = "read", expect = "EOF", within = "5s" },"#
                } else {
                    ""
                },
            );
        hangup::suite::parse_suite(Path::new("bench.toml"), text.as_bytes())
            .map_err(|e| format!("the embedded echo suite is invalid: {e}"))
    };
    let (traced, untraced, fixed) = (
        suite(true, true)?,
        suite(true, false)?,
        suite(false, false)?,
    );
    let options = RunOptions::default();
    let mut samples = [(); 5].map(|()| Vec::new());
    for _ in 0..ECHO_SAMPLES {
        for (k, (suite, into)) in [&traced, &untraced, &untraced, &untraced, &fixed]
            .into_iter()
            .zip(samples.iter_mut())
            .enumerate()
        {
            // The second and third runs of the untraced case are the
            // floors'.
            hangup::sut::trace_as_floor(match k {
                1 => Some(Floor::EntryAndExit),
                2 => Some(Floor::EntryOnly),
                _ => None,
            });
            let took = timed_case(suite, &suite.cases[0], &options);
            hangup::sut::trace_as_floor(None);
            into.push(took?);
        }
    }
    let fixed_median = Stats::of(samples[4].clone()).ok_or("no samples")?.median;
    let mut paired: Vec<f64> = samples[0]
        .iter()
        .zip(&samples[1])
        .map(|(traced, floor)| {
            ratio(
                traced.saturating_sub(fixed_median),
                floor.saturating_sub(fixed_median),
            )
        })
        .collect();
    paired.sort_by(f64::total_cmp);
    let at =
        |p: f64| paired[((p * paired.len() as f64).ceil() as usize).clamp(1, paired.len()) - 1];
    let paired = (at(0.5), at(0.9));
    let [traced, floor, entry_only, untraced, fixed] = samples.map(Stats::of);
    Ok(Some(EchoLoops {
        paired,
        traced: traced.ok_or("no samples")?,
        floor: floor.ok_or("no samples")?,
        entry_only: entry_only.ok_or("no samples")?,
        untraced: untraced.ok_or("no samples")?,
        fixed: fixed.ok_or("no samples")?,
    }))
}

/// What a program costs a case: started for it, or shared by the suite.
struct ProgramCosts {
    /// A case with its own program (start, ready, stop).
    with: Stats,
    /// The same case without a program.
    without: Stats,
    /// The same case served by a suite-scoped program already running.
    served: Stats,
    /// The first case served by it, which starts it.
    first_served: Duration,
}

/// A case that runs a program: the `echo` fixture, ready when the kernel
/// lists its listener, a refused connect to another port and a state check
/// (the no-wait case's work), then its stop. Beside it, the same case
/// without a program, and the same case served by one program for the
/// whole suite (`scope = "suite"`); in turn. `None` when the fixture is not
/// built.
/// The no-wait case with and without its packet capture, and with one
/// fault in place.
struct PacketCosts {
    captured: Stats,
    uncaptured: Stats,
    faulted: Stats,
    delayed: Stats,
}

/// Runs the no-wait case captured, not captured, and with a fault, in
/// turn, so that the machine's drift touches all three alike.
fn capture_and_fault_cost(suite: &Suite) -> Result<PacketCosts, String> {
    let faulted_suite =
        hangup::suite::parse_suite(Path::new("bench_fault.toml"), FAULT_SUITE.as_bytes())
            .map_err(|e| format!("the embedded fault suite is invalid: {e}"))?;
    let delayed_suite =
        hangup::suite::parse_suite(Path::new("bench_delay.toml"), DELAY_SUITE.as_bytes())
            .map_err(|e| format!("the embedded delay suite is invalid: {e}"))?;
    let delayed_case = &delayed_suite.cases[0];
    let captured_options = RunOptions::default();
    let uncaptured_options = RunOptions {
        no_capture: true,
        ..RunOptions::default()
    };
    let case = &suite.cases[0];
    let faulted_case = &faulted_suite.cases[0];
    for _ in 0..WARMUP {
        timed_case(suite, case, &captured_options)?;
        timed_case(suite, case, &uncaptured_options)?;
        timed_case(&faulted_suite, faulted_case, &captured_options)?;
        timed_case(&delayed_suite, delayed_case, &captured_options)?;
    }
    let (mut captured, mut uncaptured, mut faulted, mut delayed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..CAPTURE_SAMPLES {
        captured.push(timed_case(suite, case, &captured_options)?);
        uncaptured.push(timed_case(suite, case, &uncaptured_options)?);
        faulted.push(timed_case(&faulted_suite, faulted_case, &captured_options)?);
        delayed.push(timed_case(&delayed_suite, delayed_case, &captured_options)?);
    }
    Ok(PacketCosts {
        captured: Stats::of(captured).ok_or("no samples")?,
        uncaptured: Stats::of(uncaptured).ok_or("no samples")?,
        faulted: Stats::of(faulted).ok_or("no samples")?,
        delayed: Stats::of(delayed).ok_or("no samples")?,
    })
}

fn program_cost(suite: &Suite) -> Result<Option<ProgramCosts>, String> {
    let places = hangup::sut::Places::for_suite(Path::new("bench.toml"));
    if !places.fixtures.iter().any(|dir| dir.join("echo").is_file()) {
        return Ok(None);
    }
    let parse = |path: &str, text: &str| {
        hangup::suite::parse_suite(Path::new(path), text.as_bytes())
            .map_err(|e| format!("the embedded program suite is invalid: {e}"))
    };
    let with_program = parse("bench.toml", PROGRAM_SUITE)?;
    let shared = parse(
        "bench_shared.toml",
        &PROGRAM_SUITE.replace("port = 9000\n", "port = 9000\nscope = \"suite\"\n"),
    )?;
    let options = RunOptions::default();
    let mut with = Vec::with_capacity(PROGRAM_SAMPLES);
    let mut without = Vec::with_capacity(PROGRAM_SAMPLES);
    let mut served = Vec::with_capacity(PROGRAM_SAMPLES);
    let first_served = timed_case(&shared, &shared.cases[0], &options)?;
    for _ in 0..PROGRAM_SAMPLES {
        with.push(timed_case(&with_program, &with_program.cases[0], &options)?);
        without.push(timed_case(suite, &suite.cases[0], &options)?);
        served.push(timed_case(&shared, &shared.cases[0], &options)?);
    }
    if let Some(why) = runner::stop_suite_programs().into_iter().next() {
        return Err(why);
    }
    Ok(Some(ProgramCosts {
        with: Stats::of(with).ok_or("no samples")?,
        without: Stats::of(without).ok_or("no samples")?,
        served: Stats::of(served).ok_or("no samples")?,
        first_served,
    }))
}

fn row(name: &str, stats: Stats) {
    out!(
        "{name:<46} {:>6} {:>11} {:>11}",
        stats.n,
        fmt_duration(stats.median),
        fmt_duration(stats.p90)
    );
}

fn ratio_line(name: &str, median: f64, p90: f64, target: String, pass: bool) {
    out!(
        "  {name:<44} {:>6} {:>10.1}× {:>10.1}×  {target} (median): {}",
        "",
        median,
        p90,
        if pass { "PASS" } else { "FAIL" }
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Microseconds below 1 ms, milliseconds below 1 s, seconds above.
fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1e-3 {
        format!("{:.1} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.3} ms", secs * 1e3)
    } else {
        format!("{secs:.3} s")
    }
}

/// The kernel release, as `uname -r` prints it.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "(unknown)".into(), |s| s.trim().to_string())
}

fn no_wait_suite() -> Result<Suite, String> {
    hangup::suite::parse_suite(Path::new("bench.toml"), NO_WAIT_SUITE.as_bytes())
        .map_err(|e| format!("the embedded no-wait suite is invalid: {e}"))
}

/// One run of the no-wait case; an error unless it passed.
fn timed_case(suite: &Suite, case: &Case, options: &RunOptions) -> Result<Duration, String> {
    let started = Instant::now();
    let report = runner::run_case(suite, case, options);
    let took = started.elapsed();
    if report.passed() {
        Ok(took)
    } else {
        Err(format!(
            "the case did not pass:\n{}",
            report.render_failure()
        ))
    }
}

/// The true floor of the no-wait case, written without the harness: what
/// any program needs to do the same work. A fresh thread (a namespace
/// belongs to a thread), `unshare(CLONE_NEWNET)`, `lo` up through one
/// `SIOCSIFFLAGS` ioctl, a TCP socket bound and connected to a closed port
/// (ECONNREFUSED), and one sock_diag request for its 4-tuple and the reply,
/// on a netlink socket of its own. The thread is joined; the kernel frees
/// the namespace asynchronously afterwards, as it does for a case.
fn floor() -> Result<Duration, String> {
    let started = Instant::now();
    std::thread::Builder::new()
        .name("hangup-bench-floor".into())
        .spawn(floor_on_this_thread)
        .map_err(|e| format!("failed to spawn a thread: {e}"))?
        .join()
        .map_err(|_| "the floor's thread panicked".to_string())??;
    Ok(started.elapsed())
}

fn floor_on_this_thread() -> Result<(), String> {
    use nix::libc;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
    // lo up: SIOCGIFFLAGS, set IFF_UP, SIOCSIFFLAGS.
    let control = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
        .map_err(|e| format!("socket: {e}"))?;
    // SAFETY: `ifreq` is plain data, valid zeroed; its name is set to "lo"
    // within IFNAMSIZ; both ioctls read and write that one struct, which
    // outlives the calls, on an open socket.
    let up = unsafe {
        let mut request: libc::ifreq = std::mem::zeroed();
        for (to, from) in request.ifr_name.iter_mut().zip(b"lo") {
            *to = *from as libc::c_char;
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&control);
        libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) == 0 && {
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) == 0
        }
    };
    if !up {
        return Err(format!("lo up: {}", std::io::Error::last_os_error()));
    }
    let remote = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| format!("socket: {e}"))?;
    client
        .bind(&std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .map_err(|e| format!("bind: {e}"))?;
    let local = client
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or("no local address")?;
    match client.connect(&remote.into()) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {}
        other => return Err(format!("the floor's connect was not refused: {other:?}")),
    }
    raw_lookup(local, remote)
}

/// One sock_diag request for a 4-tuple and its reply, with nothing of
/// hangup's `observe`: the message built by the netlink crate, sent and
/// received on a raw netlink socket.
fn raw_lookup(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> Result<(), String> {
    use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_packet_sock_diag::constants::{AF_INET, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| format!("netlink: {e}"))?;
    socket
        .bind_auto()
        .map_err(|e| format!("netlink bind: {e}"))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| format!("netlink connect: {e}"))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: AF_INET,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: local.port(),
                destination_port: remote.port(),
                source_address: local.ip(),
                destination_address: remote.ip(),
                interface_id: 0,
                cookie: [0xff; 8],
            },
        })
        .into(),
    );
    message.finalize();
    let mut request = vec![0; message.buffer_len()];
    message.serialize(&mut request);
    socket
        .send(&request, 0)
        .map_err(|e| format!("netlink send: {e}"))?;
    let mut reply = Vec::with_capacity(8192);
    let got = socket
        .recv(&mut reply, 0)
        .map_err(|e| format!("netlink recv: {e}"))?;
    if got == 0 {
        return Err("an empty sock_diag reply".into());
    }
    Ok(())
}

/// The no-wait case and the true floor, measured alternately.
fn overhead(suite: &Suite, case: &Case) -> Result<(Stats, Stats), String> {
    let options = RunOptions::default();
    for _ in 0..WARMUP {
        timed_case(suite, case, &options)?;
        floor()?;
    }
    let mut cases = Vec::with_capacity(OVERHEAD_SAMPLES);
    let mut bares = Vec::with_capacity(OVERHEAD_SAMPLES);
    for _ in 0..OVERHEAD_SAMPLES {
        cases.push(timed_case(suite, case, &options)?);
        bares.push(floor()?);
    }
    Ok((
        Stats::of(cases).ok_or("no samples")?,
        Stats::of(bares).ok_or("no samples")?,
    ))
}

struct StateReads {
    lookup: Stats,
    dump: Stats,
    /// `None` when `ss` is not installed.
    ss: Option<Stats>,
}

/// Times state reads on a thread of its own in a fresh namespace holding
/// one connected pair (and its listener).
fn state_reads() -> Result<StateReads, String> {
    hangup::sandbox::in_case_namespace(|_| state_reads_here()).map_err(|e| e.to_string())?
}

fn state_reads_here() -> Result<StateReads, String> {
    let io = |what: &'static str| move |e: std::io::Error| format!("failed to {what}: {e}");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("listen"))?;
    let port = listener.local_addr().map_err(io("read the port"))?.port();
    let client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(io("connect"))?;
    let (_server, _) = listener.accept().map_err(io("accept"))?;
    let local = client.local_addr().map_err(io("read the address"))?;
    let remote = client.peer_addr().map_err(io("read the address"))?;
    let mut diag = SockDiag::open().map_err(|e| e.to_string())?;

    let state = diag.lookup(local, remote).map_err(|e| e.to_string())?;
    if state != TcpState::Established {
        return Err(format!(
            "sock_diag saw the connected client as {state}, not ESTABLISHED"
        ));
    }
    let listed = diag.tcp_sockets().map_err(|e| e.to_string())?;
    // The listener and both ends of the connection.
    if listed.len() != 3 {
        return Err(format!(
            "a dump listed {} sockets, expected 3: {listed:?}",
            listed.len()
        ));
    }

    let lookup = sample(LOOKUP_SAMPLES, || {
        diag.lookup(local, remote)
            .map(drop)
            .map_err(|e| e.to_string())
    })?;
    let dump = sample(DUMP_SAMPLES, || {
        diag.tcp_sockets().map(drop).map_err(|e| e.to_string())
    })?;
    let needle = format!("127.0.0.1:{port}");
    let ss_once = || -> Result<Option<()>, String> {
        match Command::new("ss").arg("-tan").stdin(Stdio::null()).output() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("failed to spawn `ss -tan`: {e}")),
            Ok(out) if !out.status.success() => Err(format!(
                "`ss -tan` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            // Proves it ran in the case's namespace and saw our pair.
            Ok(out) if !String::from_utf8_lossy(&out.stdout).contains(&needle) => Err(format!(
                "`ss -tan` did not list {needle}: it ran outside the namespace?"
            )),
            Ok(_) => Ok(Some(())),
        }
    };
    let ss = match ss_once()? {
        None => None,
        Some(()) => Some(sample(SS_SAMPLES, || ss_once().map(drop))?),
    };
    Ok(StateReads { lookup, dump, ss })
}

/// Times `n` calls of `f` one by one, after a tenth as many unmeasured.
fn sample(n: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<Stats, String> {
    for _ in 0..n / 10 {
        f()?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f()?;
        samples.push(started.elapsed());
    }
    Stats::of(samples).ok_or_else(|| "no samples".into())
}

/// `cases` copies of the no-wait case through `run_all`; the wall time.
fn throughput(suite: &Suite, case: &Case, cases: usize, jobs: usize) -> Result<Duration, String> {
    let mut many = suite.clone();
    many.cases = (0..cases)
        .map(|i| {
            let mut copy = case.clone();
            copy.name = format!("{}_{i}", case.name);
            copy
        })
        .collect();
    let started = Instant::now();
    let reports = runner::run_all(
        &[many],
        &RunOptions::default(),
        jobs,
        false,
        &|_: &hangup::report::CaseReport| {},
    );
    let took = started.elapsed();
    let failed: Vec<_> = reports.iter().filter(|r| !r.passed()).collect();
    if let Some(first) = failed.first() {
        return Err(format!(
            "{} of {cases} no-wait cases did not pass; the first:\n{}",
            failed.len(),
            first.render_failure()
        ));
    }
    if reports.len() != cases {
        return Err(format!("{cases} cases run, {} reported", reports.len()));
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[rstest]
    #[case::one(&[7], 50.0, Some(7))]
    #[case::one_p90(&[7], 90.0, Some(7))]
    #[case::even_median_is_lower_middle(&[1, 2, 3, 4], 50.0, Some(2))]
    #[case::odd_median(&[1, 2, 3, 4, 5], 50.0, Some(3))]
    #[case::p90_of_ten(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90.0, Some(9))]
    #[case::p90_of_eleven(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90.0, Some(10))]
    #[case::p100_is_max(&[1, 2, 3], 100.0, Some(3))]
    #[case::empty(&[], 50.0, None)]
    #[case::zero_p(&[1, 2], 0.0, None)]
    #[case::above_100(&[1, 2], 101.0, None)]
    fn nearest_rank(#[case] sorted: &[u64], #[case] p: f64, #[case] expected: Option<u64>) {
        assert_eq!(
            percentile(&ms(sorted), p),
            expected.map(Duration::from_millis)
        );
    }

    #[rstest]
    fn stats_sort_their_samples() {
        let stats = Stats::of(ms(&[9, 1, 5, 3, 7, 2, 8, 4, 6, 10])).unwrap();
        assert_eq!(stats.n, 10);
        assert_eq!(stats.median, Duration::from_millis(5));
        assert_eq!(stats.p90, Duration::from_millis(9));
    }

    #[rstest]
    fn the_embedded_suite_parses() {
        let suite = no_wait_suite().unwrap();
        assert_eq!(suite.cases.len(), 1);
        assert!(suite.cases[0].ignore.is_none());
    }
}
