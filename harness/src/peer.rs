//! Scripted TCP peers: the harness's own client and server.
//!
//! A [`Peer`] is one side's sockets (a listener, one connection) and the
//! calls a script makes on them. Every call returns a [`CallResult`]: the
//! outcome as the kernel gave it (bytes, EOF, or the errno by name) and the
//! bytes moved; the runner stamps it with start and end times.
//!
//! Peers run on tokio, on the current-thread runtime of their case's own OS
//! thread, so every socket is created inside the case's network namespace.
//! Timeouts are tokio timers around one call, reported with the errno the
//! kernel gives for the matching socket option: EAGAIN for a read or write
//! under `SO_RCVTIMEO`/`SO_SNDTIMEO`, EINPROGRESS for a connect under
//! `SO_SNDTIMEO`. Nothing else is synthesized: EPIPE, ECONNRESET, EOF and
//! ECONNREFUSED come from the syscalls themselves.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::sys::socket::{self as sock, sockopt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::errno::Errno;
use crate::side::{Link, Side};
use crate::suite::{Action, How, Outcome, Payload, SocketOptions, Until};

/// How one call ended and how many bytes it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CallResult {
    /// Ok, EOF, or the errno.
    pub outcome: Outcome,
    /// Bytes written or read by this call (for `recv_until`, in total).
    pub bytes: u64,
}

impl CallResult {
    fn ok(bytes: u64) -> CallResult {
        CallResult {
            outcome: Outcome::Ok,
            bytes,
        }
    }

    fn errno(errno: Errno, bytes: u64) -> CallResult {
        CallResult {
            outcome: Outcome::Errno(errno),
            bytes,
        }
    }

    fn from_io(err: &io::Error, bytes: u64) -> CallResult {
        // An error without a socket errno would be a harness bug; EINVAL says so
        // without inventing a network event.
        CallResult::errno(
            Errno::from_io(err).unwrap_or_else(|| errno(nix::libc::EINVAL)),
            bytes,
        )
    }
}

fn errno(raw: i32) -> Errno {
    Errno::from_raw(raw).unwrap_or_else(|| unreachable!("errno {raw} is in the known set"))
}

/// One side's sockets and the options waiting for the next one.
///
/// A side holds at most a listener, one accepted connection and one it
/// made (the proxy holds both; the client and server one each), indexed
/// by [`Link`].
#[derive(Debug)]
pub struct Peer {
    side: Side,
    listener: Option<TcpListener>,
    conns: [Option<TcpStream>; 2],
    /// The connection the current step acts on.
    link: Link,
    /// Options set before a socket exists; applied to the next one made.
    pending: SocketOptions,
    /// Each connection's (local, remote) addresses, kept after close: a
    /// closed socket in TIME_WAIT or FIN_WAIT2 is still the side's socket.
    tuples: [Option<(SocketAddr, SocketAddr)>; 2],
}

impl Peer {
    /// A side with no sockets yet.
    pub fn new(side: Side) -> Peer {
        Peer {
            side,
            listener: None,
            conns: [None, None],
            link: Link::Accepted,
            pending: SocketOptions::default(),
            tuples: [None, None],
        }
    }

    /// Which side this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// A connection's (local, remote) addresses, once there was one.
    pub fn tuple(&self, link: Link) -> Option<(SocketAddr, SocketAddr)> {
        self.tuples[link as usize]
    }

    /// A connection's fd while this side still holds it.
    pub fn conn_fd(&self, link: Link) -> Option<BorrowedFd<'_>> {
        self.conns[link as usize].as_ref().map(AsFd::as_fd)
    }

    /// Performs a socket action on the connection `link` names (`accept`
    /// and `connect` fill their own). Actions that are not socket calls
    /// (`sleep`, `mark`, `wait`, `state`) are the runner's, not a peer's.
    pub async fn perform(&mut self, action: &Action, link: Link) -> CallResult {
        self.link = link;
        match action {
            Action::Listen { addr, backlog } => self.listen(*addr, *backlog),
            Action::Accept { timeout } => self.accept(*timeout).await,
            Action::Connect {
                addr,
                timeout,
                from,
            } => self.connect(*addr, *timeout, *from).await,
            Action::Send { payload, timeout } => self.send(payload, *timeout).await,
            Action::Recv { max, timeout } => self.recv(*max, *timeout).await,
            Action::RecvUntil { until, timeout } => self.recv_until(until, *timeout).await,
            Action::Shutdown(how) => self.shutdown(*how),
            Action::Close => self.close(false).await,
            Action::Abort => self.close(true).await,
            Action::Set(options) => self.set(options),
            Action::Sleep(_) | Action::Mark(_) | Action::Wait { .. } | Action::State { .. } => {
                unreachable!("the runner performs `{}` itself", action.keyword())
            }
        }
    }

    fn new_socket(&mut self, addr: SocketAddr) -> io::Result<TcpSocket> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        apply_options(&socket, &std::mem::take(&mut self.pending))?;
        Ok(socket)
    }

    fn listen(&mut self, addr: SocketAddr, backlog: u32) -> CallResult {
        let result = self.new_socket(addr).and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(backlog)
        });
        match result {
            Ok(listener) => {
                self.listener = Some(listener);
                CallResult::ok(0)
            }
            Err(err) => CallResult::from_io(&err, 0),
        }
    }

    async fn accept(&mut self, timeout: Option<Duration>) -> CallResult {
        let Some(listener) = &self.listener else {
            return CallResult::errno(errno(nix::libc::EINVAL), 0);
        };
        match with_timeout(timeout, listener.accept()).await {
            None => CallResult::errno(errno(nix::libc::EAGAIN), 0),
            Some(Err(err)) => CallResult::from_io(&err, 0),
            Some(Ok((stream, remote))) => {
                self.tuples[Link::Accepted as usize] =
                    stream.local_addr().ok().map(|local| (local, remote));
                self.conns[Link::Accepted as usize] = Some(stream);
                CallResult::ok(0)
            }
        }
    }

    /// A non-blocking `connect(2)`, then a wait for the outcome. A timeout
    /// returns EINPROGRESS and keeps the socket, so its SYN goes on being
    /// retried and a state check sees SYN_SENT, as a connect under
    /// `SO_SNDTIMEO` behaves; a later call on it reports how it ended.
    async fn connect(
        &mut self,
        addr: SocketAddr,
        timeout: Option<Duration>,
        from: Option<u16>,
    ) -> CallResult {
        let slot = Link::Connected as usize;
        let started = (|| -> io::Result<(std::net::TcpStream, bool)> {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.set_nonblocking(true)?;
            apply_options(&socket, &std::mem::take(&mut self.pending))?;
            // Bind first so the 4-tuple is known before the SYN leaves: a
            // connect that never completes can still be found in SYN_SENT.
            socket.bind(&SocketAddr::new(addr.ip(), from.unwrap_or(0)).into())?;
            let local = socket.local_addr()?.as_socket();
            self.tuples[slot] = local.map(|local| (local, addr));
            let in_progress = match socket.connect(&addr.into()) {
                Ok(()) => false,
                Err(err) if err.raw_os_error() == Some(nix::libc::EINPROGRESS) => true,
                Err(err) => return Err(err),
            };
            Ok((socket.into(), in_progress))
        })();
        let (stream, in_progress) = match started {
            Ok((std, in_progress)) => match TcpStream::from_std(std) {
                Ok(stream) => (stream, in_progress),
                Err(err) => return CallResult::from_io(&err, 0),
            },
            Err(err) => return CallResult::from_io(&err, 0),
        };
        if in_progress {
            match with_timeout(timeout, stream.writable()).await {
                None => {
                    self.conns[slot] = Some(stream);
                    return CallResult::errno(errno(nix::libc::EINPROGRESS), 0);
                }
                Some(Err(err)) => return CallResult::from_io(&err, 0),
                Some(Ok(())) => {}
            }
            // Writable means the handshake ended; SO_ERROR says how.
            match stream.take_error() {
                Ok(None) => {}
                Ok(Some(err)) | Err(err) => return CallResult::from_io(&err, 0),
            }
        }
        self.conns[slot] = Some(stream);
        CallResult::ok(0)
    }

    async fn send(&mut self, payload: &Payload, timeout: Option<Duration>) -> CallResult {
        let Some(conn) = &mut self.conns[self.link as usize] else {
            return not_connected(self.tuples[self.link as usize].is_some());
        };
        let bytes = payload_bytes(payload);
        let mut written = 0usize;
        let write_all = async {
            while written < bytes.len() {
                match conn.write(&bytes[written..]).await {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Ok(n) => written += n,
                    Err(err) => return Err(err),
                }
            }
            Ok(())
        };
        match with_timeout(timeout, write_all).await {
            None => CallResult::errno(errno(nix::libc::EAGAIN), written as u64),
            Some(Err(err)) => CallResult::from_io(&err, written as u64),
            Some(Ok(())) => CallResult::ok(written as u64),
        }
    }

    async fn recv(&mut self, max: usize, timeout: Option<Duration>) -> CallResult {
        let Some(conn) = &mut self.conns[self.link as usize] else {
            return not_connected(self.tuples[self.link as usize].is_some());
        };
        let mut buf = vec![0u8; max];
        match with_timeout(timeout, conn.read(&mut buf)).await {
            None => CallResult::errno(errno(nix::libc::EAGAIN), 0),
            Some(Err(err)) => CallResult::from_io(&err, 0),
            Some(Ok(0)) => CallResult {
                outcome: Outcome::Eof,
                bytes: 0,
            },
            Some(Ok(n)) => CallResult::ok(n as u64),
        }
    }

    async fn recv_until(&mut self, until: &Until, timeout: Option<Duration>) -> CallResult {
        let Some(conn) = &mut self.conns[self.link as usize] else {
            return not_connected(self.tuples[self.link as usize].is_some());
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        // Only the tail that could hold a pattern split across reads is kept.
        let mut tail: Vec<u8> = Vec::new();
        loop {
            match with_timeout(timeout, conn.read(&mut buf)).await {
                None => return CallResult::errno(errno(nix::libc::EAGAIN), total),
                Some(Err(err)) => return CallResult::from_io(&err, total),
                Some(Ok(0)) => {
                    return CallResult {
                        outcome: Outcome::Eof,
                        bytes: total,
                    };
                }
                Some(Ok(n)) => {
                    total += n as u64;
                    match until {
                        Until::Bytes(want) if total >= *want => return CallResult::ok(total),
                        Until::Pattern(pattern) => {
                            tail.extend_from_slice(&buf[..n]);
                            let needle = pattern.as_bytes();
                            if tail.windows(needle.len()).any(|w| w == needle) {
                                return CallResult::ok(total);
                            }
                            let keep = needle.len().saturating_sub(1);
                            let drop = tail.len().saturating_sub(keep);
                            tail.drain(..drop);
                        }
                        Until::Bytes(_) => {}
                    }
                }
            }
        }
    }

    fn shutdown(&mut self, how: How) -> CallResult {
        let Some(conn) = &self.conns[self.link as usize] else {
            return not_connected(self.tuples[self.link as usize].is_some());
        };
        let how = match how {
            How::Read => sock::Shutdown::Read,
            How::Write => sock::Shutdown::Write,
            How::Both => sock::Shutdown::Both,
        };
        match sock::shutdown(std::os::fd::AsRawFd::as_raw_fd(conn), how) {
            Ok(()) => CallResult::ok(0),
            Err(err) => CallResult::errno(
                Errno::from_raw(err as i32).unwrap_or_else(|| errno(nix::libc::EINVAL)),
                0,
            ),
        }
    }

    /// `close(2)` of the connection; with `abort`, `SO_LINGER {on, 0}`
    /// first. A side without a connection closes its listener instead, so
    /// a server can stop listening (new connects then see ECONNREFUSED).
    async fn close(&mut self, abort: bool) -> CallResult {
        let Some(conn) = self.conns[self.link as usize].take() else {
            return match self.listener.take() {
                Some(listener) => {
                    drop(listener);
                    CallResult::ok(0)
                }
                None => not_connected(self.tuples[self.link as usize].is_some()),
            };
        };
        if abort {
            let zero = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            if let Err(err) = sock::setsockopt(&conn, sockopt::Linger, &zero) {
                self.conns[self.link as usize] = Some(conn);
                return CallResult::errno(
                    Errno::from_raw(err as i32).unwrap_or_else(|| errno(nix::libc::EINVAL)),
                    0,
                );
            }
        }
        let lingering = sock::getsockopt(&conn, sockopt::Linger)
            .is_ok_and(|l| l.l_onoff != 0 && l.l_linger > 0);
        match conn.into_std() {
            // A lingering close blocks in the kernel until the data is
            // acknowledged or the time runs out, even on a non-blocking socket:
            // run it off the runtime so the other side's script goes on.
            Ok(std) if lingering => match tokio::task::spawn_blocking(move || drop(std)).await {
                Ok(()) => CallResult::ok(0),
                Err(_) => CallResult::errno(errno(nix::libc::EINTR), 0),
            },
            Ok(std) => {
                drop(std);
                CallResult::ok(0)
            }
            Err(err) => CallResult::from_io(&err, 0),
        }
    }

    fn set(&mut self, options: &SocketOptions) -> CallResult {
        // Options on a listener are inherited by the connections it accepts.
        let listener = self
            .listener
            .as_ref()
            .filter(|_| self.link == Link::Accepted);
        let result = match (&self.conns[self.link as usize], listener) {
            (Some(conn), _) => apply_options(conn, options),
            (None, Some(listener)) => apply_options(listener, options),
            (None, None) => {
                merge_options(&mut self.pending, options);
                Ok(())
            }
        };
        match result {
            Ok(()) => CallResult::ok(0),
            Err(err) => CallResult::from_io(&err, 0),
        }
    }
}

/// ENOTCONN before a connection exists; EBADF once this side closed it.
fn not_connected(had_one: bool) -> CallResult {
    CallResult::errno(
        errno(if had_one {
            nix::libc::EBADF
        } else {
            nix::libc::ENOTCONN
        }),
        0,
    )
}

async fn with_timeout<F: std::future::Future>(
    timeout: Option<Duration>,
    fut: F,
) -> Option<F::Output> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// A payload's bytes; filler is a repeating alphabet so captures stay legible.
fn payload_bytes(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::Text { text, repeat } => text.repeat(*repeat).into_bytes(),
        Payload::Size(n) => {
            // Doubling copies, not a loop per byte: this runs inside the
            // timed call, and a per-byte loop over megabytes shows up as
            // tens of milliseconds in a debug build.
            let mut bytes = b"abcdefghijklmnopqrstuvwxyz".to_vec();
            while bytes.len() < *n {
                bytes.extend_from_within(..bytes.len().min(*n - bytes.len()));
            }
            bytes.truncate(*n);
            bytes
        }
    }
}

fn merge_options(into: &mut SocketOptions, from: &SocketOptions) {
    into.linger = from.linger.or(into.linger);
    into.nodelay = from.nodelay.or(into.nodelay);
    into.keepalive = from.keepalive.or(into.keepalive);
    into.rcvbuf = from.rcvbuf.or(into.rcvbuf);
    into.sndbuf = from.sndbuf.or(into.sndbuf);
}

fn apply_options(fd: &impl AsFd, options: &SocketOptions) -> io::Result<()> {
    let fd = fd.as_fd();
    let to_io = |err: nix::errno::Errno| io::Error::from_raw_os_error(err as i32);
    if let Some(linger) = options.linger {
        let value = match linger {
            None => nix::libc::linger {
                l_onoff: 0,
                l_linger: 0,
            },
            Some(d) => nix::libc::linger {
                l_onoff: 1,
                l_linger: i32::try_from(d.as_secs()).unwrap_or(i32::MAX),
            },
        };
        sock::setsockopt(&fd, sockopt::Linger, &value).map_err(to_io)?;
    }
    if let Some(on) = options.nodelay {
        sock::setsockopt(&fd, sockopt::TcpNoDelay, &on).map_err(to_io)?;
    }
    if let Some(on) = options.keepalive {
        sock::setsockopt(&fd, sockopt::KeepAlive, &on).map_err(to_io)?;
    }
    if let Some(size) = options.rcvbuf {
        sock::setsockopt(&fd, sockopt::RcvBuf, &size).map_err(to_io)?;
    }
    if let Some(size) = options.sndbuf {
        sock::setsockopt(&fd, sockopt::SndBuf, &size).map_err(to_io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use rstest::rstest;

    use super::*;
    use crate::sandbox::CaseNamespace;
    use crate::tcp_state::TcpState;

    /// Runs `body` the way a case runs: on a fresh thread, in a fresh
    /// network namespace, on a current-thread runtime (tests run as root).
    fn in_case<T, F>(body: impl FnOnce() -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: Future<Output = T>,
    {
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                CaseNamespace::create().await.expect("a case namespace");
                body().await
            })
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn connect(port: u16, timeout: Option<Duration>) -> Action {
        Action::Connect {
            addr: addr(port),
            timeout,
            from: None,
        }
    }

    fn name(result: CallResult) -> String {
        match result.outcome {
            Outcome::Ok => format!("ok {}", result.bytes),
            Outcome::Eof => "EOF".into(),
            Outcome::Errno(errno) => errno.name().into(),
        }
    }

    /// A connected pair: (client, server).
    async fn pair(port: u16) -> (Peer, Peer) {
        let mut server = Peer::new(Side::Server);
        let mut client = Peer::new(Side::Client);
        let listen = Action::Listen {
            addr: addr(port),
            backlog: 8,
        };
        assert_eq!(name(server.perform(&listen, Link::Accepted).await), "ok 0");
        assert_eq!(
            name(client.perform(&connect(port, None), Link::Connected).await),
            "ok 0"
        );
        let accept = Action::Accept { timeout: None };
        assert_eq!(name(server.perform(&accept, Link::Accepted).await), "ok 0");
        (client, server)
    }

    #[test]
    fn a_closed_port_refuses_and_the_tuple_is_still_known() {
        in_case(|| async {
            let mut client = Peer::new(Side::Client);
            let result = client.perform(&connect(8080, None), Link::Connected).await;
            assert_eq!(name(result), "ECONNREFUSED");
            let (local, remote) = client.tuple(Link::Connected).expect("bound before connect");
            assert_eq!(remote, addr(8080));
            assert_ne!(local.port(), 0);
        });
    }

    #[test]
    fn data_flows_and_an_abort_resets_the_peer() {
        in_case(|| async {
            let (mut client, mut server) = pair(8080).await;
            let hello = Action::Send {
                payload: Payload::Text {
                    text: "hello\n".into(),
                    repeat: 2,
                },
                timeout: None,
            };
            assert_eq!(name(client.perform(&hello, Link::Connected).await), "ok 12");
            let until = Action::RecvUntil {
                until: Until::Pattern("o\nh".into()),
                timeout: None,
            };
            assert!(name(server.perform(&until, Link::Accepted).await).starts_with("ok"));
            assert_eq!(
                name(client.perform(&Action::Abort, Link::Connected).await),
                "ok 0"
            );
            let recv = Action::Recv {
                max: 1024,
                timeout: Some(Duration::from_secs(1)),
            };
            // Whatever was still unread, the reset wins on Linux.
            let mut seen = name(server.perform(&recv, Link::Accepted).await);
            if seen.starts_with("ok") {
                seen = name(server.perform(&recv, Link::Accepted).await);
            }
            assert_eq!(seen, "ECONNRESET");
            let more = Action::Send {
                payload: Payload::Size(10),
                timeout: None,
            };
            assert_eq!(name(server.perform(&more, Link::Accepted).await), "EPIPE");
        });
    }

    #[rstest]
    #[case::before_any_connection(false, "ENOTCONN")]
    #[case::after_close(true, "EBADF")]
    fn calls_without_a_connection_say_why(#[case] closed: bool, #[case] errno: &str) {
        let seen = in_case(move || async move {
            let (mut client, _server) = pair(8080).await;
            let mut fresh = Peer::new(Side::Client);
            let peer = if closed {
                client.perform(&Action::Close, Link::Connected).await;
                &mut client
            } else {
                &mut fresh
            };
            let recv = Action::Recv {
                max: 16,
                timeout: None,
            };
            name(peer.perform(&recv, Link::Connected).await)
        });
        assert_eq!(seen, errno);
    }

    #[test]
    fn a_connect_that_times_out_keeps_its_socket_in_syn_sent() {
        in_case(|| async {
            let mut server = Peer::new(Side::Server);
            let listen = Action::Listen {
                addr: addr(8080),
                backlog: 0,
            };
            server.perform(&listen, Link::Accepted).await;
            let mut first = Peer::new(Side::Client);
            assert_eq!(
                name(first.perform(&connect(8080, None), Link::Connected).await),
                "ok 0"
            );
            let mut client = Peer::new(Side::Client);
            let wait = Some(Duration::from_millis(100));
            let result = client.perform(&connect(8080, wait), Link::Connected).await;
            assert_eq!(name(result), "EINPROGRESS");
            let fd = client.conn_fd(Link::Connected).expect("the socket is kept");
            assert_eq!(
                crate::observe::tcp_info_state(fd).ok(),
                Some(TcpState::SynSent)
            );
        });
    }

    #[test]
    fn options_set_before_a_socket_exists_apply_to_the_next_one() {
        in_case(|| async {
            let mut server = Peer::new(Side::Server);
            let listen = Action::Listen {
                addr: addr(8080),
                backlog: 8,
            };
            server.perform(&listen, Link::Accepted).await;
            let mut client = Peer::new(Side::Client);
            let small = SocketOptions {
                rcvbuf: Some(4096),
                ..SocketOptions::default()
            };
            client.perform(&Action::Set(small), Link::Connected).await;
            client.perform(&connect(8080, None), Link::Connected).await;
            let fd = client.conn_fd(Link::Connected).expect("connected");
            // The kernel doubles what was asked for.
            assert_eq!(sock::getsockopt(&fd, sockopt::RcvBuf).ok(), Some(8192));
        });
    }

    #[test]
    fn filler_is_the_alphabet_repeated_to_the_exact_size() {
        for n in [1, 25, 26, 27, 1000, 5_000_000] {
            let bytes = payload_bytes(&Payload::Size(n));
            assert_eq!(bytes.len(), n);
            assert!(
                bytes
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == b'a' + (i % 26) as u8)
            );
        }
    }
}
