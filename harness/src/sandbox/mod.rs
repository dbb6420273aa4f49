//! Privileges and namespaces: a user namespace when not root, one fresh
//! network namespace per case with `lo` up, and per-namespace sysctls.
//!
//! # The threading invariant
//!
//! This is the one non-obvious rule of hangup, and every runner must keep
//! it:
//!
//! 1. **The user namespace is entered before any thread exists.** When not
//!    root, `main` calls [`enter_user_namespace`] as its very first act,
//!    before libtest-mimic, tokio or tracing start threads, because
//!    `unshare(CLONE_NEWUSER)` fails with EINVAL in a multi-threaded
//!    process. (It may be skipped for `--list`; it does nothing as root.)
//! 2. **Each case runs on a fresh OS thread that unshares its own network
//!    namespace** ([`CaseNamespace::create`]), then starts one thread per
//!    side. Network namespaces are per *thread*; sockets keep the
//!    namespace they were created in; threads and child processes inherit
//!    the namespace of the thread that creates them.
//! 3. **Never switch the namespace of a thread a trial is called on.**
//!    libtest-mimic reuses its worker threads from trial to trial, and runs
//!    trials on the main thread with `--test-threads=1`; a trial spawns the
//!    case's thread and joins it.
//!
//! Consequences worth knowing: `/proc/self/net/*` shows the *main* thread's
//! namespace, so read `/proc/thread-self/net/*`; writes to `/proc/sys/net`
//! hit the calling thread's namespace (hence [`CaseNamespace::set_sysctl`]
//! checks which namespace it is called from).
//!
//! # Teardown
//!
//! None is needed: the kernel frees a network namespace when its thread has
//! exited and the last socket or process in it is gone. Nothing here
//! implements `Drop`.
//!
//! # Not here yet
//!
//! The two-host veth topology (198.18.0.0/15) will be added to this module
//! when a suite needs it.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;
use thiserror::Error;

mod netns;
mod sysctl;
pub mod topology;
mod userns;

pub use netns::CaseNamespace;
pub use sysctl::{ALLOWED_SYSCTLS, validate_sysctl_key, validate_sysctl_value};
pub use userns::{
    Privileges, UserNamespaceBlocker, UserNamespaceDiagnosis, diagnose_user_namespaces,
    enter_user_namespace, root_in_initial_user_namespace,
};

/// Everything that can go wrong while setting up privileges and namespaces.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// [`enter_user_namespace`] was called after a thread had started.
    #[error(
        "failed to enter a user namespace: the process already has {threads} threads; \
         call hangup::sandbox::enter_user_namespace() first thing in main, before anything \
         starts a thread (libtest-mimic, tokio, tracing), because unshare(CLONE_NEWUSER) \
         fails with EINVAL in a multi-threaded process"
    )]
    ThreadsAlreadyRunning {
        /// Threads the process had.
        threads: usize,
    },

    /// The kernel refused the user namespace, or a capability in it.
    #[error("failed to enter a user namespace ({step}: {errno}): {diagnosis}")]
    UserNamespace {
        /// What was being done, e.g. `writing /proc/self/uid_map`.
        step: &'static str,
        /// What the kernel answered.
        errno: Errno,
        /// Why, and how to fix it.
        diagnosis: UserNamespaceDiagnosis,
    },

    /// The kernel refused the case's network namespace for lack of
    /// privilege.
    #[error("failed to create a network namespace for the case ({errno}): {diagnosis}")]
    NetworkNamespaceRefused {
        /// What the kernel answered (EPERM, typically).
        errno: Errno,
        /// Why, and how to fix it.
        diagnosis: UserNamespaceDiagnosis,
    },

    /// The case's network namespace could not be created for another
    /// reason (ENOMEM, ...).
    #[error("failed to create a network namespace for the case: {errno}")]
    NetworkNamespace {
        /// What the kernel answered.
        errno: Errno,
    },

    /// [`CaseNamespace::create`] was called where it would break the
    /// threading invariant (see the [module docs](self)).
    #[error("failed to create a network namespace for the case: {reason}")]
    WrongThread {
        /// What is wrong with the calling thread.
        reason: &'static str,
    },

    /// Bringing `lo` up over rtnetlink failed.
    #[error(
        "failed to bring lo up in the case's network namespace: {detail}{}",
        diagnosis.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    Loopback {
        /// The netlink error.
        detail: String,
        /// Present when the kernel refused for lack of privilege.
        diagnosis: Option<UserNamespaceDiagnosis>,
    },

    /// A sysctl key that may not be used (not under `net.`, or malformed).
    #[error("failed to use sysctl `{key}`: {reason}")]
    InvalidSysctlKey {
        /// The key as given.
        key: String,
        /// Why it is refused.
        reason: String,
    },

    /// A well-formed `net.` key the kernel does not have.
    #[error("unknown sysctl `{key}` (no {} in this namespace)", path.display())]
    UnknownSysctl {
        /// The key as given.
        key: String,
        /// The file that does not exist.
        path: PathBuf,
    },

    /// The kernel refused the value (EINVAL).
    #[error("sysctl {key} rejected value `{value}`")]
    SysctlRejected {
        /// The key as given.
        key: String,
        /// The value written.
        value: String,
    },

    /// A sysctl was read or written from a thread outside the case's
    /// namespace, which would have touched another namespace's value.
    #[error(
        "failed to use sysctl `{key}` of the case's network namespace (net:[{case}]): the calling \
         thread is in net:[{here}]; /proc/sys/net follows the calling thread, so call this from \
         the case's thread"
    )]
    SysctlOutsideNamespace {
        /// The key as given.
        key: String,
        /// The case's namespace inode.
        case: u64,
        /// The calling thread's namespace inode.
        here: u64,
    },

    /// Reading or writing a sysctl failed otherwise.
    #[error("failed to {op} sysctl `{key}` ({}): {source}", path.display())]
    Sysctl {
        /// The key as given.
        key: String,
        /// `read` or `write`.
        op: &'static str,
        /// The file under `/proc/sys`.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// Any other I/O needed to set the sandbox up.
    #[error("failed to {action}: {source}")]
    Io {
        /// What was being done, as "failed to ..." completes it.
        action: String,
        /// The I/O error.
        source: io::Error,
    },

    /// A thread of ours panicked.
    #[error("failed to {action}: the thread panicked")]
    ThreadPanicked {
        /// What the thread was doing.
        action: &'static str,
    },
}

/// Runs `f` on a fresh OS thread inside a fresh network namespace (only
/// `lo`, up) and returns what it returns; a panic in `f` is resumed here.
///
/// This is the one place the threading invariant lives (see the [module
/// docs](self)): the namespace belongs to a thread made for it alone, so
/// the caller's thread (a libtest worker, `main`) never changes namespace,
/// and every thread `f` starts inherits the namespace. Use it from an
/// ordinary `#[test]` as root; rootless, the test binary must have entered
/// a user namespace before any thread existed ([`enter_user_namespace`]
/// from a `harness = false` main, or `unshare -Ur cargo test`).
///
/// ```no_run
/// let refused = hangup::sandbox::in_case_namespace(|_namespace| {
///     std::net::TcpStream::connect("127.0.0.1:8080").unwrap_err().kind()
/// })
/// .expect("a network namespace");
/// assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
/// ```
pub fn in_case_namespace<T: Send + 'static>(
    f: impl FnOnce(&CaseNamespace) -> T + Send + 'static,
) -> Result<T, SandboxError> {
    let thread =
        spawn_in_case_namespace("hangup case".into(), |namespace| namespace.map(|ns| f(&ns)))?;
    match thread.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// [`in_case_namespace`] without waiting, for callers that must hear of a
/// namespace the kernel refused on the thread itself (the runner records
/// it in the case): `f` gets the namespace, or why there is none.
pub fn spawn_in_case_namespace<T: Send + 'static>(
    name: String,
    f: impl FnOnce(Result<CaseNamespace, SandboxError>) -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, SandboxError> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || f(CaseNamespace::create()))
        .map_err(|source| SandboxError::Io {
            action: "spawn a case's thread".into(),
            source,
        })
}

/// [`spawn_in_case_namespace`], but the thread joins the namespace
/// `handle` names (a suite's, made by an earlier thread; see
/// [`CaseNamespace::handle`]) instead of making one.
pub fn spawn_in_namespace<T: Send + 'static>(
    name: String,
    handle: std::sync::Arc<std::os::fd::OwnedFd>,
    f: impl FnOnce(Result<CaseNamespace, SandboxError>) -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, SandboxError> {
    use std::os::fd::AsFd;
    std::thread::Builder::new()
        .name(name)
        .spawn(move || f(CaseNamespace::join(handle.as_fd())))
        .map_err(|source| SandboxError::Io {
            action: "spawn a case's thread".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::sync::{Arc, Barrier};

    /// Runs `f` on a fresh thread inside a new case namespace.
    fn in_case<T: Send + 'static>(f: impl FnOnce(&CaseNamespace) -> T + Send + 'static) -> T {
        in_case_namespace(f).unwrap()
    }

    fn host_namespace() -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
    }

    #[rstest]
    fn loopback_is_up_and_reachable() {
        let host = host_namespace();
        let (inode, echoed) = in_case(|ns| {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            client.write_all(b"ping").unwrap();
            let mut buf = [0; 4];
            server.read_exact(&mut buf).unwrap();
            (ns.inode(), buf)
        });
        assert_ne!(inode, host, "the case must not run in the host's namespace");
        assert_eq!(&echoed, b"ping");
    }

    #[rstest]
    fn two_namespaces_listen_on_the_same_port() {
        const PORT: u16 = 7357;
        // Both listeners exist at the same time: each thread waits for the
        // other before closing its own.
        let both_bound = Arc::new(Barrier::new(2));
        let run = |barrier: Arc<Barrier>| {
            std::thread::spawn(move || {
                let ns = CaseNamespace::create().unwrap();
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, PORT));
                barrier.wait();
                let listener = listener.unwrap();
                TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                ns.inode()
            })
        };
        let a = run(Arc::clone(&both_bound));
        let b = run(both_bound);
        assert_ne!(a.join().unwrap(), b.join().unwrap());
    }

    #[rstest]
    fn sysctl_changes_only_the_namespace() {
        const KEY: &str = "/proc/sys/net/ipv4/tcp_fin_timeout";
        let host_before = std::fs::read_to_string(KEY).unwrap();
        let inside = in_case(|ns| {
            let fresh = ns.sysctl("net.ipv4.tcp_fin_timeout").unwrap();
            ns.set_sysctl("net.ipv4.tcp_fin_timeout", "3").unwrap();
            (fresh, ns.sysctl("net.ipv4.tcp_fin_timeout").unwrap())
        });
        let host_after = std::fs::read_to_string(KEY).unwrap();
        assert_eq!(inside.1, "3");
        assert_eq!(host_before, host_after, "the host's value must not change");
        // A new namespace starts from the kernel default, not the host's.
        assert_eq!(inside.0, "60");
    }

    /// What makes a sysctl allowed: written inside a case's namespace, it
    /// changes there and not on the host.
    #[rstest]
    fn every_allowed_sysctl_is_per_namespace() {
        let host = || -> Vec<String> {
            ALLOWED_SYSCTLS
                .iter()
                .map(|(key, _)| {
                    let path = format!("/proc/sys/{}", key.replace('.', "/"));
                    std::fs::read_to_string(path).unwrap()
                })
                .collect()
        };
        let host_before = host();
        let inside = in_case(|ns| {
            ALLOWED_SYSCTLS
                .iter()
                .map(|(key, _)| {
                    let fresh: u64 = ns.sysctl(key).unwrap().parse().unwrap();
                    let other = fresh.abs_diff(1).to_string();
                    ns.set_sysctl(key, &other).unwrap();
                    (key, other, ns.sysctl(key).unwrap())
                })
                .collect::<Vec<_>>()
        });
        for (key, written, read) in inside {
            assert_eq!(written, read, "{key} did not take the value inside");
        }
        assert_eq!(host_before, host(), "the host's values must not change");
    }

    #[rstest]
    #[case::host_wide(
        "kernel.pid_max",
        "1",
        "failed to use sysctl `kernel.pid_max`: `kernel.pid_max` may not be set: it is host-wide"
    )]
    #[case::unlisted(
        "net.ipv4.tcp_fin_timeot",
        "3",
        "failed to use sysctl `net.ipv4.tcp_fin_timeot`: `net.ipv4.tcp_fin_timeot` may not be set: it is not one hangup knows"
    )]
    #[case::host_wide_under_net(
        "net.netfilter.nf_hooks_lwtunnel",
        "1",
        "failed to use sysctl `net.netfilter.nf_hooks_lwtunnel`: `net.netfilter.nf_hooks_lwtunnel` may not be set"
    )]
    #[case::rejected(
        "net.ipv4.tcp_fin_timeout",
        "soon",
        "sysctl net.ipv4.tcp_fin_timeout rejected value `soon`"
    )]
    #[case::directory(
        "net.ipv4",
        "1",
        "failed to use sysctl `net.ipv4`: `net.ipv4` may not be set"
    )]
    fn bad_sysctls_say_why(
        #[case] key: &'static str,
        #[case] value: &'static str,
        #[case] message: &str,
    ) {
        let err = in_case(move |ns| ns.set_sysctl(key, value).unwrap_err().to_string());
        assert!(err.starts_with(message), "{err}");
    }

    #[rstest]
    fn sysctl_from_another_thread_is_refused() {
        let ns = std::thread::spawn(|| CaseNamespace::create().unwrap())
            .join()
            .unwrap();
        // This test thread is in the host's namespace.
        let err = ns.set_sysctl("net.ipv4.tcp_fin_timeout", "3").unwrap_err();
        assert!(
            matches!(err, SandboxError::SysctlOutsideNamespace { .. }),
            "{err}"
        );
    }

    #[rstest]
    fn a_thread_gets_one_case_namespace() {
        let err = std::thread::spawn(|| {
            CaseNamespace::create().unwrap();
            CaseNamespace::create().unwrap_err()
        })
        .join()
        .unwrap();
        assert!(
            err.to_string().contains("already has a case namespace"),
            "{err}"
        );
    }
}
