//! What the case's checks see of a running program, from any thread: its
//! output lines (`log`), its process tree, the fds and TCP sockets they
//! hold (`released`), read from /proc and the kernel's socket table
//! without touching them; and the signals a `signal` step sends it.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::Calls;
use super::output::Output;
use crate::model::{Exit, TcpState};
use crate::observe::SockDiag;
use crate::record::OpenFd;

/// How many times [`ProgramView::each_process`] lists the program's
/// processes looking for one it has not signalled yet.
const SIGNAL_ROUNDS: usize = 8;

/// A task's flag, in /proc's `stat`, from the start of its exit
/// (`include/linux/sched.h`).
const PF_EXITING: u64 = 0x4;

/// A view of a running program that any thread of the case may hold:
/// `log` checks count its output lines, `released` checks read its fd
/// table.
#[derive(Clone)]
pub struct ProgramView {
    pub(super) output: Arc<Output>,
    /// The program's own pid, whose fd table is read.
    pub(super) pid: Pid,
    /// Its process group: the relay's pid (see [`init`]).
    pub(super) group: Pid,
    /// Set when hangup asks it to stop (a `signal` step, or the end of the
    /// case), so its exit then is not a crash.
    pub(super) stopping: Arc<AtomicBool>,
    /// Its socket calls, when they are traced.
    pub(super) calls: Option<Arc<Calls>>,
    /// What each counted pattern stood at when the case it serves began:
    /// lines printed before belong to earlier cases (empty: all zero).
    pub(super) from: Vec<u64>,
}

/// Lines in `program.log` are stamped on the clock of the case the program
/// serves when it prints them, as its timeline shows them; a program that
/// serves a whole suite has a line there where each case begins and ends.
impl ProgramView {
    /// Writes `what` into `program.log` as a line of its own (`# what`).
    pub fn log_marker(&self, what: &str) {
        self.output.lock().log(format_args!("# {what}\n"));
    }
}

/// A TCP socket the program holds, as its fd table and `TCP_INFO` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The process that holds it, when not the program itself but a
    /// process it started (a worker).
    pub process: Option<Pid>,
    /// Its fd number in that process.
    pub fd: i32,
    /// Its state.
    pub state: TcpState,
    /// Its local address.
    pub local: Option<SocketAddr>,
    /// Its peer (none once it is closed or reset: the kernel forgets it).
    pub remote: Option<SocketAddr>,
    /// Its inode, as the fd table links it (`socket:[inode]`).
    pub inode: u64,
}

/// `fd 7: CLOSE_WAIT 127.0.0.1:8080 <- 127.0.0.1:41234`, or `pid 57 fd 7:
/// ...` for a process the program started.
impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pid) = self.process {
            write!(f, "pid {pid} ")?;
        }
        write!(f, "fd {}: {}", self.fd, self.state.name())?;
        if let Some(local) = self.local {
            write!(f, " {local}")?;
        }
        if let Some(remote) = self.remote {
            write!(f, " <- {remote}")?;
        }
        Ok(())
    }
}

impl ProgramView {
    /// The program's own pid, as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends the program's process group `signal`; an exit after it is the
    /// program's answer, not a crash. SIGSTOP and SIGCONT only pause and
    /// resume it (a suite fills its accept queue meanwhile): an exit after
    /// those is still a crash, and they go to the program and each process
    /// it started, one by one, not to the group (see `each_process`).
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        let pause = matches!(signal, Signal::SIGSTOP | Signal::SIGCONT);
        if !pause {
            self.stopping.store(true, Ordering::SeqCst);
        }
        // Once the relay is reaped its pid may name a stranger's group.
        if self.output.lock().exit.is_some() {
            return Err(nix::errno::Errno::ESRCH);
        }
        if pause {
            return self.each_process(signal);
        }
        killpg(self.group, signal)
    }

    /// Sends `signal` to the program and to every process it started, each
    /// once, listing them again until no new one appears (one may fork
    /// until its own SIGSTOP lands), a few rounds at most.
    ///
    /// Not to the group: it also holds the relay and init (see
    /// [`super::spawn`]), which block every signal but SIGSTOP. A stopped
    /// init is a stopped tracer: the program's thread that took the
    /// SIGSTOP then waits in its signal-delivery stop for init to let the
    /// signal on, the group stop never begins, and the program's other
    /// threads run on: an acceptor thread accepted the connections a
    /// `queued` cell meant to leave in the accept queue.
    fn each_process(&self, signal: Signal) -> nix::Result<()> {
        let mut sent: Vec<Pid> = Vec::new();
        for _ in 0..SIGNAL_ROUNDS {
            let new: Vec<Pid> = self
                .processes()
                .into_iter()
                .filter(|pid| !sent.contains(pid))
                .collect();
            if new.is_empty() {
                break;
            }
            for pid in new {
                match kill(pid, signal) {
                    Ok(()) => {}
                    // A process it started may have ended meanwhile; the
                    // program itself may not.
                    Err(nix::errno::Errno::ESRCH) if pid != self.pid => {}
                    Err(errno) => return Err(errno),
                }
                sent.push(pid);
            }
        }
        Ok(())
    }

    /// The program and every process it started that still runs, as the
    /// host numbers them: a master and its workers alike. Found through
    /// each thread's `children` in /proc, so a process whose parent died
    /// (reparented to the namespace's init) is no longer among them.
    fn processes(&self) -> Vec<Pid> {
        descendants(self.pid)
    }

    /// Every thread of every process in the program's PID namespace (the
    /// program, the processes it started, and those left to the
    /// namespace's init when their parent ended: a script's server it
    /// started in a subshell), as the host numbers them: whose waits for a
    /// CPU are the program's share of a call's duration. Found from the
    /// relay that leads its process group (its init's parent, idle).
    pub fn threads(&self) -> Vec<i32> {
        descendants(self.group)
            .iter()
            .flat_map(|pid| {
                std::fs::read_dir(format!("/proc/{pid}/task"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|task| task.file_name().to_str()?.parse().ok())
            })
            .collect()
    }

    /// Whether the program and every process it started runs now, none of
    /// them ending, as /proc says: none gone, a zombie, or in its exit
    /// (`PF_EXITING` among its flags, set before the exit closes its
    /// sockets). `false` when in doubt (a process whose first thread left
    /// before the others looks like one ending).
    pub fn running(&self) -> bool {
        self.processes().iter().all(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // After the name, which may hold spaces and parentheses:
                    // the state, then ppid, pgrp, session, tty_nr, tpgid,
                    // flags.
                    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
                    let state = fields.next()?;
                    let flags: u64 = fields.nth(5)?.parse().ok()?;
                    Some(!matches!(state, "Z" | "X" | "x") && flags & PF_EXITING == 0)
                })
                .unwrap_or(false)
        })
    }

    /// Whether every thread of the program and of the processes it started
    /// is stopped (`T`, or `t` under its tracer), as /proc says: a SIGSTOP
    /// is delivered when each thread next leaves the kernel, so a thread in
    /// `accept` may first take one more connection.
    pub fn stopped(&self) -> bool {
        self.processes().iter().all(|pid| {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                // Gone: it holds nothing.
                return true;
            };
            tasks.flatten().all(|task| {
                std::fs::read_to_string(task.path().join("stat"))
                    .ok()
                    .and_then(|stat| {
                        // The state follows the name, which may hold spaces
                        // and parentheses: after the last ')'.
                        let after = stat.rsplit_once(')')?.1;
                        after.split_whitespace().next().map(str::to_string)
                    })
                    .is_none_or(|state| state == "T" || state == "t" || state == "Z")
            })
        })
    }

    /// A thread of the program (of any process in its PID namespace) that
    /// is not asleep, as /proc says, with its state (`R`, `D`, ...); or
    /// `None` when every one sleeps (`S`), is stopped (`T`, or `t` under
    /// its tracer) or has ended (`Z`, `X`, or gone): it has nothing left
    /// to run until something wakes it, so whatever it was woken for
    /// before it has done, and printed. A thread in `D` waits on the
    /// kernel to go on with its work: awake.
    pub fn awake_thread(&self) -> Option<(i32, String)> {
        descendants(self.group).iter().find_map(|pid| {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
            tasks.flatten().find_map(|task| {
                let tid: i32 = task.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // The state follows the name, which may hold spaces and
                // parentheses: after the last ')'.
                let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
                let asleep = matches!(state, "S" | "T" | "t" | "Z" | "X" | "x");
                (!asleep).then(|| (tid, state.to_string()))
            })
        })
    }

    /// Whether every line the program wrote so far is read and on the
    /// record: each output reader waits on an empty pipe, or met its end.
    pub fn output_drained(&self) -> bool {
        self.output.drained()
    }

    /// Every fd the program and the processes it started have open, with
    /// what each is (read from /proc without touching it), by process and
    /// fd number.
    pub fn open_fds(&self) -> std::io::Result<Vec<OpenFd>> {
        let mut out = Vec::new();
        for (n, pid) in self.processes().into_iter().enumerate() {
            let listed = std::fs::read_dir(format!("/proc/{pid}/fd"));
            // The program's own table must be there; a process it started
            // may have ended since it was listed.
            let entries = match (n, listed) {
                (_, Ok(entries)) => entries,
                (0, Err(err)) => return Err(err),
                (_, Err(_)) => continue,
            };
            for entry in entries.flatten() {
                let Some(fd) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i32>().ok())
                else {
                    continue;
                };
                // Closed since the listing: not open.
                let Ok(target) = std::fs::read_link(entry.path()) else {
                    continue;
                };
                let mut target = target.to_string_lossy().into_owned();
                if target.starts_with("socket:[") {
                    if let Some(protocol) = socket_protocol(&entry.path()) {
                        target = format!("socket {protocol}");
                    }
                }
                if let Some((cut, _)) = target.char_indices().nth(OpenFd::TARGET_KEPT) {
                    target.truncate(cut);
                    target.push_str("...");
                }
                out.push(OpenFd {
                    pid: (n > 0).then(|| pid.as_raw()),
                    fd,
                    target,
                });
            }
        }
        out.sort_by_key(|f| (f.pid, f.fd));
        Ok(out)
    }

    /// The TCP sockets (IPv4 and IPv6) the program holds, it or a process
    /// it started (a worker), found through their fd tables and the
    /// kernel's socket table, without touching them: each
    /// `socket:[inode]` in `/proc/<pid>/fd` that the socket's own
    /// `system.sockprotoname` says is TCP is looked up by inode in a
    /// sock_diag dump of the case's namespace (`diag`). One the table no
    /// longer lists was reset into CLOSE: the program holds it all the same.
    ///
    /// Nothing is copied: a copy of the program's socket in hangup (as
    /// `pidfd_getfd` would make) would hold the socket open past the
    /// program's own `close`, delaying its FIN for as long as it lives.
    pub fn held_sockets(&self, diag: &mut SockDiag) -> std::io::Result<Vec<Held>> {
        let table = diag.tcp_sockets().map_err(std::io::Error::other)?;
        let mut held = Vec::new();
        for (n, pid) in self.processes().into_iter().enumerate() {
            let listed = std::fs::read_dir(format!("/proc/{pid}/fd"));
            // The program's own table must be there; a process it started
            // may have ended since it was listed.
            let entries = match (n, listed) {
                (_, Ok(entries)) => entries,
                (0, Err(err)) => return Err(err),
                (_, Err(_)) => continue,
            };
            let process = (n > 0).then_some(pid);
            for entry in entries {
                let Ok(entry) = entry else {
                    continue;
                };
                let Some(fd) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i32>().ok())
                else {
                    continue;
                };
                // Closed since the listing, or not a socket: not held.
                let Some(inode) = std::fs::read_link(entry.path()).ok().and_then(|target| {
                    let target = target.to_string_lossy().into_owned();
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse::<u32>()
                        .ok()
                }) else {
                    continue;
                };
                if !matches!(
                    socket_protocol(&entry.path()).as_deref(),
                    Some("TCP" | "TCPv6")
                ) {
                    continue;
                }
                held.push(match table.iter().find(|s| s.inode == inode) {
                    Some(socket) => Held {
                        inode: inode.into(),
                        process,
                        fd,
                        state: socket.state,
                        local: Some(socket.local),
                        remote: (socket.state != TcpState::Listen).then_some(socket.remote),
                    },
                    None => Held {
                        inode: inode.into(),
                        process,
                        fd,
                        state: TcpState::Close,
                        local: None,
                        remote: None,
                    },
                });
            }
        }
        held.sort_by_key(|h| (h.process.map(Pid::as_raw), h.fd));
        Ok(held)
    }

    /// How the program ended, once it has.
    pub fn exit(&self) -> Option<Exit> {
        self.output.lock().exit
    }

    /// How the program ended, waiting up to `limit` for it to end. A
    /// program's sockets close while it exits, a moment before it can be
    /// reaped: a peer that met its closed port asks this.
    pub fn exit_within(&self, limit: Duration) -> Option<Exit> {
        self.output.wait_exit(limit)
    }

    /// Its socket calls so far, when they are traced.
    pub fn calls(&self) -> Option<&Arc<Calls>> {
        self.calls.as_ref()
    }

    /// The counter of lines that match `pattern`; `None` if the program
    /// was started without counting it (it counts the patterns of the
    /// `log` checks of the cases it serves, see [`Watching`](super::Watching)).
    pub fn counter(&self, pattern: &regex::Regex) -> Option<LineCounter<'_>> {
        let at = self.output.counted(pattern)?;
        Some(LineCounter { view: self, at })
    }

    /// The same view, counting only the lines printed from now on: for a
    /// program that serves a whole suite, a case's `log` checks see the
    /// output of its own time.
    pub fn from_now(&self) -> ProgramView {
        ProgramView {
            from: self.output.lock().counts.clone(),
            ..self.clone()
        }
    }
}

/// `root` and every process it started that still runs, as the host
/// numbers them, through each thread's `children` in /proc: a process
/// whose parent died (reparented to the namespace's init) is among them
/// only when `root` is that init or above it.
fn descendants(root: Pid) -> Vec<Pid> {
    let mut all = vec![root];
    let mut next = 0;
    while let Some(&pid) = all.get(next) {
        next += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children"));
            for child in children.iter().flat_map(|c| c.split_whitespace()) {
                if let Ok(child) = child.parse::<i32>() {
                    let child = Pid::from_raw(child);
                    if !all.contains(&child) {
                        all.push(child);
                    }
                }
            }
        }
    }
    all
}

/// How many of a program's lines match one of its counted patterns.
pub struct LineCounter<'a> {
    view: &'a ProgramView,
    /// The pattern's place among the counted ones.
    at: usize,
}

impl LineCounter<'_> {
    /// How many lines so far, on either stream, match (of the lines since
    /// the view was made with [`ProgramView::from_now`]).
    pub fn count(&self) -> u64 {
        let now = self.view.output.lock().counts[self.at];
        now - self.view.from.get(self.at).copied().unwrap_or(0)
    }
}

/// The protocol of the socket `path` (`/proc/<pid>/fd/<n>`) links to, as
/// its `system.sockprotoname` attribute names it: "TCP", "TCPv6",
/// "UNIX-STREAM", ...; `None` if it is not a socket or is gone.
fn socket_protocol(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut name = [0u8; 32];
    // SAFETY: getxattr writes at most `name.len()` bytes into `name` and
    // returns how many, or -1; both C strings are NUL-terminated.
    let len = unsafe {
        nix::libc::getxattr(
            path.as_ptr(),
            c"system.sockprotoname".as_ptr(),
            name.as_mut_ptr().cast(),
            name.len(),
        )
    };
    let len = usize::try_from(len).ok()?;
    let name = &name[..len.min(name.len())];
    let name = name.strip_suffix(&[0]).unwrap_or(name);
    Some(String::from_utf8_lossy(name).into_owned())
}
