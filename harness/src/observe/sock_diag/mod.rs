//! Asking the kernel for its TCP sockets through sock_diag netlink: a
//! dump of every socket of the namespace, or an exact request for one
//! 4-tuple, sent on a socket that keeps the namespace it was opened in
//! (see the [`observe` docs](crate::observe) for why each choice).
//! Decoding the replies is `reply.rs`'s.

mod reply;
#[cfg(test)]
mod tests;

pub use reply::SocketSnapshot;

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_SOCK_DIAG};
use nix::libc;

use super::ObserveError;
use crate::model::TcpState;
use reply::parse_datagram;

/// States asked for in a dump: bits 1 (`TCP_ESTABLISHED`) to 12
/// (`TCP_NEW_SYN_RECV`). Bit 13 (`TCP_BOUND_INACTIVE`, bound-only sockets)
/// is left out, as `ss -a` leaves it out.
const ALL_STATES: u32 = (1 << 13) - 1;

/// Receive buffer for one dump datagram. The kernel caps a dump skb at
/// 32 KiB; a datagram larger than this buffer is reported as malformed
/// rather than silently truncated (the receive uses `MSG_TRUNC`).
const RECV_BUFFER_LEN: usize = 64 * 1024;

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
    /// the [module docs](crate::observe) for what the kernel lists).
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
