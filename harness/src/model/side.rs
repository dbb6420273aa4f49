//! The ends of a connection, named the way the scenario catalog
//! (`docs/scenarios.md`) names them, and the sockets a state check can
//! point at.

use std::fmt;

/// Whose script a step is in, and whose column a timeline event goes in.
///
/// Any side may be a scripted peer of the harness; later the server may be
/// a real program under test. Ordered client, proxy, server so timelines
/// read left to right the way TCP ladder diagrams do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The end that connects.
    Client,
    /// A middle peer (S12's idle-closing proxy, or S15's server with an
    /// upstream): it accepts the client's connection and makes its own to
    /// the server, so it holds two sockets.
    Proxy,
    /// The end that listens and accepts.
    Server,
}

impl Side {
    /// Every side, in the order reports list them (and their index).
    pub const ALL: [Side; 3] = [Side::Client, Side::Proxy, Side::Server];

    /// The lowercase name suites use as a key.
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Proxy => "proxy",
            Side::Server => "server",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which of a side's two possible connections a step acts on: the one it
/// accepted or the one it made. The client only connects and the server
/// only accepts; the proxy has both and names them by who is at the other
/// end (`on = "client"` is the accepted one).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// The connection this side accepted.
    Accepted,
    /// The connection this side made with `connect`.
    Connected,
}

/// A socket a `state` check names: each side's connection, and the proxy's
/// two (`proxy_client` faces the client, `proxy_server` the server).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Socket {
    /// The client's connection.
    Client,
    /// The proxy's connection accepted from the client.
    ProxyClient,
    /// The proxy's connection made to the server.
    ProxyServer,
    /// The server's accepted connection.
    Server,
}

impl Socket {
    /// Every socket, in timeline order.
    pub const ALL: [Socket; 4] = [
        Socket::Client,
        Socket::ProxyClient,
        Socket::ProxyServer,
        Socket::Server,
    ];

    /// The key a `state` check uses.
    pub fn name(self) -> &'static str {
        match self {
            Socket::Client => "client",
            Socket::ProxyClient => "proxy_client",
            Socket::ProxyServer => "proxy_server",
            Socket::Server => "server",
        }
    }

    /// Whose socket it is.
    pub fn side(self) -> Side {
        match self {
            Socket::Client => Side::Client,
            Socket::ProxyClient | Socket::ProxyServer => Side::Proxy,
            Socket::Server => Side::Server,
        }
    }

    /// Which of its side's connections it is.
    pub fn link(self) -> Link {
        match self {
            Socket::Client | Socket::ProxyServer => Link::Connected,
            Socket::ProxyClient | Socket::Server => Link::Accepted,
        }
    }

    /// The socket a side holds on a link, if a side can hold one there
    /// (a client never accepts, a server never connects).
    pub fn of(side: Side, link: Link) -> Option<Socket> {
        Socket::ALL
            .into_iter()
            .find(|s| s.side() == side && s.link() == link)
    }

    /// Position in [`Socket::ALL`], for per-socket tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_socket_is_found_from_its_side_and_link() {
        for socket in Socket::ALL {
            assert_eq!(Socket::of(socket.side(), socket.link()), Some(socket));
            assert_eq!(Socket::ALL[socket.index()], socket);
        }
        assert_eq!(Socket::of(Side::Client, Link::Accepted), None);
        assert_eq!(Socket::of(Side::Server, Link::Connected), None);
    }
}
