//! Decoding a sock_diag reply: netlink messages in, one [`SocketSnapshot`]
//! per `struct inet_diag_msg`, the kernel's errors as [`ObserveError`]s.
//! Pure: the tests feed it bytes, no kernel needed.

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

use netlink_packet_core::{
    NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NetlinkBuffer, Parseable,
};
use netlink_packet_sock_diag::{constants::SOCK_DIAG_BY_FAMILY, inet::InetResponseHeader};
use nix::errno::Errno;

use crate::model::TcpState;
use crate::observe::ObserveError;

/// Size of `struct inet_diag_msg`, the fixed part of each dump entry.
const INET_DIAG_MSG_LEN: usize = 72;

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

/// Parses one datagram of a reply; `Ok(true)` once the reply is complete:
/// `NLMSG_DONE` for a dump, the one socket or an `NLMSG_ERROR` for an exact
/// request (whose ENOENT means "no such socket"). Messages of another
/// sequence number (left over from an earlier, interrupted exchange) are
/// skipped.
pub(super) fn parse_datagram(
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

#[cfg(test)]
mod tests {
    use nix::libc;

    use super::*;

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
}
