//! hangup: what does my server do when a client hangs up?
//!
//! A client times out mid-response, resets with `SO_LINGER 0`, half-closes,
//! or vanishes; the server should see the right errno (EPIPE, ECONNRESET),
//! release its socket (no CLOSE_WAIT leak), and keep serving. hangup turns
//! those questions into declarative suites that run under `cargo test` on
//! real kernel sockets, one fresh network namespace per case, asserting the
//! errno each call returned and the TCP state the kernel holds on each side.
//!
//! # Where things are
//!
//! Data flows one way: [`suite`] (TOML in, validated model out; each action
//! defined once in [`suite::action::catalog`]) → [`runner`] (a fresh thread
//! and network namespace per case, from [`sandbox`], and a thread per side)
//! → [`peer`] (the sides' blocking socket calls) → [`observe`] (sock_diag
//! and `TCP_INFO`) → [`record`] (the case's events on its clock) →
//! [`verdict`] (expected against observed) → [`report`] (timeline, JUnit,
//! JSON). [`model`] holds the words all of them share (errno, TCP state,
//! side, outcome); no module imports from one above it (a test reads the
//! sources to keep it so). The `hangup` command and its benchmark are the
//! binary's, not this library's API.
//!
//! # The one invariant
//!
//! When not root, the process enters a user namespace in `main` before any
//! thread exists; every case then runs on a thread of its own that unshares
//! its own network namespace, and the threads it starts (one per side)
//! share it. The thread a test trial is called on never changes namespace.
//! [`sandbox`] explains why and enforces it;
//! [`sandbox::in_case_namespace`] is the one way in.
//!
//! # Using it from another crate
//!
//! A `[[test]]` with `harness = false` whose `main` is
//! `hangup::runner::test_main("suites")`; see [`runner`].

#![warn(missing_docs)]

pub mod fault;
pub mod model;
pub mod observe;
pub mod peer;
pub mod record;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod suite;
pub mod sut;
pub mod verdict;

/// The unit tests create network namespaces like cases do. libtest owns the
/// test binary's `main`, so when not root the user namespace is entered in a
/// constructor that runs before `main`, while the process has one thread.
///
/// `unsafe` because code before `main` must not rely on std's runtime being
/// set up; this only reads `/proc`, makes syscalls and may print an error.
#[cfg(test)]
#[ctor::ctor(unsafe)]
fn enter_user_namespace_for_unit_tests() {
    if let Err(err) = sandbox::enter_user_namespace() {
        eprintln!("hangup unit tests: {err}");
    }
}
