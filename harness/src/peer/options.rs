//! Socket options a `set` step applies (linger, nodelay, keepalive,
//! buffer sizes, the user timeout, the unsent low-water mark, congestion
//! control, `O_NONBLOCK`): on a socket that exists, or kept for the next
//! one the side makes.
//!
//! Each is one call the kernel answers (`setsockopt(2)`, or `fcntl(2)` for
//! `O_NONBLOCK`), made in the order below; the first it refuses ends the
//! step with its errno, the ones before it stay set. Whether the kernel
//! has a congestion control algorithm, or lets this side use it, is the
//! kernel's to say (ENOENT, EPERM), with one exception checked beforehand:
//! as root of the machine, hangup does not ask for one the kernel has not
//! loaded, since the kernel would load a module on the host to find it
//! ([`may_ask_for_congestion`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{self as sock, sockopt};
use socket2::SockRef;

use crate::suite::SocketOptions;

pub(super) fn merge_options(into: &mut SocketOptions, from: &SocketOptions) {
    into.linger = from.linger.or(into.linger);
    into.nodelay = from.nodelay.or(into.nodelay);
    into.keepalive = from.keepalive.or(into.keepalive);
    into.rcvbuf = from.rcvbuf.or(into.rcvbuf);
    into.sndbuf = from.sndbuf.or(into.sndbuf);
    into.user_timeout = from.user_timeout.or(into.user_timeout);
    into.notsent_lowat = from.notsent_lowat.or(into.notsent_lowat);
    into.congestion = from.congestion.clone().or(into.congestion.take());
    into.nonblocking = from.nonblocking.or(into.nonblocking);
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
    let socket = SockRef::from(&fd);
    if let Some(timeout) = options.user_timeout {
        // Whole milliseconds of at most a day (the parser's limits): the
        // kernel is handed exactly what the suite wrote, 0 for "0s".
        socket.set_tcp_user_timeout(Some(timeout))?;
    }
    if let Some(lowat) = options.notsent_lowat {
        socket.set_tcp_notsent_lowat(lowat)?;
    }
    if let Some(name) = &options.congestion {
        // The name's bytes without a NUL, as a program hands them over.
        socket.set_tcp_congestion(name.as_bytes())?;
    }
    if let Some(on) = options.nonblocking {
        set_nonblocking(fd, on)?;
    }
    Ok(())
}

/// Whether a `set` may ask the kernel for congestion control `name`: it
/// may, unless the kernel has not loaded it and hangup is root of the
/// machine, when the kernel would load a module on the host to find it
/// (see [`super::NoSocket::CongestionNotLoaded`]).
pub(super) fn may_ask_for_congestion(name: &str) -> Result<(), super::NoSocket> {
    let loaded = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .is_ok_and(|list| list.split_whitespace().any(|n| n == name));
    if loaded || !crate::sandbox::root_in_initial_user_namespace() {
        Ok(())
    } else {
        Err(super::NoSocket::CongestionNotLoaded)
    }
}

/// For a `connect` with `nonblocking = true`: sets `O_NONBLOCK` for that
/// one call, and says whether it must be cleared after it (`false` when
/// it was not asked for, or a `set` had already made the socket
/// non-blocking, which it stays).
pub(super) fn nonblocking_for_the_call(fd: BorrowedFd<'_>, asked: bool) -> io::Result<bool> {
    if !asked {
        return Ok(false);
    }
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    if OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK) {
        return Ok(false);
    }
    set_nonblocking(fd, true)?;
    Ok(true)
}

/// Sets or clears `O_NONBLOCK`, keeping the file's other status flags.
pub(super) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let mut flags = OFlag::from_bits_truncate(flags);
    flags.set(OFlag::O_NONBLOCK, on);
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}
