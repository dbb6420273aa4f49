//! Arbitrary bytes as a suite that is then *run*: every valid suite the
//! fuzzer finds runs case by case, each in its own network namespace, and
//! the runner must never panic, abort, hang or exhaust memory, whatever the
//! scripts do to one another (resets, half-closes, loops, waits, checks).
//!
//! Scaled down so that thousands of suites run in a minute: each case's
//! deadline is cut to [`DEADLINE`] (the runner then stops it, waking every
//! side from its call, which is itself under test), and a suite that asks
//! for more than [`MEMORY`] of payloads and read buffers is skipped, as is
//! any case with a program under test: the fuzzer must never run a command
//! it made up. libFuzzer's `-rss_limit_mb` is the memory limit on top.
//!
//! Run as root or where user namespaces are allowed; see the README.
#![no_main]

use std::path::Path;
use std::time::Duration;

use hangup::suite::{Action, Payload, SocketCall, Step};
use libfuzzer_sys::fuzz_target;

/// A fuzzed case's deadline at most.
const DEADLINE: Duration = Duration::from_millis(300);

/// The most payload and read-buffer bytes a fuzzed suite may ask for.
const MEMORY: usize = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(mut suite) = hangup::suite::parse_suite(Path::new("fuzz.toml"), data) else {
        return;
    };
    suite.cases.retain(|case| case.program.is_none());
    let asked: usize = suite
        .cases
        .iter()
        .flat_map(|case| &case.scripts)
        .map(|script| memory(&script.steps))
        .fold(0, usize::saturating_add);
    if asked > MEMORY {
        return;
    }
    // Beside the fuzz crate's build, not in the system temp folder: a case
    // killed by a crash keeps its folder, and CI checks that folder.
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/run_suite-artifacts");
    let options = hangup::runner::RunOptions {
        artifact_root: Some(artifacts),
        ..hangup::runner::RunOptions::default()
    };
    for case in &mut suite.cases {
        case.deadline = case.deadline.min(DEADLINE);
    }
    for case in &suite.cases {
        let report = hangup::runner::run_case(&suite, case, &options);
        // What a report shows is rendered as the CLI would.
        std::hint::black_box(report.timeline.render());
        if let Some(dir) = &report.artifacts {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
});

/// The bytes a script's steps hold while the case runs: payloads built
/// before the clock starts and read buffers, loops' bodies once (a round's
/// payload is built again each round, not kept).
fn memory(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|step| match &step.action {
            Action::Socket(SocketCall::Send { payload, .. }) => match payload {
                Payload::Text { .. } | Payload::Size(_) => payload.len(),
            },
            Action::Socket(SocketCall::Recv { max, .. }) => *max,
            Action::Control(hangup::suite::Control::Loop(looped)) => memory(&looped.body),
            _ => 0,
        })
        .fold(0, usize::saturating_add)
}
