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
//! A socket a `set` made non-blocking (`O_NONBLOCK`) keeps its timeouts
//! but the kernel no longer waits on them: its calls return EAGAIN (a
//! connect EINPROGRESS) at once, as a program's event loop sees them. A
//! `connect` with `nonblocking = true` makes only that call non-blocking,
//! and leaves the socket as it found it.
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
//!
//! # Where things are
//!
//! This file holds a side's [`Peer`] and what it does with its own
//! sockets (make, connect, accept, hold, close). `sockets.rs` is the
//! case's shared table every side enters its sockets in ([`Sockets`]);
//! `calls.rs` the syscalls made on one connection (send, the reads,
//! shutdown, poll) and how each is timed; `options.rs` the socket options
//! a `set` step applies.

mod calls;
mod options;
mod sockets;
#[cfg(test)]
mod tests;

pub use sockets::Sockets;

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket as Sock, Type};

use crate::model::{CallResult, Link, Side, Socket};
use crate::suite::{SocketCall, SocketOptions};
use calls::{
    connect_again, instant, kernel_timeout, poll, recv, recv_until, send, shutdown, so_error, timed,
};
use options::{apply_options, merge_options, nonblocking_for_the_call};

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
    /// A `set` of a congestion control algorithm the kernel has not
    /// loaded, while hangup runs as root of the machine: the kernel would
    /// then run `modprobe tcp_<name>` on the host (its `capable()` check),
    /// and hangup changes nothing outside its own namespaces. Rootless, the
    /// kernel loads nothing and answers for itself (ENOENT).
    #[error(
        "the kernel has no such congestion control loaded (see /proc/sys/net/ipv4/tcp_available_congestion_control), and asked as root it would run modprobe on the host to find one: hangup loads no kernel module; load it first, or run rootless to see the kernel's ENOENT"
    )]
    CongestionNotLoaded,
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
            SocketCall::Set(options) => {
                if let Some(name) = &options.congestion {
                    options::may_ask_for_congestion(name)?;
                }
                Ok(self.set(link, options))
            }
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
            let local = socket.local_addr()?.as_socket();
            Ok((socket, local))
        });
        let prepared = prepared.and_then(|(socket, local)| {
            let restore = nonblocking_for_the_call(socket.as_fd(), nonblocking)?;
            Ok((socket, local, restore))
        });
        let (socket, local, restore) = match prepared {
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
        // Later calls on it block (unless a `set` made the socket
        // non-blocking), as the steps that follow expect; the handshake goes
        // on in the kernel either way.
        if restore {
            let _ = options::set_nonblocking(socket.as_fd(), false);
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
