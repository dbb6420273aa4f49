//! The case's table of every side's sockets, shared by the sides' threads:
//! a side enters each socket it makes before the call that could block on
//! it, so a state check on any thread can find its 4-tuple and borrow its
//! fd at any time; and the addresses and cookies that tell a program
//! under test's connections apart from others.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use socket2::Socket as Sock;

use crate::model::{Link, Side, Socket};

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

    pub(super) fn enter(
        &self,
        socket: Socket,
        tuple: Option<(SocketAddr, SocketAddr)>,
        held: &Arc<Sock>,
    ) {
        let mut table = self.lock();
        if let Some((local, _)) = tuple {
            table.note_script_end(local);
        }
        table.conns[socket.index()] = Entry {
            tuple,
            socket: Some(Arc::clone(held)),
        };
    }

    pub(super) fn withdraw(&self, socket: Socket) {
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

    pub(super) fn set_listener(&self, side: Side, addr: Option<SocketAddr>) {
        self.lock().listeners[side as usize] = addr;
    }

    /// Notes where a script listens: a program connecting there makes one
    /// of the case's connections.
    pub(super) fn script_listens(&self, side: Side, addr: SocketAddr) {
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
