//! The raw calls the processes `spawn` makes (the relay, init, the program
//! before it execs) share with the tracer that init runs: a fork without
//! glibc's handlers, errno, the signal mask and the fd table.
//!
//! They run in a child of a multi-threaded process between `clone` and
//! `exec` (or `_exit`), where only async-signal-safe calls are allowed: no
//! allocation, no locks, no Rust I/O. Each is a small island: it names in
//! its `# Safety` what its caller must hold to.

use std::os::fd::RawFd;

use nix::libc;

/// A fork made with a raw `clone`, without glibc's fork handlers (which
/// take locks another thread of hangup may hold).
///
/// # Safety
///
/// Only in a child made by `spawn`, under its rules (see `spawn`'s docs):
/// the new process may make async-signal-safe calls only, until it execs
/// or exits.
pub(super) unsafe fn fork() -> libc::pid_t {
    // SAFETY: clone with only the exit signal is fork; the caller keeps the
    // child to async-signal-safe calls.
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        ) as libc::pid_t
    }
}

/// This thread's errno: safe to read anywhere (it is the thread's own
/// slot), and what the calls here report through.
pub(super) fn errno() -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid for
    // the thread's life.
    unsafe { *libc::__errno_location() }
}

/// Reports `errno` on the `report` pipe and ends the process with `code`.
///
/// # Safety
///
/// Only in a process `spawn` made: it ends the process at once
/// (`_exit`), running no destructors and flushing nothing.
pub(super) unsafe fn fail(report: RawFd, code: libc::c_int) -> ! {
    // SAFETY: a write of 4 bytes from the stack, then _exit; the caller
    // is a process that may end this way.
    unsafe {
        let bytes = errno().to_ne_bytes();
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(code);
    }
}

/// Blocks every signal that can be blocked: the group's signals are for
/// the program.
///
/// # Safety
///
/// Only in the relay or init, which must not be stopped by the signals
/// hangup sends the program's process group; never on a thread of
/// hangup's own.
pub(super) unsafe fn block_signals() {
    // SAFETY: a sigset on the stack, filled and applied to this thread,
    // the process's only one.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

/// Closes every fd but those in `keep` (in ascending order): the relay
/// and init hold nothing the program's readers or hangup wait on.
///
/// # Safety
///
/// Only in a process `spawn` made, whose fd table is its own: closing an
/// fd some Rust object still owns elsewhere would make that object close a
/// stranger's fd later.
pub(super) unsafe fn close_all_but(keep: &[RawFd]) {
    // SAFETY: close_range on this process's own table; the caller holds no
    // Rust object owning the fds it closes.
    unsafe {
        let mut from = 0;
        for &kept in keep {
            if kept > from {
                libc::syscall(libc::SYS_close_range, from as u32, (kept - 1) as u32, 0u32);
            }
            from = kept + 1;
        }
        libc::syscall(libc::SYS_close_range, from as u32, u32::MAX, 0u32);
    }
}
