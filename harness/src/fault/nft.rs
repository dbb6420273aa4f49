//! The nf_tables messages for [`Filter`]s, and the netlink exchange that
//! puts them in the kernel, counts what they took, and takes them away.

use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_netfilter::nflog::{
    self, ConfigCmd, ConfigMode, ConfigNla, PacketNla, ULogMessage,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, Hook, InetHookNumber, NfTablesMessage, RuleAttribute,
    RuleMessage, TableAttribute, TableFlags, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use nix::libc;

use super::delay::{Delay, Delays, Held};
use super::encode::{
    CHAIN, DELAY_CHAIN, LOG_COPY, LOG_GROUP, NF_ACCEPT, TABLE, chain_of, counted_packets, encode,
    encode_control, handle, messages, rules,
};
use super::{FaultError, Filter, Taken};
use crate::model::Verdict;

/// How long the kernel may take to answer a batch: it answers at once, so
/// this only keeps a lost answer from hanging the case.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A case's faults: one nfnetlink socket in the case's namespace, and the
/// table it owns (made at the first rule, gone when this is dropped).
pub struct Faults {
    /// The listener that holds and lets go the packets of delay rules.
    /// First, so dropped first: it lets go of what it holds before the
    /// table goes, since the kernel drops every packet still queued from a
    /// hook that is unregistered (measured: a held SYN was lost, and went
    /// again a second later).
    delays: Delays,
    socket: Socket,
    /// Bound to [`LOG_GROUP`]: the packets the rules took.
    log: Socket,
    /// The handles of the rules in [`DELAY_CHAIN`].
    delay_rules: std::collections::HashSet<u64>,
    sequence: u32,
    table_made: bool,
    buffer: Vec<u8>,
}

impl Faults {
    /// Opens an nfnetlink socket in the calling thread's network namespace:
    /// call it on a thread of the case.
    pub fn open() -> Result<Faults, FaultError> {
        let io = |doing| move |source| FaultError::Io { doing, source };
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(io("opening a netlink socket"))?;
        socket
            .bind_auto()
            .map_err(io("binding the netlink socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connecting the netlink socket"))?;
        let timeout = libc::timeval {
            tv_sec: ANSWER_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &timeout.into(),
        )
        .map_err(|e| FaultError::Io {
            doing: "setting the netlink socket's receive timeout",
            source: e.into(),
        })?;
        let log = open_log()?;
        let delays = Delays::open()?;
        Ok(Faults {
            socket,
            log,
            delays,
            delay_rules: std::collections::HashSet::new(),
            sequence: 0,
            table_made: false,
            buffer: vec![0; 64 * 1024],
        })
    }

    /// The packets the rules took since the last call, oldest first.
    /// `Err` when the kernel had to drop some of its messages (the socket's
    /// buffer was full): those that came are still returned in `Ok` on the
    /// next call.
    pub fn taken(&mut self) -> Result<Vec<Taken>, FaultError> {
        let mut taken = Vec::new();
        loop {
            let received = match self.log.recv(&mut &mut self.buffer[..], libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(taken),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(FaultError::Io {
                        doing: "reading the packets the faults took",
                        source,
                    });
                }
            };
            for message in messages(&self.buffer[..received.min(self.buffer.len())])? {
                let NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner: NetfilterMessageInner::ULog(ULogMessage::Packet(attributes)),
                    ..
                }) = message.payload
                else {
                    continue;
                };
                let mut tag = None;
                let mut packet = None;
                for attribute in attributes {
                    match attribute {
                        PacketNla::Prefix(prefix) => {
                            tag = prefix
                                .to_str()
                                .ok()
                                .and_then(|p| p.strip_prefix("hangup "))
                                .and_then(|t| t.parse().ok());
                        }
                        PacketNla::Payload(bytes) => packet = Some(bytes),
                        _ => {}
                    }
                }
                if let (Some(tag), Some(packet)) = (tag, packet) {
                    taken.push(Taken { tag, packet });
                }
            }
        }
    }

    /// The packets the delay rules held since the last call, oldest first,
    /// and what went wrong with holding them meanwhile.
    pub fn held(&mut self) -> (Vec<Held>, Vec<super::delay::DelayTrouble>) {
        self.delays.held()
    }

    /// Puts `filters` in the kernel, after any rules already there, in one
    /// batch (all or none); returns each rule's handle, in order.
    pub fn install(&mut self, filters: &[Filter]) -> Result<Vec<u64>, FaultError> {
        for filter in filters {
            if let Verdict::Delay { by, jitter } = filter.verdict {
                // The listener first: the kernel drops what it queues for
                // no one.
                self.delays.set(filter.tag, Delay { by, jitter })?;
            }
        }
        let mut batch = Vec::new();
        if !self.table_made {
            batch.push((
                "the table".to_string(),
                NfTablesMessage::NewTable(TableMessage {
                    attributes: vec![
                        TableAttribute::Name(TABLE.into()),
                        TableAttribute::Flags(TableFlags::Owner),
                    ],
                }),
                NLM_F_CREATE,
            ));
            for (chain, priority) in [(CHAIN, 0), (DELAY_CHAIN, 10)] {
                batch.push((
                    format!("the input chain {chain:?}"),
                    NfTablesMessage::NewChain(ChainMessage {
                        attributes: vec![
                            ChainAttribute::Table(TABLE.into()),
                            ChainAttribute::Name(chain.into()),
                            ChainAttribute::Type("filter".into()),
                            ChainAttribute::Hook(vec![
                                Hook::Number(InetHookNumber::LocalIn.into()),
                                Hook::Priority(priority),
                            ]),
                            ChainAttribute::Policy(NF_ACCEPT),
                        ],
                    }),
                    NLM_F_CREATE,
                ));
            }
        }
        for (i, filter) in filters.iter().enumerate() {
            let chain = chain_of(filter.verdict);
            for rule in rules(filter) {
                batch.push((
                    format!("rule {} ({filter:?})", i + 1),
                    NfTablesMessage::NewRule(RuleMessage {
                        attributes: vec![
                            RuleAttribute::Table(TABLE.into()),
                            RuleAttribute::Chain(chain.into()),
                            RuleAttribute::Expressions(rule),
                        ],
                    }),
                    NLM_F_CREATE | NLM_F_APPEND | NLM_F_ECHO,
                ));
            }
        }
        let echoed = self.batch(batch)?;
        self.table_made = true;
        let mut handles = Vec::new();
        for message in &echoed {
            let NfTablesMessage::NewRule(rule) = message else {
                continue;
            };
            let Some(h) = handle(rule) else {
                continue;
            };
            let in_delays = rule
                .attributes
                .iter()
                .any(|a| matches!(a, RuleAttribute::Chain(c) if c == DELAY_CHAIN));
            if in_delays {
                self.delay_rules.insert(h);
            }
            handles.push(h);
        }
        Ok(handles)
    }

    /// Takes the rules with these handles out of the kernel, in one batch.
    pub fn remove(&mut self, handles: &[u64]) -> Result<(), FaultError> {
        let batch = handles
            .iter()
            .map(|&h| {
                (
                    format!("removing rule {h}"),
                    NfTablesMessage::DeleteRule(RuleMessage {
                        attributes: vec![
                            RuleAttribute::Table(TABLE.into()),
                            RuleAttribute::Chain(
                                if self.delay_rules.contains(&h) {
                                    DELAY_CHAIN
                                } else {
                                    CHAIN
                                }
                                .into(),
                            ),
                            RuleAttribute::Handle(h),
                        ],
                    }),
                    0,
                )
            })
            .collect();
        self.batch(batch).map(drop)
    }

    /// Every rule in the case's chains (the faults', then the delays'), as
    /// the kernel reads it back.
    pub fn rules(&mut self) -> Result<Vec<RuleMessage>, FaultError> {
        if !self.table_made {
            return Ok(Vec::new());
        }
        let request = RuleMessage {
            attributes: vec![RuleAttribute::Table(TABLE.into())],
        };
        let sequence = self.next_sequence();
        let bytes = encode(
            NetfilterProtoFamily::Inet,
            NfTablesMessage::GetRule(request),
            NLM_F_REQUEST | NLM_F_DUMP,
            sequence,
        );
        self.send(&bytes)?;
        let mut rules = Vec::new();
        loop {
            for message in self.receive()? {
                if message.header.sequence_number != sequence {
                    continue;
                }
                match message.payload {
                    NetlinkPayload::Done(_) => return Ok(rules),
                    NetlinkPayload::Error(e) => {
                        if let Some(code) = e.code {
                            return Err(refused("the rule dump".into(), -code.get()));
                        }
                    }
                    NetlinkPayload::InnerMessage(NetfilterMessage {
                        inner: NetfilterMessageInner::NfTables(NfTablesMessage::NewRule(rule)),
                        ..
                    }) => rules.push(rule),
                    _ => {}
                }
            }
        }
    }

    /// How many packets the rules with these handles took, by the kernel's
    /// counters.
    pub fn packets(&mut self, handles: &[u64]) -> Result<u64, FaultError> {
        Ok(self
            .rules()?
            .iter()
            .filter(|rule| handle(rule).is_some_and(|h| handles.contains(&h)))
            .map(counted_packets)
            .sum())
    }

    fn next_sequence(&mut self) -> u32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }

    /// Sends `messages` as one nf_tables batch, each asking for an
    /// acknowledgement, and reads every answer: the echoed messages, in
    /// order, or the first refusal.
    fn batch(
        &mut self,
        messages: Vec<(String, NfTablesMessage, u16)>,
    ) -> Result<Vec<NfTablesMessage>, FaultError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let subsystem = libc::NFNL_SUBSYS_NFTABLES as u16;
        let begin = self.next_sequence();
        let mut bytes = encode_control(ControlMessage::BatchBegin, subsystem, begin);
        let mut pending = Vec::new();
        for (what, message, flags) in messages {
            let sequence = self.next_sequence();
            bytes.extend(encode(
                NetfilterProtoFamily::Inet,
                message,
                NLM_F_REQUEST | NLM_F_ACK | flags,
                sequence,
            ));
            pending.push((sequence, what));
        }
        let end = self.next_sequence();
        bytes.extend(encode_control(ControlMessage::BatchEnd, subsystem, end));
        self.send(&bytes)?;

        let mut echoed = Vec::new();
        let mut refusal = None;
        while !pending.is_empty() {
            for message in self.receive()? {
                let sequence = message.header.sequence_number;
                match message.payload {
                    NetlinkPayload::Error(e) => {
                        let Some(at) = pending.iter().position(|(s, _)| *s == sequence) else {
                            continue;
                        };
                        let (_, what) = pending.remove(at);
                        if let (Some(code), None) = (e.code, &refusal) {
                            refusal = Some(refused(what, -code.get()));
                        }
                    }
                    NetlinkPayload::InnerMessage(NetfilterMessage {
                        inner: NetfilterMessageInner::NfTables(inner),
                        ..
                    }) => echoed.push(inner),
                    _ => {}
                }
            }
        }
        match refusal {
            Some(error) => Err(error),
            None => Ok(echoed),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), FaultError> {
        self.socket
            .send(bytes, 0)
            .map(drop)
            .map_err(|source| FaultError::Io {
                doing: "sending to nf_tables",
                source,
            })
    }

    /// One datagram's messages.
    fn receive(&mut self) -> Result<Vec<NetlinkMessage<NetfilterMessage>>, FaultError> {
        let received = loop {
            match self.socket.recv(&mut &mut self.buffer[..], 0) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        }
        .map_err(|source| FaultError::Io {
            doing: "reading nf_tables' answer",
            source,
        })?;
        messages(&self.buffer[..received.min(self.buffer.len())])
    }
}

/// Opens the socket the kernel logs taken packets to: bound to
/// [`LOG_GROUP`], copying [`LOG_COPY`] bytes of each, non-blocking.
fn open_log() -> Result<Socket, FaultError> {
    let io = |doing| move |source| FaultError::Io { doing, source };
    let mut log = Socket::new(NETLINK_NETFILTER).map_err(io("opening the nflog socket"))?;
    log.bind_auto().map_err(io("binding the nflog socket"))?;
    log.connect(&SocketAddr::new(0, 0))
        .map_err(io("connecting the nflog socket"))?;
    let mut buffer = vec![0u8; 4096];
    for (what, attribute) in [
        ("binding nflog group 7", ConfigNla::Cmd(ConfigCmd::Bind)),
        (
            "setting nflog's copy mode",
            ConfigNla::Mode(ConfigMode::new_packet(LOG_COPY)),
        ),
    ] {
        let mut request =
            nflog::config_request(NetfilterProtoFamily::Unspec, LOG_GROUP, vec![attribute]);
        request.header.sequence_number = 1;
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        log.send(&bytes, 0).map_err(io("configuring nflog"))?;
        let received = log
            .recv(&mut &mut buffer[..], 0)
            .map_err(io("reading nflog's answer"))?;
        for message in messages(&buffer[..received.min(buffer.len())])? {
            if let NetlinkPayload::Error(e) = message.payload {
                if let Some(code) = e.code {
                    return Err(refused(what.to_string(), -code.get()));
                }
            }
        }
    }
    log.set_non_blocking(true)
        .map_err(io("making the nflog socket non-blocking"))?;
    Ok(log)
}

fn refused(what: String, errno: i32) -> FaultError {
    let hint = match errno {
        libc::EPERM => {
            " (hangup lacks CAP_NET_ADMIN in the case's namespace: is it in its own user namespace?)"
        }
        libc::ENOENT | libc::EOPNOTSUPP => {
            " (this kernel lacks an nf_tables feature a fault needs: CONFIG_NF_TABLES_INET, NFT_REJECT_INET and NFT_COUNTER built in or loaded)"
        }
        _ => "",
    };
    FaultError::Refused {
        what,
        source: std::io::Error::from_raw_os_error(errno),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use netlink_packet_netfilter::nftables::{
        Bitwise, ExpressionAttribute, Expressions, ListAttribute,
    };

    use super::*;
    use crate::fault::encode::{Expression, counter};
    use crate::model::{Port, Reject, TcpFlags};

    fn in_fresh_netns<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
        crate::sandbox::in_case_namespace(|_| test())
            .expect("a fresh network namespace; these tests need root or a user namespace")
    }

    fn filter(port: Port, verdict: Verdict) -> Filter {
        Filter {
            port,
            flags: None,
            data: None,
            probability: None,
            verdict,
            tag: 3,
        }
    }

    /// The expressions of a rule as sent, and as the kernel reads it back.
    fn expressions(rule: &RuleMessage) -> Vec<Expression> {
        rule.attributes
            .iter()
            .find_map(|a| match a {
                RuleAttribute::Expressions(e) => Some(e.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_kernel_reads_back_each_rule_as_it_was_sent() {
        let filters = [
            Filter {
                port: Port::Destination(8080),
                flags: Some(TcpFlags::SYN),
                data: None,
                probability: Some(0.25),
                verdict: Verdict::Drop,
                tag: 1,
            },
            Filter {
                port: Port::Source(8080),
                flags: Some(TcpFlags::ACK),
                data: Some(false),
                probability: None,
                verdict: Verdict::Reject {
                    with: Reject::HostUnreachable,
                },
                tag: 2,
            },
            filter(
                Port::Source(9),
                Verdict::Reject {
                    with: Reject::TcpReset,
                },
            ),
            filter(
                Port::Destination(9),
                Verdict::Delay {
                    by: Duration::from_millis(5),
                    jitter: Duration::ZERO,
                },
            ),
        ];
        let (sent, read): (Vec<_>, Vec<_>) = in_fresh_netns(move || {
            let mut faults = Faults::open().unwrap();
            let handles = faults.install(&filters).unwrap();
            let sent: Vec<Vec<Expression>> = filters.iter().flat_map(rules).collect();
            assert_eq!(handles.len(), sent.len(), "a handle per rule");
            let read: Vec<Vec<Expression>> =
                faults.rules().unwrap().iter().map(expressions).collect();
            (sent, read)
        });
        assert_eq!(sent.len(), 1 + 22 + 1 + 1);
        assert_eq!(read.len(), sent.len());
        for (sent, read) in sent.iter().zip(&read) {
            // The kernel adds the counter's zero counts, and bitwise's
            // default operation (mask and xor, which older kernels do not
            // name); all else is as sent.
            let without_counts = |rule: &Vec<Expression>| -> Vec<Expression> {
                rule.iter()
                    .map(|e| match e {
                        ListAttribute::Element(a) => ListAttribute::Element(
                            a.iter()
                                .map(|x| match x {
                                    ExpressionAttribute::Data(Expressions::Bitwise(b)) => {
                                        ExpressionAttribute::Data(Expressions::Bitwise(
                                            b.iter()
                                                .filter(|y| !matches!(y, Bitwise::Op(0)))
                                                .cloned()
                                                .collect(),
                                        ))
                                    }
                                    other => other.clone(),
                                })
                                .collect(),
                        ),
                        other => other.clone(),
                    })
                    .map(|e| match e {
                        ListAttribute::Element(a)
                            if a.iter().any(
                                |x| matches!(x, ExpressionAttribute::Name(n) if n == "counter"),
                            ) =>
                        {
                            counter()
                        }
                        other => other,
                    })
                    .collect()
            };
            assert_eq!(without_counts(read), without_counts(sent));
        }
    }

    #[test]
    fn a_dropped_syn_is_lost_and_a_rejected_one_refused_then_lifted() {
        in_fresh_netns(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let mut faults = Faults::open().unwrap();
            let connect = || {
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                        .unwrap();
                socket
                    .connect_timeout(
                        &listener.local_addr().unwrap().into(),
                        Duration::from_millis(300),
                    )
                    .map(|()| TcpStream::from(socket))
            };
            let syn = Filter {
                flags: Some(TcpFlags::SYN),
                ..filter(Port::Destination(port), Verdict::Drop)
            };
            let dropped = faults.install(&[syn]).unwrap();
            let err = connect().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
            // The first SYN and none, one or two retransmissions.
            assert!(faults.packets(&dropped).unwrap() >= 1);
            // The kernel logged it as it dropped it: its head, from the
            // IP header, and the rule's tag.
            let taken = faults.taken().unwrap();
            assert!(!taken.is_empty(), "the dropped SYN was logged");
            assert!(
                taken.iter().all(|t| t.tag == 3 && t.packet[0] >> 4 == 4),
                "{taken:?}"
            );
            faults.remove(&dropped).unwrap();
            assert!(connect().is_ok());

            let rejected = faults
                .install(&[filter(
                    Port::Destination(port),
                    Verdict::Reject {
                        with: Reject::TcpReset,
                    },
                )])
                .unwrap();
            let err = connect().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
            assert_eq!(faults.packets(&rejected).unwrap(), 1);
            faults.remove(&rejected).unwrap();
            assert!(faults.rules().unwrap().is_empty());
            assert!(connect().is_ok());
        });
    }

    #[test]
    fn a_delayed_syn_arrives_late_and_is_not_lost() {
        let (took, held, packets, logged) = in_fresh_netns(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let mut faults = Faults::open().unwrap();
            let delay = Filter {
                flags: Some(TcpFlags::SYN),
                ..filter(
                    Port::Destination(port),
                    Verdict::Delay {
                        by: Duration::from_millis(300),
                        jitter: Duration::ZERO,
                    },
                )
            };
            let handles = faults.install(&[delay]).unwrap();
            let start = std::time::Instant::now();
            let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let took = start.elapsed();
            drop(stream);
            let (held, trouble) = faults.held();
            assert!(trouble.is_empty(), "{trouble:?}");
            let packets = faults.packets(&handles).unwrap();
            let logged = faults.taken().unwrap();
            (took, held, packets, logged)
        });
        // The SYN waited in the kernel 300 ms; no retransmission (the first
        // comes at 1 s) went out meanwhile.
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        assert_eq!(packets, 1);
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].tag, 3);
        assert_eq!(held[0].held, Duration::from_millis(300));
        assert_eq!(held[0].packet[0] >> 4, 4, "from its IP header");
        assert!(
            logged.is_empty(),
            "a delayed packet is not lost: {logged:?}"
        );
    }

    /// A drop put in place after a delay still takes the packets the delay
    /// would hold (its chain comes first); and what a delay still holds
    /// when the faults go is let go, not lost.
    #[test]
    fn a_drop_beats_a_delay_and_the_held_go_on_at_the_end() {
        let (dropped, held, took) = in_fresh_netns(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let to = listener.local_addr().unwrap();
            let port = to.port();
            let mut faults = Faults::open().unwrap();
            let syn = |verdict| Filter {
                flags: Some(TcpFlags::SYN),
                ..filter(Port::Destination(port), verdict)
            };
            let delay = Verdict::Delay {
                by: Duration::from_secs(30),
                jitter: Duration::ZERO,
            };
            faults.install(&[syn(delay)]).unwrap();
            let drop_rule = faults.install(&[syn(Verdict::Drop)]).unwrap();
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            let err = socket
                .connect_timeout(&to.into(), Duration::from_millis(300))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
            let dropped = faults.packets(&drop_rule).unwrap();
            let (held, _) = faults.held();
            faults.remove(&drop_rule).unwrap();
            // Now held for 30 s; the faults go after 100 ms, and the SYN
            // with them, on its way.
            let connecting = std::thread::spawn(move || {
                let start = std::time::Instant::now();
                TcpStream::connect(to).map(|_| start.elapsed())
            });
            std::thread::sleep(Duration::from_millis(100));
            drop(faults);
            let took = connecting.join().unwrap().unwrap();
            (dropped, held.len(), took)
        });
        assert!(dropped >= 1);
        assert_eq!(held, 0, "a dropped SYN is not also held");
        assert!(
            took < Duration::from_millis(900),
            "{took:?}: let go at the end, not retransmitted"
        );
    }

    #[test]
    fn a_probability_takes_about_that_share() {
        let share = in_fresh_netns(|| {
            // Segments to a port nobody listens on are answered by RST; the
            // rule counts the SYNs it drops among 400 tries.
            let mut faults = Faults::open().unwrap();
            let rule = Filter {
                probability: Some(0.5),
                ..filter(Port::Destination(9), Verdict::Drop)
            };
            let handles = faults.install(&[rule]).unwrap();
            let mut refused = 0;
            for _ in 0..400 {
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                        .unwrap();
                socket.set_nonblocking(true).unwrap();
                let to: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
                let _ = socket.connect(&to.into());
                std::thread::sleep(Duration::from_millis(1));
                if socket.take_error().unwrap().is_some() {
                    refused += 1;
                }
            }
            let dropped = faults.packets(&handles).unwrap();
            assert_eq!(dropped + refused, 400, "each SYN dropped or refused");
            dropped
        });
        // 0.5 of 400: outside 140..=260 once in about 10^9 runs.
        assert!((140..=260).contains(&share), "{share} of 400");
    }

    #[test]
    fn a_refusal_names_the_message() {
        in_fresh_netns(|| {
            let mut faults = Faults::open().unwrap();
            faults.install(&[]).unwrap();
            let err = faults.remove(&[12345]).unwrap_err();
            assert!(err.to_string().contains("removing rule 12345"), "{err}");
        });
    }
}
