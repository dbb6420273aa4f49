//! Every packet of a case, as its namespace's network saw it: a packet
//! socket (no tcpdump) read by a thread of its own, with the kernel's
//! receive timestamps.
//!
//! Why it looks the way it does (checked on Linux 6.18, rootless):
//! - **`AF_PACKET`, all protocols, no interface bound**: it sees every
//!   interface of the namespace it was opened in (only `lo` so far). It
//!   needs `CAP_NET_RAW` in the user namespace that owns the network
//!   namespace, which hangup has, rootless too.
//! - **`PACKET_IGNORE_OUTGOING`**: on `lo` every packet is seen twice, once
//!   leaving and once arriving; only the arrival is kept, as libpcap does.
//!   It comes before the input hook where faults drop, so a packet a fault
//!   took is captured all the same.
//! - **`SO_TIMESTAMPNS`**: the kernel stamps each packet when it arrives
//!   (`CLOCK_REALTIME`); [`Capture`] turns that into an `Instant` on the
//!   case's clock with the offset between the two clocks taken at start.
//! - **The first [`SNAP_LEN`] bytes of each frame** are kept (every header,
//!   and the start of the data), with the frame's real length: a case that
//!   streams megabytes keeps kilobytes. At most [`MAX_FRAMES`] frames; the
//!   rest are counted, not kept.
//! - **Decoded with etherparse** (header slices only, so a frame cut at
//!   [`SNAP_LEN`] decodes as well as a whole one).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use etherparse::{
    EtherType, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice,
};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType, recvmsg,
    setsockopt, socket, sockopt,
};

use super::ObserveError;
use crate::model::TcpFlags;

/// How much of each frame is kept: the Ethernet, IP and TCP headers at
/// their longest (14 + 60 + 60), and the start of the data.
pub const SNAP_LEN: usize = 256;

/// The most frames a case keeps.
pub const MAX_FRAMES: usize = 100_000;

/// One frame as the kernel delivered it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// When it arrived, as the kernel stamped it.
    pub stamp: SystemTime,
    /// Its length on the wire.
    pub len: u32,
    /// Its first [`SNAP_LEN`] bytes at most.
    pub data: Vec<u8>,
}

/// A TCP segment, decoded from a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Who sent it.
    pub from: SocketAddr,
    /// To whom.
    pub to: SocketAddr,
    /// Its flags.
    pub flags: TcpFlags,
    /// Its sequence and acknowledgement numbers, as sent.
    pub seq: u32,
    /// The acknowledgement number (meaningful with ACK).
    pub ack: u32,
    /// The window it advertises, unscaled.
    pub window: u16,
    /// The bytes of data it carries.
    pub len: u32,
}

/// What a capture holds: the frames, and how many more there were.
#[derive(Debug, Default)]
pub struct Captured {
    /// Oldest first.
    pub frames: Vec<Frame>,
    /// Frames seen after [`MAX_FRAMES`], not kept.
    pub dropped: u64,
    /// The clocks side by side when the capture started, to put kernel
    /// stamps on the case's clock.
    base: Option<(Instant, SystemTime)>,
}

impl Captured {
    /// When `stamp` (a frame's) was, as an `Instant`.
    pub fn instant(&self, stamp: SystemTime) -> Instant {
        let Some((instant, real)) = self.base else {
            return Instant::now();
        };
        match stamp.duration_since(real) {
            Ok(after) => instant + after,
            Err(before) => instant.checked_sub(before.duration()).unwrap_or(instant),
        }
    }
}

/// A running capture of the calling thread's network namespace.
pub struct Capture {
    /// Shared with the thread; `None` once [`Capture::finish`] took it.
    fd: Option<Arc<OwnedFd>>,
    shared: Arc<Mutex<Captured>>,
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<Result<(), ObserveError>>>,
}

impl Capture {
    /// Opens a packet socket in the calling thread's network namespace and
    /// reads it on a thread of its own until [`Capture::finish`].
    pub fn start() -> Result<Capture, ObserveError> {
        let fail = |doing: &'static str| {
            move |e: nix::Error| ObserveError::Capture {
                doing,
                source: e.into(),
            }
        };
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::EthAll,
        )
        .map_err(fail("opening a packet socket"))?;
        ignore_outgoing(&fd).map_err(fail("setting PACKET_IGNORE_OUTGOING"))?;
        setsockopt(&fd, sockopt::ReceiveTimestampns, &true)
            .map_err(fail("setting SO_TIMESTAMPNS"))?;
        let stop = Arc::new(
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(fail("making an eventfd"))?,
        );
        let base = (Instant::now(), SystemTime::now());
        let shared = Arc::new(Mutex::new(Captured {
            base: Some(base),
            ..Captured::default()
        }));
        let fd = Arc::new(fd);
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn({
                let fd = Arc::clone(&fd);
                let shared = Arc::clone(&shared);
                let stop = Arc::clone(&stop);
                move || read_until_stopped(&fd, &stop, &shared)
            })
            .map_err(|source| ObserveError::Capture {
                doing: "starting the capture thread",
                source,
            })?;
        Ok(Capture {
            fd: Some(fd),
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// Every frame so far: those the kernel has queued for the capture
    /// are read first, on this thread, so a packet that arrived before
    /// this call is among them (the capture's own thread may not have
    /// woken for it yet).
    pub fn frames(&self) -> MutexGuard<'_, Captured> {
        let mut captured = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        // A read that fails here fails the capture's thread too, which
        // says so at the end.
        if let Some(fd) = &self.fd {
            let _ = drain(fd, &mut captured);
        }
        captured
    }

    /// Reads what is still queued, stops the thread, and hands back every
    /// frame, and the packet socket: closing it waits for an RCU grace
    /// period (`packet_release` calls `synchronize_net`, about 10 ms), so
    /// the caller may close it where that wait costs nothing.
    pub fn finish(mut self) -> Result<(Captured, OwnedFd), ObserveError> {
        let _ = self.stop.write(1);
        let ended = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(ended)) => ended.and_then(|()| {
                // The thread has ended, so this is the socket's last owner.
                self.fd
                    .take()
                    .and_then(|fd| Arc::try_unwrap(fd).ok())
                    .ok_or_else(|| ObserveError::Capture {
                        doing: "closing the capture",
                        source: std::io::Error::other("the packet socket is still shared"),
                    })
            }),
            Some(Err(_)) => Err(ObserveError::Capture {
                doing: "reading packets",
                source: std::io::Error::other("the capture thread panicked"),
            }),
            None => Err(ObserveError::Capture {
                doing: "reading packets",
                source: std::io::Error::other("the capture had already ended"),
            }),
        };
        let captured = std::mem::take(&mut *self.shared.lock().unwrap_or_else(|p| p.into_inner()));
        ended.map(|fd| (captured, fd))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `PACKET_IGNORE_OUTGOING` (Linux 4.20): nix has no wrapper for it.
fn ignore_outgoing(fd: &OwnedFd) -> nix::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads an int from our stack for a socket we own.
    let done = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    nix::errno::Errno::result(done).map(drop)
}

/// The capture thread: waits for frames or the stop, reads every queued
/// frame, and once stopped reads what is left and ends.
fn read_until_stopped(
    fd: &OwnedFd,
    stop: &EventFd,
    shared: &Mutex<Captured>,
) -> Result<(), ObserveError> {
    loop {
        let mut fds = [
            PollFd::new(fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(ObserveError::Capture {
                    doing: "waiting for packets",
                    source: e.into(),
                });
            }
            Ok(_) => {}
        }
        let stopping = fds[1].any().unwrap_or(false);
        drain(fd, &mut shared.lock().unwrap_or_else(|p| p.into_inner()))?;
        if stopping {
            return Ok(());
        }
    }
}

/// Reads every frame queued on `fd` now into `captured`. Called with the
/// capture's lock held, by its thread or by [`Capture::frames`], so frames
/// go in in the order the kernel queued them.
fn drain(fd: &OwnedFd, captured: &mut Captured) -> Result<(), ObserveError> {
    let mut buffer = [0u8; SNAP_LEN];
    let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
    loop {
        let mut iov = [std::io::IoSliceMut::new(&mut buffer)];
        let got = recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT,
        );
        let message = match got {
            Ok(message) => message,
            Err(nix::errno::Errno::EAGAIN) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(ObserveError::Capture {
                    doing: "reading a packet",
                    source: e.into(),
                });
            }
        };
        let stamp = message
            .cmsgs()
            .ok()
            .into_iter()
            .flatten()
            .find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(t) => Some(
                    SystemTime::UNIX_EPOCH + Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32),
                ),
                _ => None,
            })
            .unwrap_or_else(SystemTime::now);
        let len = message.bytes;
        let kept = len.min(SNAP_LEN);
        if captured.frames.len() < MAX_FRAMES {
            captured.frames.push(Frame {
                stamp,
                len: len as u32,
                data: buffer[..kept].to_vec(),
            });
        } else {
            captured.dropped += 1;
        }
    }
}

impl Frame {
    /// The TCP segment it carries, if it is one (Ethernet II, IPv4 without
    /// fragments or IPv6 without extension headers, then TCP).
    pub fn segment(&self) -> Option<Segment> {
        let ethernet = Ethernet2HeaderSlice::from_slice(&self.data).ok()?;
        let ip = &self.data[ethernet.slice().len()..];
        let (from, to, after_ip, ip_payload) = match ethernet.ether_type() {
            EtherType::IPV4 => {
                let header = Ipv4HeaderSlice::from_slice(ip).ok()?;
                if header.protocol() != IpNumber::TCP || header.is_fragmenting_payload() {
                    return None;
                }
                let header_len = header.slice().len();
                (
                    IpAddr::V4(header.source_addr()),
                    IpAddr::V4(header.destination_addr()),
                    header_len,
                    usize::from(header.total_len()).checked_sub(header_len)?,
                )
            }
            EtherType::IPV6 => {
                let header = Ipv6HeaderSlice::from_slice(ip).ok()?;
                if header.next_header() != IpNumber::TCP {
                    return None;
                }
                (
                    IpAddr::V6(header.source_addr()),
                    IpAddr::V6(header.destination_addr()),
                    header.slice().len(),
                    usize::from(header.payload_length()),
                )
            }
            _ => return None,
        };
        let tcp = TcpHeaderSlice::from_slice(ip.get(after_ip..)?).ok()?;
        let flags = [
            (tcp.fin(), TcpFlags::FIN),
            (tcp.syn(), TcpFlags::SYN),
            (tcp.rst(), TcpFlags::RST),
            (tcp.psh(), TcpFlags::PSH),
            (tcp.ack(), TcpFlags::ACK),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .fold(TcpFlags(0), |all, (_, flag)| TcpFlags(all.0 | flag.0));
        Some(Segment {
            from: SocketAddr::new(from, tcp.source_port()),
            to: SocketAddr::new(to, tcp.destination_port()),
            flags,
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            window: tcp.window_size(),
            len: ip_payload.checked_sub(tcp.slice().len())? as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    fn in_fresh_netns<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
        crate::sandbox::in_case_namespace(|_| test())
            .expect("a fresh network namespace; these tests need root or a user namespace")
    }

    /// A connection that sends 5 bytes each way and closes, captured.
    fn a_short_conversation() -> (Captured, SocketAddr, SocketAddr) {
        in_fresh_netns(|| {
            let capture = Capture::start().unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let server_addr = listener.local_addr().unwrap();
            let mut client = TcpStream::connect(server_addr).unwrap();
            let client_addr = client.local_addr().unwrap();
            let (mut server, _) = listener.accept().unwrap();
            client.write_all(b"hello").unwrap();
            let mut got = [0u8; 5];
            server.read_exact(&mut got).unwrap();
            server.write_all(b"world").unwrap();
            client.read_exact(&mut got).unwrap();
            drop(client);
            let mut rest = Vec::new();
            server.read_to_end(&mut rest).unwrap();
            drop(server);
            // The last ACK of the server's FIN.
            std::thread::sleep(Duration::from_millis(50));
            (capture.finish().unwrap().0, client_addr, server_addr)
        })
    }

    #[test]
    fn a_conversation_is_captured_once_in_order_with_its_flags() {
        let (captured, client, server) = a_short_conversation();
        let segments: Vec<Segment> = captured.frames.iter().filter_map(Frame::segment).collect();
        let seen: Vec<(bool, String, u32)> = segments
            .iter()
            .map(|s| (s.from == client, s.flags.to_string(), s.len))
            .collect();
        let expected: Vec<(bool, String, u32)> = [
            (true, "SYN", 0),
            (false, "SYN|ACK", 0),
            (true, "ACK", 0),
            (true, "PSH|ACK", 5),
            (false, "ACK", 0),
            (false, "PSH|ACK", 5),
            (true, "ACK", 0),
            (true, "FIN|ACK", 0),
            (false, "FIN|ACK", 0),
            (true, "ACK", 0),
        ]
        .into_iter()
        .map(|(c, f, l)| (c, f.to_string(), l))
        .collect();
        // Delayed ACKs may be folded into the next segment: compare what
        // each side sent with data or FIN, and that nothing came twice.
        let essential = |all: &[(bool, String, u32)]| -> Vec<(bool, String, u32)> {
            all.iter()
                .filter(|(_, f, l)| *l > 0 || f.contains("SYN") || f.contains("FIN"))
                .cloned()
                .collect()
        };
        assert_eq!(essential(&seen), essential(&expected), "{seen:?}");
        assert!(
            segments
                .iter()
                .all(|s| s.from == client || s.from == server)
        );
        let stamps: Vec<SystemTime> = captured.frames.iter().map(|f| f.stamp).collect();
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "kernel stamps in order"
        );
        assert_eq!(captured.dropped, 0);
    }

    #[test]
    fn a_written_pcap_reads_back_with_the_same_frames() {
        let (captured, _, _) = a_short_conversation();
        let mut bytes = Vec::new();
        super::super::write_pcap(&mut bytes, &captured.frames).unwrap();
        let (_, file) = pcap_parser::parse_pcap(&bytes).expect("a pcap file");
        assert_eq!(file.header.network, pcap_parser::Linktype::ETHERNET);
        assert!(file.header.is_nanosecond_precision());
        assert_eq!(file.blocks.len(), captured.frames.len());
        for (block, frame) in file.blocks.iter().zip(&captured.frames) {
            assert_eq!(block.data, frame.data.as_slice());
            assert_eq!(block.origlen, frame.len);
            let since = frame.stamp.duration_since(SystemTime::UNIX_EPOCH).unwrap();
            assert_eq!(
                (block.ts_sec, block.ts_usec),
                (since.as_secs() as u32, since.subsec_nanos())
            );
        }
    }
}
