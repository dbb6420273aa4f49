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

mod capture;
mod pcap;

pub use capture::{Capture, Captured, Frame, MAX_FRAMES, SNAP_LEN, Segment};
pub use pcap::write_pcap;

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NetlinkBuffer,
    NetlinkHeader, NetlinkMessage, Parseable,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY},
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags},
};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_SOCK_DIAG};
use nix::errno::Errno;
use nix::libc;

use crate::model::TcpState;

/// States asked for in a dump: bits 1 (`TCP_ESTABLISHED`) to 12
/// (`TCP_NEW_SYN_RECV`). Bit 13 (`TCP_BOUND_INACTIVE`, bound-only sockets)
/// is left out, as `ss -a` leaves it out.
const ALL_STATES: u32 = (1 << 13) - 1;

/// Receive buffer for one dump datagram. The kernel caps a dump skb at
/// 32 KiB; a datagram larger than this buffer is reported as malformed
/// rather than silently truncated (the receive uses `MSG_TRUNC`).
const RECV_BUFFER_LEN: usize = 64 * 1024;

/// Size of `struct inet_diag_msg`, the fixed part of each dump entry.
const INET_DIAG_MSG_LEN: usize = 72;

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

/// One TCP socket as the kernel listed it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SocketSnapshot {
    /// Local address and port (`0.0.0.0:port` / `[::]:port` for a wildcard
    /// listener).
    pub local: SocketAddr,
    /// Remote address and port; the unspecified address and port 0 for a
    /// listener.
    pub remote: SocketAddr,
    /// The socket's state.
    pub state: TcpState,
    /// The socket's inode, as in `/proc/<pid>/fd` links (`socket:[inode]`);
    /// 0 for sockets no process holds (orphaned, TIME_WAIT, SYN_RECV).
    pub inode: u32,
    /// `Recv-Q` as `ss` shows it: bytes received and not yet read, or for a
    /// listener the connections waiting in its accept queue.
    pub recv_q: u32,
    /// `Send-Q` as `ss` shows it: bytes sent and not yet acknowledged, or for
    /// a listener its backlog.
    pub send_q: u32,
    /// The socket's cookie (`idiag_cookie`, what `SO_COOKIE` returns): one
    /// value for the socket's whole life, given to it before any process
    /// accepted it (when its inode is still 0).
    pub cookie: u64,
}

/// A sock_diag netlink socket bound to the network namespace of the thread
/// that opened it.
///
/// It holds its request and receive buffers, so repeated dumps allocate
/// nothing but their result.
#[derive(Debug)]
pub struct SockDiag {
    socket: Socket,
    /// The dump requests for `AF_INET` and `AF_INET6` (only their sequence
    /// number changes between calls), then the request for one socket,
    /// rewritten by each [`SockDiag::find`].
    requests: [Vec<u8>; 3],
    buffer: Vec<u8>,
    sequence: u32,
    /// The other host's, in a two-host case: a connection's two ends are
    /// in two namespaces, each asked in turn (a 4-tuple is in one only).
    other: Option<Box<SockDiag>>,
}

impl SockDiag {
    /// Opens a sock_diag socket in the calling thread's network namespace.
    ///
    /// Call it on the case's thread after that thread entered the case's
    /// namespace: the socket reports the namespace it was created in, for as
    /// long as it lives.
    pub fn open() -> Result<Self, ObserveError> {
        let open = |source| ObserveError::Open { source };
        let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(open)?;
        socket.bind_auto().map_err(open)?;
        // Connected to the kernel, so replies from anyone else are dropped.
        socket.connect(&NetlinkAddr::new(0, 0)).map_err(open)?;
        Ok(SockDiag {
            socket,
            requests: [
                request(AF_INET, NLM_F_DUMP, SocketId::new_v4()),
                request(AF_INET6, NLM_F_DUMP, SocketId::new_v6()),
                request(AF_INET, 0, SocketId::new_v4()),
            ],
            buffer: vec![0; RECV_BUFFER_LEN],
            sequence: 0,
            other: None,
        })
    }

    /// This namespace's, which also asks `other`'s (another host's, opened
    /// there) for what it does not hold.
    pub fn with_other(mut self, other: SockDiag) -> SockDiag {
        self.other = Some(Box::new(other));
        self
    }

    /// Every IPv4 and IPv6 TCP socket of the namespace, in every state (see
    /// the [module docs](self) for what the kernel lists).
    pub fn tcp_sockets(&mut self) -> Result<Vec<SocketSnapshot>, ObserveError> {
        let mut sockets = Vec::new();
        for query in [Query::DumpV4, Query::DumpV6] {
            self.exchange(query, |snapshot| sockets.push(snapshot))?;
        }
        if let Some(other) = &mut self.other {
            sockets.extend(other.tcp_sockets()?);
        }
        Ok(sockets)
    }

    /// The socket whose local and remote addresses are `local` and `remote`,
    /// or `None` if the kernel lists none.
    ///
    /// This asks the kernel for that one socket (an exact sock_diag request,
    /// not a dump), so it costs the same however many sockets exist.
    /// Addresses compare in canonical form (an IPv4 address also finds the
    /// IPv4-mapped address of a dual-stack socket, reported as the kernel
    /// gives it). A listener is found with its own address and the
    /// unspecified address and port 0 as `remote`; a wildcard listener is
    /// not found through a specific local address. An IPv6 link-local
    /// address needs its scope id, taken from `local` (or else `remote`).
    pub fn find(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<SocketSnapshot>, ObserveError> {
        let (family, source_address, destination_address, interface_id) =
            match (local.ip().to_canonical(), remote.ip().to_canonical()) {
                (local @ IpAddr::V4(_), remote @ IpAddr::V4(_)) => (AF_INET, local, remote, 0),
                (local_ip @ IpAddr::V6(_), remote_ip @ IpAddr::V6(_)) => (
                    AF_INET6,
                    local_ip,
                    remote_ip,
                    scope_id(local).max(scope_id(remote)),
                ),
                // No socket holds an IPv4 and an IPv6 end.
                _ => return Ok(None),
            };
        let socket_id = SocketId {
            source_port: local.port(),
            destination_port: remote.port(),
            source_address,
            destination_address,
            interface_id,
            // INET_DIAG_NOCOOKIE: match by address, not by socket cookie.
            cookie: [0xff; 8],
        };
        let message = request_message(family, 0, socket_id);
        message.serialize(&mut self.requests[Query::Exact as usize]);

        let mut found = None;
        self.exchange(Query::Exact, |snapshot| found = Some(snapshot))?;
        // The kernel's lookup falls back from connections to listeners, so
        // a listener may answer for a 4-tuple that has no socket.
        let found = found.filter(|snapshot| {
            same_endpoint(snapshot.local, local) && same_endpoint(snapshot.remote, remote)
        });
        match (found, &mut self.other) {
            (None, Some(other)) => other.find(local, remote),
            (found, _) => Ok(found),
        }
    }

    /// The state of the socket with this 4-tuple, or [`TcpState::Gone`] if
    /// the kernel lists none (see [`SockDiag::find`] for the matching).
    pub fn lookup(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<TcpState, ObserveError> {
        Ok(self
            .find(local, remote)?
            .map_or(TcpState::Gone, |snapshot| snapshot.state))
    }

    /// Sends one of the prepared requests and calls `each` for every socket
    /// of the reply, reading until the reply is complete.
    fn exchange(
        &mut self,
        query: Query,
        mut each: impl FnMut(SocketSnapshot),
    ) -> Result<(), ObserveError> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let request = &mut self.requests[query as usize];
        NetlinkBuffer::new(&mut request[..]).set_sequence_number(sequence);
        retry_eintr(|| self.socket.send(request, 0)).map_err(|source| ObserveError::Io {
            doing: "sending the request",
            source,
        })?;

        loop {
            let buffer = &mut self.buffer[..];
            let received = retry_eintr(|| self.socket.recv(&mut &mut buffer[..], libc::MSG_TRUNC))
                .map_err(|source| ObserveError::Io {
                    doing: "receiving the reply",
                    source,
                })?;
            if received > buffer.len() {
                return Err(ObserveError::malformed(format!(
                    "a reply datagram of {received} bytes exceeds the {}-byte receive buffer",
                    buffer.len()
                )));
            }
            if received == 0 {
                return Err(ObserveError::malformed("the kernel sent an empty datagram"));
            }
            if parse_datagram(
                &buffer[..received],
                sequence,
                query == Query::Exact,
                &mut each,
            )? {
                return Ok(());
            }
        }
    }
}

/// Which prepared request [`SockDiag::exchange`] sends; the value is its
/// index in `SockDiag::requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    DumpV4 = 0,
    DumpV6 = 1,
    Exact = 2,
}

/// Parses one datagram of a reply; `Ok(true)` once the reply is complete:
/// `NLMSG_DONE` for a dump, the one socket or an `NLMSG_ERROR` for an exact
/// request (whose ENOENT means "no such socket"). Messages of another
/// sequence number (left over from an earlier, interrupted exchange) are
/// skipped.
fn parse_datagram(
    mut data: &[u8],
    sequence: u32,
    exact: bool,
    each: &mut impl FnMut(SocketSnapshot),
) -> Result<bool, ObserveError> {
    while !data.is_empty() {
        let message = NetlinkBuffer::new_checked(data)
            .map_err(|e| ObserveError::malformed(format!("bad netlink header: {e}")))?;
        let length = message.length() as usize;
        let payload = message.payload();
        if message.sequence_number() == sequence {
            match message.message_type() {
                SOCK_DIAG_BY_FAMILY => {
                    each(snapshot(payload)?);
                    if exact {
                        return Ok(true);
                    }
                }
                NLMSG_DONE => {
                    // A dump that failed midway carries its negative errno
                    // in NLMSG_DONE.
                    if let Some(code) = payload.get(..4) {
                        kernel_errno(code)?;
                    }
                    return Ok(true);
                }
                // An acknowledgement (code 0) is harmless; an error ends the
                // exchange.
                NLMSG_ERROR => {
                    let code = payload
                        .get(..4)
                        .ok_or_else(|| ObserveError::malformed("truncated NLMSG_ERROR"))?;
                    match kernel_errno(code) {
                        Ok(()) if exact => return Ok(true),
                        Ok(()) => {}
                        Err(ObserveError::Kernel {
                            errno: Errno::ENOENT,
                        }) if exact => return Ok(true),
                        Err(e) => return Err(e),
                    }
                }
                NLMSG_NOOP => {}
                NLMSG_OVERRUN => {
                    return Err(ObserveError::malformed("the kernel reported NLMSG_OVERRUN"));
                }
                other => {
                    return Err(ObserveError::malformed(format!(
                        "unexpected netlink message type {other}"
                    )));
                }
            }
        }
        // Messages are 4-byte aligned; the last one may end without padding.
        let aligned = (length + 3) & !3;
        data = data.get(aligned..).unwrap_or_default();
    }
    Ok(false)
}

/// Turns a netlink error code (0 or a negative errno) into a result.
fn kernel_errno(code: &[u8]) -> Result<(), ObserveError> {
    let code = i32::from_ne_bytes(code.try_into().expect("four bytes"));
    match code {
        0 => Ok(()),
        code => Err(ObserveError::Kernel {
            errno: Errno::from_raw(code.saturating_abs()),
        }),
    }
}

/// Reads one `struct inet_diag_msg` (attributes after it are ignored).
fn snapshot(payload: &[u8]) -> Result<SocketSnapshot, ObserveError> {
    if payload.len() < INET_DIAG_MSG_LEN {
        return Err(ObserveError::malformed(format!(
            "an inet_diag_msg of {} bytes, expected at least {INET_DIAG_MSG_LEN}",
            payload.len()
        )));
    }
    let header = InetResponseHeader::parse(&payload[..INET_DIAG_MSG_LEN])
        .map_err(|e| ObserveError::malformed(format!("bad inet_diag_msg: {e}")))?;
    let id = &header.socket_id;
    let local = socket_addr(id.source_address, id.source_port, id.interface_id);
    let remote = socket_addr(id.destination_address, id.destination_port, id.interface_id);
    let state = TcpState::from_kernel(header.state).ok_or_else(|| {
        ObserveError::malformed(format!(
            "unknown TCP state code {} for {local} -> {remote}",
            header.state
        ))
    })?;
    Ok(SocketSnapshot {
        local,
        remote,
        state,
        inode: header.inode,
        recv_q: header.recv_queue,
        send_q: header.send_queue,
        // Two 32-bit halves in the kernel's byte order, low half first.
        cookie: u64::from(u32::from_ne_bytes([
            id.cookie[0],
            id.cookie[1],
            id.cookie[2],
            id.cookie[3],
        ])) | (u64::from(u32::from_ne_bytes([
            id.cookie[4],
            id.cookie[5],
            id.cookie[6],
            id.cookie[7],
        ])) << 32),
    })
}

fn socket_addr(ip: IpAddr, port: u16, interface: u32) -> SocketAddr {
    match ip {
        IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, port)),
        IpAddr::V6(ip) => {
            let scope = if ip.is_unicast_link_local() {
                interface
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))
        }
    }
}

fn scope_id(address: SocketAddr) -> u32 {
    match address {
        SocketAddr::V4(_) => 0,
        SocketAddr::V6(address) => address.scope_id(),
    }
}

fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

fn retry_eintr<T>(mut call: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// A request for the TCP sockets of `family` matching `socket_id`, in every
/// state; `flags` is `NLM_F_DUMP` for all of them, 0 for one socket.
fn request_message(family: u8, flags: u16, socket_id: SocketId) -> NetlinkMessage<SockDiagMessage> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            // `from_bits_retain` keeps bit 12 (NEW_SYN_RECV), which the
            // crate's flags do not name.
            states: StateFlags::from_bits_retain(ALL_STATES),
            socket_id,
        })
        .into(),
    );
    message.finalize();
    message
}

/// [`request_message`], serialized.
fn request(family: u8, flags: u16, socket_id: SocketId) -> Vec<u8> {
    let message = request_message(family, flags, socket_id);
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// The TCP state of one of our own sockets, from `getsockopt(TCP_INFO)`.
///
/// Unlike sock_diag this answers for a socket that was reset into CLOSE and
/// so left the kernel's table while we still hold its fd.
pub fn tcp_info_state(fd: BorrowedFd<'_>) -> Result<TcpState, ObserveError> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` points to a writable `tcp_info` of `len` bytes that
    // lives across the call, and the kernel writes at most `len` bytes into
    // it and stores the written length in `len`; `fd` is a valid open fd for
    // the lifetime of the borrow. `tcp_info` consists of plain integers, so
    // the zeroed value, partly or wholly overwritten by the kernel, is a
    // valid `tcp_info` and `assume_init` is sound.
    let (result, info) = unsafe {
        let result = libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        );
        (result, info.assume_init())
    };
    Errno::result(result).map_err(|source| ObserveError::TcpInfo { source })?;
    if len == 0 {
        return Err(ObserveError::TcpInfoState { code: 0 });
    }
    TcpState::from_kernel(info.tcpi_state).ok_or(ObserveError::TcpInfoState {
        code: info.tcpi_state,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Ipv6Addr, Shutdown, TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use nix::sched::{CloneFlags, unshare};
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, setsockopt, sockopt,
    };
    use rstest::rstest;

    use super::*;

    const V4: &str = "127.0.0.1";
    const V6: &str = "::1";

    /// Runs `test` on a fresh thread in a fresh network namespace with `lo`
    /// up, the way a case runs.
    fn in_fresh_netns<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
        crate::sandbox::in_case_namespace(|_| test())
            .expect("a fresh network namespace; these tests need root or a user namespace")
    }

    /// The one test that needs a namespace made by hand (see its comment).
    fn enter_fresh_netns() {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET); these tests need root");
        loopback_up();
    }

    /// `ip link set lo up` through SIOCSIFFLAGS: a test helper, not how the
    /// harness configures links.
    fn loopback_up() {
        let socket = nix::sys::socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket for ioctl");
        // SAFETY: `ifreq` is plain old data, so all-zero is a valid value;
        // the ioctls read and write only that struct, which outlives them,
        // on a valid socket fd.
        unsafe {
            let mut request: libc::ifreq = std::mem::zeroed();
            for (dst, src) in request.ifr_name.iter_mut().zip(b"lo") {
                *dst = *src as libc::c_char;
            }
            let fd = socket.as_raw_fd();
            assert_eq!(
                libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request),
                0,
                "SIOCGIFFLAGS"
            );
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            assert_eq!(
                libc::ioctl(fd, libc::SIOCSIFFLAGS, &request),
                0,
                "SIOCSIFFLAGS"
            );
        }
    }

    fn listen(ip: &str) -> TcpListener {
        TcpListener::bind((ip, 0)).expect("bind a listener")
    }

    /// A connected pair: (client, the server's accepted socket).
    fn connect(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    fn tuple(stream: &TcpStream) -> (SocketAddr, SocketAddr) {
        (stream.local_addr().unwrap(), stream.peer_addr().unwrap())
    }

    fn unspecified(ip: IpAddr) -> SocketAddr {
        match ip {
            IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        }
    }

    /// Polls until the socket of `(local, remote)` is in `want` or a second
    /// passed; returns the last state seen.
    fn wait_for(
        diag: &mut SockDiag,
        (local, remote): (SocketAddr, SocketAddr),
        want: TcpState,
    ) -> TcpState {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let seen = diag.lookup(local, remote).expect("lookup");
            if seen == want || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn inode_of(fd: impl AsFd) -> u32 {
        let stat = nix::sys::stat::fstat(fd).expect("fstat");
        u32::try_from(stat.st_ino).expect("socket inodes fit in 32 bits")
    }

    #[rstest]
    fn a_listener_is_listen(#[values(V4, V6)] ip: &str) {
        let ip = ip.to_owned();
        in_fresh_netns(move || {
            let listener = listen(&ip);
            let local = listener.local_addr().unwrap();
            let mut diag = SockDiag::open().unwrap();
            let remote = unspecified(local.ip());
            assert_eq!(diag.lookup(local, remote).unwrap(), TcpState::Listen);
            let found = diag.find(local, remote).unwrap().expect("listed");
            assert_eq!(found.inode, inode_of(&listener));
            assert_eq!(found.remote, remote);
            assert_eq!(found.recv_q, 0, "nothing in the accept queue");
            assert!(found.send_q > 0, "Send-Q of a listener is its backlog");
        });
    }

    #[rstest]
    fn both_ends_of_a_connection_are_established(#[values(V4, V6)] ip: &str) {
        let ip = ip.to_owned();
        in_fresh_netns(move || {
            let listener = listen(&ip);
            let (mut client, server) = connect(&listener);
            let mut diag = SockDiag::open().unwrap();
            for side in [&client, &server] {
                let (local, remote) = tuple(side);
                let found = diag.find(local, remote).unwrap().expect("listed");
                assert_eq!(found.state, TcpState::Established);
                assert_eq!(found.inode, inode_of(side));
                assert_eq!(tcp_info_state(side.as_fd()).unwrap(), TcpState::Established);
            }
            client.write_all(b"hello").unwrap();
            let deadline = Instant::now() + Duration::from_secs(1);
            let (local, remote) = tuple(&server);
            while diag.find(local, remote).unwrap().unwrap().recv_q != 5 {
                assert!(
                    Instant::now() < deadline,
                    "Recv-Q never showed 5 unread bytes"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let sockets = diag.tcp_sockets().unwrap();
            assert_eq!(sockets.len(), 3, "{sockets:#?}");
        });
    }

    #[rstest]
    fn a_half_close_leaves_fin_wait2_and_close_wait(#[values(V4, V6)] ip: &str) {
        let ip = ip.to_owned();
        in_fresh_netns(move || {
            let listener = listen(&ip);
            let (client, server) = connect(&listener);
            let mut diag = SockDiag::open().unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            assert_eq!(
                wait_for(&mut diag, tuple(&client), TcpState::FinWait2),
                TcpState::FinWait2
            );
            assert_eq!(
                wait_for(&mut diag, tuple(&server), TcpState::CloseWait),
                TcpState::CloseWait
            );
            assert_eq!(tcp_info_state(server.as_fd()).unwrap(), TcpState::CloseWait);
        });
    }

    #[rstest]
    fn the_first_closer_keeps_time_wait(#[values(V4, V6)] ip: &str) {
        let ip = ip.to_owned();
        in_fresh_netns(move || {
            let listener = listen(&ip);
            let (client, mut server) = connect(&listener);
            let (client_side, server_side) = (tuple(&client), tuple(&server));
            let mut diag = SockDiag::open().unwrap();
            drop(client);
            assert_eq!(
                server.read(&mut [0; 8]).unwrap(),
                0,
                "EOF after the client's FIN"
            );
            drop(server);
            assert_eq!(
                wait_for(&mut diag, client_side, TcpState::TimeWait),
                TcpState::TimeWait
            );
            assert_eq!(
                wait_for(&mut diag, server_side, TcpState::Gone),
                TcpState::Gone
            );
            let time_wait = diag.find(client_side.0, client_side.1).unwrap().unwrap();
            assert_eq!(time_wait.inode, 0, "nobody holds a TIME_WAIT socket");
        });
    }

    #[test]
    fn an_orphaned_fin_wait2_is_listed_with_inode_0() {
        in_fresh_netns(|| {
            let listener = listen(V4);
            let (client, server) = connect(&listener);
            let (client_side, server_side) = (tuple(&client), tuple(&server));
            let mut diag = SockDiag::open().unwrap();
            drop(client);
            assert_eq!(
                wait_for(&mut diag, client_side, TcpState::FinWait2),
                TcpState::FinWait2
            );
            assert_eq!(
                diag.lookup(server_side.0, server_side.1).unwrap(),
                TcpState::CloseWait
            );
            let orphan = diag.find(client_side.0, client_side.1).unwrap().unwrap();
            assert_eq!(orphan.inode, 0, "kept as a time-wait socket in FIN_WAIT2");
        });
    }

    #[test]
    fn an_abort_leaves_no_socket_but_the_peer_fd_says_close() {
        in_fresh_netns(|| {
            let listener = listen(V4);
            let (client, mut server) = connect(&listener);
            let (client_side, server_side) = (tuple(&client), tuple(&server));
            let mut diag = SockDiag::open().unwrap();
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            setsockopt(&client, sockopt::Linger, &linger).unwrap();
            drop(client);
            let err = server.read(&mut [0; 8]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
            assert_eq!(
                diag.lookup(client_side.0, client_side.1).unwrap(),
                TcpState::Gone
            );
            assert_eq!(
                diag.lookup(server_side.0, server_side.1).unwrap(),
                TcpState::Gone
            );
            assert_eq!(tcp_info_state(server.as_fd()).unwrap(), TcpState::Close);
            assert_eq!(
                diag.tcp_sockets().unwrap().len(),
                1,
                "only the listener is left"
            );
        });
    }

    #[test]
    fn a_connect_to_a_full_accept_queue_is_syn_sent() {
        in_fresh_netns(|| {
            // backlog 0: one connection fits the accept queue, the next SYN
            // is dropped and its client keeps retrying in SYN_SENT.
            let listener = nix::sys::socket::socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .unwrap();
            let any_port = SockaddrStorage::from(SocketAddr::from(([127, 0, 0, 1], 0)));
            nix::sys::socket::bind(listener.as_raw_fd(), &any_port).unwrap();
            nix::sys::socket::listen(&listener, Backlog::new(0).unwrap()).unwrap();
            let address: SockaddrStorage =
                nix::sys::socket::getsockname(listener.as_raw_fd()).unwrap();
            let target = address
                .as_sockaddr_in()
                .map(|a| SocketAddr::from(*a))
                .unwrap();
            let _queued = TcpStream::connect(target).unwrap();
            let pending = nix::sys::socket::socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                None,
            )
            .unwrap();
            let connected = nix::sys::socket::connect(pending.as_raw_fd(), &address);
            assert_eq!(connected, Err(Errno::EINPROGRESS));
            let local: SockaddrStorage =
                nix::sys::socket::getsockname(pending.as_raw_fd()).unwrap();
            let local = SocketAddr::from(*local.as_sockaddr_in().unwrap());
            let mut diag = SockDiag::open().unwrap();
            assert_eq!(diag.lookup(local, target).unwrap(), TcpState::SynSent);
            assert_eq!(tcp_info_state(pending.as_fd()).unwrap(), TcpState::SynSent);
        });
    }

    #[test]
    fn a_dual_stack_socket_shows_mapped_addresses_and_matches_plain_v4() {
        in_fresh_netns(|| {
            let listener = listen("::");
            let port = listener.local_addr().unwrap().port();
            let client = TcpStream::connect((V4, port)).unwrap();
            let (server, _) = listener.accept().unwrap();
            let mut diag = SockDiag::open().unwrap();
            let (local, remote) = tuple(&server);
            assert!(matches!(local, SocketAddr::V6(_)), "std reports {local}");
            let found = diag.find(local, remote).unwrap().expect("listed");
            assert_eq!(
                found.local.to_string(),
                format!("[::ffff:127.0.0.1]:{port}")
            );
            let (client_local, client_remote) = tuple(&client);
            // The server side seen with plain IPv4 addresses.
            assert_eq!(
                diag.lookup(client_remote, client_local).unwrap(),
                TcpState::Established
            );
        });
    }

    #[test]
    fn a_multi_part_dump_returns_every_socket() {
        in_fresh_netns(|| {
            let listener = listen(V4);
            let port = listener.local_addr().unwrap().port();
            // 150 pairs: 300 connected sockets plus the listener, ~36 KiB of
            // replies, more than one 32 KiB datagram holds.
            let pairs: Vec<_> = (0..150).map(|_| connect(&listener)).collect();
            let mut diag = SockDiag::open().unwrap();
            let sockets = diag.tcp_sockets().unwrap();
            assert_eq!(sockets.len(), 301);
            let established = sockets
                .iter()
                .filter(|s| s.state == TcpState::Established)
                .filter(|s| s.local.port() == port || s.remote.port() == port)
                .count();
            assert_eq!(established, 300);
            for (client, server) in &pairs {
                for side in [client, server] {
                    let (local, remote) = tuple(side);
                    assert!(
                        sockets
                            .iter()
                            .any(|s| s.local == local && s.remote == remote)
                    );
                }
            }
            // The same SockDiag dumps again: nothing is left over.
            assert_eq!(diag.tcp_sockets().unwrap().len(), 301);
        });
    }

    #[test]
    fn a_sock_diag_socket_sees_only_its_own_namespace() {
        in_fresh_netns(|| {
            let listener = listen(V4);
            let local = listener.local_addr().unwrap();
            let mut here = SockDiag::open().unwrap();
            assert_eq!(here.tcp_sockets().unwrap().len(), 1);
            // A thread inherits its creator's namespace, then leaves it.
            let (elsewhere, here) = std::thread::spawn(move || {
                enter_fresh_netns();
                let mut elsewhere = SockDiag::open().unwrap();
                let listed = elsewhere.tcp_sockets().unwrap();
                // A socket keeps the namespace it was opened in, whichever
                // thread uses it.
                assert_eq!(
                    here.lookup(local, unspecified(local.ip())).unwrap(),
                    TcpState::Listen
                );
                (listed, here)
            })
            .join()
            .unwrap();
            assert_eq!(elsewhere, [], "a listener of another namespace is listed");
            drop(here);
        });
    }

    #[test]
    fn find_agrees_with_the_dump_in_every_state() {
        in_fresh_netns(|| {
            let listener = listen(V4);
            let v6_listener = listen(V6);
            let (_established, _established_server) = connect(&listener);
            let (half_closed, _close_wait) = connect(&v6_listener);
            half_closed.shutdown(Shutdown::Write).unwrap();
            let (closed_first, mut server) = connect(&listener);
            drop(closed_first);
            assert_eq!(server.read(&mut [0; 1]).unwrap(), 0);
            drop(server);
            let mut diag = SockDiag::open().unwrap();
            let deadline = Instant::now() + Duration::from_secs(1);
            let states = |diag: &mut SockDiag| {
                let mut states: Vec<_> = diag
                    .tcp_sockets()
                    .unwrap()
                    .iter()
                    .map(|s| s.state)
                    .collect();
                states.sort_by_key(|s| *s as u8);
                states
            };
            use TcpState::*;
            let want = [
                Established,
                Established,
                FinWait2,
                TimeWait,
                CloseWait,
                Listen,
                Listen,
            ];
            while states(&mut diag) != want {
                assert!(
                    Instant::now() < deadline,
                    "states stayed {:?}",
                    states(&mut diag)
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            for listed in diag.tcp_sockets().unwrap() {
                let found = diag.find(listed.local, listed.remote).unwrap();
                assert_eq!(found.as_ref(), Some(&listed));
            }
        });
    }

    #[test]
    fn a_listener_does_not_answer_for_other_tuples() {
        in_fresh_netns(|| {
            let listener = listen(V4);
            let local = listener.local_addr().unwrap();
            let wildcard = listen("0.0.0.0");
            let wildcard_port = wildcard.local_addr().unwrap().port();
            let mut diag = SockDiag::open().unwrap();
            let nobody = SocketAddr::from(([127, 0, 0, 1], 1));
            assert_eq!(diag.lookup(local, nobody).unwrap(), TcpState::Gone);
            let specific = SocketAddr::from(([127, 0, 0, 1], wildcard_port));
            let any = unspecified(local.ip());
            assert_eq!(diag.lookup(specific, any).unwrap(), TcpState::Gone);
            let wildcard_local = SocketAddr::from(([0, 0, 0, 0], wildcard_port));
            assert_eq!(diag.lookup(wildcard_local, any).unwrap(), TcpState::Listen);
            let v6_remote = SocketAddr::from((Ipv6Addr::LOCALHOST, 1));
            assert_eq!(diag.find(local, v6_remote).unwrap(), None, "mixed families");
        });
    }

    #[test]
    fn tcp_info_on_a_non_tcp_fd_is_an_error() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        let err = tcp_info_state(read.as_fd()).unwrap_err();
        assert!(
            matches!(
                err,
                ObserveError::TcpInfo {
                    source: Errno::ENOTSOCK
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "TCP_INFO failed: ENOTSOCK: Socket operation on non-socket"
        );
    }

    #[test]
    fn replies_are_parsed_strictly() {
        let mut seen = Vec::new();
        // NLMSG_ERROR carrying -EINVAL.
        let mut error = vec![0u8; 20];
        error[0..4].copy_from_slice(&20u32.to_ne_bytes());
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error[8..12].copy_from_slice(&7u32.to_ne_bytes());
        error[16..20].copy_from_slice(&(-libc::EINVAL).to_ne_bytes());
        let err = parse_datagram(&error, 7, false, &mut |s| seen.push(s)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sock_diag dump failed: kernel answered errno EINVAL (Invalid argument)"
        );
        // Another sequence number is a leftover and skipped.
        assert!(!parse_datagram(&error, 8, false, &mut |s| seen.push(s)).unwrap());
        // NLMSG_DONE with 0 ends the dump.
        let mut done = error.clone();
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        done[16..20].copy_from_slice(&0i32.to_ne_bytes());
        assert!(parse_datagram(&done, 7, false, &mut |s| seen.push(s)).unwrap());
        // A truncated header or entry is malformed.
        let err = parse_datagram(&done[..10], 7, false, &mut |s| seen.push(s)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed sock_diag reply: bad netlink header"),
            "{err}"
        );
        let mut short = done.clone();
        short[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        let err = parse_datagram(&short, 7, false, &mut |s| seen.push(s)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed sock_diag reply: an inet_diag_msg of 4 bytes, expected at least 72"
        );
        // An exact request's ENOENT is "no such socket"; a dump's is an error.
        let mut enoent = error.clone();
        enoent[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert!(parse_datagram(&enoent, 7, true, &mut |s| seen.push(s)).unwrap());
        let err = parse_datagram(&enoent, 7, false, &mut |s| seen.push(s)).unwrap_err();
        assert!(
            matches!(
                err,
                ObserveError::Kernel {
                    errno: Errno::ENOENT
                }
            ),
            "{err:?}"
        );
        assert!(seen.is_empty());
    }

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

    /// How long one dump and one lookup take in a namespace with three
    /// sockets, against spawning `ss -tan`, in a namespace sharing the host's
    /// TCP hash table (the default) and in one with a private 128-bucket
    /// table (`net.ipv4.tcp_child_ehash_entries` set in an intermediate
    /// namespace). Run with
    /// `cargo test --release -p hangup --lib -- --ignored --nocapture dump_timing`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn dump_timing() {
        fn measure(label: &str) {
            let listener = listen(V4);
            let (client, _server) = connect(&listener);
            let (local, remote) = tuple(&client);
            let mut diag = SockDiag::open().unwrap();
            assert_eq!(diag.tcp_sockets().unwrap().len(), 3);
            let rounds = 5_000;
            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(diag.tcp_sockets().unwrap());
            }
            let dump = start.elapsed() / rounds;
            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(diag.lookup(local, remote).unwrap());
            }
            let lookup = start.elapsed() / rounds;
            let spawns = 50;
            let start = Instant::now();
            for _ in 0..spawns {
                let out = std::process::Command::new("ss")
                    .arg("-tan")
                    .output()
                    .unwrap();
                assert!(out.status.success());
            }
            let ss = start.elapsed() / spawns;
            println!(
                "{label}: tcp_sockets() {dump:?}, lookup() {lookup:?} (means of {rounds}); \
                 `ss -tan` {ss:?} (mean of {spawns}); ss/tcp_sockets {:.0}x",
                ss.as_secs_f64() / dump.as_secs_f64()
            );
        }
        in_fresh_netns(|| measure("shared hash table"));
        std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            std::fs::write("/proc/sys/net/ipv4/tcp_child_ehash_entries", "128").unwrap();
            enter_fresh_netns();
            measure("private 128-bucket hash table");
        })
        .join()
        .unwrap();
    }
}

/// The namespace's own TCP and IP counters that are not zero, as
/// `TcpExt TWKilled 1` lines: the kernel's account of what it did that no
/// call returned (a TIME_WAIT killed, an orphan reset, a segment dropped).
/// Read from `/proc/thread-self/net/{snmp,netstat}`, so call it on a
/// thread inside the case's namespace; a failed case keeps them as an
/// artifact.
pub fn kernel_counters() -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    for file in ["snmp", "netstat"] {
        let text = std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))?;
        lines.extend(nonzero_counters(&text));
    }
    Ok(lines)
}

/// Pairs each header line (`TcpExt: SyncookiesSent ...`) with the value
/// line after it, keeping the counters that are not zero.
fn nonzero_counters(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((group, names)), Some((_, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            if value != "0" {
                out.push(format!("{group} {name} {value}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod counter_tests {
    #[test]
    fn only_counters_that_are_not_zero_are_kept_with_their_group() {
        let text = "TcpExt: TW TWKilled Other\nTcpExt: 0 2 0\nIpExt: InOctets\nIpExt: 40\n";
        assert_eq!(
            super::nonzero_counters(text),
            ["TcpExt TWKilled 2", "IpExt InOctets 40"]
        );
    }
}
