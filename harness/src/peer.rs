//! Scripted TCP peers: the harness's own client, server and proxy.
//!
//! A [`Peer`] is one side's sockets (a listener, and a connection on each
//! [`Link`]) and the calls its script makes on them. Each side runs on an
//! OS thread of its own inside the case's network namespace, so a peer's
//! calls are ordinary blocking syscalls, exactly as a program's would be:
//! one side's stall never delays another's.
//!
//! # Timeouts are the kernel's
//!
//! A step's `timeout` is set on the socket as `SO_RCVTIMEO` (reads,
//! `accept`) or `SO_SNDTIMEO` (writes, `connect`) right before the call, and
//! the errno the step reports is the one the syscall returned: EAGAIN for
//! a read, a write or an accept, EINPROGRESS for a connect whose SYN keeps
//! going. Data that reached the socket before the timeout is returned, as
//! the kernel returns it. A `send` writes its whole payload in a loop of
//! `send(2)` calls, each with what is left of the step's timeout; once that
//! is spent after a partial write, one last `send(MSG_DONTWAIT)` asks the
//! kernel whether there is room, and its EAGAIN ends the step.
//!
//! Nothing is made up: a step on a connection the side does not have is a
//! script error ([`NoSocket`]), not an invented ENOTCONN or EBADF.
//!
//! # Observed from the moment they exist
//!
//! Every socket a side makes is entered in the case's [`Sockets`] table
//! before the call that could block on it (a connect's socket before its
//! SYN leaves), so a state check on another side's thread can read its
//! state at any time: SYN_SENT during a blocking connect, the server's end
//! of a connection still in the accept queue (found through the listener),
//! CLOSE for a connect that failed.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::socket::{self as sock, sockopt};
use socket2::{Domain, Protocol, Socket as Sock, Type};

use crate::model::{CallResult, Link, PollEvents, Side, Socket};
use crate::suite::{How, Payload, SocketCall, SocketOptions, Until};

/// One call a script made: its result, when the syscall began and how long
/// it took. Setup (building a payload, setting a timeout) happens before
/// `began`, so a timing check measures the kernel, not the harness.
#[derive(Debug, Clone)]
pub struct Call {
    /// How it ended.
    pub result: CallResult,
    /// When the first syscall of the call was made.
    pub began: Instant,
    /// How long it took, to the return of its last syscall.
    pub took: Duration,
    /// For reads: the bytes received, the first [`RECEIVED_KEPT`] of them,
    /// for a `matches` check.
    pub received: Vec<u8>,
}

/// How many received bytes a read keeps for a `matches` check: enough for
/// a response's status line and headers.
pub const RECEIVED_KEPT: usize = 64 * 1024;

/// A step that needs a socket the side does not have: a script error the
/// kernel was never asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoSocket {
    /// There never was a connection on that link.
    #[error("this side has no connection to act on (it has not connected or accepted one)")]
    NeverConnected,
    /// The side closed it in an earlier step.
    #[error("this side already closed that connection")]
    Closed,
    /// `accept` without a listener.
    #[error("this side has no listener to accept from")]
    NoListener,
}

/// The sockets of every side of one case, shared by the sides' threads so
/// that a state check on one side reads any side's socket.
///
/// A side enters a socket here before the call that might block on it and
/// withdraws it before closing it. A reader only borrows a socket's fd
/// while it holds the table's lock, so a side that withdrew its socket
/// holds the last reference and its `close(2)` happens when the script
/// says, never later.
#[derive(Debug, Default)]
pub struct Sockets {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Per connection, indexed by [`Socket::index`].
    conns: [Entry; 4],
    /// Each side's listening address while it listens, indexed by [`Side`].
    listeners: [Option<SocketAddr>; 3],
    /// For a program under test that plays a side and connects: the port
    /// it connects to, indexed by [`Side`].
    connectors: [Option<u16>; 3],
    /// The cookie of a program's end of a connection, indexed by
    /// [`Socket::index`], looked up when the connection was made.
    cookies: [Option<u64>; 4],
    /// Every connection whose program end's cookie was noted, oldest
    /// first, as (cookie, (program's local, peer)): a socket reset into
    /// CLOSE keeps its cookie but not its addresses, so this is how a
    /// leak soak names each leaked connection, not just the latest on a
    /// socket. At most [`CONNECTIONS_KEPT`].
    connections: VecDeque<(u64, (SocketAddr, SocketAddr))>,
    /// Every address a script's socket had in the case, its connections'
    /// and its listeners': a program's socket whose peer is one of them is
    /// one of the case's connections. At most [`CONNECTIONS_KEPT`].
    script_ends: VecDeque<SocketAddr>,
}

/// Connections named by cookie that a case keeps (see
/// `Table::connections`): more than any suite's connections, whose
/// request loops are bounded, and a few hundred KiB at most.
const CONNECTIONS_KEPT: usize = 8192;

#[derive(Debug, Default)]
struct Entry {
    /// (local, remote), kept after close: a socket in TIME_WAIT or
    /// FIN_WAIT2 that no fd refers to is still the side's socket.
    tuple: Option<(SocketAddr, SocketAddr)>,
    /// The socket while the side holds it.
    socket: Option<Arc<Sock>>,
}

impl Sockets {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves nothing half-written (every
        // update is a single assignment), so the table stays usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The (local, remote) addresses of `socket` as the kernel knows them,
    /// once they exist: its own connection's, or, for an accepting side
    /// that has not accepted yet, the end of the peer's connection that
    /// waits in its listener's accept queue.
    pub fn locate(&self, socket: Socket) -> Option<(SocketAddr, SocketAddr)> {
        let table = self.lock();
        if let Some(tuple) = table.conns[socket.index()].tuple {
            return Some(tuple);
        }
        if socket.link() != Link::Accepted {
            // A program's end of its connection to a script: the reverse
            // of the script's accepted end on that port.
            let port = table.connectors[socket.side() as usize]?;
            return Socket::ALL
                .into_iter()
                .filter(|s| s.link() == Link::Accepted && s.side() != socket.side())
                .filter_map(|s| table.conns[s.index()].tuple)
                .find(|(local, _)| local.port() == port)
                .map(|(local, remote)| (remote, local));
        }
        let listening = table.listeners[socket.side() as usize]?;
        Socket::ALL
            .into_iter()
            .filter(|s| s.link() == Link::Connected)
            .filter_map(|s| table.conns[s.index()].tuple)
            .find(|(_, remote)| *remote == listening)
            .map(|(local, remote)| (remote, local))
    }

    /// Runs `f` on the fd of `socket` while its side holds it; `None` when
    /// it does not. The fd stays open for the length of `f`.
    pub fn with_fd<T>(&self, socket: Socket, f: impl FnOnce(BorrowedFd<'_>) -> T) -> Option<T> {
        let table = self.lock();
        table.conns[socket.index()]
            .socket
            .as_ref()
            .map(|s| f(s.as_fd()))
    }

    fn enter(&self, socket: Socket, tuple: Option<(SocketAddr, SocketAddr)>, held: &Arc<Sock>) {
        let mut table = self.lock();
        if let Some((local, _)) = tuple {
            table.note_script_end(local);
        }
        table.conns[socket.index()] = Entry {
            tuple,
            socket: Some(Arc::clone(held)),
        };
    }

    fn withdraw(&self, socket: Socket) {
        self.lock().conns[socket.index()].socket = None;
    }

    /// Enters a listener that is not a peer's: a program under test's,
    /// playing `side`, so that its end of a connection in the kernel is
    /// found from the connecting side's 4-tuple, as a peer's is.
    pub fn program_listens(&self, side: Side, addr: SocketAddr) {
        self.set_listener(side, Some(addr));
    }

    /// Enters a program under test that plays `side` and connects to
    /// `port`, so that its end of a connection a script accepted is found
    /// from the script's 4-tuple.
    pub fn program_connects(&self, side: Side, port: u16) {
        self.lock().connectors[side as usize] = Some(port);
    }

    /// Notes (or forgets) the cookie of the program's end `socket` of the
    /// connection just made, whose addresses (program's local, peer) are
    /// `tuple`.
    pub fn set_cookie(
        &self,
        socket: Socket,
        cookie: Option<u64>,
        tuple: Option<(SocketAddr, SocketAddr)>,
    ) {
        let mut table = self.lock();
        table.cookies[socket.index()] = cookie;
        if let (Some(cookie), Some(tuple)) = (cookie, tuple) {
            if table.connections.len() == CONNECTIONS_KEPT {
                table.connections.pop_front();
            }
            table.connections.push_back((cookie, tuple));
        }
    }

    /// The connection (program's local, peer) whose program end had
    /// `cookie`, among all those noted by [`Sockets::set_cookie`].
    pub fn connection_with_cookie(&self, cookie: u64) -> Option<(SocketAddr, SocketAddr)> {
        self.lock()
            .connections
            .iter()
            .rev()
            .find(|(k, _)| *k == cookie)
            .map(|(_, tuple)| *tuple)
    }

    /// The cookie of the program's end `socket`, when it was found.
    pub fn cookie(&self, socket: Socket) -> Option<u64> {
        self.lock().cookies[socket.index()]
    }

    /// Where `side` (a script, or the program playing it) listens, while
    /// it does.
    pub fn listener(&self, side: Side) -> Option<SocketAddr> {
        self.lock().listeners[side as usize]
    }

    fn set_listener(&self, side: Side, addr: Option<SocketAddr>) {
        self.lock().listeners[side as usize] = addr;
    }

    /// Notes where a script listens: a program connecting there makes one
    /// of the case's connections.
    fn script_listens(&self, side: Side, addr: SocketAddr) {
        let mut table = self.lock();
        table.listeners[side as usize] = Some(addr);
        table.note_script_end(addr);
    }

    /// Whether a socket whose peer is `peer` is one of the case's
    /// connections: `peer` is an address a script's socket had.
    pub fn is_the_case_s(&self, peer: SocketAddr) -> bool {
        self.lock().script_ends.contains(&peer)
    }
}

impl Table {
    fn note_script_end(&mut self, addr: SocketAddr) {
        if self.script_ends.contains(&addr) {
            return;
        }
        if self.script_ends.len() == CONNECTIONS_KEPT {
            self.script_ends.pop_front();
        }
        self.script_ends.push_back(addr);
    }
}

/// One side's sockets and the options waiting for the next one.
///
/// A side holds at most a listener and one connection per [`Link`] (the
/// proxy has both links; the client and server one each). A connection
/// replaced by a later `connect` is kept open, as a program's old socket
/// would be, until the case ends.
#[derive(Debug)]
pub struct Peer {
    side: Side,
    sockets: Arc<Sockets>,
    listener: Option<Sock>,
    conns: [Option<Arc<Sock>>; 2],
    /// Whether a connection on the link was closed by an earlier step.
    closed: [bool; 2],
    /// Connections a later `connect` on the same link replaced.
    replaced: Vec<Arc<Sock>>,
    /// Options set before a socket exists; applied to the next one made.
    pending: SocketOptions,
    /// When the side's latest socket call began: where a `syscall` check's
    /// window opens.
    last_call: Option<Instant>,
    /// The address its connections are made from, when it is not the
    /// destination's own (on one loopback it is: 127.0.0.1 to 127.0.0.1;
    /// on two hosts, the side's host's).
    source: Option<std::net::IpAddr>,
}

impl Peer {
    /// A side with no sockets yet, entering the ones it makes in `sockets`.
    pub fn new(side: Side, sockets: Arc<Sockets>) -> Peer {
        Peer {
            side,
            sockets,
            listener: None,
            conns: [None, None],
            closed: [false, false],
            replaced: Vec::new(),
            pending: SocketOptions::default(),
            last_call: None,
            source: None,
        }
    }

    /// Makes its connections from `address` (its host's, on two hosts).
    pub fn connect_from(&mut self, address: std::net::IpAddr) {
        self.source = Some(address);
    }

    /// When the side's latest socket call began, if it made one.
    pub fn last_call(&self) -> Option<Instant> {
        self.last_call
    }

    /// Which side this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Makes a socket call on the connection `link` names (`listen`,
    /// `accept` and `connect` make their own sockets).
    pub fn perform(&mut self, call: &SocketCall, link: Link) -> Result<Call, NoSocket> {
        let made = self.make(call, link);
        if let Ok(call) = &made {
            self.last_call = Some(call.began);
        }
        made
    }

    fn make(&mut self, call: &SocketCall, link: Link) -> Result<Call, NoSocket> {
        match call {
            SocketCall::Listen { addr, backlog } => Ok(self.listen(*addr, *backlog)),
            SocketCall::Accept { timeout } => self.accept(*timeout),
            SocketCall::Connect {
                addr,
                timeout,
                from,
                nonblocking,
                again: false,
            } => Ok(self.connect(link, *addr, *timeout, *from, *nonblocking)),
            SocketCall::Connect {
                addr,
                timeout,
                nonblocking,
                again: true,
                ..
            } => {
                let conn = self.conn(link)?;
                Ok(connect_again(&conn, *addr, *timeout, *nonblocking))
            }
            SocketCall::Send { payload, timeout } => {
                let conn = self.conn(link)?;
                Ok(send(&conn, payload, *timeout))
            }
            SocketCall::Recv { max, timeout } => {
                let conn = self.conn(link)?;
                Ok(recv(&conn, *max, *timeout))
            }
            SocketCall::RecvUntil { until, timeout } => {
                let conn = self.conn(link)?;
                Ok(recv_until(&conn, until, *timeout))
            }
            SocketCall::Shutdown { how } => {
                let conn = self.conn(link)?;
                Ok(shutdown(&conn, *how))
            }
            SocketCall::Close => self.close(link, false),
            SocketCall::Abort => self.close(link, true),
            SocketCall::Set(options) => Ok(self.set(link, options)),
            SocketCall::SoError => {
                let conn = self.conn(link)?;
                Ok(so_error(&conn))
            }
            SocketCall::Poll { events, timeout } => match self.conn(link) {
                Ok(conn) => Ok(poll(conn.as_fd(), *events, *timeout)),
                // Like `close`, a side with no connection acts on its listener.
                Err(no_socket) => match &self.listener {
                    Some(listener) => Ok(poll(listener.as_fd(), *events, *timeout)),
                    None => Err(no_socket),
                },
            },
        }
    }

    /// The connection on `link`, or why there is none.
    fn conn(&self, link: Link) -> Result<Arc<Sock>, NoSocket> {
        match &self.conns[link as usize] {
            Some(conn) => Ok(Arc::clone(conn)),
            None if self.closed[link as usize] => Err(NoSocket::Closed),
            None => Err(NoSocket::NeverConnected),
        }
    }

    fn slot(&self, link: Link) -> Option<Socket> {
        Socket::of(self.side, link)
    }

    fn new_socket(&mut self, addr: SocketAddr) -> io::Result<Sock> {
        let socket = Sock::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        apply_options(&socket, &std::mem::take(&mut self.pending))?;
        Ok(socket)
    }

    fn listen(&mut self, addr: SocketAddr, backlog: u32) -> Call {
        let began = Instant::now();
        let result = self.new_socket(addr).and_then(|socket| {
            socket.set_reuse_address(true)?;
            socket.bind(&addr.into())?;
            socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
            Ok(socket)
        });
        let took = began.elapsed();
        let result = match result {
            Ok(listener) => {
                self.listener = Some(listener);
                self.sockets.script_listens(self.side, addr);
                CallResult::ok(0)
            }
            Err(err) => CallResult::from_io(&err, 0),
        };
        Call {
            result,
            began,
            took,
            received: Vec::new(),
        }
    }

    fn accept(&mut self, timeout: Option<Duration>) -> Result<Call, NoSocket> {
        let listener = self.listener.as_ref().ok_or(NoSocket::NoListener)?;
        if let Err(err) = listener.set_read_timeout(kernel_timeout(timeout)) {
            return Ok(instant(CallResult::from_io(&err, 0)));
        }
        let began = Instant::now();
        let accepted = listener.accept();
        let took = began.elapsed();
        let result = match accepted {
            Ok((conn, remote)) => {
                let tuple = conn
                    .local_addr()
                    .ok()
                    .and_then(|l| l.as_socket())
                    .zip(remote.as_socket());
                let conn = Arc::new(conn);
                if let Some(slot) = self.slot(Link::Accepted) {
                    self.sockets.enter(slot, tuple, &conn);
                }
                self.hold(Link::Accepted, conn);
                CallResult::ok(0)
            }
            Err(err) => CallResult::from_io(&err, 0),
        };
        Ok(Call {
            result,
            began,
            took,
            received: Vec::new(),
        })
    }

    /// A blocking `connect(2)` under `SO_SNDTIMEO`. The socket is bound
    /// first so its 4-tuple is known, and entered in the table, before the
    /// SYN leaves: a state check sees it in SYN_SENT while the call blocks.
    /// A failed connect keeps its socket (fd CLOSE), as a program's would.
    fn connect(
        &mut self,
        link: Link,
        addr: SocketAddr,
        timeout: Option<Duration>,
        from: Option<u16>,
        nonblocking: bool,
    ) -> Call {
        let prepared = self.new_socket(addr).and_then(|socket| {
            let source = self.source.unwrap_or(addr.ip());
            socket.bind(&SocketAddr::new(source, from.unwrap_or(0)).into())?;
            socket.set_write_timeout(kernel_timeout(timeout))?;
            socket.set_nonblocking(nonblocking)?;
            let local = socket.local_addr()?.as_socket();
            Ok((socket, local))
        });
        let (socket, local) = match prepared {
            Ok(prepared) => prepared,
            Err(err) => return instant(CallResult::from_io(&err, 0)),
        };
        let socket = Arc::new(socket);
        if let Some(slot) = self.slot(link) {
            self.sockets.enter(slot, local.map(|l| (l, addr)), &socket);
        }
        let began = Instant::now();
        let connected = socket.connect(&addr.into());
        let took = began.elapsed();
        // Later calls on it block, as the steps that follow expect; the
        // handshake goes on in the kernel either way.
        if nonblocking {
            let _ = socket.set_nonblocking(false);
        }
        self.hold(link, socket);
        let result = match connected {
            Ok(()) => CallResult::ok(0),
            Err(err) => CallResult::from_io(&err, 0),
        };
        Call {
            result,
            began,
            took,
            received: Vec::new(),
        }
    }

    /// Makes `conn` the side's connection on `link`; one it had there is
    /// kept open but no longer acted on.
    fn hold(&mut self, link: Link, conn: Arc<Sock>) {
        if let Some(old) = self.conns[link as usize].replace(conn) {
            self.replaced.push(old);
        }
        self.closed[link as usize] = false;
    }

    /// `close(2)` of the connection; with `abort`, `SO_LINGER {on, 0}`
    /// first. A side without a connection closes its listener instead, so
    /// a server can stop listening (new connects then see ECONNREFUSED).
    /// A lingering close blocks in the kernel, as it would in a program.
    fn close(&mut self, link: Link, abort: bool) -> Result<Call, NoSocket> {
        let Some(conn) = self.conns[link as usize].take() else {
            if let Some(listener) = self.listener.take() {
                self.sockets.set_listener(self.side, None);
                return Ok(timed(|| {
                    drop(listener);
                    CallResult::ok(0)
                }));
            }
            return Err(if self.closed[link as usize] {
                NoSocket::Closed
            } else {
                NoSocket::NeverConnected
            });
        };
        if abort {
            if let Err(err) = conn.set_linger(Some(Duration::ZERO)) {
                self.conns[link as usize] = Some(conn);
                return Ok(instant(CallResult::from_io(&err, 0)));
            }
        }
        if let Some(slot) = self.slot(link) {
            self.sockets.withdraw(slot);
        }
        self.closed[link as usize] = true;
        // State checks only borrow the fd under the table's lock, so after
        // the withdrawal this is the last reference and dropping it is the
        // `close(2)`.
        Ok(timed(move || {
            drop(conn);
            CallResult::ok(0)
        }))
    }

    fn set(&mut self, link: Link, options: &SocketOptions) -> Call {
        // Options on a listener are inherited by the connections it accepts.
        let listener = self.listener.as_ref().filter(|_| link == Link::Accepted);
        let result = match (&self.conns[link as usize], listener) {
            (Some(conn), _) => apply_options(conn.as_ref(), options),
            (None, Some(listener)) => apply_options(listener, options),
            (None, None) => {
                merge_options(&mut self.pending, options);
                Ok(())
            }
        };
        instant(match result {
            Ok(()) => CallResult::ok(0),
            Err(err) => CallResult::from_io(&err, 0),
        })
    }
}

/// `SO_RCVTIMEO`/`SO_SNDTIMEO` for a step's timeout: `None` blocks. A zero
/// `timeval` would also mean "block", so the shortest timeout the kernel
/// takes is one microsecond.
fn kernel_timeout(timeout: Option<Duration>) -> Option<Duration> {
    timeout.map(|t| t.max(Duration::from_micros(1)))
}

/// `connect(2)` again on a socket that has already been asked to connect:
/// the kernel answers with where that attempt is (EALREADY while pending
/// and the call may not wait, its error once it failed, EISCONN or success
/// once it connected).
fn connect_again(
    conn: &Sock,
    addr: SocketAddr,
    timeout: Option<Duration>,
    nonblocking: bool,
) -> Call {
    let prepared = conn
        .set_write_timeout(kernel_timeout(timeout))
        .and_then(|()| conn.set_nonblocking(nonblocking));
    if let Err(err) = prepared {
        return instant(CallResult::from_io(&err, 0));
    }
    let call = timed(|| match conn.connect(&addr.into()) {
        Ok(()) => CallResult::ok(0),
        Err(err) => CallResult::from_io(&err, 0),
    });
    if nonblocking {
        let _ = conn.set_nonblocking(false);
    }
    call
}

/// `getsockopt(SO_ERROR)`: the pending error is the outcome, `ok` when
/// there is none. The kernel clears it as it answers.
fn so_error(conn: &Sock) -> Call {
    timed(|| match conn.take_error() {
        Ok(None) => CallResult::ok(0),
        Ok(Some(pending)) => CallResult::from_io(&pending, 0),
        Err(err) => CallResult::from_io(&err, 0),
    })
}

/// `poll(2)` on one fd: what the kernel reported ready, none when the
/// timeout passed first.
///
/// Called through libc: nix's `PollFlags` has no `POLLRDHUP`, the event
/// that tells a server its peer half-closed.
fn poll(fd: BorrowedFd<'_>, events: PollEvents, timeout: Option<Duration>) -> Call {
    let wait_ms: nix::libc::c_int = match timeout {
        None => -1,
        // poll(2) counts whole milliseconds; round up so it never returns
        // before the step's timeout.
        Some(t) => t
            .as_micros()
            .div_ceil(1000)
            .try_into()
            .unwrap_or(nix::libc::c_int::MAX),
    };
    let mut fds = [nix::libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: events.raw(),
        revents: 0,
    }];
    timed(|| {
        // SAFETY: `fds` is one initialised pollfd that outlives the call,
        // and its fd is borrowed, so it stays open for the call's length.
        let n = unsafe { nix::libc::poll(fds.as_mut_ptr(), 1, wait_ms) };
        if n < 0 {
            return CallResult::from_io(&io::Error::last_os_error(), 0);
        }
        let mut result = CallResult::ok(0);
        result.ready = Some(PollEvents::from_raw(fds[0].revents));
        result
    })
}

/// A call that made no blocking syscall: its setup failed or it only set
/// options.
fn instant(result: CallResult) -> Call {
    Call {
        result,
        began: Instant::now(),
        took: Duration::ZERO,
        received: Vec::new(),
    }
}

fn timed(f: impl FnOnce() -> CallResult) -> Call {
    let began = Instant::now();
    let result = f();
    Call {
        result,
        began,
        took: began.elapsed(),
        received: Vec::new(),
    }
}

/// Writes the whole payload (see the [module docs](self) for the timeout).
fn send(conn: &Sock, payload: &Payload, timeout: Option<Duration>) -> Call {
    // Built before the clock starts: a 200 MB filler is this side's work,
    // not part of the call.
    let bytes = payload_bytes(payload);
    let mut written = 0usize;
    let began = Instant::now();
    let budget_end = timeout.map(|t| began + t);
    let result = loop {
        if written == bytes.len() {
            break CallResult::ok(written as u64);
        }
        let flags = match budget_end {
            None => {
                if let Err(err) = conn.set_write_timeout(None) {
                    break CallResult::from_io(&err, written as u64);
                }
                0
            }
            Some(end) => {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // The step's time is spent after a partial write: the
                    // kernel says whether there is room now.
                    nix::libc::MSG_DONTWAIT
                } else {
                    if let Err(err) = conn.set_write_timeout(kernel_timeout(Some(left))) {
                        break CallResult::from_io(&err, written as u64);
                    }
                    0
                }
            }
        };
        // MSG_NOSIGNAL: a write after the peer's RST returns EPIPE instead
        // of raising SIGPIPE, as servers that ignore SIGPIPE see it.
        match conn.send_with_flags(&bytes[written..], flags | nix::libc::MSG_NOSIGNAL) {
            Ok(n) => {
                written += n;
                if flags & nix::libc::MSG_DONTWAIT != 0 && written < bytes.len() {
                    // Room for some but not all: the kernel's next answer
                    // decides, without blocking past the timeout.
                    continue;
                }
            }
            Err(err) => break CallResult::from_io(&err, written as u64),
        }
    };
    Call {
        result,
        began,
        took: began.elapsed(),
        received: Vec::new(),
    }
}

fn read_once(conn: &Sock, buf: &mut [u8]) -> io::Result<usize> {
    let mut reader: &Sock = conn;
    reader.read(buf)
}

/// One read under `SO_RCVTIMEO`.
fn recv(conn: &Sock, max: usize, timeout: Option<Duration>) -> Call {
    let mut buf = vec![0u8; max];
    if let Err(err) = conn.set_read_timeout(kernel_timeout(timeout)) {
        return instant(CallResult::from_io(&err, 0));
    }
    let mut call = timed(|| match read_once(conn, &mut buf) {
        Ok(0) => CallResult::eof(0),
        Ok(n) => CallResult::ok(n as u64),
        Err(err) => CallResult::from_io(&err, 0),
    });
    if matches!(call.result.outcome, crate::model::Outcome::Ok) {
        buf.truncate((call.result.bytes as usize).min(RECEIVED_KEPT));
        call.received = buf;
    }
    call
}

/// Reads until a byte count or a pattern; `timeout` is each read's
/// `SO_RCVTIMEO`, the idle time a per-read socket timeout allows.
fn recv_until(conn: &Sock, until: &Until, timeout: Option<Duration>) -> Call {
    let mut buf = vec![0u8; 64 * 1024];
    if let Err(err) = conn.set_read_timeout(kernel_timeout(timeout)) {
        return instant(CallResult::from_io(&err, 0));
    }
    // Only the tail that could hold a pattern split across reads is kept
    // for the search; the start of what arrived, for a `matches` check.
    let mut tail: Vec<u8> = Vec::new();
    let mut kept: Vec<u8> = Vec::new();
    let mut call = timed(|| {
        let mut total = 0u64;
        loop {
            match read_once(conn, &mut buf) {
                Err(err) => return CallResult::from_io(&err, total),
                Ok(0) => return CallResult::eof(total),
                Ok(n) => {
                    total += n as u64;
                    let room = RECEIVED_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
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
    });
    call.received = kept;
    call
}

fn shutdown(conn: &Sock, how: How) -> Call {
    let how = match how {
        How::Read => std::net::Shutdown::Read,
        How::Write => std::net::Shutdown::Write,
        How::Both => std::net::Shutdown::Both,
    };
    timed(|| match conn.shutdown(how) {
        Ok(()) => CallResult::ok(0),
        Err(err) => CallResult::from_io(&err, 0),
    })
}

/// A payload's bytes; filler is a repeating alphabet so captures stay legible.
fn payload_bytes(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::Text { text, repeat } => text.repeat(*repeat).into_bytes(),
        Payload::Size(n) => {
            // Doubling copies, not a loop per byte: megabytes of filler in a
            // debug build would otherwise take tens of milliseconds.
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
    use rstest::rstest;

    use super::*;
    use crate::model::{Outcome, TcpState};

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
        let result = call.expect("a socket to act on").result;
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
