//! Two hosts: the case's namespace and a second one, joined by a veth
//! pair, each end with an address from 198.18.0.0/15 (RFC 2544's
//! benchmarking range, never routed on the internet): what lets a side be
//! cut off by its link or a route, and its packets be seen leaving one
//! host and arriving at the other.
//!
//! Everything is done over rtnetlink (no `ip`), with the messages of
//! netlink-packet-route, on blocking sockets made in the namespace each
//! request is for: a netlink socket acts on the namespace it was created
//! in.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::{CaseNamespace, SandboxError};

/// The case's host: the server's (and a program under test's) end.
pub const HOST_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The other host: the client's end.
pub const PEER_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Both ends are in one /30.
const PREFIX_LEN: u8 = 30;
/// The veth ends' names, in the case's namespace and in the other.
pub const HOST_LINK: &str = "hangup0";
/// See [`HOST_LINK`].
pub const PEER_LINK: &str = "hangup1";

/// The second host of a case: a network namespace of its own (kept alive
/// by this handle), its end of the veth pair up with [`PEER_ADDRESS`].
#[derive(Debug)]
pub struct PeerHost {
    /// Joins the other host's namespace ([`CaseNamespace::join`]).
    pub namespace: OwnedFd,
}

/// Makes a second namespace and joins it to the calling thread's (the
/// case's) by a veth pair: [`HOST_LINK`] here with [`HOST_ADDRESS`],
/// [`PEER_LINK`] there with [`PEER_ADDRESS`], both up. Call it on the
/// case's thread.
pub fn two_hosts() -> Result<PeerHost, SandboxError> {
    // A namespace is made by a thread that moves into it; the handle keeps
    // it alive once that thread has ended.
    let namespace = on_a_thread(|| CaseNamespace::create().and_then(|peer| peer.handle()))?;
    let mut socket = route_socket()?;
    let mut veth = LinkMessage::default();
    veth.attributes = vec![
        LinkAttribute::IfName(HOST_LINK.into()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer({
                let mut peer = LinkMessage::default();
                peer.attributes = vec![
                    LinkAttribute::IfName(PEER_LINK.into()),
                    LinkAttribute::NetNsFd(namespace.as_raw_fd()),
                ];
                peer
            }))),
        ]),
    ];
    request(
        &mut socket,
        RouteNetlinkMessage::NewLink(veth),
        NLM_F_CREATE | NLM_F_EXCL,
        "create the veth pair",
    )?;
    configure(&mut socket, HOST_LINK, HOST_ADDRESS)?;
    // The other end is configured from a thread in its namespace.
    let peer = namespace.try_clone().map_err(|source| SandboxError::Io {
        action: "duplicate the peer host's namespace handle".into(),
        source,
    })?;
    on_a_thread(move || {
        CaseNamespace::join(peer.as_fd())?;
        configure(&mut route_socket()?, PEER_LINK, PEER_ADDRESS)
    })?;
    wait_until_linked(namespace.as_fd())?;
    Ok(PeerHost { namespace })
}

/// How long a link that was brought up may take to carry packets both
/// ways before the case fails to set up.
const LINK_UP_WITHIN: Duration = Duration::from_secs(5);
/// How often a probe is sent meanwhile.
const PROBE_EVERY: Duration = Duration::from_millis(5);

/// Waits until the link carries packets both ways: a UDP datagram from
/// the calling thread's host to the other one, `other`, and its answer. A veth end that was just brought up
/// drops what it sends until the kernel's link watcher has given it its
/// queueing discipline, on a worker thread that a loaded machine runs
/// late: a client's first ARP request was seen answered into that void
/// (the answer never left), so its SYN went a second later. The probe
/// also settles both hosts' ARP entries, so a case's first packet is not
/// held for a neighbour lookup.
pub fn wait_until_linked(other: std::os::fd::BorrowedFd<'_>) -> Result<(), SandboxError> {
    let io = |action: &'static str| {
        move |source| SandboxError::Io {
            action: action.into(),
            source,
        }
    };
    let (own, others) = addresses()?;
    let here = UdpSocket::bind((own, 0)).map_err(io("bind the link probe"))?;
    here.set_read_timeout(Some(PROBE_EVERY))
        .map_err(io("set the link probe's timeout"))?;
    let peer = other
        .try_clone_to_owned()
        .map_err(io("duplicate the other host's handle"))?;
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answering = std::sync::Arc::clone(&done);
    let answerer = std::thread::Builder::new()
        .name("hangup-link-probe".into())
        .spawn(move || -> Result<(), SandboxError> {
            CaseNamespace::join(peer.as_fd())?;
            let there = UdpSocket::bind((others, 0)).map_err(io("bind the link probe"))?;
            there
                .set_read_timeout(Some(PROBE_EVERY))
                .map_err(io("set the link probe's timeout"))?;
            let _ = port_tx.send(there.local_addr().map_err(io("name the link probe"))?);
            let until = Instant::now() + LINK_UP_WITHIN;
            let mut buffer = [0u8; 8];
            while !answering.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < until {
                if let Ok((_, from)) = there.recv_from(&mut buffer) {
                    let _ = there.send_to(b"pong", from);
                }
            }
            Ok(())
        })
        .map_err(io("start the link probe's thread"))?;
    let outcome = (|| {
        let there = port_rx
            .recv_timeout(LINK_UP_WITHIN)
            .map_err(|_| failed("the peer host's probe did not start"))?;
        let until = Instant::now() + LINK_UP_WITHIN;
        let mut buffer = [0u8; 8];
        while Instant::now() < until {
            let _ = here.send_to(b"ping", there);
            if let Ok((_, from)) = here.recv_from(&mut buffer) {
                if from == there {
                    return Ok(());
                }
            }
        }
        Err(failed(&format!(
            "the link between the two hosts did not carry packets both ways within {LINK_UP_WITHIN:?}"
        )))
    })();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let answered = answerer
        .join()
        .map_err(|_| failed("the link probe's thread panicked"))?;
    // The answering side's failure (its namespace, its bind) is the cause
    // of a probe that never started: it goes first.
    answered.and(outcome)
}

/// Runs `f` on a fresh thread (which may move into the peer host's
/// namespace: this one stays where it is) and waits for it.
fn on_a_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T, SandboxError> {
    std::thread::Builder::new()
        .name("hangup-peer-host".into())
        .spawn(f)
        .map_err(|source| SandboxError::Io {
            action: "start a thread for the peer host's namespace".into(),
            source,
        })?
        .join()
        .map_err(|_| failed("the peer host's thread panicked"))?
}

/// How a host is cut off from the other (see [`cut_off`]); written as a
/// suite writes it (`link_down`, `blackhole`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Cut {
    /// Its end of the veth pair down: the route to the other host goes
    /// with it (a new connect fails with ENETUNREACH, measured).
    LinkDown,
    /// A blackhole route to the other host: what is sent there is
    /// discarded (a new connect fails with EINVAL, an established
    /// connection's data is queued and its retransmissions discarded,
    /// measured).
    Blackhole,
}

/// The calling thread's host's end of the pair: its link, its address
/// and the other host's.
fn ends() -> Result<(&'static str, Ipv4Addr, Ipv4Addr), SandboxError> {
    if nix::net::if_::if_nametoindex(HOST_LINK).is_ok() {
        Ok((HOST_LINK, HOST_ADDRESS, PEER_ADDRESS))
    } else if nix::net::if_::if_nametoindex(PEER_LINK).is_ok() {
        Ok((PEER_LINK, PEER_ADDRESS, HOST_ADDRESS))
    } else {
        Err(failed("this thread is on neither host of a two-host case"))
    }
}

/// This host's address and the other's.
fn addresses() -> Result<(Ipv4Addr, Ipv4Addr), SandboxError> {
    ends().map(|(_, own, other)| (own, other))
}

/// Cuts the calling thread's host (one end of [`two_hosts`]' pair) off
/// from the other host. Call it on a thread in that host's namespace.
pub fn cut_off(cut: Cut) -> Result<(), SandboxError> {
    change(cut, false)
}

/// Undoes [`cut_off`], on a thread of the same host; given `other`, the
/// other host's namespace, returns once the link carries packets both ways
/// again (see [`wait_until_linked`]; not while another cut remains).
pub fn restore(cut: Cut, other: Option<std::os::fd::BorrowedFd<'_>>) -> Result<(), SandboxError> {
    change(cut, true)?;
    other.map_or(Ok(()), wait_until_linked)
}

fn change(cut: Cut, restore: bool) -> Result<(), SandboxError> {
    let mut socket = route_socket()?;
    let (here, _, other) = ends()?;
    match cut {
        Cut::LinkDown => {
            let index = nix::net::if_::if_nametoindex(here)
                .map_err(|errno| failed(&format!("no link {here}: {errno}")))?;
            let mut link = LinkMessage::default();
            link.header.index = index;
            link.header.flags = if restore {
                LinkFlags::Up
            } else {
                LinkFlags::empty()
            };
            link.header.change_mask = LinkFlags::Up;
            request(
                &mut socket,
                RouteNetlinkMessage::SetLink(link),
                0,
                if restore {
                    "bring the host's link back up"
                } else {
                    "take the host's link down"
                },
            )
        }
        Cut::Blackhole => {
            let mut route = RouteMessage::default();
            route.header.address_family = netlink_packet_route::AddressFamily::Inet;
            route.header.destination_prefix_length = 32;
            route.header.table = RouteHeader::RT_TABLE_MAIN;
            route.header.protocol = RouteProtocol::Static;
            route.header.scope = RouteScope::Universe;
            route.header.kind = RouteType::BlackHole;
            route.attributes = vec![RouteAttribute::Destination(RouteAddress::Inet(other))];
            if restore {
                request(
                    &mut socket,
                    RouteNetlinkMessage::DelRoute(route),
                    0,
                    "remove the blackhole route",
                )
            } else {
                request(
                    &mut socket,
                    RouteNetlinkMessage::NewRoute(route),
                    NLM_F_CREATE | NLM_F_EXCL,
                    "add a blackhole route to the other host",
                )
            }
        }
    }
}

/// Gives the link `name` (of the socket's namespace) `address`/30 and
/// brings it up.
fn configure(socket: &mut Socket, name: &str, address: Ipv4Addr) -> Result<(), SandboxError> {
    let index = nix::net::if_::if_nametoindex(name)
        .map_err(|errno| failed(&format!("no link {name} after creating it: {errno}")))?;
    let mut message = AddressMessage::default();
    message.header.family = netlink_packet_route::AddressFamily::Inet;
    message.header.prefix_len = PREFIX_LEN;
    message.header.index = index;
    message.attributes = vec![
        AddressAttribute::Local(IpAddr::V4(address)),
        AddressAttribute::Address(IpAddr::V4(address)),
    ];
    request(
        socket,
        RouteNetlinkMessage::NewAddress(message),
        NLM_F_CREATE | NLM_F_EXCL,
        "give the veth its address",
    )?;
    let mut up = LinkMessage::default();
    up.header.index = index;
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    request(
        socket,
        RouteNetlinkMessage::SetLink(up),
        0,
        "bring the veth up",
    )
}

fn route_socket() -> Result<Socket, SandboxError> {
    let io = |action: &str| {
        let action = action.to_string();
        move |source| SandboxError::Io { action, source }
    };
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(io("open a netlink socket"))?;
    socket.bind_auto().map_err(io("bind a netlink socket"))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(io("connect a netlink socket"))?;
    Ok(socket)
}

/// Sends one request and reads its acknowledgement.
fn request(
    socket: &mut Socket,
    message: RouteNetlinkMessage,
    flags: u16,
    what: &str,
) -> Result<(), SandboxError> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header.sequence_number = 1;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::from(message));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    socket.send(&bytes, 0).map_err(|source| SandboxError::Io {
        action: format!("{what}: send"),
        source,
    })?;
    let mut reply = Vec::with_capacity(4096);
    socket
        .recv(&mut reply, 0)
        .map_err(|source| SandboxError::Io {
            action: format!("{what}: read the answer"),
            source,
        })?;
    let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| failed(&format!("{what}: an unreadable answer: {e}")))?;
    match answer.payload {
        NetlinkPayload::Error(error) => match error.code {
            None => Ok(()),
            Some(code) => Err(SandboxError::Io {
                action: what.to_string(),
                source: std::io::Error::from_raw_os_error(-code.get()),
            }),
        },
        other => Err(failed(&format!(
            "{what}: expected an acknowledgement, found {other:?}"
        ))),
    }
}

fn failed(why: &str) -> SandboxError {
    SandboxError::Io {
        action: why.to_string(),
        source: std::io::Error::other(why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddrV4, TcpListener, TcpStream};

    use super::*;

    #[test]
    fn two_hosts_talk_over_their_veth_and_only_their_own_addresses() {
        let result = crate::sandbox::in_case_namespace(|_| {
            let peer = two_hosts().expect("two hosts");
            let listener = TcpListener::bind(SocketAddrV4::new(HOST_ADDRESS, 8080)).unwrap();
            let handle = peer.namespace.try_clone().unwrap();
            let client = std::thread::spawn(move || {
                CaseNamespace::join(handle.as_fd()).unwrap();
                // The host's loopback address is its own, not the peer's.
                assert!(TcpStream::connect(("127.0.0.1", 8080)).is_err());
                let mut stream = TcpStream::connect(SocketAddrV4::new(HOST_ADDRESS, 8080)).unwrap();
                let local = stream.local_addr().unwrap();
                stream.write_all(b"hello").unwrap();
                local
            });
            let (mut accepted, from) = listener.accept().unwrap();
            let mut got = [0u8; 5];
            accepted.read_exact(&mut got).unwrap();
            let local = client.join().unwrap();
            (from, local, got)
        })
        .expect("a fresh namespace; these tests need root or a user namespace");
        let (from, local, got) = result;
        assert_eq!(from, local);
        assert_eq!(from.ip(), IpAddr::V4(PEER_ADDRESS));
        assert_eq!(&got, b"hello");
    }

    /// What each cut does to a new connect from the cut host, as measured
    /// with `ip` in two namespaces: ENETUNREACH with its link down, EINVAL
    /// over a blackhole route; and restored, the connect goes through.
    #[test]
    fn a_cut_host_cannot_connect_until_restored() {
        let errors = crate::sandbox::in_case_namespace(|_| {
            let peer = two_hosts().expect("two hosts");
            let _listener = TcpListener::bind(SocketAddrV4::new(HOST_ADDRESS, 8080)).unwrap();
            let handle = peer.namespace.try_clone().unwrap();
            let case = OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net").unwrap());
            std::thread::spawn(move || {
                CaseNamespace::join(handle.as_fd()).unwrap();
                let to = SocketAddrV4::new(HOST_ADDRESS, 8080);
                let mut seen = Vec::new();
                for cut in [Cut::LinkDown, Cut::Blackhole] {
                    cut_off(cut).unwrap();
                    seen.push(TcpStream::connect(to).unwrap_err().raw_os_error());
                    restore(cut, Some(case.as_fd())).unwrap();
                    let connected = TcpStream::connect(to);
                    assert!(connected.is_ok(), "{cut:?} restored: {connected:?}");
                }
                seen
            })
            .join()
            .unwrap()
        })
        .expect("a fresh namespace; these tests need root or a user namespace");
        assert_eq!(
            errors,
            [Some(nix::libc::ENETUNREACH), Some(nix::libc::EINVAL)]
        );
    }
}
