//! What a case must hold across its steps and scripts, which no single
//! step shows: a state check of a side that plays no part, a `wait` no
//! other side marks, faults that cannot work (no port, two of one name, a
//! `lift` of nothing) or are too many, what a case sharing the suite's
//! program may not do, and a two-host case's sides and addresses.

use std::ops::Range;

use super::Reader;
use crate::fault::{RULES_WITH_DATA, rules_per_port};
use crate::model::Side;
use crate::suite::limits::{MAX_FAULT_RULES_PER_CASE, MAX_FAULTS_PER_CASE};
use crate::suite::{
    Action, Case, Check, Control, Lift, Script, SocketCall, Step, Topology, every_step,
    every_step_mut,
};

/// Every step of a script with the most rounds it can run: once, or a
/// loop's `times` for the steps of its body (loops do not nest). The
/// loop's own step is not in it.
fn steps_with_rounds(steps: &[Step]) -> Vec<(&Step, usize)> {
    let mut all = Vec::new();
    for step in steps {
        match &step.action {
            Action::Control(Control::Loop(looped)) => {
                let rounds = looped.times as usize;
                all.extend(looped.body.iter().map(|inner| (inner, rounds)));
            }
            _ => all.push((step, 1)),
        }
    }
    all
}

impl Reader<'_> {
    /// Steps a case that shares the suite's program cannot have: a
    /// `signal` would stop (or change) the program for every later case.
    pub(super) fn shared_program_steps(&mut self, scripts: &[Script]) {
        for script in scripts {
            for step in every_step(&script.steps) {
                if let Action::Control(Control::Signal(_)) = &step.action {
                    self.problem(
                        step.span.clone(),
                        "expected no `signal` in a case that shares the suite's program (`scope = \"suite\"`), found one: the signal would reach the program every later case uses; give this case a `program` of its own",
                    );
                }
                if let Action::Control(Control::Fault(_)) = &step.action {
                    self.problem(
                        step.span.clone(),
                        "expected no fault in a case that shares the suite's program (`scope = \"suite\"`), found one: a fault is a rule of the namespace that program serves every case in; give this case a `program` of its own",
                    );
                }
            }
        }
    }

    /// A two-host case: only a client and a server (a script, or the case's
    /// own program, which must listen on `{host}` or a wildcard address),
    /// and IPv4 loopback addresses, which mean the server's host there
    /// (`connect = 8080` reaches the server across the link).
    pub(super) fn two_hosts(&mut self, case: &mut Case, at: Range<usize>) {
        match &case.program {
            Some(program) if program.role != Side::Server => self.problem(
                at.clone(),
                "expected the program under test to play the server in a `two_hosts` case, found it playing the client: the client's host has only the client script",
            ),
            Some(_) if case.shares_program() => self.problem(
                at.clone(),
                "expected a case's own program in a `two_hosts` case, found the suite's: the suite's program runs in a namespace of its own, with no second host (give the case a `program`)",
            ),
            _ => {}
        }
        if case.scripts.iter().any(|s| s.side == Side::Proxy) {
            self.problem(
                at.clone(),
                "expected a `client` and a `server` in a `two_hosts` case, found a `proxy`: two hosts have no third",
            );
        }
        let server = std::net::IpAddr::V4(crate::sandbox::topology::HOST_ADDRESS);
        let mut problems = Vec::new();
        for script in &mut case.scripts {
            for step in every_step_mut(&mut script.steps) {
                let addr = match &mut step.action {
                    Action::Socket(
                        SocketCall::Listen { addr, .. } | SocketCall::Connect { addr, .. },
                    ) => addr,
                    _ => continue,
                };
                if addr.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
                    addr.set_ip(server);
                } else {
                    problems.push((step.span.clone(), *addr));
                }
            }
        }
        for (span, addr) in problems {
            self.problem(
                span,
                format!(
                    "expected a bare port (the server's host, {server}) in a `two_hosts` case, found {addr}"
                ),
            );
        }
    }

    /// The faults a case puts in place and the nf_tables rules they make,
    /// against [`MAX_FAULTS_PER_CASE`] and [`MAX_FAULT_RULES_PER_CASE`]:
    /// each fault step counted once per round it may run (a loop's
    /// `times`), its rules as [`rules_per_port`] says for each port it
    /// matches. Reported at the fault that passes a limit, once.
    pub(super) fn fault_limits(&mut self, case: &Case) {
        let (mut faults, mut rules) = (0usize, 0usize);
        for script in &case.scripts {
            for (step, rounds) in steps_with_rounds(&script.steps) {
                let (made, what) = match &step.action {
                    Action::Control(Control::Fault(fault)) => (
                        case.fault_ports(fault).len() * rules_per_port(fault.outgoing.data),
                        "fault",
                    ),
                    Action::Control(Control::Cut(_)) => (0, "cut"),
                    _ => continue,
                };
                faults = faults.saturating_add(rounds);
                rules = rules.saturating_add(made.saturating_mul(rounds));
                let (in_loop, fewer) = if rounds > 1 {
                    (
                        format!(" (a {what} in a loop counts once per round: {rounds} here)"),
                        "give the loop fewer rounds, or split the case",
                    )
                } else {
                    (String::new(), "split the case")
                };
                if faults > MAX_FAULTS_PER_CASE {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected at most {MAX_FAULTS_PER_CASE} faults put in place in a case, found {faults} by this {what}{in_loop}: {fewer}"
                        ),
                    );
                    return;
                }
                if rules > MAX_FAULT_RULES_PER_CASE {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected at most {MAX_FAULT_RULES_PER_CASE} nf_tables rules made by a case's faults, found {rules} by this {what}{in_loop}: a fault makes one rule per port it matches, {RULES_WITH_DATA} with `data`; narrow it with `to`, or {fewer}"
                        ),
                    );
                    return;
                }
            }
        }
    }

    /// Faults no step alone can judge: one whose side has no port in the
    /// case (nothing it sends could be told apart), two of one name, and
    /// a `lift` of a name no fault has, or of `all` with no fault at all.
    pub(super) fn faults(&mut self, case: &Case) {
        let steps = || {
            case.scripts
                .iter()
                .flat_map(|script| every_step(&script.steps))
        };
        let mut names: Vec<&str> = Vec::new();
        // Cuts first: their names are the faults' too.
        let mut cuts: Vec<&str> = Vec::new();
        for step in steps() {
            let Action::Control(Control::Cut(cut)) = &step.action else {
                continue;
            };
            if case.topology != Topology::TwoHosts {
                self.problem(
                    step.span.clone(),
                    "expected `cut` in a case with `topology = \"two_hosts\"`, found it on one loopback: there is no other host to cut a side off from",
                );
            }
            if let Some(name) = &cut.name {
                if cuts.contains(&name.as_str()) {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected each fault's `name` once in a case, found {name:?} again"
                        ),
                    );
                }
                cuts.push(name);
            }
        }
        for step in steps() {
            let (from, to, what) = match &step.action {
                Action::Control(Control::Fault(fault)) => {
                    (fault.outgoing.from, fault.outgoing.to, "a fault on")
                }
                Action::Check(Check::Sent { segments, .. }) => {
                    (segments.outgoing.from, segments.outgoing.to, "a count of")
                }
                _ => continue,
            };
            if case.ports_between(from, to).is_empty() {
                let to_text = to.map(|to| format!(" to the {to}")).unwrap_or_default();
                self.problem(
                    step.span.clone(),
                    format!(
                        "expected {what} what a side sends through a port this case names, found none for what the {from}{to_text} sends: the {from} neither listens on nor connects to a port{}",
                        if to.is_none() { "" } else { " the other side connects to or listens on" }
                    ),
                );
            }
            let Action::Control(Control::Fault(fault)) = &step.action else {
                continue;
            };
            if let Some(name) = &fault.name {
                if names.contains(&name.as_str()) || cuts.contains(&name.as_str()) {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected each fault's `name` once in a case, found {name:?} again"
                        ),
                    );
                }
                names.push(name);
            }
        }
        let any = steps().any(|s| {
            matches!(
                s.action,
                Action::Control(Control::Fault(_) | Control::Cut(_))
            )
        });
        let taken_names = names.clone();
        names.extend(cuts.iter().copied());
        for step in steps() {
            match &step.action {
                Action::Check(Check::Taken { name, .. }) if cuts.contains(&name.as_str()) => {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected `taken` of a `drop`, `reject` or `delay`, found {name:?}, a `cut`: a cut host's packets are not counted by a rule"
                        ),
                    );
                }
                Action::Control(Control::Lift(Lift::Named(name)))
                    if !names.contains(&name.as_str()) =>
                {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected `lift` of a fault this case names, found {name:?}; its faults are named {}",
                            if names.is_empty() {
                                "nothing (give one a `name`, or `lift = \"all\"`)".to_string()
                            } else {
                                names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                            }
                        ),
                    );
                }
                Action::Check(Check::Taken { name, .. })
                    if !taken_names.contains(&name.as_str()) =>
                {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected `taken` of a fault this case names, found {name:?}; its faults are named {}",
                            if names.is_empty() {
                                "nothing (give one a `name`)".to_string()
                            } else {
                                names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                            }
                        ),
                    );
                }
                Action::Control(Control::Lift(Lift::All)) if !any => {
                    self.problem(
                        step.span.clone(),
                        "expected `lift = \"all\"` in a case with a fault, found no `drop` or `reject`: it would lift nothing",
                    );
                }
                _ => {}
            }
        }
    }

    /// What no single step shows: a state check of a side that has no
    /// script (it can never hold a socket, so "gone" would pass without
    /// meaning anything), and a `wait` for a label no other side marks
    /// (it could only ever time out).
    pub(super) fn across_scripts(&mut self, scripts: &[Script], role: Option<Side>) {
        // A program plays its side: its sockets can be checked.
        // A refused `[program]` was reported where it is written.
        let program = role.is_some() || self.program_refused;
        let has = |side: Side| scripts.iter().any(|s| s.side == side) || role == Some(side);
        let marks = |side: Side, label: &str| {
            scripts.iter().filter(|s| s.side != side).any(|s| {
                every_step(&s.steps)
                    .any(|m| matches!(&m.action, Action::Control(Control::Mark(l)) if l == label))
            })
        };
        for script in scripts {
            for step in every_step(&script.steps) {
                match &step.action {
                    Action::Check(Check::State { expected, .. }) => {
                        for (socket, _) in expected {
                            if !has(socket.side()) {
                                self.problem(
                                    step.span.clone(),
                                    format!(
                                        "expected a state check of a socket some side holds, found `{socket}`, which is the {}'s, and this case has no `{}` script",
                                        socket.side(),
                                        socket.side()
                                    ),
                                );
                            }
                        }
                    }
                    Action::Check(Check::AcceptQueue { expected, .. }) => {
                        for (listening, _) in expected {
                            if !has(*listening) {
                                self.problem(
                                    step.span.clone(),
                                    format!(
                                        "expected the accept queue of a side that listens, found `{listening}`, and this case has no `{listening}` script or program playing it"
                                    ),
                                );
                            }
                        }
                    }
                    Action::Check(Check::Log { .. }) if !program => {
                        self.problem(
                            step.span.clone(),
                            "expected a program under test for `log` to read, found none: `log` checks a program's output",
                        );
                    }
                    Action::Check(Check::Syscall { .. }) if !program => {
                        self.problem(
                            step.span.clone(),
                            "expected a program under test for `syscall` to trace, found none: `syscall` counts a program's own socket calls",
                        );
                    }
                    Action::Control(Control::Signal(_)) if !program => {
                        self.problem(
                            step.span.clone(),
                            "expected a program under test for `signal` to go to, found none",
                        );
                    }
                    Action::Check(Check::Released { .. }) if !program => {
                        self.problem(
                            step.span.clone(),
                            "expected a program under test for `released` to look into, found none: `released` reads a program's fd table",
                        );
                    }
                    Action::Check(Check::Sent { segments, .. })
                        if segments.since.as_ref().is_some_and(|label| {
                            !scripts.iter().any(|s| {
                                every_step(&s.steps).any(|m| {
                                matches!(&m.action, Action::Control(Control::Mark(l)) if l == label)
                            })
                            })
                        }) =>
                    {
                        self.problem(
                        step.span.clone(),
                        format!(
                            "expected `since` to name a label some side marks, found {:?} and no `mark` of it",
                            segments.since.as_deref().unwrap_or_default()
                        ),
                    );
                    }
                    Action::Control(Control::Wait { label, .. }) if !marks(script.side, label) => {
                        self.problem(
                            step.span.clone(),
                            format!(
                                "expected a `wait` for a label another side marks, found `wait = {label:?}` and no `mark = {label:?}` in another script: it could only time out"
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}
