//! The kernel's view of sockets: the TCP state of each side, read from the
//! kernel itself.
//!
//! [`SockDiag`] dumps the kernel's TCP socket table through the sock_diag
//! netlink protocol (what `ss` uses underneath), without running `ss` or
//! parsing `/proc/net/tcp`: one dump of a small namespace takes tens of
//! microseconds, so assertions can poll the kernel tightly.
//!
//! Why it looks the way it does:
//!
//! - **One namespace per socket.** A sock_diag socket reports the network
//!   namespace it was *created* in, and network namespaces are per thread.
//!   Open a [`SockDiag`] on the case's own thread *after* that thread entered
//!   the case's namespace; it keeps reporting that namespace wherever it is
//!   used later, and it never sees the host's or another case's sockets.
//! - **Matched by 4-tuple, not inode.** Sockets nobody holds any more
//!   (orphaned after `close()`, e.g. in FIN_WAIT1 or LAST_ACK) and TIME_WAIT
//!   sockets have inode 0 and carry no `TCP_INFO`, so [`SockDiag::lookup`]
//!   and [`SockDiag::find`] identify a connection by its local and remote
//!   address. The inode is still reported ([`SocketSnapshot::inode`]) to tie
//!   a live socket to a process's fd.
//! - **Every state.** A dump asks for every state, including LISTEN,
//!   TIME_WAIT and half-open connections. The kernel lists a half-open
//!   passive connection (its `TCP_NEW_SYN_RECV` request socket) as
//!   SYN_RECV, and a TIME_WAIT socket with inode 0. An orphaned FIN_WAIT2
//!   socket whose `tcp_fin_timeout` is shorter than TIME_WAIT's 60 s is kept
//!   as a time-wait socket too: it is listed as FIN_WAIT2 with inode 0.
//!   Sockets that are only bound (neither listening nor connected) are not
//!   asked for, as `ss -a` does not show them either.
//! - **Why `TCP_INFO` too.** A socket reset into CLOSE is unhashed at once:
//!   it vanishes from sock_diag (and from `ss`) although the process may
//!   still hold its fd. For our own sockets [`tcp_info_state`] asks the fd
//!   itself, which still answers CLOSE. "Gone from the kernel's table" is
//!   therefore not "released by the program".
//!
//! - **Cost.** [`SockDiag::find`] and [`SockDiag::lookup`] ask for one
//!   socket (an exact request): a few microseconds, whatever the table
//!   holds. A dump ([`SockDiag::tcp_sockets`]) walks the namespace's TCP
//!   hash table, and a new namespace shares the host's, sized by RAM
//!   (262144 buckets here): ~450 µs for both families. A namespace created
//!   from one where `net.ipv4.tcp_child_ehash_entries` is set (e.g. 128)
//!   gets a private table of that size, and the same dump takes ~30 µs.
//!   That sysctl belongs to the *parent* namespace and is read at
//!   `unshare`/`clone` time, so set it in an intermediate namespace, not on
//!   the host.
//!
//! Addresses are reported as the kernel gives them for the socket's family:
//! an IPv6 socket talking to an IPv4 peer shows `[::ffff:127.0.0.1]:port`.
//! Lookups compare addresses in their canonical form, so a plain IPv4
//! address also finds such a dual-stack socket.
//!
//! # Where things are
//!
//! `sock_diag/` asks the kernel for sockets ([`SockDiag`]) and decodes its
//! replies (`reply.rs`, into [`SocketSnapshot`]s); `tcp_info.rs` asks one
//! of our own fds ([`tcp_info_state`]); `counters.rs` reads the
//! namespace's TCP and IP counters ([`kernel_counters`]); `capture.rs` and
//! `pcap.rs` take the case's packets and write them out. This file holds
//! the error they share.

mod capture;
mod counters;
mod pcap;
pub(crate) mod queued;
mod sock_diag;
mod tcp_info;

pub use capture::{Capture, Captured, Frame, MAX_FRAMES, SNAP_LEN, Segment};
pub use counters::kernel_counters;
pub use pcap::write_pcap;
pub use sock_diag::{SockDiag, SocketSnapshot};
pub use tcp_info::tcp_info_state;

use nix::errno::Errno;

/// Errors from reading the kernel's view of sockets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// Creating, binding or connecting the netlink socket failed.
    #[error("failed to open a sock_diag netlink socket: {source}")]
    Open {
        /// The failing system call's error.
        source: std::io::Error,
    },
    /// Sending the dump request or receiving its reply failed.
    #[error("sock_diag dump failed while {doing}: {source}")]
    Io {
        /// What was being done: "sending the request" or "receiving the reply".
        doing: &'static str,
        /// The failing system call's error.
        source: std::io::Error,
    },
    /// The packet capture failed.
    #[error("packet capture failed while {doing}: {source}")]
    Capture {
        /// What was being done.
        doing: &'static str,
        /// The failing system call's error.
        source: std::io::Error,
    },
    /// The kernel refused the dump with an `NLMSG_ERROR` (or an error in its
    /// `NLMSG_DONE`); ENOENT usually means the `tcp_diag`/`inet_diag` module
    /// is missing.
    #[error("sock_diag dump failed: kernel answered errno {errno:?} ({})", .errno.desc())]
    Kernel {
        /// The errno the kernel answered with.
        errno: Errno,
    },
    /// The reply did not parse as sock_diag messages.
    #[error("malformed sock_diag reply: {reason}")]
    Malformed {
        /// What was wrong with it.
        reason: String,
    },
    /// `getsockopt(TCP_INFO)` failed, e.g. EBADF, or ENOTSOCK / EOPNOTSUPP
    /// for an fd that is not a TCP socket.
    #[error("TCP_INFO failed: {source}")]
    TcpInfo {
        /// The errno of `getsockopt`.
        source: Errno,
    },
    /// `TCP_INFO` answered a `tcpi_state` that is no TCP state.
    #[error("TCP_INFO failed: tcpi_state {code} is not a known TCP state")]
    TcpInfoState {
        /// The raw `tcpi_state`.
        code: u8,
    },
}

impl ObserveError {
    fn malformed(reason: impl Into<String>) -> Self {
        ObserveError::Malformed {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use nix::libc;

    use super::*;

    #[test]
    fn open_errors_say_what_failed() {
        let err = ObserveError::Open {
            source: std::io::Error::from_raw_os_error(libc::EPROTONOSUPPORT),
        };
        assert!(
            err.to_string()
                .starts_with("failed to open a sock_diag netlink socket: "),
            "{err}"
        );
    }
}
