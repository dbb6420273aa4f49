//! The syscalls a step makes on one connection (send, recv, recv-until,
//! shutdown, `SO_ERROR`, poll, a second connect) and how each is timed:
//! the step's timeout is the kernel's (`SO_RCVTIMEO`, `SO_SNDTIMEO`), and
//! a [`Call`] records when the syscall began and how long it took.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use socket2::Socket as Sock;

use super::options::{nonblocking_for_the_call, set_nonblocking};
use super::{Call, RECEIVED_KEPT};
use crate::model::{CallResult, PollEvents, Short};
use crate::suite::{How, Payload, Until};

/// `SO_RCVTIMEO`/`SO_SNDTIMEO` for a step's timeout: `None` blocks. A zero
/// `timeval` would also mean "block", so the shortest timeout the kernel
/// takes is one microsecond.
pub(super) fn kernel_timeout(timeout: Option<Duration>) -> Option<Duration> {
    timeout.map(|t| t.max(Duration::from_micros(1)))
}

/// `connect(2)` again on a socket that has already been asked to connect:
/// the kernel answers with where that attempt is (EALREADY while pending
/// and the call may not wait, its error once it failed, EISCONN or success
/// once it connected).
pub(super) fn connect_again(
    conn: &Sock,
    addr: SocketAddr,
    timeout: Option<Duration>,
    nonblocking: bool,
) -> Call {
    let prepared = conn
        .set_write_timeout(kernel_timeout(timeout))
        .and_then(|()| nonblocking_for_the_call(conn.as_fd(), nonblocking));
    let restore = match prepared {
        Ok(restore) => restore,
        Err(err) => return instant(CallResult::from_io(&err, 0)),
    };
    let call = timed(|| match conn.connect(&addr.into()) {
        Ok(()) => CallResult::ok(0),
        Err(err) => CallResult::from_io(&err, 0),
    });
    if restore {
        let _ = set_nonblocking(conn.as_fd(), false);
    }
    call
}

/// `getsockopt(SO_ERROR)`: the pending error is the outcome, `ok` when
/// there is none. The kernel clears it as it answers.
pub(super) fn so_error(conn: &Sock) -> Call {
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
pub(super) fn poll(fd: BorrowedFd<'_>, events: PollEvents, timeout: Option<Duration>) -> Call {
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
pub(super) fn instant(result: CallResult) -> Call {
    Call {
        result,
        began: Instant::now(),
        took: Duration::ZERO,
        received: Vec::new(),
    }
}

pub(super) fn timed(f: impl FnOnce() -> CallResult) -> Call {
    let began = Instant::now();
    let result = f();
    Call {
        result,
        began,
        took: began.elapsed(),
        received: Vec::new(),
    }
}

/// Writes the whole payload (see the [`peer` docs](super) for the timeout).
pub(super) fn send(conn: &Sock, payload: &Payload, timeout: Option<Duration>) -> Call {
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
pub(super) fn recv(conn: &Sock, max: usize, timeout: Option<Duration>) -> Call {
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
///
/// A byte count is read exactly: no read asks for more than is still
/// wanted, so what arrived beyond it stays in the socket's receive queue,
/// as it would for a client that read that far. (Unread data decides what
/// a close sends: a reset rather than a FIN. A sweep's phase "after k
/// bytes of the response" depends on it.)
pub(super) fn recv_until(conn: &Sock, until: &Until, timeout: Option<Duration>) -> Call {
    let mut buf = vec![0u8; 64 * 1024];
    if let Err(err) = conn.set_read_timeout(kernel_timeout(timeout)) {
        return instant(CallResult::from_io(&err, 0));
    }
    let mark = match until {
        Until::Chunks { chunks } => Some(Mark::Chunk(*chunks)),
        Until::Body { body } => Some(Mark::Body(*body)),
        Until::Bytes(_) | Until::Pattern(_) => None,
    };
    if let Some(mark) = mark {
        let mut reader = Exact {
            conn,
            total: 0,
            kept: Vec::new(),
        };
        let mut call = timed(|| match reader.to(mark) {
            Ok(None) => CallResult::ok(reader.total),
            Ok(Some(short)) => CallResult {
                short: Some(short),
                ..CallResult::ok(reader.total)
            },
            Err(result) => result,
        });
        call.received = reader.kept;
        return call;
    }
    // Only the tail that could hold a pattern split across reads is kept
    // for the search; the start of what arrived, for a `matches` check.
    let mut tail: Vec<u8> = Vec::new();
    let mut kept: Vec<u8> = Vec::new();
    let mut call = timed(|| {
        let mut total = 0u64;
        loop {
            let room = match until {
                Until::Bytes(want) => {
                    let left = usize::try_from(want.saturating_sub(total)).unwrap_or(usize::MAX);
                    left.clamp(1, buf.len())
                }
                Until::Pattern(_) | Until::Chunks { .. } | Until::Body { .. } => buf.len(),
            };
            match read_once(conn, &mut buf[..room]) {
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
                        Until::Bytes(_) | Until::Chunks { .. } | Until::Body { .. } => {}
                    }
                }
            }
        }
    });
    call.received = kept;
    call
}

/// A mark of an HTTP response's framing that a read stops at exactly.
#[derive(Debug, Clone, Copy)]
enum Mark {
    /// The end of this chunk of a chunked body (its data's CRLF).
    Chunk(u64),
    /// This many bytes after the headers' blank line.
    Body(u64),
}

/// The most an HTTP response's headers may take before a read to a mark
/// of its framing gives up on them ([`Short::NoHeaders`]); a chunk's size
/// line may take [`MAX_SIZE_LINE`].
const MAX_HEAD: usize = 64 * 1024;
const MAX_SIZE_LINE: usize = 1024;

/// Reads a response exactly to a mark, never a byte past it: the kernel
/// is asked (`MSG_PEEK`) what has arrived, and only the bytes up to the
/// end of what is sought are taken from the receive queue. What follows
/// stays there, so a later `close` sends the reset that unread data
/// makes, as it would for a client that read that far. Every read is
/// under the step's `SO_RCVTIMEO`; its errno, or EOF, ends the call.
struct Exact<'a> {
    conn: &'a Sock,
    /// Bytes taken so far.
    total: u64,
    /// The first [`RECEIVED_KEPT`] of them, for a `matches` check.
    kept: Vec<u8>,
}

impl Exact<'_> {
    /// Reads through `mark`; `Ok(Some(..))` when the response's framing
    /// ended the read short of it.
    fn to(&mut self, mark: Mark) -> Result<Option<Short>, CallResult> {
        let Some(_) = self.through(b"\r\n\r\n", MAX_HEAD)? else {
            return Ok(Some(Short::NoHeaders { read: self.total }));
        };
        match mark {
            Mark::Body(n) => {
                self.take(n)?;
                Ok(None)
            }
            Mark::Chunk(wanted) => {
                for done in 0..wanted {
                    let at = self.total;
                    let Some(line) = self.through(b"\r\n", MAX_SIZE_LINE)? else {
                        return Ok(Some(Short::NotAChunk { at }));
                    };
                    let Some(size) = chunk_size(&line) else {
                        return Ok(Some(Short::NotAChunk { at }));
                    };
                    if size == 0 {
                        return Ok(Some(Short::BodyEnded { chunks: done }));
                    }
                    self.take(size)?;
                    let at = self.total;
                    if self.take_bytes(2)? != b"\r\n" {
                        return Ok(Some(Short::NotAChunk { at }));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Takes bytes up to and including the first `needle`, and returns
    /// them; `None` when `cap` bytes came without it (those are taken).
    fn through(&mut self, needle: &[u8], cap: usize) -> Result<Option<Vec<u8>>, CallResult> {
        let mut line: Vec<u8> = Vec::new();
        let mut peeked = vec![0u8; cap];
        loop {
            let room = cap.saturating_sub(line.len());
            if room == 0 {
                return Ok(None);
            }
            let n = self.peek(&mut peeked[..room])?;
            // Search what was taken of the needle's prefix and what waits.
            let from = line.len().saturating_sub(needle.len() - 1);
            let mut seen = line[from..].to_vec();
            seen.extend_from_slice(&peeked[..n]);
            let want = match seen.windows(needle.len()).position(|w| w == needle) {
                Some(i) => (i + needle.len()) - (line.len() - from),
                None => n,
            };
            line.extend_from_slice(&self.take_bytes(want as u64)?);
            if line.ends_with(needle) {
                return Ok(Some(line));
            }
        }
    }

    /// Waits for data and returns how much is there, taking none of it.
    fn peek(&mut self, buf: &mut [u8]) -> Result<usize, CallResult> {
        use std::os::fd::AsRawFd;
        let flags = nix::sys::socket::MsgFlags::MSG_PEEK;
        match nix::sys::socket::recv(self.conn.as_raw_fd(), buf, flags) {
            Ok(0) => Err(CallResult::eof(self.total)),
            Ok(n) => Ok(n),
            Err(errno) => Err(CallResult::from_io(
                &io::Error::from_raw_os_error(errno as i32),
                self.total,
            )),
        }
    }

    /// Takes exactly `n` bytes (however many reads that is).
    fn take(&mut self, n: u64) -> Result<(), CallResult> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = n;
        while left > 0 {
            let room = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let got = self.read(&mut buf[..room])?;
            left -= got as u64;
        }
        Ok(())
    }

    /// Takes exactly `n` bytes and returns them (`n` is small: a line).
    fn take_bytes(&mut self, n: u64) -> Result<Vec<u8>, CallResult> {
        let mut out = vec![0u8; usize::try_from(n).unwrap_or(usize::MAX)];
        let mut filled = 0;
        while filled < out.len() {
            filled += self.read(&mut out[filled..])?;
        }
        Ok(out)
    }

    /// One read into `buf`, counted and kept.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, CallResult> {
        match read_once(self.conn, buf) {
            Ok(0) => Err(CallResult::eof(self.total)),
            Ok(n) => {
                self.total += n as u64;
                let room = RECEIVED_KEPT.saturating_sub(self.kept.len());
                self.kept.extend_from_slice(&buf[..n.min(room)]);
                Ok(n)
            }
            Err(err) => Err(CallResult::from_io(&err, self.total)),
        }
    }
}

/// A chunk's size from its size line (`1f4\r\n`, `1f4;name=value\r\n`):
/// hexadecimal digits before any extension; `None` when it is none.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?;
    let digits = line.split(|b| *b == b';').next()?;
    let digits = std::str::from_utf8(digits).ok()?.trim_matches([' ', '\t']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

pub(super) fn shutdown(conn: &Sock, how: How) -> Call {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_hex_before_any_extension() {
        assert_eq!(chunk_size(b"3e8\r\n"), Some(1000));
        assert_eq!(chunk_size(b"3E8;name=value\r\n"), Some(1000));
        assert_eq!(chunk_size(b"0\r\n"), Some(0));
        assert_eq!(chunk_size(b"\r\n"), None);
        assert_eq!(chunk_size(b"xyz\r\n"), None);
        assert_eq!(chunk_size(b"+3\r\n"), None);
        assert_eq!(chunk_size(b"3e8"), None);
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
