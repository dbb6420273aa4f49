//! One fresh network namespace per case, owned by the case's own OS thread.

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::MetadataExt;

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getpid, gettid};

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
/// - call it on a **fresh OS thread spawned for this one case** (as
///   [`spawn_in_case_namespace`](super::spawn_in_case_namespace) does); the
///   threads that thread starts (one per side) share the namespace;
/// - **never** call it on a thread someone else will reuse: libtest-mimic's
///   worker threads run trial after trial, and with `--test-threads=1` it
///   runs trials on the main thread. Spawn a thread from inside the trial
///   instead.
///
/// `create` refuses the process's main thread and a thread that already
/// created a case namespace; it cannot detect other kinds of reuse.
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
    /// `lo` up through rtnetlink. Call it on a fresh thread made for the
    /// case; see the [type-level docs](Self) for why that matters (and
    /// [`in_case_namespace`](super::in_case_namespace), which does it for
    /// you).
    ///
    /// When the kernel refuses (EPERM), the error carries the
    /// [`UserNamespaceDiagnosis`](super::UserNamespaceDiagnosis) of this
    /// machine: on Ubuntu 24.04 this is where AppArmor's restriction shows.
    pub fn create() -> Result<CaseNamespace, SandboxError> {
        let namespace = Self::unshare_for_this_thread()?;
        bring_loopback_up()?;
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

    /// A handle on this namespace, for the threads of later cases to
    /// [`join`](Self::join): a program that serves a whole suite lives in
    /// one namespace its cases share. The handle keeps the namespace alive
    /// while it is held. Call it on the namespace's own thread.
    pub fn handle(&self) -> Result<std::os::fd::OwnedFd, SandboxError> {
        let file =
            fs::File::open("/proc/thread-self/ns/net").map_err(|source| SandboxError::Io {
                action: "open /proc/thread-self/ns/net".into(),
                source,
            })?;
        let handle = std::os::fd::OwnedFd::from(file);
        let opened = fs::metadata("/proc/thread-self/ns/net").map(|m| m.ino());
        if opened.ok() != Some(self.inode) {
            return Err(SandboxError::WrongThread {
                reason: "a namespace's handle was asked for on a thread outside it",
            });
        }
        Ok(handle)
    }

    /// Moves the calling thread into the namespace `handle` names (see
    /// [`handle`](Self::handle)), with the same rules as
    /// [`create`](Self::create): a fresh thread made for one case.
    pub fn join(handle: std::os::fd::BorrowedFd<'_>) -> Result<CaseNamespace, SandboxError> {
        if gettid() == getpid() {
            return Err(SandboxError::WrongThread {
                reason: "called on the process's main thread; spawn a fresh OS thread per case",
            });
        }
        if HAS_CASE_NAMESPACE.get() {
            return Err(SandboxError::WrongThread {
                reason: "this thread already has a case namespace; spawn a fresh OS thread per case",
            });
        }
        nix::sched::setns(handle, CloneFlags::CLONE_NEWNET)
            .map_err(|errno| SandboxError::NetworkNamespace { errno })?;
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

/// `ip link set lo up`: one RTM_SETLINK over rtnetlink, with its
/// acknowledgement, on a netlink socket made here, so in the calling
/// thread's namespace. Plain blocking calls: the message is encoded by
/// `netlink-packet-route`, no runtime needed for one request.
fn bring_loopback_up() -> Result<(), SandboxError> {
    use netlink_packet_core::{
        NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    };
    use netlink_packet_route::RouteNetlinkMessage;
    use netlink_packet_route::link::{LinkFlags, LinkMessage};
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

    let failed = |errno: i32, detail: String| SandboxError::Loopback {
        detail,
        diagnosis: is_refusal(Errno::from_raw(errno)).then(diagnose_user_namespaces),
    };
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| failed(e.raw_os_error().unwrap_or(0), format!("{what}: {e}"))
    };
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(io("cannot open a netlink socket"))?;
    socket
        .bind_auto()
        .map_err(io("cannot bind the netlink socket"))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(io("cannot connect the netlink socket"))?;
    let mut link = LinkMessage::default();
    link.header.index = LOOPBACK_IFINDEX;
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = 1;
    let mut message = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::SetLink(link)),
    );
    message.finalize();
    let mut request = vec![0; message.buffer_len()];
    message.serialize(&mut request);
    socket
        .send(&request, 0)
        .map_err(io("cannot send RTM_SETLINK"))?;
    let mut reply = Vec::with_capacity(4096);
    socket
        .recv(&mut reply, 0)
        .map_err(io("cannot read the RTM_SETLINK acknowledgement"))?;
    let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| failed(0, format!("an unreadable RTM_SETLINK answer: {e}")))?;
    match answer.payload {
        NetlinkPayload::Error(error) => match error.code {
            None => Ok(()),
            Some(code) => Err(failed(
                -code.get(),
                format!(
                    "the kernel refused to bring lo up: {}",
                    std::io::Error::from_raw_os_error(-code.get())
                ),
            )),
        },
        other => Err(failed(
            0,
            format!("expected an acknowledgement of RTM_SETLINK, found {other:?}"),
        )),
    }
}
