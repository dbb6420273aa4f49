//! The case's thread: its namespace's sysctls and hosts, the capture, the
//! program, the sides, and the teardown once every side is done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::faults::end_faults;
use super::hosts::make_hosts;
use super::program::start_program;
use super::settle::settle;
use super::sides::run_sides;
use super::wire::{end_capture, start_capture};
use super::{Shared, harness_failure, program_failure};
use crate::model::Side;
use crate::report::FailureKind;
use crate::runner::interrupt::{self};
use crate::sandbox::{CaseNamespace, SandboxError};
use crate::suite::Topology;
use crate::verdict::{self};

/// The case's thread, in its namespace: sysctls, then the sides (the first
/// on this thread), then closing every socket once all sides are done. A
/// namespace or sysctl the kernel refused is the case's setup failure.
pub(super) fn prepare_and_run(
    shared: &Arc<Shared>,
    namespace: Result<CaseNamespace, SandboxError>,
) {
    let setup = namespace
        .map_err(|err| format!("failed to set up the case: {err}"))
        .and_then(|namespace| {
            // The suite's program's namespace has the suite's sysctls.
            let sysctls = match shared.case.shares_program() {
                true => &[][..],
                false => &shared.case.sysctls[..],
            };
            for (key, value) in sysctls {
                namespace
                    .set_sysctl(key, value)
                    .map_err(|err| format!("failed to set up the case: {err}"))?;
            }
            if shared.case.topology == Topology::TwoHosts {
                let hosts = make_hosts(&namespace, sysctls)
                    .map_err(|err| format!("failed to set up the case's two hosts: {err}"))?;
                let _ = shared.hosts.set(hosts);
            }
            Ok(())
        });
    if let Err(summary) = setup {
        shared.fail(harness_failure(shared, FailureKind::Setup, summary));
    } else {
        interrupt::install();
        start_capture(shared);
        shared.record.start_clock(Instant::now());
        // A server starts before the scripts; a client once a script
        // listens where it connects (in `run_sides`).
        let mut program = match &shared.case.program {
            Some(spec) if spec.role == Side::Server && !shared.case.shares_program() => {
                match start_program(shared, spec) {
                    Ok(running) => Some(running),
                    Err(failure) => {
                        shared.fail(*failure);
                        None
                    }
                }
            }
            _ => None,
        };
        if !shared.stopping() {
            {
                let mut control = shared.control();
                for script in &shared.case.scripts {
                    control.sides[script.side as usize].running = true;
                }
            }
            let peers = run_sides(shared, &mut program);
            shared.record_program_busy();
            keep_kernel_counters(shared);
            end_faults(shared);
            // Sockets live until the case ends: every peer came back from
            // its thread, and all are closed together now that every side
            // is done, before the program is asked to stop (a server that
            // drains its connections on SIGTERM finds none left).
            drop(peers);
            // What the program does about those ends goes on the record
            // before it is asked to stop (see `settle`).
            settle(shared);
        }
        if let Some((running, spec)) = program.zip(shared.case.program.as_ref()) {
            let stopped = running.stop();
            if stopped.killed {
                let tail = stopped.tail.clone();
                shared.fail(program_failure(
                    shared,
                    format!(
                        "the program ignored {} for {}{} and was killed",
                        spec.stop,
                        verdict::millis(spec.grace),
                        starved(stopped.starved)
                    ),
                    tail,
                ));
            }
        }
    }
    end_capture(shared);
    let mut control = shared.control();
    control.torn_down = true;
    shared.supervisor.notify_all();
}

/// For a failed case (or any, with `--keep-artifacts`), writes the
/// namespace's kernel counters that are not zero to `kernel-counters.txt`
/// in its artifact folder: what the kernel
/// did on its own (a TIME_WAIT killed, a reset sent, an overflow) often
/// explains an outcome no call reported. Read on the case's thread, inside
/// the namespace, before its sockets close.
pub(super) fn keep_kernel_counters(shared: &Shared) {
    if shared.control().failure.is_none() && !shared.keep_artifacts {
        return;
    }
    let Ok(dir) = shared.record.artifacts() else {
        return;
    };
    let text = match crate::observe::kernel_counters() {
        Ok(lines) => lines.join("\n") + "\n",
        Err(err) => format!("the kernel's counters could not be read: {err}\n"),
    };
    let _ = std::fs::write(dir.join("kernel-counters.txt"), text);
}

/// What a stopped program was given past its grace, in a failure's words:
/// ` (and 850 ms more, as long as its threads waited for a CPU)`.
pub(super) fn starved(starved: Duration) -> String {
    if starved.is_zero() {
        String::new()
    } else {
        format!(
            " (and {} more, as long as its threads waited for a CPU)",
            verdict::millis(starved)
        )
    }
}
