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

/// Reports `errno` on the `report` pipe (tagged [`FAILED`]) and ends the
/// process with `code`.
///
/// # Safety
///
/// Only in a process `spawn` made: it ends the process at once
/// (`_exit`), running no destructors and flushing nothing.
pub(super) unsafe fn fail(report: RawFd, code: libc::c_int) -> ! {
    // SAFETY: a write of 4 bytes from the stack, then _exit; the caller
    // is a process that may end this way.
    unsafe {
        tell(report, FAILED, errno());
        libc::_exit(code);
    }
}

/// The tag of a report of the errno a child failed with.
pub(super) const FAILED: u8 = b'E';

/// The tag of the program's report of its own pid, as hangup's `/proc`
/// numbers it.
pub(super) const PID: u8 = b'P';

/// Writes one report on the `report` pipe: a tag and a number, 5 bytes in
/// one write (atomic on a pipe).
///
/// # Safety
///
/// Only in a process `spawn` made, with `report` its end of the pipe.
pub(super) unsafe fn tell(report: RawFd, tag: u8, number: i32) {
    let n = number.to_ne_bytes();
    let bytes = [tag, n[0], n[1], n[2], n[3]];
    // SAFETY: a write of 5 bytes from the stack.
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
    }
}

/// The calling process's pid as hangup's `/proc` numbers it: the target
/// of `/proc/self`, read with a raw `readlink` and parsed by hand. In the
/// program's own PID namespace `getpid()` is 2; `/proc` is the host's.
///
/// # Safety
///
/// Async-signal-safe: for the children `spawn` makes.
pub(super) unsafe fn host_pid() -> Option<i32> {
    let mut link = [0u8; 16];
    // SAFETY: readlink writes at most `link.len()` bytes into `link`.
    let len =
        unsafe { libc::readlink(c"/proc/self".as_ptr(), link.as_mut_ptr().cast(), link.len()) };
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n > 0 && n < link.len())?;
    let mut pid: i32 = 0;
    for &digit in &link[..len] {
        if !digit.is_ascii_digit() {
            return None;
        }
        pid = pid.checked_mul(10)?.checked_add(i32::from(digit - b'0'))?;
    }
    Some(pid)
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
