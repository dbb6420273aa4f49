//! sock_diag against the kernel: each test makes sockets in a fresh
//! network namespace, puts them in a state, and reads that state back
//! through a dump and an exact lookup (and `TCP_INFO` where the kernel's
//! table no longer lists the socket).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv6Addr, Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, setsockopt, sockopt,
};
use rstest::rstest;

use super::*;
use crate::observe::tcp_info_state;

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
        let address: SockaddrStorage = nix::sys::socket::getsockname(listener.as_raw_fd()).unwrap();
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
        let local: SockaddrStorage = nix::sys::socket::getsockname(pending.as_raw_fd()).unwrap();
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
