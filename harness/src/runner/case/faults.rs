//! The case's faults on the network: put in place by a step, lifted by
//! another, counted by the kernel, and taken away at the scripts' end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hosts::in_host;
use super::{POLL_INTERVAL, Shared, later};
use crate::fault::{Faults, Filter, Removed};
use crate::model::Side;
use crate::record::{EventKind, FaultSpec, HeldBy, StepId};
use crate::report::FailureKind;
use crate::suite::{Fault, Lift, LineCount};
use crate::verdict::{self, Mismatch};

/// The nf_tables sockets of the case (a table goes when its socket
/// closes) and the faults in place, oldest first.
#[derive(Default)]
pub(super) struct FaultsInPlace {
    /// Per host a fault's packets arrive at ([`FaultsInPlace::host`]):
    /// the case's namespace, and in a two-host case the client's.
    pub(super) kernels: [Option<Faults>; 2],
    pub(super) active: Vec<ActiveFault>,
    /// Each fault put in place, indexed by its rules' [`Filter::tag`].
    pub(super) described: Vec<FaultSpec>,
    /// The packets the faults took, as the kernel logged them.
    pub(super) taken: Vec<crate::fault::Taken>,
    /// The packets the delays held, as the kernel queued them (at most
    /// [`MAX_HELD_NOTED`]: the timeline shows fewer packets than that).
    pub(super) held: Vec<crate::fault::Held>,
    /// What went wrong with holding them, each once.
    pub(super) delay_trouble: Vec<crate::fault::DelayTrouble>,
    /// Whether the kernel dropped some of those logs (its buffer was full).
    pub(super) untold: bool,
    /// Each named fault lifted, with the packets it took.
    pub(super) lifted: Vec<(String, u64)>,
}

impl FaultsInPlace {
    /// Moves the packets the kernel logged as taken since the last call
    /// into `taken` (its socket holds a few hundred: called at each lift,
    /// each `taken` check and the end).
    pub(super) fn collect_taken(&mut self) {
        for kernel in self.kernels.iter_mut().flatten() {
            // Bounded: a socket that keeps failing is not read forever.
            for _ in 0..1024 {
                match kernel.taken() {
                    Ok(taken) if taken.is_empty() => break,
                    Ok(taken) => self.taken.extend(taken),
                    Err(_) => self.untold = true,
                }
            }
            let (held, trouble) = kernel.held();
            let room = MAX_HELD_NOTED.saturating_sub(self.held.len());
            self.held.extend(held.into_iter().take(room));
            for what in trouble {
                if !self.delay_trouble.contains(&what) {
                    self.delay_trouble.push(what);
                }
            }
        }
    }

    /// Which of [`FaultsInPlace::kernels`] holds the rules on what `from`
    /// sends: they act on the input hook, so on the host the packets
    /// arrive at (on one loopback, the case's).
    pub(super) fn host(two_hosts: bool, from: Side) -> usize {
        usize::from(two_hosts && from == Side::Server)
    }

    /// The fault that took the packet whose IP header starts `ip`, if one
    /// did; each logged packet answers once.
    pub(super) fn took(&mut self, ip: &[u8]) -> Option<FaultSpec> {
        let at = self.taken.iter().position(|taken| {
            let n = taken.packet.len().min(ip.len());
            n >= 20 && taken.packet[..n] == ip[..n]
        })?;
        let taken = self.taken.remove(at);
        self.described.get(taken.tag as usize).cloned()
    }

    /// The delay that held the packet whose IP header starts `ip`, and
    /// how long, if one did; each held packet answers once.
    pub(super) fn delayed(&mut self, ip: &[u8]) -> Option<HeldBy> {
        let at = self.held.iter().position(|held| {
            let n = held.packet.len().min(ip.len());
            n >= 20 && held.packet[..n] == ip[..n]
        })?;
        let held = self.held.remove(at);
        let fault = self.described.get(held.tag as usize).cloned()?;
        Some(HeldBy {
            fault,
            held: held.held,
        })
    }
}

/// The most held packets kept to mark in the timeline.
pub(super) const MAX_HELD_NOTED: usize = 100_000;

/// A fault a step put in place and no `lift` took away yet.
pub(super) struct ActiveFault {
    pub(super) name: Option<String>,
    /// Its host, in [`FaultsInPlace::kernels`].
    pub(super) host: usize,
    /// For a cut host rather than rules: whose host, and how.
    pub(super) cut: Option<(Side, crate::sandbox::topology::Cut)>,
    /// The fault, as the suite put it.
    pub(super) spec: FaultSpec,
    /// Its rules in the kernel.
    pub(super) handles: Vec<u64>,
    /// The packets its rules no longer in the kernel took: a lift the
    /// kernel refused part-way removed some (a fault of more rules than
    /// one transaction holds).
    pub(super) took: u64,
}

/// Notes what each fault still in place took, and takes them all away
/// (closing the socket that owns the case's table), so that the sockets
/// close and the program stops on a network that works.
pub(super) fn end_faults(shared: &Shared) {
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    faults.collect_taken();
    for trouble in std::mem::take(&mut faults.delay_trouble) {
        shared.push(Instant::now(), None, EventKind::Delays { trouble });
    }
    let FaultsInPlace {
        kernels, active, ..
    } = &mut *faults;
    // What every rule took, one dump per host: reading each fault's
    // rules on its own would read the whole table once per fault.
    let counts: Vec<Result<HashMap<u64, u64>, String>> = kernels
        .iter_mut()
        .map(|kernel| match kernel {
            Some(kernel) if active.iter().any(|f| !f.handles.is_empty()) => {
                kernel.counts().map_err(|e| e.to_string())
            }
            _ => Ok(HashMap::new()),
        })
        .collect();
    let mut cuts_left = active.iter().filter(|f| f.cut.is_some()).count();
    for fault in active.drain(..) {
        if let Some((side, how)) = fault.cut {
            // Restored, so the sides close on a network that works.
            cuts_left -= 1;
            let error = restore_cut(shared, side, how, cuts_left == 0).err();
            shared.push(
                Instant::now(),
                None,
                EventKind::FaultAtEnd {
                    fault: fault.spec,
                    took: None,
                    error,
                },
            );
            continue;
        }
        if kernels[fault.host].is_none() {
            continue;
        }
        let (took, error) = match &counts[fault.host] {
            Ok(counts) => match total(&fault, counts) {
                Ok(took) => (Some(took), None),
                Err(missing) => (
                    None,
                    Some(format!(
                        "its rule {missing} was no longer in the kernel to be counted"
                    )),
                ),
            },
            Err(e) => (None, Some(e.clone())),
        };
        shared.push(
            Instant::now(),
            None,
            EventKind::FaultAtEnd {
                fault: fault.spec,
                took,
                error,
            },
        );
    }
    for kernel in kernels.iter_mut().filter_map(Option::take) {
        // Closing it removes the table: an RCU grace period (see reaper).
        crate::runner::reaper::drop_later(kernel);
    }
}

/// Puts `fault` in place: its rules, one per port it matches (see
/// [`Case::fault_ports`]), in the case's table, made at the first fault.
pub(super) fn put_fault(
    shared: &Shared,
    side: Side,
    step: StepId,
    fault: &Fault,
) -> Result<(), String> {
    let ports = shared.case.fault_ports(fault);
    let filters: Vec<Filter> = ports
        .iter()
        .map(|&port| Filter {
            port,
            flags: fault.outgoing.flags,
            data: fault.outgoing.data,
            probability: fault.probability,
            verdict: fault.verdict,
            tag: 0,
        })
        .collect();
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    let tag = faults.described.len() as u32;
    let filters: Vec<Filter> = filters.into_iter().map(|f| Filter { tag, ..f }).collect();
    let hosts = shared.hosts.get();
    let host = FaultsInPlace::host(hosts.is_some(), fault.outgoing.from);
    let kernel = match &mut faults.kernels[host] {
        Some(kernel) => kernel,
        empty => {
            // Opened on its host: a netlink socket acts on the namespace it
            // was made in.
            let opened = match hosts {
                Some(hosts) => {
                    let on = if host == 0 {
                        &hosts.server
                    } else {
                        &hosts.client
                    };
                    in_host(on, |_| Faults::open())
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?
                }
                None => Faults::open().map_err(|e| e.to_string())?,
            };
            empty.insert(opened)
        }
    };
    let handles = kernel.install(&filters).map_err(|e| e.to_string())?;
    let spec = FaultSpec::Packets(fault.clone());
    faults.described.push(spec.clone());
    shared.push(
        Instant::now(),
        Some(side),
        EventKind::FaultPut {
            step,
            fault: spec.clone(),
            ports,
            rules: handles.len(),
        },
    );
    faults.active.push(ActiveFault {
        host,
        cut: None,
        name: fault.name.clone(),
        spec,
        handles,
        took: 0,
    });
    Ok(())
}

/// Cuts `cut.side`'s host off from the other, on a thread in that host.
pub(super) fn put_cut(
    shared: &Shared,
    side: Side,
    step: StepId,
    cut: &crate::suite::HostCut,
) -> Result<(), String> {
    let Some(hosts) = shared.hosts.get() else {
        return Err("there is no other host to cut this one off from".into());
    };
    let how = cut.how;
    in_host(hosts.of(cut.side), move |_| {
        crate::sandbox::topology::cut_off(how)
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let spec = FaultSpec::Host(cut.clone());
    shared.push(
        Instant::now(),
        Some(side),
        EventKind::FaultPut {
            step,
            fault: spec.clone(),
            ports: Vec::new(),
            rules: 0,
        },
    );
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    faults.active.push(ActiveFault {
        name: cut.name.clone(),
        host: 0,
        cut: Some((cut.side, cut.how)),
        spec,
        handles: Vec::new(),
        took: 0,
    });
    Ok(())
}

/// Undoes a cut of `side`'s host.
/// With `probe`, returns once the link carries both ways again (give it
/// only when no other cut remains, or it cannot).
pub(super) fn restore_cut(
    shared: &Shared,
    side: Side,
    how: crate::sandbox::topology::Cut,
    probe: bool,
) -> Result<(), String> {
    let hosts = shared
        .hosts
        .get()
        .ok_or("there is no other host to restore")?;
    let other = Arc::clone(hosts.other(side));
    in_host(hosts.of(side), move |_| {
        let other = probe.then(|| std::os::fd::AsFd::as_fd(&*other));
        crate::sandbox::topology::restore(how, other)
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// Takes away the faults `which` names, noting what each took; an error
/// when none of them is in place (the suite's), or when the kernel refused
/// (hangup's: the faults not taken away stay in place, for the case's end
/// to take away and note).
pub(super) fn lift_faults(
    shared: &Shared,
    side: Side,
    step: StepId,
    which: &Lift,
) -> Result<(), (FailureKind, String)> {
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    faults.collect_taken();
    let FaultsInPlace {
        kernels,
        active,
        lifted,
        ..
    } = &mut *faults;
    let chosen: Vec<ActiveFault> = match which {
        Lift::All => std::mem::take(active),
        Lift::Named(name) => {
            let at = active.iter().position(|f| f.name.as_ref() == Some(name));
            at.map(|i| active.remove(i)).into_iter().collect()
        }
    };
    if chosen.is_empty() {
        return Err((
            FailureKind::Script,
            match which {
                Lift::All => "no fault was in place to lift".to_string(),
                Lift::Named(name) => format!("no fault named {name:?} was in place to lift"),
            },
        ));
    }
    // Every chosen fault's rules first, in as few transactions as hold
    // them (per host): lifting one at a time is a transaction per fault,
    // each rebuilding the chain, and reads nothing back (the kernel
    // echoes each rule's count as it removes it).
    let mut removed: [Removed; 2] = Default::default();
    for (host, kernel) in kernels.iter_mut().enumerate() {
        let handles: Vec<u64> = chosen
            .iter()
            .filter(|f| f.host == host && f.cut.is_none())
            .flat_map(|f| f.handles.iter().copied())
            .collect();
        if let (Some(kernel), false) = (kernel.as_mut(), handles.is_empty()) {
            removed[host] = kernel.remove(&handles);
        }
    }
    let mut failure = None;
    let mut chosen = chosen.into_iter();
    while let Some(mut fault) = chosen.next() {
        let took = if let Some((side, how)) = fault.cut {
            let cuts_left = active
                .iter()
                .chain(chosen.as_slice())
                .any(|f| f.cut.is_some());
            if failure.is_some() {
                // Cuts are restored one by one, in order: once a fault
                // could not be lifted, the cuts after it stay in place, as
                // they were.
                active.push(fault);
                continue;
            }
            if let Err(why) = restore_cut(shared, side, how, !cuts_left) {
                failure = Some(format!("{} could not be lifted: {why}", fault.spec));
                active.push(fault);
                continue;
            }
            None
        } else {
            let gone = &removed[fault.host].packets;
            let took = fault.took
                + fault
                    .handles
                    .iter()
                    .filter_map(|h| gone.get(h))
                    .sum::<u64>();
            fault.handles.retain(|h| !gone.contains_key(h));
            if !fault.handles.is_empty() {
                let why = removed[fault.host].error.as_ref().map_or_else(
                    || "the kernel kept its rules".to_string(),
                    |e| e.to_string(),
                );
                failure.get_or_insert(format!("{} could not be lifted: {why}", fault.spec));
                fault.took = took;
                active.push(fault);
                continue;
            }
            Some(took)
        };
        if let (Some(name), Some(took)) = (&fault.name, took) {
            lifted.push((name.clone(), took));
        }
        shared.push(
            Instant::now(),
            Some(side),
            EventKind::FaultLifted {
                step,
                fault: fault.spec,
                took,
            },
        );
    }
    match failure {
        Some(why) => Err((FailureKind::Harness, why)),
        None => Ok(()),
    }
}

/// The packets `fault` took: what its rules in the kernel counted
/// (`counts`, by handle) and what those already removed took; `Err` with
/// the handle of a rule that is not in `counts`.
fn total(fault: &ActiveFault, counts: &HashMap<u64, u64>) -> Result<u64, u64> {
    fault.handles.iter().try_fold(fault.took, |sum, h| {
        counts.get(h).map(|packets| sum + packets).ok_or(*h)
    })
}

/// The packets the fault `name` took so far (or in all, once lifted);
/// an error when it was never put in place.
pub(super) fn packets_taken(shared: &Shared, name: &str) -> Result<u64, String> {
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    faults.collect_taken();
    let FaultsInPlace {
        kernels,
        active,
        lifted,
        ..
    } = &mut *faults;
    if let Some((_, took)) = lifted.iter().find(|(n, _)| n == name) {
        return Ok(*took);
    }
    let fault = active.iter().find(|f| f.name.as_deref() == Some(name));
    match fault.and_then(|f| kernels[f.host].as_mut().map(|k| (f, k))) {
        Some((fault, kernel)) => kernel
            .packets(&fault.handles)
            .map(|packets| fault.took + packets)
            .map_err(|e| e.to_string()),
        None => Err(format!("no fault named {name:?} was in place yet")),
    }
}

/// Counts the packets the fault `name` took until there is one or
/// `within` passes (with a count: until `within` passes); the count goes
/// on the record. `Err(None)`: the case ended meanwhile.
pub(super) fn check_taken(
    shared: &Shared,
    side: Side,
    step: StepId,
    name: &str,
    packets: LineCount,
    within: Option<Duration>,
) -> Result<(), Option<(FailureKind, Option<Mismatch>, String)>> {
    let until = later(within.unwrap_or_default());
    loop {
        let seen =
            packets_taken(shared, name).map_err(|why| Some((FailureKind::Script, None, why)))?;
        let now = Instant::now();
        if (packets == LineCount::AtLeastOne && seen > 0) || now >= until {
            shared.push(
                now,
                Some(side),
                EventKind::TakenCount {
                    step,
                    fault: name.to_string(),
                    count: seen,
                    wanted: packets,
                },
            );
            return verdict::judge_taken(name, packets, within, seen).map_err(|m| {
                let what = m.to_string();
                Some((FailureKind::Expectation, Some(m), what))
            });
        }
        if !shared.sleep_until((now + POLL_INTERVAL).min(until)) {
            return Err(None);
        }
    }
}
