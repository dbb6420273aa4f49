//! The TCP state of one of our own sockets, asked of its fd through
//! `getsockopt(TCP_INFO)`: what sock_diag cannot say of a socket reset
//! into CLOSE, which leaves the kernel's table while its fd is held.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::libc;

use super::ObserveError;
use crate::model::TcpState;

/// The TCP state of one of our own sockets, from `getsockopt(TCP_INFO)`.
///
/// Unlike sock_diag this answers for a socket that was reset into CLOSE and
/// so left the kernel's table while we still hold its fd.
pub fn tcp_info_state(fd: BorrowedFd<'_>) -> Result<TcpState, ObserveError> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` points to a writable `tcp_info` of `len` bytes that
    // lives across the call, and the kernel writes at most `len` bytes into
    // it and stores the written length in `len`; `fd` is a valid open fd for
    // the lifetime of the borrow. `tcp_info` consists of plain integers, so
    // the zeroed value, partly or wholly overwritten by the kernel, is a
    // valid `tcp_info` and `assume_init` is sound.
    let (result, info) = unsafe {
        let result = libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        );
        (result, info.assume_init())
    };
    Errno::result(result).map_err(|source| ObserveError::TcpInfo { source })?;
    if len == 0 {
        return Err(ObserveError::TcpInfoState { code: 0 });
    }
    TcpState::from_kernel(info.tcpi_state).ok_or(ObserveError::TcpInfoState {
        code: info.tcpi_state,
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn tcp_info_on_a_non_tcp_fd_is_an_error() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        let err = tcp_info_state(read.as_fd()).unwrap_err();
        assert!(
            matches!(
                err,
                ObserveError::TcpInfo {
                    source: Errno::ENOTSOCK
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "TCP_INFO failed: ENOTSOCK: Socket operation on non-socket"
        );
    }
}
