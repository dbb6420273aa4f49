//! The sides: a thread each (the first on the case's thread), each running
//! its script step by step through a short dispatcher that hands each
//! step to the part that owns its kind (`calls`, `control`, `checks`).

use std::sync::Arc;
use std::time::Instant;

use super::program::{start_program, wait_for_listener};
use super::step::{At, Flow, failure};
use super::{Shared, harness_failure};
use super::{calls, checks, control};
use crate::model::Outcome;
use crate::model::Side;
use crate::observe::SockDiag;
use crate::observe::queued;
use crate::peer::Peer;
use crate::record::EventKind;
use crate::report::{Failure, FailureKind};
use crate::runner::interrupt::Waker;
use crate::sandbox::CaseNamespace;
use crate::suite::{Action, Control, Loop, Script, Step};
use crate::sut;

/// Runs one step: hands it to the part that owns its kind. `until`: in a
/// loop, the outcomes that end it (a call ending with one is expected, and
/// ends the loop).
pub(super) fn run_step(
    shared: &Shared,
    at: At<'_>,
    step: &Step,
    until: Option<&[Outcome]>,
    peer: &mut Peer,
    diag: &mut Option<SockDiag>,
) -> Result<Flow, Box<Failure>> {
    match &step.action {
        Action::Socket(call) => calls::run(shared, at, step, call, until, peer, diag),
        Action::Control(Control::Loop(_)) => {
            unreachable!("loops do not nest (the parser refuses them) and run_script runs loops")
        }
        Action::Control(control) => control::run(shared, at, step, control),
        Action::Check(check) => checks::run(shared, at, step, check, peer, diag),
    }
}

/// Starts a thread for each side but the first, runs the first here, and
/// hands back every side's peer once all are done. With a program that
/// plays the client, every side gets a thread and this one (whose end
/// `PR_SET_PDEATHSIG` ties the program to) starts the program once a
/// script listens on its port.
pub(super) fn run_sides(shared: &Arc<Shared>, program: &mut Option<sut::Running>) -> Vec<Peer> {
    let client = shared
        .case
        .program
        .as_ref()
        .filter(|spec| spec.role == Side::Client);
    // On two hosts every side has a thread that joins its host; otherwise
    // the first side runs on this, the case's, thread.
    let two_hosts = shared.hosts.get().is_some();
    let here = usize::from(client.is_none() && !two_hosts);
    if client.is_some() {
        // This thread starts the program while the scripts wait for it:
        // how busy it was is the machine's share of their calls too.
        // Listed before any side runs, so that every call's reading
        // before it has this thread.
        shared
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(queued::this_thread());
    }
    let mut threads = Vec::new();
    for (index, script) in shared.case.scripts.iter().enumerate().skip(here) {
        let shared_for_side = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("{} {}", shared.case.name, script.side))
            .spawn(move || run_side(&shared_for_side, index));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(err) => {
                shared.control().sides[script.side as usize].running = false;
                shared.fail(harness_failure(
                    shared,
                    FailureKind::Setup,
                    format!("failed to start the {} thread: {err}", script.side),
                ));
            }
        }
    }
    let mut peers = Vec::new();
    if let Some(spec) = client {
        if wait_for_listener(shared, spec.port) {
            match start_program(shared, spec) {
                Ok(running) => *program = Some(running),
                Err(failure) => shared.fail(*failure),
            }
        }
    } else if !shared.case.scripts.is_empty() && !two_hosts {
        peers.push(run_side(shared, 0));
    }
    for thread in threads {
        match thread.join() {
            Ok(peer) => peers.push(peer),
            Err(_) => shared.fail(harness_failure(
                shared,
                FailureKind::Harness,
                "a side's thread panicked; this is a hangup bug".into(),
            )),
        }
    }
    peers
}

/// One side's thread: runs its script and hands its peer back, so its
/// sockets outlive the script.
pub(super) fn run_side(shared: &Arc<Shared>, index: usize) -> Peer {
    let script = &shared.case.scripts[index];
    let side = script.side;
    let mut peer = Peer::new(side, Arc::clone(&shared.sockets));
    if let Some(hosts) = shared.hosts.get() {
        if side == Side::Client {
            peer.connect_from(std::net::IpAddr::V4(crate::sandbox::topology::PEER_ADDRESS));
        }
        // A fresh thread: it joins its side's host.
        if let Err(err) = CaseNamespace::join(std::os::fd::AsFd::as_fd(&**hosts.of(side))) {
            shared.fail(harness_failure(
                shared,
                FailureKind::Setup,
                format!("the {side} could not join its host: {err}"),
            ));
            shared.control().sides[side as usize].running = false;
            return peer;
        }
    }
    shared
        .threads
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(queued::this_thread());
    shared.control().sides[side as usize].waker = Some(Waker::current());
    if let Err(failure) = run_script(shared, script, &mut peer) {
        shared.fail(*failure);
    }
    let mut control = shared.control();
    control.sides[side as usize].running = false;
    control.sides[side as usize].step = None;
    shared.changed.notify_all();
    if control.stopping {
        shared.supervisor.notify_all();
    }
    drop(control);
    peer
}

/// Runs one side's script. Each step runs as [`run_step`] does; a loop
/// runs its body's steps the same way, round after round.
pub(super) fn run_script(
    shared: &Shared,
    script: &Script,
    peer: &mut Peer,
) -> Result<(), Box<Failure>> {
    // Opened on this side's thread, so in the case's namespace; only sides
    // that check states need one.
    let mut diag = None;
    for (index, step) in script.steps.iter().enumerate() {
        if shared.stopping() {
            return Ok(());
        }
        let at = At {
            script,
            index,
            in_loop: None,
        };
        shared.set_step(script.side, Some((at.step(), None)));
        let flow = match &step.action {
            Action::Control(Control::Loop(looped)) => {
                run_loop(shared, at, step, looped, peer, &mut diag)?
            }
            _ => run_step(shared, at, step, None, peer, &mut diag)?,
        };
        if matches!(flow, Flow::CaseEnded) {
            return Ok(());
        }
    }
    Ok(())
}

pub(super) fn run_loop(
    shared: &Shared,
    at: At<'_>,
    step: &Step,
    looped: &Loop,
    peer: &mut Peer,
    diag: &mut Option<SockDiag>,
) -> Result<Flow, Box<Failure>> {
    for round in 1..=looped.times {
        for (body, inner) in looped.body.iter().enumerate() {
            if shared.stopping() {
                return Ok(Flow::CaseEnded);
            }
            let inner_at = At {
                in_loop: Some((body, round)),
                ..at
            };
            shared.set_step(at.side(), Some((inner_at.step(), None)));
            match run_step(shared, inner_at, inner, Some(&looped.until), peer, diag)? {
                Flow::Next => {}
                Flow::CaseEnded => return Ok(Flow::CaseEnded),
                Flow::UntilReached => {
                    shared.push(
                        Instant::now(),
                        Some(at.side()),
                        EventKind::LoopEnded {
                            step: at.step(),
                            round,
                        },
                    );
                    return Ok(Flow::Next);
                }
            }
        }
    }
    if looped.until.is_empty() {
        return Ok(Flow::Next);
    }
    let wanted: Vec<String> = looped.until.iter().map(ToString::to_string).collect();
    Err(failure(
        shared,
        at,
        step,
        FailureKind::Expectation,
        None,
        format!(
            "the loop ran its {} rounds and no call ended with {}",
            looped.times,
            wanted.join(" or ")
        ),
    ))
}
