//! Waking a side that is blocked in a syscall when its case ends.
//!
//! A side's calls are plain blocking syscalls (see [`crate::peer`]). When
//! another side fails or the case overruns its deadline, the case must end
//! without waiting for a `recv` that nobody will answer. The runner sends
//! the side's thread a signal whose handler does nothing and that is
//! installed without `SA_RESTART`: the blocked call returns EINTR, the side
//! sees that its case is stopping and leaves its script. Nothing about the
//! socket changes (no `shutdown`, no close): the kernel state the report
//! shows is the one the scripts left.
//!
//! A signal that arrives just before the side enters its syscall is missed,
//! so the runner repeats it every few milliseconds until the side is done.

use std::sync::Once;

/// The signal: a real-time one, which neither the C library nor the Rust
/// runtime use, and which is reset to its default in programs we start.
fn signal() -> nix::libc::c_int {
    nix::libc::SIGRTMIN() + 5
}

extern "C" fn do_nothing(_: nix::libc::c_int) {}

/// Installs the do-nothing handler, once per process.
pub(crate) fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: `sigaction` with a zeroed struct is a valid request: no
        // flags (so no SA_RESTART: interrupted calls return EINTR), an empty
        // mask, and a handler that is async-signal-safe because it does
        // nothing. It replaces no handler of ours or of the Rust runtime
        // (which only sets SIGPIPE and, for stack overflows, SIGSEGV/SIGBUS).
        unsafe {
            let mut action: nix::libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = do_nothing as *const () as usize;
            nix::libc::sigemptyset(&mut action.sa_mask);
            nix::libc::sigaction(signal(), &action, std::ptr::null_mut());
        }
    });
}

/// A side's thread, as something to interrupt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waker(nix::libc::pthread_t);

impl Waker {
    /// The calling thread.
    pub(crate) fn current() -> Waker {
        // SAFETY: pthread_self has no preconditions.
        Waker(unsafe { nix::libc::pthread_self() })
    }

    /// Interrupts the thread's blocking syscall, if it is in one.
    ///
    /// Call only while the thread has not been joined: the runner joins a
    /// side's thread after it said it is done, and stops waking it then.
    pub(crate) fn wake(self) {
        // SAFETY: the pthread_t is of a thread that has not been joined yet
        // (see above), so it is valid even if the thread has just returned;
        // the signal's handler was installed before any side started.
        unsafe {
            nix::libc::pthread_kill(self.0, signal());
        }
    }
}
