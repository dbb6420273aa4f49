//! One fresh network namespace per case, owned by the case's own OS thread.

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getpid, gettid};
use rtnetlink::LinkUnspec;

use super::userns::{diagnose_user_namespaces, is_refusal};
use super::{SandboxError, sysctl};

/// The loopback device is always interface 1 in a new network namespace.
const LOOPBACK_IFINDEX: u32 = 1;

thread_local! {
    /// Whether this thread already unshared a case namespace: a thread gets
    /// one, so a second `create` means a thread is being reused.
    static HAS_CASE_NAMESPACE: Cell<bool> = const { Cell::new(false) };
}

/// The network namespace of one case: a fresh, empty network stack with only
/// `lo`, up, holding 127.0.0.1 and ::1.
///
/// # Threads: read this before calling [`create`](Self::create)
///
/// Network namespaces belong to *threads*. `create` moves the **calling OS
/// thread** into a new namespace for good; everything that thread (and the
/// threads and child processes it starts afterwards) creates lives there,
/// and a socket stays in the namespace it was created in, whatever thread
/// later uses it. So:
///
/// - call it on a **fresh OS thread spawned for this one case**, and drive
///   the case with a `current_thread` tokio runtime on that thread;
/// - **never** call it on a thread someone else will reuse: libtest-mimic's
///   worker threads run trial after trial, and with `--test-threads=1` it
///   runs trials on the main thread. Spawn a thread from inside the trial
///   instead.
///
/// `create` refuses the process's main thread, a thread that already
/// created a case namespace, and a multi-threaded runtime (whose tasks hop
/// between threads); it cannot detect other kinds of reuse.
///
/// # Lifetime
///
/// There is nothing to tear down: the kernel frees the namespace once the
/// thread has exited *and* the last socket, process or file referring to it
/// is gone (a SUT started from the thread keeps it alive until it exits).
/// `CaseNamespace` has no `Drop` work on purpose; dropping it changes
/// nothing.
#[derive(Debug)]
pub struct CaseNamespace {
    /// Inode of the namespace, as in `ls -lL /proc/thread-self/ns/net`.
    inode: u64,
}

impl CaseNamespace {
    /// Moves the calling thread into a new network namespace and brings
    /// `lo` up through rtnetlink, on the current tokio runtime, which must be
    /// a `current_thread` runtime driven by this (fresh, dedicated) thread.
    /// See the [type-level docs](Self) for why that matters.
    ///
    /// When the kernel refuses (EPERM), the error carries the
    /// [`UserNamespaceDiagnosis`](super::UserNamespaceDiagnosis) of this
    /// machine: on Ubuntu 24.04 this is where AppArmor's restriction shows.
    pub async fn create() -> Result<CaseNamespace, SandboxError> {
        let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
        if !matches!(flavor, Ok(tokio::runtime::RuntimeFlavor::CurrentThread)) {
            return Err(SandboxError::WrongThread {
                reason: "CaseNamespace::create must run on a current_thread tokio runtime \
                         (a multi-threaded runtime moves tasks between threads, and \
                         only the calling thread enters the namespace); use \
                         create_blocking outside a runtime",
            });
        }
        let namespace = Self::unshare_for_this_thread()?;
        bring_loopback_up().await?;
        Ok(namespace)
    }

    /// [`create`](Self::create) for a thread that is not running a tokio
    /// runtime: builds a small `current_thread` runtime just to bring `lo`
    /// up. The same thread rules apply. Panics if called from inside a
    /// runtime (tokio refuses to nest them); use `create` there.
    pub fn create_blocking() -> Result<CaseNamespace, SandboxError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|source| SandboxError::Io {
                action: "build a tokio runtime to bring lo up".into(),
                source,
            })?;
        let namespace = Self::unshare_for_this_thread()?;
        runtime.block_on(bring_loopback_up())?;
        Ok(namespace)
    }

    fn unshare_for_this_thread() -> Result<CaseNamespace, SandboxError> {
        if gettid() == getpid() {
            return Err(SandboxError::WrongThread {
                reason: "called on the process's main thread; spawn a fresh OS thread per \
                         case (libtest-mimic runs trials on the main thread with \
                         --test-threads=1, and /proc/self/net follows the main thread)",
            });
        }
        if HAS_CASE_NAMESPACE.get() {
            return Err(SandboxError::WrongThread {
                reason: "this thread already has a case namespace; a thread is reused \
                         (libtest-mimic workers are): spawn a fresh OS thread per case",
            });
        }
        match unshare(CloneFlags::CLONE_NEWNET) {
            Ok(()) => {}
            Err(errno) if is_refusal(errno) => {
                return Err(SandboxError::NetworkNamespaceRefused {
                    errno,
                    diagnosis: diagnose_user_namespaces(),
                });
            }
            Err(errno) => return Err(SandboxError::NetworkNamespace { errno }),
        }
        HAS_CASE_NAMESPACE.set(true);
        Ok(CaseNamespace {
            inode: current_namespace_inode()?,
        })
    }

    /// Inode number of the namespace (`net:[<inode>]` in
    /// `/proc/<pid>/task/<tid>/ns/net`), for logs and for matching a
    /// process's namespace to a case.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Sets a per-namespace sysctl such as `net.ipv4.tcp_fin_timeout`, by
    /// writing `/proc/sys/net/...`, which the kernel resolves against the
    /// calling thread's namespace: call it from the case's thread (or a
    /// thread it spawned). Anything else is refused rather than silently
    /// writing some other namespace's (say the host's) value.
    ///
    /// Keys outside `net.` are host-wide and rejected (see
    /// [`validate_sysctl_key`](super::validate_sysctl_key)); a key the
    /// kernel does not have gives [`SandboxError::UnknownSysctl`], a value it
    /// refuses [`SandboxError::SysctlRejected`]. A new namespace starts from
    /// the kernel defaults, not from the host's values.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<(), SandboxError> {
        self.check_thread(key)?;
        sysctl::write(key, value)
    }

    /// Reads a per-namespace sysctl (trailing newline removed); same rules
    /// as [`set_sysctl`](Self::set_sysctl).
    pub fn sysctl(&self, key: &str) -> Result<String, SandboxError> {
        self.check_thread(key)?;
        sysctl::read(key)
    }

    fn check_thread(&self, key: &str) -> Result<(), SandboxError> {
        let here = current_namespace_inode()?;
        if here == self.inode {
            Ok(())
        } else {
            Err(SandboxError::SysctlOutsideNamespace {
                key: key.to_owned(),
                case: self.inode,
                here,
            })
        }
    }
}

/// Inode of the calling thread's network namespace (not `/proc/self`,
/// which is the main thread's).
fn current_namespace_inode() -> Result<u64, SandboxError> {
    fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .map_err(|source| SandboxError::Io {
            action: "stat /proc/thread-self/ns/net".into(),
            source,
        })
}

/// `ip link set lo up` over rtnetlink, in the calling thread's namespace
/// (the netlink socket is created here, so it belongs to this namespace).
async fn bring_loopback_up() -> Result<(), SandboxError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| {
        let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
        SandboxError::Loopback {
            detail: format!("cannot open a netlink socket: {e}"),
            diagnosis: is_refusal(errno).then(diagnose_user_namespaces),
        }
    })?;
    let driver = tokio::spawn(connection);
    let result = handle
        .link()
        .set(LinkUnspec::new_with_index(LOOPBACK_IFINDEX).up().build())
        .execute()
        .await;
    driver.abort();
    result.map_err(|e| {
        let refused = matches!(&e, rtnetlink::Error::NetlinkError(m)
            if is_refusal(Errno::from_raw(-m.raw_code())));
        SandboxError::Loopback {
            detail: e.to_string(),
            diagnosis: refused.then(diagnose_user_namespaces),
        }
    })
}
