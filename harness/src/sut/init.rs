//! The program's own PID namespace, so that nothing it starts outlives it.
//!
//! A program's process group is signalled and killed as a unit, but a
//! process that starts a session of its own (a daemon, `setsid`) leaves the
//! group, and `PR_SET_PDEATHSIG` covers only the program itself: a hangup
//! killed with SIGKILL left such processes running. The kernel closes that
//! gap for PID namespaces: when a namespace's init exits, every other
//! process in it is killed.
//!
//! So the forked child (the *relay*, which hangup spawned and reaps)
//! unshares a PID namespace and forks its init, which forks the program:
//!
//! ```text
//! hangup ── relay (session and group leader, PDEATHSIG) ── init (pid 1) ── program (pid 2)
//! ```
//!
//! The program is not init itself, because init ignores every signal it
//! has no handler for: SIGTERM would not stop a program that relies on its
//! default action. Relay and init block every signal they can, so the
//! group's SIGTERM reaches the program alone; a SIGKILL of the group kills
//! init, and with it the namespace. Init reaps orphans, and when the program
//! ends it passes the wait status up a pipe; the relay then ends the same
//! way (the same exit status, or the same signal), so hangup sees the
//! program's own end. If hangup dies, the relay's `PR_SET_PDEATHSIG` kills
//! it, init's kills init, and the namespace goes.
//!
//! Inside, the program's `getpid()` is 2; `/proc` is the host's, in which
//! `/proc/self` still names it. hangup finds its pid on the host through
//! `/proc` (the kernel here has no `/proc/PID/task/TID/children`).

use std::io;
use std::os::fd::RawFd;

use nix::libc;
use nix::unistd::Pid;

/// Runs in the child hangup forked, before exec (`pre_exec`): becomes the
/// relay, and returns only in the program's process, which then execs.
///
/// # Safety
///
/// Must be called in a freshly forked child of a multi-threaded process:
/// only async-signal-safe calls are made (raw syscalls, no allocation, no
/// locks). `status` is a pipe (read end, write end) made for this child.
pub(super) unsafe fn enter(parent: Pid, status: (RawFd, RawFd)) -> io::Result<()> {
    // SAFETY: each call below is a plain syscall wrapper on values of ours;
    // the caller guarantees the forked-child context.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // hangup died between fork and prctl: nobody would kill us.
        if libc::getppid() != parent.as_raw() {
            libc::_exit(127);
        }
        if libc::unshare(libc::CLONE_NEWPID) != 0 {
            return Err(io::Error::last_os_error());
        }
        let init = libc::fork();
        if init < 0 {
            return Err(io::Error::last_os_error());
        }
        if init > 0 {
            libc::prctl(libc::PR_SET_NAME, c"hangup relay".as_ptr());
            relay(init, status.0);
        }
        // Init, pid 1 of the new namespace. Its parent is the relay; if the
        // relay dies, init goes too (and everything in the namespace).
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, c"hangup init".as_ptr());
        let program = libc::fork();
        if program == 0 {
            // The program: back to hangup's spawn, which execs it.
            return Ok(());
        }
        init_loop(program, status.1);
    }
}

/// Blocks every signal that can be blocked: the group's signals are for
/// the program.
unsafe fn block_signals() {
    // SAFETY: a sigset on the stack, filled and applied.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

/// Closes every fd but `keep`: the relay and init must not hold the
/// program's stdout and stderr (their readers wait for the end of them) or
/// the spawn's exec-error pipe (the spawn waits for it to close).
unsafe fn close_all_but(keep: RawFd) {
    // SAFETY: close_range on fd ranges; fds nobody else in this process uses.
    unsafe {
        if keep > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
    }
}

/// The relay: waits for init's report of the program's end, and ends the
/// same way.
unsafe fn relay(init: libc::pid_t, from_init: RawFd) -> ! {
    // SAFETY: syscalls on our own fds and child; see `enter`.
    unsafe {
        block_signals();
        close_all_but(from_init);
        let mut raw = [0u8; 4];
        let mut got = 0;
        while got < raw.len() {
            let n = libc::read(from_init, raw[got..].as_mut_ptr().cast(), raw.len() - got);
            if n > 0 {
                got += n as usize;
            } else if n == 0 || *libc::__errno_location() != libc::EINTR {
                break;
            }
        }
        while libc::waitpid(init, std::ptr::null_mut(), 0) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
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
unsafe fn init_loop(program: libc::pid_t, to_relay: RawFd) -> ! {
    // SAFETY: syscalls on our own fds and children; see `enter`.
    unsafe {
        block_signals();
        close_all_but(to_relay);
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
            if ended < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(126);
            }
        }
    }
}

/// The program's pid on the host: the child of the relay's child (init).
/// Found through every process's parent in `/proc`, once, after the spawn
/// returned (the program has exec'd by then, and init waits for it).
pub(super) fn program_pid(relay: Pid) -> io::Result<Pid> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // Gone since the listing: not one of ours.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(parent) = parent_in_stat(&stat) {
            parents.push((pid, parent));
        }
    }
    let child_of = |parent: i32| {
        parents
            .iter()
            .find(|(_, p)| *p == parent)
            .map(|(pid, _)| *pid)
    };
    child_of(relay.as_raw())
        .and_then(child_of)
        .map(Pid::from_raw)
        .ok_or_else(|| io::Error::other("the program's process was not found under its relay"))
}

/// The parent pid in a `/proc/PID/stat` line: the field after the state,
/// which follows the command name in parentheses (a name may hold spaces
/// and parentheses, so the last `)` ends it).
fn parent_in_stat(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_after_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parent_in_stat("42 (a b) c)) S 7 42 42 0"), Some(7));
        assert_eq!(parent_in_stat("42 (x"), None);
    }
}
