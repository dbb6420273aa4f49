//! Judging a `released` check: what a program still holds (the case's
//! connections, sockets left in CLOSE_WAIT or CLOSE, connections waiting
//! in its accept queue), with its fds told beside, not judged; and how
//! those held things read in words.

use std::fmt;
use std::time::Duration;

use super::{Mismatch, MismatchKind, millis};

/// Judges a `released` check: the program holds `sockets` (its TCP
/// sockets but its listeners) and its listeners hold `queued` connections
/// it has not accepted. It passes when none of them is held against it
/// ([`HeldSocket::is_held_against`](crate::record::HeldSocket::is_held_against):
/// one of the case's connections, or a socket left in CLOSE_WAIT or
/// CLOSE) and none waits to be accepted. Its fds (`fds` now,
/// `fds_at_ready`, and the ones opened since) are said beside, not
/// judged: a runtime opens some lazily (a JVM's NIO a socketpair on its
/// first request), and a leaked connection is a socket, which is judged.
pub fn judge_released(
    sockets: &[crate::record::HeldSocket],
    queued: &[crate::record::QueuedAt],
    (fds, fds_at_ready, new_fds): (usize, Option<usize>, &[crate::record::OpenFd]),
    within: Option<Duration>,
) -> Result<(), Mismatch> {
    let against: Vec<&crate::record::HeldSocket> =
        sockets.iter().filter(|s| s.is_held_against()).collect();
    if against.is_empty() && queued.is_empty() {
        return Ok(());
    }
    let when = within
        .map(|d| format!(" within {}", millis(d)))
        .unwrap_or_default();
    let expected = format!(
        "the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE, and none waiting to be accepted{when}"
    );
    let held: Vec<String> = queued
        .iter()
        .map(ToString::to_string)
        .chain(against.iter().map(ToString::to_string))
        .collect();
    let observed = format!(
        "it holds {}; {}",
        held.join("; "),
        fds_in_words(fds, fds_at_ready, new_fds)
    );
    Err(Mismatch {
        kind: MismatchKind::Held,
        expected,
        observed,
    })
}

/// A program's fds as a `released` check tells them: `7 fds (6 at ready;
/// opened since: fd 8 socket UNIX-STREAM)`, `6 fds (as at ready)`.
pub fn fds_in_words(
    fds: usize,
    fds_at_ready: Option<usize>,
    new_fds: &[crate::record::OpenFd],
) -> String {
    let Some(at_ready) = fds_at_ready else {
        return format!("{fds} fds");
    };
    if new_fds.is_empty() && fds == at_ready {
        return format!("{fds} fds (as at ready)");
    }
    let mut out = format!("{fds} fds ({at_ready} at ready");
    if !new_fds.is_empty() {
        let named: Vec<String> = new_fds
            .iter()
            .map(|fd| match fd.pid {
                Some(pid) => format!("pid {pid} fd {}: {}", fd.fd, fd.target),
                None => format!("fd {}: {}", fd.fd, fd.target),
            })
            .collect();
        out.push_str(&format!("; opened since: {}", named.join(", ")));
    }
    out.push(')');
    out
}

/// `fd 7: CLOSE_WAIT 127.0.0.1:8080 <- 127.0.0.1:41234`, `pid 57 fd 7:
/// CLOSE (was 127.0.0.1:8080 <- 127.0.0.1:41234)`.
impl fmt::Display for crate::record::HeldSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pid) = self.pid {
            write!(f, "pid {pid} ")?;
        }
        write!(f, "fd {}: {}", self.fd, self.state.name())?;
        if let Some(local) = self.local {
            write!(f, " {local}")?;
        }
        if let Some(remote) = self.remote {
            write!(f, " <- {remote}")?;
        }
        if let Some((local, peer)) = self.was {
            write!(f, " (was {local} <- {peer})")?;
        }
        Ok(())
    }
}

/// `2 connections waiting in the accept queue of fd 4 (127.0.0.1:8080)`.
impl fmt::Display for crate::record::QueuedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.waiting {
            1 => f.write_str("1 connection")?,
            n => write!(f, "{n} connections")?,
        }
        write!(
            f,
            " waiting in the accept queue of fd {} ({})",
            self.fd, self.local
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TcpState;

    #[test]
    fn a_release_judges_connections_and_tells_fds_beside() {
        use crate::record::{HeldSocket, OpenFd, QueuedAt};
        let socket = |state, of_the_case| HeldSocket {
            pid: None,
            fd: 7,
            state,
            local: Some("127.0.0.1:8080".parse().expect("addr")),
            remote: Some("127.0.0.1:40000".parse().expect("addr")),
            was: None,
            of_the_case,
        };
        let grown = [OpenFd {
            pid: None,
            fd: 8,
            target: "socket UNIX-STREAM".into(),
        }];
        // Nothing held, an fd more than at ready: it passes (the fd is said
        // in the timeline, not judged).
        assert!(judge_released(&[], &[], (8, Some(7), &grown), None).is_ok());
        // A connection of its own to something else, established: its
        // business.
        let own = [socket(TcpState::Established, false)];
        assert!(judge_released(&own, &[], (8, Some(8), &[]), None).is_ok());
        // One of the case's connections, in any state; or any socket left in
        // CLOSE_WAIT or CLOSE.
        for held in [
            socket(TcpState::Established, true),
            socket(TcpState::CloseWait, false),
            socket(TcpState::Close, false),
        ] {
            assert!(judge_released(&[held], &[], (8, Some(8), &[]), None).is_err());
        }
        let err = judge_released(
            &[socket(TcpState::CloseWait, true)],
            &[],
            (8, Some(7), &grown),
            Some(Duration::from_secs(1)),
        )
        .unwrap_err();
        assert_eq!(err.kind, MismatchKind::Held);
        assert_eq!(
            err.expected,
            "the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE, and none waiting to be accepted within 1000 ms"
        );
        assert_eq!(
            err.observed,
            "it holds fd 7: CLOSE_WAIT 127.0.0.1:8080 <- 127.0.0.1:40000; 8 fds (7 at ready; opened since: fd 8: socket UNIX-STREAM)"
        );
        let queued = [QueuedAt {
            fd: 4,
            local: "127.0.0.1:8080".parse().expect("addr"),
            waiting: 2,
        }];
        let err = judge_released(&[], &queued, (5, Some(5), &[]), None).unwrap_err();
        assert_eq!(
            err.observed,
            "it holds 2 connections waiting in the accept queue of fd 4 (127.0.0.1:8080); 5 fds (as at ready)"
        );
    }
}
