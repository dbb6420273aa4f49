//! The peer against the kernel: each test runs the way a case runs, on a
//! fresh thread in a fresh network namespace, and asserts the errno and
//! state the kernel gave.

use nix::sys::socket::{self as sock, sockopt};
use rstest::rstest;

use super::*;
use crate::model::{Outcome, TcpState};
use crate::suite::{Payload, Until};

/// Runs `body` the way a case runs: on a fresh thread, in a fresh
/// network namespace.
fn in_case<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    crate::sandbox::in_case_namespace(|_| body()).expect("a case namespace")
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn connect(port: u16, timeout: Option<Duration>) -> SocketCall {
    SocketCall::Connect {
        addr: addr(port),
        timeout,
        from: None,
        nonblocking: false,
        again: false,
    }
}

fn listen(port: u16, backlog: u32) -> SocketCall {
    SocketCall::Listen {
        addr: addr(port),
        backlog,
    }
}

fn recv(timeout: Option<Duration>) -> SocketCall {
    SocketCall::Recv { max: 1024, timeout }
}

fn name(call: Result<Call, NoSocket>) -> String {
    outcome(&call.expect("a socket to act on"))
}

fn outcome(call: &Call) -> String {
    let result = call.result;
    match result.outcome {
        Outcome::Ok => format!("ok {}", result.bytes),
        Outcome::Eof => "EOF".into(),
        Outcome::Errno(errno) => errno.name(),
    }
}

/// A connected pair: (client, server), sharing one table.
fn pair(port: u16) -> (Peer, Peer, Arc<Sockets>) {
    let sockets = Arc::new(Sockets::default());
    let mut server = Peer::new(Side::Server, Arc::clone(&sockets));
    let mut client = Peer::new(Side::Client, Arc::clone(&sockets));
    assert_eq!(
        name(server.perform(&listen(port, 8), Link::Accepted)),
        "ok 0"
    );
    assert_eq!(
        name(client.perform(&connect(port, None), Link::Connected)),
        "ok 0"
    );
    let accept = SocketCall::Accept { timeout: None };
    assert_eq!(name(server.perform(&accept, Link::Accepted)), "ok 0");
    (client, server, sockets)
}

/// A server listening on `port`, and the table it enters its sockets in.
fn listening(port: u16, backlog: u32) -> (Peer, Arc<Sockets>) {
    let sockets = Arc::new(Sockets::default());
    let mut server = Peer::new(Side::Server, Arc::clone(&sockets));
    server
        .perform(&listen(port, backlog), Link::Accepted)
        .expect("listen");
    (server, sockets)
}

fn state(sockets: &Sockets, socket: Socket) -> Option<TcpState> {
    sockets
        .with_fd(socket, |fd| crate::observe::tcp_info_state(fd).ok())
        .flatten()
}

#[test]
fn a_refused_connect_keeps_its_socket_in_close_and_a_send_on_it_is_the_kernel_s_epipe() {
    in_case(|| {
        let sockets = Arc::new(Sockets::default());
        let mut client = Peer::new(Side::Client, Arc::clone(&sockets));
        let result = client.perform(&connect(8080, None), Link::Connected);
        assert_eq!(name(result), "ECONNREFUSED");
        let (local, remote) = sockets
            .locate(Socket::Client)
            .expect("bound before connect");
        assert_eq!(remote, addr(8080));
        assert_ne!(local.port(), 0);
        assert_eq!(state(&sockets, Socket::Client), Some(TcpState::Close));
        let send = SocketCall::Send {
            payload: Payload::Size(10),
            timeout: None,
        };
        assert_eq!(name(client.perform(&send, Link::Connected)), "EPIPE");
    });
}

#[test]
fn a_refused_connect_never_acts_on_the_connection_the_side_already_had() {
    in_case(|| {
        let (mut client, mut server, sockets) = pair(8080);
        let old = sockets.locate(Socket::Client).expect("connected");
        assert_eq!(
            name(client.perform(&connect(9090, None), Link::Connected)),
            "ECONNREFUSED"
        );
        assert_ne!(sockets.locate(Socket::Client), Some(old));
        let hello = SocketCall::Send {
            payload: Payload::Size(5),
            timeout: None,
        };
        assert_eq!(name(client.perform(&hello, Link::Connected)), "EPIPE");
        // The old connection is still open and got nothing.
        let quick = recv(Some(Duration::from_millis(20)));
        assert_eq!(name(server.perform(&quick, Link::Accepted)), "EAGAIN");
    });
}

#[test]
fn data_flows_and_an_abort_resets_the_peer() {
    in_case(|| {
        let (mut client, mut server, _) = pair(8080);
        let hello = SocketCall::Send {
            payload: Payload::Text {
                text: "hello\n".into(),
                repeat: 2,
            },
            timeout: None,
        };
        assert_eq!(name(client.perform(&hello, Link::Connected)), "ok 12");
        let until = SocketCall::RecvUntil {
            until: Until::Pattern("o\nh".into()),
            timeout: None,
        };
        assert!(name(server.perform(&until, Link::Accepted)).starts_with("ok"));
        assert_eq!(
            name(client.perform(&SocketCall::Abort, Link::Connected)),
            "ok 0"
        );
        let read = recv(Some(Duration::from_secs(1)));
        // Whatever was still unread, the reset wins on Linux.
        let mut seen = name(server.perform(&read, Link::Accepted));
        if seen.starts_with("ok") {
            seen = name(server.perform(&read, Link::Accepted));
        }
        assert_eq!(seen, "ECONNRESET");
        let more = SocketCall::Send {
            payload: Payload::Size(10),
            timeout: None,
        };
        assert_eq!(name(server.perform(&more, Link::Accepted)), "EPIPE");
    });
}

#[rstest]
#[case::before_any_connection(false, NoSocket::NeverConnected)]
#[case::after_close(true, NoSocket::Closed)]
fn a_call_without_a_connection_is_a_script_error_not_an_errno(
    #[case] closed: bool,
    #[case] why: NoSocket,
) {
    let seen = in_case(move || {
        let (mut client, _server, sockets) = pair(8080);
        let mut fresh = Peer::new(Side::Client, sockets);
        let peer = if closed {
            name(client.perform(&SocketCall::Close, Link::Connected));
            &mut client
        } else {
            &mut fresh
        };
        peer.perform(&recv(None), Link::Connected).unwrap_err()
    });
    assert_eq!(seen, why);
}

#[test]
fn a_read_timeout_is_the_kernel_s_eagain_and_data_that_arrived_is_returned() {
    in_case(|| {
        let (mut client, mut server, _) = pair(8080);
        let read = recv(Some(Duration::from_millis(50)));
        let call = server.perform(&read, Link::Accepted).expect("connected");
        assert_eq!(
            call.result.outcome.to_string(),
            "EAGAIN (Resource temporarily unavailable)"
        );
        assert!(call.took >= Duration::from_millis(49), "{:?}", call.took);
        let hello = SocketCall::Send {
            payload: Payload::Size(3),
            timeout: None,
        };
        client.perform(&hello, Link::Connected).expect("connected");
        std::thread::sleep(Duration::from_millis(10));
        // A 1 µs timeout: the bytes already queued still come back.
        let quick = recv(Some(Duration::from_micros(1)));
        assert_eq!(name(server.perform(&quick, Link::Accepted)), "ok 3");
    });
}

#[test]
fn a_send_timeout_ends_with_the_kernel_s_eagain_after_the_bytes_that_fit() {
    in_case(|| {
        let (_client, mut server, _) = pair(8080);
        let flood = SocketCall::Send {
            payload: Payload::Size(50_000_000),
            timeout: Some(Duration::from_millis(100)),
        };
        let call = server.perform(&flood, Link::Accepted).expect("connected");
        assert_eq!(
            call.result.outcome.to_string(),
            "EAGAIN (Resource temporarily unavailable)"
        );
        assert!(call.result.bytes > 0 && call.result.bytes < 50_000_000);
        assert!(
            call.took >= Duration::from_millis(99) && call.took < Duration::from_millis(400),
            "{:?}",
            call.took
        );
    });
}

#[test]
fn a_blocking_connect_is_observable_in_syn_sent_and_times_out_with_einprogress() {
    in_case(|| {
        let (_server, sockets) = listening(8080, 0);
        let mut first = Peer::new(Side::Proxy, Arc::clone(&sockets));
        assert_eq!(
            name(first.perform(&connect(8080, None), Link::Connected)),
            "ok 0"
        );
        let watcher = Arc::clone(&sockets);
        let seen = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until {
                if state(&watcher, Socket::Client) == Some(TcpState::SynSent) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            false
        });
        let mut client = Peer::new(Side::Client, Arc::clone(&sockets));
        let wait = Some(Duration::from_millis(300));
        let call = client.perform(&connect(8080, wait), Link::Connected);
        assert_eq!(name(call), "EINPROGRESS");
        assert!(
            seen.join().expect("watcher"),
            "SYN_SENT seen during the call"
        );
        assert_eq!(state(&sockets, Socket::Client), Some(TcpState::SynSent));
    });
}

#[test]
fn a_connection_in_the_accept_queue_is_located_through_the_listener() {
    in_case(|| {
        let (_server, sockets) = listening(8080, 8);
        assert_eq!(sockets.locate(Socket::Server), None);
        let mut client = Peer::new(Side::Client, Arc::clone(&sockets));
        client
            .perform(&connect(8080, None), Link::Connected)
            .expect("connect");
        let (local, remote) = sockets.locate(Socket::Client).expect("client");
        assert_eq!(sockets.locate(Socket::Server), Some((remote, local)));
    });
}

#[test]
fn options_set_before_a_socket_exists_apply_to_the_next_one() {
    in_case(|| {
        let (_server, sockets) = listening(8080, 8);
        let mut client = Peer::new(Side::Client, Arc::clone(&sockets));
        let small = SocketOptions {
            rcvbuf: Some(4096),
            ..SocketOptions::default()
        };
        client
            .perform(&SocketCall::Set(small), Link::Connected)
            .expect("set");
        client
            .perform(&connect(8080, None), Link::Connected)
            .expect("connect");
        // The kernel doubles what was asked for.
        let size = sockets.with_fd(Socket::Client, |fd| {
            sock::getsockopt(&fd, sockopt::RcvBuf).ok()
        });
        assert_eq!(size.flatten(), Some(8192));
    });
}

fn set(options: SocketOptions) -> SocketCall {
    SocketCall::Set(options)
}

#[test]
fn a_listener_s_options_reach_what_it_accepts_but_o_nonblock_does_not() {
    in_case(|| {
        let sockets = Arc::new(Sockets::default());
        let mut server = Peer::new(Side::Server, Arc::clone(&sockets));
        let mut client = Peer::new(Side::Client, Arc::clone(&sockets));
        let options = SocketOptions {
            user_timeout: Some(Duration::from_millis(2500)),
            notsent_lowat: Some(16384),
            congestion: Some("reno".into()),
            nonblocking: Some(true),
            ..SocketOptions::default()
        };
        // Before the listener exists: kept for it.
        assert_eq!(name(server.perform(&set(options), Link::Accepted)), "ok 0");
        assert_eq!(
            name(server.perform(&listen(8080, 8), Link::Accepted)),
            "ok 0"
        );
        // A non-blocking listener with nobody waiting: EAGAIN at once.
        let accept = SocketCall::Accept {
            timeout: Some(Duration::from_secs(5)),
        };
        let call = server.perform(&accept, Link::Accepted).expect("listener");
        assert_eq!(outcome(&call), "EAGAIN");
        assert!(call.took < Duration::from_secs(1), "{:?}", call.took);
        assert_eq!(
            name(client.perform(&connect(8080, None), Link::Connected)),
            "ok 0"
        );
        assert_eq!(name(server.perform(&accept, Link::Accepted)), "ok 0");
        let seen = sockets.with_fd(Socket::Server, |fd| {
            let socket = socket2::SockRef::from(&fd);
            (
                sock::getsockopt(&fd, sockopt::TcpUserTimeout).ok(),
                socket.tcp_notsent_lowat().ok(),
                socket.tcp_congestion().ok(),
                nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).ok(),
            )
        });
        let (timeout, lowat, congestion, flags) = seen.expect("the accepted socket");
        assert_eq!(timeout, Some(2500));
        assert_eq!(lowat, Some(16384));
        let congestion = congestion.expect("TCP_CONGESTION");
        assert!(congestion.starts_with(b"reno\0"), "{congestion:?}");
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags.expect("F_GETFL"));
        assert!(!flags.contains(nix::fcntl::OFlag::O_NONBLOCK));
    });
}

#[test]
fn a_non_blocking_read_is_the_kernel_s_eagain_at_once_whatever_its_timeout() {
    in_case(|| {
        let (mut client, _server, _sockets) = pair(8080);
        let on = |on| {
            set(SocketOptions {
                nonblocking: Some(on),
                ..SocketOptions::default()
            })
        };
        assert_eq!(name(client.perform(&on(true), Link::Connected)), "ok 0");
        let call = client
            .perform(&recv(Some(Duration::from_secs(5))), Link::Connected)
            .expect("connection");
        assert_eq!(outcome(&call), "EAGAIN");
        assert!(call.took < Duration::from_secs(1), "{:?}", call.took);
        // Blocking again: the read waits out its timeout.
        assert_eq!(name(client.perform(&on(false), Link::Connected)), "ok 0");
        let call = client
            .perform(&recv(Some(Duration::from_millis(50))), Link::Connected)
            .expect("connection");
        assert_eq!(outcome(&call), "EAGAIN");
        assert!(call.took >= Duration::from_millis(50), "{:?}", call.took);
    });
}

#[test]
fn a_connect_a_set_made_non_blocking_is_einprogress_and_the_socket_stays_so() {
    in_case(|| {
        let (_server, _sockets) = listening(8080, 8);
        let mut client = Peer::new(Side::Client, Arc::new(Sockets::default()));
        let nonblocking = set(SocketOptions {
            nonblocking: Some(true),
            ..SocketOptions::default()
        });
        client.perform(&nonblocking, Link::Connected).expect("set");
        assert_eq!(
            name(client.perform(&connect(8080, None), Link::Connected)),
            "EINPROGRESS"
        );
        // A `connect` asked to be non-blocking leaves it so too.
        let again = SocketCall::Connect {
            addr: addr(8080),
            timeout: None,
            from: None,
            nonblocking: true,
            again: true,
        };
        // Its handshake is done by now on loopback: connect(2) reports it
        // once, then EISCONN.
        let answer = name(client.perform(&again, Link::Connected));
        assert!(["ok 0", "EALREADY"].contains(&answer.as_str()), "{answer}");
        let call = client
            .perform(&recv(Some(Duration::from_secs(5))), Link::Connected)
            .expect("connection");
        assert_eq!(outcome(&call), "EAGAIN");
        assert!(call.took < Duration::from_secs(1), "{:?}", call.took);
    });
}

#[test]
fn congestion_control_the_kernel_lacks_is_not_loaded_for_it_and_reno_it_always_has() {
    in_case(|| {
        let (mut client, _server, _sockets) = pair(8080);
        let congestion = |name: &str| {
            set(SocketOptions {
                congestion: Some(name.into()),
                ..SocketOptions::default()
            })
        };
        // One the kernel has not loaded: rootless, the kernel's ENOENT;
        // as root of the machine, not asked at all (the kernel would run
        // modprobe on the host to look for it).
        let lacking = client.perform(&congestion("no_such_cc"), Link::Connected);
        if crate::sandbox::root_in_initial_user_namespace() {
            assert_eq!(lacking.err(), Some(NoSocket::CongestionNotLoaded));
        } else {
            assert_eq!(name(lacking), "ENOENT");
        }
        assert_eq!(
            name(client.perform(&congestion("reno"), Link::Connected)),
            "ok 0"
        );
    });
}
