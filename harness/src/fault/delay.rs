//! Delayed packets: held in the kernel's netfilter queue, let go later.
//!
//! A delay rule marks its packets with its tag and hands them to
//! nfnetlink_queue number [`QUEUE`] (the xtables `NFQUEUE` target through
//! nf_tables' compat expression: this kernel has no `nft_queue`, and no
//! netem either; see `docs/faults-research.md`). The kernel holds each
//! queued packet and sends hangup its head; a thread here gives the kernel
//! its verdict, `NF_ACCEPT`, once the packet's delay has passed, and the
//! kernel lets it go on its way to the receiver. So the packet itself
//! waits in the kernel; hangup only decides when it may go, as netem's
//! timer would.
//!
//! Why this way:
//! - **One queue, the tag in the packet's mark**: a queued packet's message
//!   carries its mark (`NFQA_MARK`) but not the rule that queued it, so
//!   each rule sets the mark to its tag and one socket serves every delay
//!   fault of the host.
//! - **Our own messages, not the `nfq` crate**: nfq 0.2 hides its socket's
//!   fd, so its owner can neither wait for a packet and a release time at
//!   once nor be woken to stop; verdicts must come from the socket that
//!   bound the queue (the kernel checks the port id). The few messages
//!   (`linux/netfilter/nfnetlink_queue.h`) go through
//!   netlink-packet-netfilter's `Other` subsystem, as the rest of `fault`.
//! - **Jitter reorders**, as netem's does: each packet's delay is drawn on
//!   its own, uniform in `by ± jitter`.
//! - **Closing the socket drops what it holds** (the kernel flushes the
//!   queue when its listener goes): a case's held packets end with it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netlink_packet_core::Nla;
use netlink_packet_core::{DefaultNla, NLM_F_ACK, NLM_F_REQUEST, NetlinkPayload};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
    NetfilterSubsystem,
};
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};
use nix::libc;

use super::FaultError;
use super::encode::QUEUE;

const NFNL_SUBSYS_QUEUE: u8 = 3;
const NFQNL_MSG_PACKET: u8 = 0;
const NFQNL_MSG_VERDICT: u8 = 1;
const NFQNL_MSG_CONFIG: u8 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQA_CFG_F_GSO: u32 = 4;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_MARK: u16 = 3;
const NFQA_PAYLOAD: u16 = 10;
const NF_ACCEPT: u32 = 1;

/// The bytes of each held packet the kernel sends: the IP and TCP headers
/// at their longest, to tell the packet in the capture.
const COPY: u32 = 120;
/// How many packets the kernel holds at once before it drops new ones
/// (its default is 1024; a delayed bulk transfer holds a window's worth).
const MAX_HELD: u32 = 16_384;
/// The socket's receive buffer: a burst of queued packets' heads.
const RECEIVE_BUFFER: usize = 4 << 20;
/// The most held packets noted between two calls of [`Delays::held`] (the
/// capture keeps 100,000 frames; the timeline shows 5,000): past it, the
/// packets are still delayed, only no longer noted.
const MAX_NOTED: usize = 100_000;

/// How long a rule's packets wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    /// The delay.
    pub by: Duration,
    /// Each packet's delay is drawn uniformly from `by ± jitter`.
    pub jitter: Duration,
}

/// A packet that was held, as the kernel queued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The tag of the rule that queued it.
    pub tag: u32,
    /// Its first bytes, from its IP header on.
    pub packet: Vec<u8>,
    /// How long it was held (its drawn delay; the verdict goes at most a
    /// scheduler's wake-up later).
    pub held: Duration,
}

/// Something that went wrong while delays held packets: reported, never a
/// reason to stop letting packets go.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "trouble", rename_all = "snake_case")]
pub enum DelayTrouble {
    /// A verdict letting a held packet go could not be sent.
    NotLetGo {
        /// The socket's error.
        error: String,
    },
    /// Waiting for queued packets failed; what was held was let go.
    WaitFailed {
        /// The poll's error.
        error: String,
    },
    /// The kernel could not hand hangup some packets a delay caught (the
    /// socket's buffer was full): it dropped them instead of delaying them.
    KernelDropped,
    /// Reading queued packets failed.
    ReadFailed {
        /// The socket's error.
        error: String,
    },
    /// A message from the queue could not be read.
    Unreadable {
        /// Why.
        error: String,
    },
    /// The kernel refused a verdict.
    VerdictRefused {
        /// Its errno.
        errno: crate::model::Errno,
    },
}

/// The queue's listener: the socket bound to [`QUEUE`] and the thread that
/// lets packets go. Made on the case's thread (the socket acts on the
/// namespace it was made in), bound at the first delay rule.
pub struct Delays {
    socket: Option<Socket>,
    running: Option<Running>,
    shared: Arc<Mutex<Shared>>,
}

struct Running {
    /// Written to stop the thread.
    stop: OwnedFd,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    delays: HashMap<u32, Delay>,
    held: Vec<Held>,
    /// What went wrong on the thread, each once.
    trouble: Vec<DelayTrouble>,
}

/// The most kinds of trouble noted.
const MAX_TROUBLE: usize = 8;

impl Delays {
    /// Makes the socket in the calling thread's network namespace.
    pub fn open() -> Result<Delays, FaultError> {
        let socket = Socket::new(NETLINK_NETFILTER).map_err(|source| FaultError::Io {
            doing: "opening the netfilter queue's socket",
            source,
        })?;
        Ok(Delays {
            socket: Some(socket),
            running: None,
            shared: Arc::default(),
        })
    }

    /// Delays the packets of the rules tagged `tag` by `delay`, binding the
    /// queue first if this is the first delay.
    pub fn set(&mut self, tag: u32, delay: Delay) -> Result<(), FaultError> {
        lock(&self.shared).delays.insert(tag, delay);
        if self.running.is_none() {
            let socket = self.socket.take().ok_or_else(|| {
                FaultError::Malformed(
                    "the netfilter queue's listener could not be started before".into(),
                )
            })?;
            self.running = Some(start(socket, Arc::clone(&self.shared))?);
        }
        Ok(())
    }

    /// The packets held since the last call, and what went wrong meanwhile.
    pub fn held(&mut self) -> (Vec<Held>, Vec<DelayTrouble>) {
        let mut shared = lock(&self.shared);
        (
            std::mem::take(&mut shared.held),
            std::mem::take(&mut shared.trouble),
        )
    }
}

impl Drop for Delays {
    fn drop(&mut self) {
        if let Some(Running { stop, thread }) = self.running.take() {
            // Closing the pipe's write end wakes the thread's poll.
            drop(stop);
            let _ = thread.join();
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Binds the queue (each message acknowledged) and starts the thread.
fn start(mut socket: Socket, shared: Arc<Mutex<Shared>>) -> Result<Running, FaultError> {
    let io = |doing| move |source| FaultError::Io { doing, source };
    socket
        .bind_auto()
        .map_err(io("binding the queue's socket"))?;
    // Past net.core.rmem_max (212,992 bytes on a stock kernel) with the
    // namespace's CAP_NET_ADMIN; capped at it otherwise.
    let forced = nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::RcvBufForce,
        &RECEIVE_BUFFER,
    );
    if forced.is_err() {
        socket
            .set_rx_buf_sz(RECEIVE_BUFFER)
            .map_err(io("sizing the queue's socket"))?;
    }
    let mut params = COPY.to_be_bytes().to_vec();
    params.push(NFQNL_COPY_PACKET);
    let config = [
        // struct nfqnl_msg_config_cmd: command, pad, pf (unused by BIND).
        (
            NFQA_CFG_CMD,
            vec![NFQNL_CFG_CMD_BIND, 0, 0, 0],
            "binding the queue",
        ),
        // struct nfqnl_msg_config_params (packed): copy range, mode.
        (NFQA_CFG_PARAMS, params, "setting the queue's copy range"),
        (
            NFQA_CFG_QUEUE_MAXLEN,
            MAX_HELD.to_be_bytes().to_vec(),
            "setting the queue's length",
        ),
    ];
    let config = config
        .into_iter()
        .map(|(kind, value, what)| (vec![DefaultNla::new(kind, value)], what))
        .chain([(
            // Whole: a loopback segment of many MSS is queued as the capture
            // saw it (one packet, checksum as sent), not cut into pieces.
            vec![
                DefaultNla::new(NFQA_CFG_FLAGS, NFQA_CFG_F_GSO.to_be_bytes().to_vec()),
                DefaultNla::new(NFQA_CFG_MASK, NFQA_CFG_F_GSO.to_be_bytes().to_vec()),
            ],
            "asking for whole segments",
        )]);
    let mut buffer = vec![0; 64 * 1024];
    for (sequence, (attributes, what)) in config.enumerate() {
        let sequence = sequence as u32 + 1;
        let bytes = encode(
            NFQNL_MSG_CONFIG,
            attributes,
            NLM_F_REQUEST | NLM_F_ACK,
            sequence,
        );
        socket
            .send(&bytes, 0)
            .map_err(io("configuring the queue"))?;
        wait_for_ack(&socket, &mut buffer, sequence, what)?;
    }
    let (stop_reader, stop) = nix::unistd::pipe().map_err(|e| FaultError::Io {
        doing: "making the queue thread's stop pipe",
        source: e.into(),
    })?;
    let thread = std::thread::Builder::new()
        .name("hangup-delay".into())
        .spawn(move || {
            serve(&socket, &stop_reader, &shared, buffer);
        })
        .map_err(io("starting the queue's thread"))?;
    Ok(Running { stop, thread })
}

/// Reads answers until the one to `sequence`.
fn wait_for_ack(
    socket: &Socket,
    buffer: &mut [u8],
    sequence: u32,
    what: &'static str,
) -> Result<(), FaultError> {
    let timeout = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    nix::sys::socket::setsockopt(
        socket,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &timeout.into(),
    )
    .map_err(|e| FaultError::Io {
        doing: "setting the queue socket's timeout",
        source: e.into(),
    })?;
    loop {
        let n = socket
            .recv(&mut &mut buffer[..], 0)
            .map_err(|source| FaultError::Io {
                doing: "reading the queue's answer",
                source,
            })?;
        for message in super::encode::messages(&buffer[..n.min(buffer.len())])? {
            if message.header.sequence_number != sequence {
                continue;
            }
            if let NetlinkPayload::Error(e) = message.payload {
                return match e.code {
                    None => Ok(()),
                    Some(code) => Err(FaultError::Refused {
                        what: what.into(),
                        source: std::io::Error::from_raw_os_error(-code.get()),
                        hint: " (this kernel needs CONFIG_NETFILTER_NETLINK_QUEUE for a delay)",
                    }),
                };
            }
        }
    }
}

/// The thread: takes each queued packet, and lets each go at its time.
/// Nothing the kernel answers stops it (what went wrong is noted in
/// `shared.trouble`): while it runs, every packet a delay rule catches is
/// let go. Asked to stop, it lets go at once of what it still holds (the
/// sides' last packets, sent as the case ends, are not lost with it).
fn serve(socket: &Socket, stop: &OwnedFd, shared: &Mutex<Shared>, mut buffer: Vec<u8>) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut waiting: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
    let mut random = Random::seeded();
    let note = |what: DelayTrouble| {
        let mut shared = lock(shared);
        if shared.trouble.len() < MAX_TROUBLE && !shared.trouble.contains(&what) {
            shared.trouble.push(what);
        }
    };
    let release = |id: u32| {
        let bytes = encode(NFQNL_MSG_VERDICT, verdict(id), NLM_F_REQUEST, 0);
        if let Err(e) = socket.send(&bytes, 0) {
            note(DelayTrouble::NotLetGo {
                error: e.to_string(),
            });
        }
    };
    loop {
        let now = Instant::now();
        while let Some(Reverse((at, id))) = waiting.peek().copied() {
            if at > now {
                break;
            }
            waiting.pop();
            release(id);
        }
        let timeout = match waiting.peek() {
            // Rounded up: a verdict never goes early.
            Some(Reverse((at, _))) => {
                let ms = at
                    .saturating_duration_since(now)
                    .as_nanos()
                    .div_ceil(1_000_000);
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                note(DelayTrouble::WaitFailed {
                    error: e.to_string(),
                });
                break;
            }
            Ok(_) => {}
        }
        if fds[1].any().unwrap_or(true) {
            break;
        }
        if !fds[0].any().unwrap_or(false) {
            continue;
        }
        let n = match socket.recv(&mut &mut buffer[..], libc::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                // The kernel could not hand over some packets: it dropped
                // them (no fail-open), as the report must say.
                note(DelayTrouble::KernelDropped);
                continue;
            }
            Err(e) => {
                note(DelayTrouble::ReadFailed {
                    error: e.to_string(),
                });
                continue;
            }
        };
        let at = Instant::now();
        let messages = match super::encode::messages(&buffer[..n.min(buffer.len())]) {
            Ok(messages) => messages,
            Err(e) => {
                note(DelayTrouble::Unreadable {
                    error: e.to_string(),
                });
                continue;
            }
        };
        for message in messages {
            match message.payload {
                // A verdict for a packet the kernel no longer holds (its
                // device went down, as a cut does): nothing to let go.
                NetlinkPayload::Error(e) => match e.code.map(|c| -c.get()) {
                    None | Some(libc::ENOENT) => {}
                    Some(errno) => note(DelayTrouble::VerdictRefused {
                        errno: crate::model::Errno::from_raw(errno),
                    }),
                },
                NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner:
                        NetfilterMessageInner::Other {
                            message_type: NFQNL_MSG_PACKET,
                            attributes,
                            ..
                        },
                    ..
                }) => {
                    let Some(queued) = Queued::read(&attributes) else {
                        continue;
                    };
                    let mut shared = lock(shared);
                    let delay = shared.delays.get(&queued.tag).copied();
                    let held = delay.map_or(Duration::ZERO, |d| random.around(d.by, d.jitter));
                    waiting.push(Reverse((at + held, queued.id)));
                    if shared.held.len() < MAX_NOTED {
                        shared.held.push(Held {
                            tag: queued.tag,
                            packet: queued.packet,
                            held,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    while let Some(Reverse((_, id))) = waiting.pop() {
        release(id);
    }
}

/// What a queued packet's message says of it.
struct Queued {
    id: u32,
    tag: u32,
    packet: Vec<u8>,
}

impl Queued {
    fn read(attributes: &[DefaultNla]) -> Option<Queued> {
        let mut id = None;
        let mut tag = 0;
        let mut packet = Vec::new();
        for attribute in attributes {
            let mut value = vec![0; attribute.value_len()];
            attribute.emit_value(&mut value);
            match attribute.kind() {
                // struct nfqnl_msg_packet_hdr: packet id, hw protocol, hook.
                NFQA_PACKET_HDR => id = be32(&value),
                NFQA_MARK => tag = be32(&value).unwrap_or(0),
                NFQA_PAYLOAD => packet = value,
                _ => {}
            }
        }
        Some(Queued {
            id: id?,
            tag,
            packet,
        })
    }
}

fn be32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// struct nfqnl_msg_verdict_hdr: the verdict, the packet's id.
fn verdict(id: u32) -> Vec<DefaultNla> {
    let mut value = NF_ACCEPT.to_be_bytes().to_vec();
    value.extend(id.to_be_bytes());
    vec![DefaultNla::new(NFQA_VERDICT_HDR, value)]
}

fn encode(message_type: u8, attributes: Vec<DefaultNla>, flags: u16, sequence: u32) -> Vec<u8> {
    super::encode::serialize(
        NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, QUEUE),
            NetfilterMessageInner::Other {
                subsys: NetfilterSubsystem::Other(NFNL_SUBSYS_QUEUE),
                message_type,
                attributes,
            },
        ),
        flags,
        sequence,
    )
}

/// A small generator for jitter (xorshift64*, seeded from the clock): the
/// draws need to be spread, not secret.
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Random(nanos | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `by ± jitter`, never below zero.
    fn around(&mut self, by: Duration, jitter: Duration) -> Duration {
        if jitter.is_zero() {
            return by;
        }
        let span = jitter.as_nanos() as u64 * 2;
        let offset = self.next() % (span + 1);
        (by + Duration::from_nanos(offset)).saturating_sub(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bounds_and_spreads() {
        let mut random = Random::seeded();
        let by = Duration::from_millis(100);
        let jitter = Duration::from_millis(30);
        let draws: Vec<Duration> = (0..1000).map(|_| random.around(by, jitter)).collect();
        assert!(draws.iter().all(|d| *d >= by - jitter && *d <= by + jitter));
        assert!(draws.iter().any(|d| *d < by - jitter / 2));
        assert!(draws.iter().any(|d| *d > by + jitter / 2));
        assert_eq!(random.around(by, Duration::ZERO), by);
        let small = random.around(Duration::from_millis(1), Duration::from_millis(5));
        assert!(small <= Duration::from_millis(6));
    }
}
