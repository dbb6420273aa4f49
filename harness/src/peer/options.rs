//! Socket options a `set` step applies (linger, nodelay, keepalive,
//! buffer sizes): on a socket that exists, or kept for the next one the
//! side makes.

use std::io;
use std::os::fd::AsFd;

use nix::sys::socket::{self as sock, sockopt};

use crate::suite::SocketOptions;

pub(super) fn merge_options(into: &mut SocketOptions, from: &SocketOptions) {
    into.linger = from.linger.or(into.linger);
    into.nodelay = from.nodelay.or(into.nodelay);
    into.keepalive = from.keepalive.or(into.keepalive);
    into.rcvbuf = from.rcvbuf.or(into.rcvbuf);
    into.sndbuf = from.sndbuf.or(into.sndbuf);
}

pub(super) fn apply_options(fd: &impl AsFd, options: &SocketOptions) -> io::Result<()> {
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
