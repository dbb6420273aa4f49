//! Starting a program so that it holds nothing of hangup's, and nothing it
//! starts outlives it.
//!
//! # No copy of another case's sockets
//!
//! A `fork` copies the whole fd table: every socket of every case running
//! at that moment gains a second reference, held by the child until it
//! execs. A `close` in another case then only drops hangup's reference: no
//! FIN leaves, and a lingering close returns at once, until the child lets
//! go. Under load that took long enough for S8's lingering close to return
//! after 0 ms instead of 1 s (1 run in about 240 with `-j 8`, the case's
//! kernel counters still showing both sockets established).
//!
//! So the child is made with `CLONE_FILES`, sharing hangup's table instead
//! of copying it, and its first call is `close_range(3, ~0,
//! CLOSE_RANGE_UNSHARE)`, which gives it a table of its own holding only
//! fds 0 to 2 (the kernel copies nothing above the range's start). Its
//! pipes are then opened anew through `/proc/<hangup>/fd/<n>`, which hangup
//! keeps open until the child says it has them. No reference to any other
//! file of hangup's is ever taken.
//!
//! # Its own PID namespace
//!
//! A program's process group is signalled as a unit, but a process that
//! starts a session of its own (a daemon, `setsid`) leaves the group, and
//! `PR_SET_PDEATHSIG` covers only the process that sets it: a hangup killed
//! with SIGKILL left such processes running. When a PID namespace's init
//! exits, the kernel kills every other process in it. So the child (the
//! *relay*, which hangup reaps) unshares a PID namespace and forks its
//! init, which forks the program:
//!
//! ```text
//! hangup ── relay (session and group leader, PDEATHSIG) ── init (pid 1) ── program (pid 2)
//! ```
//!
//! The program is not init itself, because init ignores every signal it
//! has no handler for: SIGTERM would not stop a program relying on its
//! default action. Relay and init block every signal they can, so the
//! group's SIGTERM reaches the program alone; a SIGKILL of the group kills
//! init, and with it the namespace. Init reaps orphans, and when the program
//! ends it passes the wait status up a pipe; the relay then ends the same
//! way (the same exit status, or the same signal), so hangup sees the
//! program's own end. If hangup dies, the relay's `PR_SET_PDEATHSIG` kills
//! it, init's kills init, and the namespace goes.
//!
//! Inside, the program's `getpid()` is 2; `/proc` is the host's, in which
//! `/proc/self` still names it: the program reads it before it execs and
//! reports it on the report pipe, so hangup knows its pid even when it
//! ends at once (looking for it in `/proc` afterwards found nothing then).
//!
//! The report pipe carries, after the relay's ready byte, 5-byte reports
//! (a tag and a number): the program's pid, then at most one errno of a
//! failure (an `execve` that failed, or the relay's or init's own); an
//! `execve` that succeeds closes the program's end (`O_CLOEXEC`).
//!
//! # Only async-signal-safe calls in the children
//!
//! The children are copies of one thread of a multi-threaded process, made
//! by raw `clone` calls (glibc's `fork` would run its fork handlers, whose
//! locks another thread may hold in the copy). Until `execve` they make
//! only raw syscalls on memory prepared beforehand: no allocation, no lock.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::libc;
use nix::unistd::Pid;

use super::raw;

/// A started program: the relay hangup reaps and signals as a group, the
/// program's own pid, and the read ends of its stdout and stderr.
pub(super) struct Spawned {
    pub relay: Pid,
    pub program: Pid,
    pub stdout: File,
    pub stderr: File,
    /// When the program's calls are traced: the read end of the doorbell
    /// init rings, and the ring its records come on.
    pub trace: Option<(File, super::trace::Ring)>,
}

/// What the children need, all made before the first `clone`.
struct Plan {
    /// The program's file, found on `PATH` beforehand.
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
    /// `/proc/<hangup>/fd/<n>` of the write ends of stdout, stderr and the
    /// report pipe.
    stdout: CString,
    stderr: CString,
    report: CString,
    /// hangup's pid, to notice that it died before `PR_SET_PDEATHSIG`.
    parent: libc::pid_t,
    /// When the program is traced: `/proc/<hangup>/fd/<n>` of the write
    /// end of the records' pipe (none for the [`Tracer::Floor`]), and the
    /// seccomp filter.
    trace: Option<(Option<CString>, Vec<libc::sock_filter>)>,
    /// The ring init writes the records on, for the [`Tracer::Calls`]
    /// (null otherwise).
    ring: *mut super::trace::Shared,
    /// For the [`Tracer::Floor`]: whether it makes exit stops.
    floor_exits: bool,
}

/// Which tracer init runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tracer {
    /// hangup's: the program's socket calls, recorded (see
    /// [`super::trace`]).
    Calls,
    /// The benchmark's floor: the same filter and stops (without the
    /// exit stops unless `exits`), nothing recorded (see
    /// [`super::trace::floor_until`]).
    Floor {
        /// Whether each filtered call's exit stop is made too.
        exits: bool,
    },
}

/// The byte the relay writes once it holds its pipes; hangup may close its
/// own write ends then.
const READY: u8 = b'R';

/// Starts `argv` in `cwd` with hangup's environment and `env` on top;
/// with a `tracer`, init traces it (see [`super::trace`]).
pub(super) fn spawn(
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    tracer: Option<Tracer>,
) -> io::Result<Spawned> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (key, value) in env {
        vars.retain(|(k, _)| k.as_os_str() != OsStr::new(key));
        vars.push((key.into(), value.into()));
    }
    let path_var = vars
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let program = argv
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
    let exe = find_executable(program, path_var.as_deref(), cwd)?;
    let c = |bytes: &[u8]| {
        CString::new(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the command"))
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let traced = if tracer == Some(Tracer::Calls) {
        Some((pipe()?, super::trace::Ring::new()?))
    } else {
        None
    };
    let me = std::process::id();
    let proc_fd = |fd: &OwnedFd| c(format!("/proc/{me}/fd/{}", fd.as_raw_fd()).as_bytes());
    let plan = Plan {
        exe: c(exe.as_os_str().as_bytes())?,
        argv: argv
            .iter()
            .map(|a| c(a.as_bytes()))
            .collect::<io::Result<_>>()?,
        envp: vars
            .iter()
            .map(|(k, v)| {
                let mut pair = k.clone().into_vec();
                pair.push(b'=');
                pair.extend_from_slice(v.as_bytes());
                c(&pair)
            })
            .collect::<io::Result<_>>()?,
        cwd: c(cwd.as_os_str().as_bytes())?,
        stdout: proc_fd(&out_w)?,
        stderr: proc_fd(&err_w)?,
        report: proc_fd(&report_w)?,
        parent: me as libc::pid_t,
        trace: match (&traced, tracer) {
            (Some(((_, write), _)), _) => Some((Some(proc_fd(write)?), super::trace::filter())),
            (None, Some(_)) => Some((None, super::trace::filter())),
            (None, None) => None,
        },
        ring: traced
            .as_ref()
            .map_or(std::ptr::null_mut(), |(_, ring)| ring.as_ptr()),
        floor_exits: tracer == Some(Tracer::Floor { exits: true }),
    };
    let argv_ptrs = null_terminated(&plan.argv);
    let envp_ptrs = null_terminated(&plan.envp);
    // SAFETY: clone with CLONE_FILES and no new stack is fork sharing the
    // fd table; the child runs `relay` (raw syscalls on `plan` and the
    // pointer arrays, which stay alive in its copy of memory) and never
    // returns.
    let relay = unsafe {
        let pid = libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_FILES | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        );
        if pid == 0 {
            relay(&plan, &argv_ptrs, &envp_ptrs);
        }
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        Pid::from_raw(pid as libc::pid_t)
    };
    // The relay holds its own pipes once it says so; only then may hangup
    // close its write ends (the relay opens them through hangup's table).
    let mut report = File::from(report_r);
    let mut first = [0u8; 1];
    let ready = read_full(&mut report, &mut first)? == 1 && first[0] == READY;
    let trace = traced.map(|((read, write), ring)| {
        drop(write);
        (File::from(read), ring)
    });
    drop((out_w, err_w, report_w));
    let first = if ready {
        next_report(&mut report)?
    } else {
        None
    };
    let program = match first {
        Some((raw::PID, pid)) => match next_report(&mut report)? {
            None => Pid::from_raw(pid),
            Some((_, errno)) => {
                reap(relay);
                return Err(io::Error::from_raw_os_error(errno));
            }
        },
        Some((_, errno)) => {
            reap(relay);
            return Err(io::Error::from_raw_os_error(errno));
        }
        None => {
            reap(relay);
            return Err(io::Error::other(
                "the program's process ended before it could start it",
            ));
        }
    };
    Ok(Spawned {
        relay,
        program,
        stdout: File::from(out_r),
        stderr: File::from(err_r),
        trace,
    })
}

/// Waits for the relay to end, for a spawn that failed.
fn reap(relay: Pid) {
    let _ = nix::sys::wait::waitpid(relay, None);
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// The next report on the report pipe, a tag and a number; `None` at its
/// end.
fn next_report(from: &mut File) -> io::Result<Option<(u8, i32)>> {
    let mut bytes = [0u8; 5];
    Ok(match read_full(from, &mut bytes)? {
        5 => Some((
            bytes[0],
            i32::from_ne_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]),
        )),
        _ => None,
    })
}

/// Reads until `buf` is full or the end of the stream; how much it got.
fn read_full(from: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match from.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(got)
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `program` as `execvp` would find it: as given when it holds a `/`
/// (relative to `cwd`, where it runs), else the first executable file of
/// that name on `PATH`.
fn find_executable(program: &str, path: Option<&OsStr>, cwd: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Ok(cwd.join(program));
    }
    let executable = |candidate: &Path| {
        std::fs::metadata(candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let path = path.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|dir| cwd.join(dir).join(program))
        .find(|candidate| executable(candidate))
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}

/// The relay, in the child `clone` made. Never returns.
unsafe fn relay(plan: &Plan, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> ! {
    // SAFETY: raw syscalls on `plan`'s memory; see the module docs.
    unsafe {
        // A table of its own with fds 0-2 only: nothing of hangup's above.
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        ) != 0
        {
            libc::_exit(122);
        }
        let reopen = |path: *const libc::c_char, flags: libc::c_int, to: RawFd| {
            let fd = libc::open(path, flags);
            if fd < 0 {
                return false;
            }
            if to >= 0 && fd != to {
                libc::dup2(fd, to);
                libc::close(fd);
            }
            true
        };
        // The report pipe first, so that later failures can be told.
        let report = libc::open(plan.report.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if report < 0 {
            libc::_exit(122);
        }
        if !reopen(plan.stdout.as_ptr(), libc::O_WRONLY, 1)
            || !reopen(plan.stderr.as_ptr(), libc::O_WRONLY, 2)
            || !reopen(c"/dev/null".as_ptr(), libc::O_RDONLY, 0)
        {
            raw::fail(report, 122);
        }
        // Init's end of the trace records; never the program's (CLOEXEC).
        let trace = match &plan.trace {
            Some((Some(path), _)) => {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    raw::fail(report, 122);
                }
                fd
            }
            _ => -1,
        };
        libc::write(report, [READY].as_ptr().cast(), 1);
        if libc::chdir(plan.cwd.as_ptr()) != 0 {
            raw::fail(report, 122);
        }
        libc::setsid();
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // hangup died between clone and prctl: nobody would kill us.
        if libc::getppid() != plan.parent {
            libc::_exit(127);
        }
        let mut status = [0 as RawFd; 2];
        if libc::unshare(libc::CLONE_NEWPID) != 0
            || libc::pipe2(status.as_mut_ptr(), libc::O_CLOEXEC) != 0
        {
            raw::fail(report, 122);
        }
        let init = raw::fork();
        if init < 0 {
            raw::fail(report, 122);
        }
        if init > 0 {
            libc::prctl(libc::PR_SET_NAME, c"hangup relay".as_ptr());
            wait_and_end_alike(init, status[0]);
        }
        // Init, pid 1 of the new namespace; if the relay dies, init goes
        // too, and everything in the namespace with it. (A tracing init
        // too: it once went on without either, under the case's name.)
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, c"hangup init".as_ptr());
        if let Some((_, filter)) = &plan.trace {
            trace_from_init(plan, argv, envp, filter, report, status[1], trace);
        }
        let program = raw::fork();
        if program == 0 {
            tell_pid(report);
            exec_program(plan, argv, envp, report);
        }
        reap_until(program, status[1]);
    }
}

/// The program, first thing: reports its pid as hangup's `/proc` numbers
/// it, or fails.
unsafe fn tell_pid(report: RawFd) {
    // SAFETY: raw syscalls on the stack; see the module docs.
    unsafe {
        match raw::host_pid() {
            Some(pid) => raw::tell(report, raw::PID, pid),
            None => raw::fail(report, 122),
        }
    }
}

/// The program: as a fresh process would start, then exec.
unsafe fn exec_program(
    plan: &Plan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    report: RawFd,
) -> ! {
    // SAFETY: raw syscalls on `plan`'s memory; see the module docs.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execve(plan.exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        raw::fail(report, 127);
    }
}

/// Init of a traced program: forks the program, which waits until init
/// has seized it, installs the seccomp filter that stops it at its socket
/// calls, and execs; init then traces it until it ends, sending its calls
/// on `records` (or, without that pipe, as the benchmark's floor: stops
/// and nothing else).
///
/// The filter is installed after the seize on purpose: a call the filter
/// marks for tracing fails with ENOSYS when no tracer is attached.
#[allow(clippy::too_many_arguments)]
unsafe fn trace_from_init(
    plan: &Plan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    filter: &[libc::sock_filter],
    report: RawFd,
    to_relay: RawFd,
    records: RawFd,
) -> ! {
    // SAFETY: raw syscalls on memory prepared before the first clone.
    unsafe {
        let mut go = [0 as RawFd; 2];
        if libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            raw::fail(report, 122);
        }
        let program = raw::fork();
        if program == 0 {
            // Before the filter: this write is not the program's.
            tell_pid(report);
            // Only init may hold the write end, so that init's end is EOF.
            libc::close(go[1]);
            let mut byte = 0u8;
            if libc::read(go[0], (&raw mut byte).cast(), 1) != 1 {
                libc::_exit(127);
            }
            let program = libc::sock_fprog {
                len: filter.len() as libc::c_ushort,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    &raw const program,
                ) != 0
            {
                raw::fail(report, 122);
            }
            exec_program(plan, argv, envp, report);
        }
        if program < 0 {
            raw::fail(report, 122);
        }
        libc::close(go[0]);
        let options = libc::PTRACE_O_TRACESECCOMP
            | libc::PTRACE_O_TRACESYSGOOD
            | libc::PTRACE_O_TRACECLONE
            | libc::PTRACE_O_TRACEFORK
            | libc::PTRACE_O_TRACEVFORK
            | libc::PTRACE_O_EXITKILL;
        let none = std::ptr::null_mut::<libc::c_void>();
        if libc::ptrace(libc::PTRACE_SEIZE, program, none, options as libc::c_ulong) != 0 {
            libc::kill(program, libc::SIGKILL);
            raw::fail(report, 122);
        }
        libc::write(go[1], [b'g'].as_ptr().cast(), 1);
        libc::close(go[1]);
        if records < 0 {
            libc::prctl(libc::PR_SET_NAME, c"hangup floor".as_ptr());
            super::trace::floor_until(program, to_relay, plan.floor_exits);
        }
        super::trace::trace_until(program, to_relay, plan.ring, records);
    }
}

/// The relay: waits for init's report of the program's end, and ends the
/// same way.
unsafe fn wait_and_end_alike(init: libc::pid_t, from_init: RawFd) -> ! {
    // SAFETY: syscalls on our own fds and child.
    unsafe {
        raw::block_signals();
        raw::close_all_but(&[from_init]);
        let mut raw = [0u8; 4];
        let mut got = 0;
        while got < raw.len() {
            let n = libc::read(from_init, raw[got..].as_mut_ptr().cast(), raw.len() - got);
            if n > 0 {
                got += n as usize;
            } else if n == 0 || raw::errno() != libc::EINTR {
                break;
            }
        }
        while libc::waitpid(init, std::ptr::null_mut(), 0) < 0 && raw::errno() == libc::EINTR {}
        if got < raw.len() {
            // Init ended without a report: it was killed.
            libc::_exit(125);
        }
        let status = i32::from_ne_bytes(raw);
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        let signal = libc::WTERMSIG(status);
        libc::signal(signal, libc::SIG_DFL);
        let mut one: libc::sigset_t = std::mem::zeroed();
        libc::sigaddset(&mut one, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
        libc::kill(libc::getpid(), signal);
        // A signal whose default is not to end a process.
        libc::_exit(128 + signal);
    }
}

/// Init: reaps whatever ends in the namespace until the program does, then
/// reports the program's wait status and exits, which kills the rest.
unsafe fn reap_until(program: libc::pid_t, to_relay: RawFd) -> ! {
    // SAFETY: syscalls on our own fds and children.
    unsafe {
        raw::block_signals();
        raw::close_all_but(&[to_relay]);
        if program < 0 {
            libc::_exit(126);
        }
        loop {
            let mut status = 0;
            let ended = libc::waitpid(-1, &mut status, 0);
            if ended == program {
                let raw = status.to_ne_bytes();
                libc::write(to_relay, raw.as_ptr().cast(), raw.len());
                libc::_exit(0);
            }
            if ended < 0 && raw::errno() != libc::EINTR {
                libc::_exit(126);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fds(pid: Pid) -> Vec<String> {
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("fd table")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        fds
    }

    /// What each fd of `pid` refers to (`pipe:[123]`, `/dev/null`, ...).
    fn targets(pid: Pid) -> Vec<String> {
        fds(pid)
            .iter()
            .filter_map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
            .map(|t| t.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_program_holds_none_of_hangup_s_files_and_the_relay_only_its_pipe() {
        // A file hangup would pass on to any child it forked: no CLOEXEC.
        let (keep_r, _keep_w) = nix::unistd::pipe().expect("pipe");
        let kept = std::fs::read_link(format!("/proc/self/fd/{}", keep_r.as_raw_fd()))
            .expect("pipe link")
            .to_string_lossy()
            .into_owned();
        let started =
            spawn(&["sleep".into(), "5".into()], &[], Path::new("/"), None).expect("spawn");
        // (The program may open files of its own while it starts; what
        // matters is that none of hangup's is among them.)
        let held = targets(started.program);
        assert!(!held.contains(&kept), "{kept} in {held:?}");
        assert_eq!(fds(started.relay).len(), 1, "{:?}", targets(started.relay));
        nix::sys::signal::killpg(started.relay, nix::sys::signal::Signal::SIGKILL).expect("kill");
        reap(started.relay);
    }

    #[test]
    fn a_program_that_cannot_be_run_is_an_error_with_the_kernel_s_errno() {
        let failed = spawn(&["/".into()], &[], Path::new("/"), None);
        assert_eq!(
            failed.err().and_then(|e| e.raw_os_error()),
            Some(libc::EACCES)
        );
    }

    #[test]
    fn a_command_is_found_on_path_or_taken_as_given_with_a_slash() {
        let cwd = Path::new("/");
        assert_eq!(
            find_executable("sh", Some(OsStr::new("/nonexistent:/bin:/usr/bin")), cwd).ok(),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            find_executable("./run.sh", None, Path::new("/srv")).ok(),
            Some(PathBuf::from("/srv/./run.sh"))
        );
        let missing = find_executable("no-such-command-here", Some(OsStr::new("/bin")), cwd);
        assert_eq!(
            missing.map_err(|e| e.raw_os_error()),
            Err(Some(libc::ENOENT))
        );
    }
}
