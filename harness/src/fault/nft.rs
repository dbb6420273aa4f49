//! The nf_tables messages for [`Filter`]s, and the netlink exchange that
//! puts them in the kernel, counts what they took, and takes them away.

use std::collections::HashMap;
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

use super::answer::{Answer, Rule, Says, answers};
use super::delay::{Delay, Delays, Held};
use super::encode::{
    CHAIN, DELAY_CHAIN, LOG_COPY, LOG_GROUP, NF_ACCEPT, TABLE, chain_of, encode, encode_control,
    handle, messages, rules,
};
use super::{FaultError, Filter, Taken};
use crate::model::Verdict;

/// How long the kernel may take to answer a batch: it answers at once, so
/// this only keeps a lost answer from hanging the case.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The most rules one transaction adds or removes. The kernel echoes each
/// (with its expressions) into our socket's receive buffer at once,
/// inside our `send`, and drops what does not fit: with the default
/// buffer (`net.core.rmem_default`, 212,992 bytes) 176 rules of a `data`
/// fault (the longest) fitted in one transaction, and 198 failed with
/// ENOBUFS (measured here, by installing one fault on 8 and 9 ports).
/// 64 leaves room on any host, and a fault is still one transaction up
/// to 64 ports (two with `data`, 22 rules a port). More rules go in
/// several transactions.
const BATCH_RULES: usize = 64;

/// One message of a batch: what it is (for a refusal), and its flags
/// besides `NLM_F_REQUEST` and the acknowledgement.
struct Request {
    what: String,
    message: NfTablesMessage,
    flags: u16,
}

/// `requests` in batches of at most [`BATCH_RULES`].
fn chunked(requests: Vec<Request>) -> impl Iterator<Item = Vec<Request>> {
    let mut requests = requests.into_iter().peekable();
    std::iter::from_fn(move || {
        requests.peek()?;
        Some(requests.by_ref().take(BATCH_RULES).collect())
    })
}

/// What [`Faults::remove`] took away: the packets each removed rule had
/// taken, by handle, and why it stopped before the rest, if it did.
#[derive(Debug, Default)]
pub struct Removed {
    /// The removed rules' counts, by handle.
    pub packets: HashMap<u64, u64>,
    /// The refusal that left the rest in place.
    pub error: Option<FaultError>,
}

impl Removed {
    /// Every rule's count, or why some are still in place.
    pub fn all(self) -> Result<HashMap<u64, u64>, FaultError> {
        match self.error {
            None => Ok(self.packets),
            Some(error) => Err(error),
        }
    }
}

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

    /// Puts `filters` in the kernel, after any rules already there, all or
    /// none; returns each rule's handle, in order, as the kernel echoed
    /// it. One transaction when the rules fit one (64 rules); more
    /// are sent in several, and when one is refused those before it are
    /// taken away again.
    pub fn install(&mut self, filters: &[Filter]) -> Result<Vec<u64>, FaultError> {
        for filter in filters {
            if let Verdict::Delay { by, jitter } = filter.verdict {
                // The listener first: the kernel drops what it queues for
                // no one.
                self.delays.set(filter.tag, Delay { by, jitter })?;
            }
        }
        let mut first = Vec::new();
        if !self.table_made {
            first.push(Request {
                what: "the table".to_string(),
                message: NfTablesMessage::NewTable(TableMessage {
                    attributes: vec![
                        TableAttribute::Name(TABLE.into()),
                        TableAttribute::Flags(TableFlags::Owner),
                    ],
                }),
                flags: NLM_F_CREATE,
            });
            for (chain, priority) in [(CHAIN, 0), (DELAY_CHAIN, 10)] {
                first.push(Request {
                    what: format!("the input chain {chain:?}"),
                    message: NfTablesMessage::NewChain(ChainMessage {
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
                    flags: NLM_F_CREATE,
                });
            }
        }
        let mut rules_to_add = Vec::new();
        for (i, filter) in filters.iter().enumerate() {
            let chain = chain_of(filter.verdict);
            for rule in rules(filter) {
                rules_to_add.push(Request {
                    what: format!("rule {} ({filter:?})", i + 1),
                    message: NfTablesMessage::NewRule(RuleMessage {
                        attributes: vec![
                            RuleAttribute::Table(TABLE.into()),
                            RuleAttribute::Chain(chain.into()),
                            RuleAttribute::Expressions(rule),
                        ],
                    }),
                    flags: NLM_F_CREATE | NLM_F_APPEND | NLM_F_ECHO,
                });
            }
        }
        let mut handles = Vec::new();
        let mut chunks = chunked(rules_to_add);
        // The table and chains go with the first rules (or alone).
        let mut next = Some(first).filter(|f| !f.is_empty());
        loop {
            let batch = match (next.take(), chunks.next()) {
                (Some(mut first), Some(chunk)) => {
                    first.extend(chunk);
                    first
                }
                (Some(first), None) => first,
                (None, Some(chunk)) => chunk,
                (None, None) => break,
            };
            let wanted = batch
                .iter()
                .filter(|r| matches!(r.message, NfTablesMessage::NewRule(_)))
                .count();
            let added = self.transaction(batch).and_then(|echoed| {
                self.table_made = true;
                let added = self.added_handles(echoed);
                if added.len() == wanted {
                    Ok(added)
                } else {
                    Err(FaultError::Malformed(format!(
                        "the kernel echoed {} of the {wanted} rules it added",
                        added.len()
                    )))
                }
            });
            match added {
                Ok(added) => handles.extend(added),
                Err(error) if handles.is_empty() => return Err(error),
                Err(error) => {
                    // All or none: take back what the earlier batches put.
                    let taken_back = self.remove(&handles);
                    return Err(match taken_back.error {
                        None => error,
                        Some(also) => FaultError::Malformed(format!(
                            "{error}; and {} of its rules already put stay in place: {also}",
                            handles.len() - taken_back.packets.len()
                        )),
                    });
                }
            }
        }
        Ok(handles)
    }

    /// The handles of the rules in `echoed`, the kernel's echo of a
    /// batch that added them, in order; the delay chain's are noted.
    fn added_handles(&mut self, echoed: Vec<Says>) -> Vec<u64> {
        let mut handles = Vec::new();
        for says in echoed {
            let Says::Rule(Rule {
                handle: Some(h),
                chain,
                ..
            }) = says
            else {
                continue;
            };
            if chain.as_deref() == Some(DELAY_CHAIN) {
                self.delay_rules.insert(h);
            }
            handles.push(h);
        }
        handles
    }

    /// Takes the rules with these handles out of the kernel, in as few
    /// transactions as hold them (64 rules a transaction), and
    /// returns how many packets each had taken, as the kernel echoed it
    /// removed: read and removed at once, so no packet falls between the
    /// count and the removal, and nothing installed is read back. Stops at
    /// the first transaction refused: the rules before it are gone (and
    /// counted), that one's and those after it are still in place.
    pub fn remove(&mut self, handles: &[u64]) -> Removed {
        let mut removed = Removed::default();
        let requests = handles.iter().map(|&h| Request {
            what: format!("removing rule {h}"),
            message: NfTablesMessage::DeleteRule(RuleMessage {
                attributes: vec![
                    RuleAttribute::Table(TABLE.into()),
                    RuleAttribute::Chain(self.chain_of_rule(h).into()),
                    RuleAttribute::Handle(h),
                ],
            }),
            flags: NLM_F_ECHO,
        });
        for chunk in chunked(requests.collect()) {
            let wanted: Vec<u64> = chunk
                .iter()
                .filter_map(|r| match &r.message {
                    NfTablesMessage::DeleteRule(rule) => handle(rule),
                    _ => None,
                })
                .collect();
            let echoed = match self.transaction(chunk) {
                Ok(echoed) => echoed,
                Err(error) => {
                    removed.error = Some(error);
                    return removed;
                }
            };
            let mut counted = HashMap::new();
            for says in echoed {
                if let Says::Removed(Rule {
                    handle: Some(h),
                    packets: Some(packets),
                    ..
                }) = says
                {
                    counted.insert(h, packets);
                }
            }
            let mut uncounted = Vec::new();
            for h in wanted {
                self.delay_rules.remove(&h);
                match counted.get(&h) {
                    Some(&packets) => {
                        removed.packets.insert(h, packets);
                    }
                    None => uncounted.push(h),
                }
            }
            if !uncounted.is_empty() {
                // Gone, but their counts never came: not made up.
                removed.error = Some(FaultError::Malformed(format!(
                    "the kernel removed rules {uncounted:?} without echoing what they counted"
                )));
                return removed;
            }
        }
        removed
    }

    /// The chain the rule with this handle is in.
    fn chain_of_rule(&self, handle: u64) -> &'static str {
        if self.delay_rules.contains(&handle) {
            DELAY_CHAIN
        } else {
            CHAIN
        }
    }

    /// Every rule in the case's chains (the faults', then the delays'), as
    /// the kernel reads it back, whole: one dump, however many, each rule
    /// parsed by netlink-packet-netfilter (slow: for tests that compare
    /// what was sent; [`Faults::counts`] reads only the counts).
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

    /// How many packets each rule in place took so far, by handle, by the
    /// kernel's counters: one dump, for the end of a case, where every
    /// fault left is counted.
    pub fn counts(&mut self) -> Result<HashMap<u64, u64>, FaultError> {
        let mut counts = HashMap::new();
        if !self.table_made {
            return Ok(counts);
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
        loop {
            for answer in self.answers()? {
                if answer.sequence != sequence {
                    continue;
                }
                match answer.says {
                    Says::Done => return Ok(counts),
                    Says::Error(0) => {}
                    Says::Error(code) => return Err(refused("the rule dump".into(), -code)),
                    Says::Rule(rule) => {
                        let (Some(h), Some(packets)) = (rule.handle, rule.packets) else {
                            return Err(FaultError::Malformed(format!(
                                "a rule without a handle or a counter in the dump: {rule:?}"
                            )));
                        };
                        counts.insert(h, packets);
                    }
                    Says::Removed(_) | Says::Other => {}
                }
            }
        }
    }

    /// How many packets the rules with these handles took, by the kernel's
    /// counters: each rule asked for by its handle (a `taken` check polls
    /// this, so it costs what the fault has, not what the case has).
    pub fn packets(&mut self, handles: &[u64]) -> Result<u64, FaultError> {
        let mut total = 0;
        for chunk in handles.chunks(BATCH_RULES) {
            let mut bytes = Vec::new();
            let mut pending = HashMap::new();
            for &h in chunk {
                let sequence = self.next_sequence();
                let request = RuleMessage {
                    attributes: vec![
                        RuleAttribute::Table(TABLE.into()),
                        RuleAttribute::Chain(self.chain_of_rule(h).into()),
                        RuleAttribute::Handle(h),
                    ],
                };
                bytes.extend(encode(
                    NetfilterProtoFamily::Inet,
                    NfTablesMessage::GetRule(request),
                    NLM_F_REQUEST,
                    sequence,
                ));
                pending.insert(sequence, h);
            }
            self.send(&bytes)?;
            while !pending.is_empty() {
                for answer in self.answers()? {
                    let Some(&h) = pending.get(&answer.sequence) else {
                        continue;
                    };
                    match answer.says {
                        Says::Error(0) => {}
                        Says::Error(code) => {
                            return Err(refused(format!("reading rule {h}'s counter"), -code));
                        }
                        Says::Rule(rule) => {
                            pending.remove(&answer.sequence);
                            total += rule.packets.ok_or_else(|| {
                                FaultError::Malformed(format!(
                                    "rule {h} came back without its counter"
                                ))
                            })?;
                        }
                        Says::Done | Says::Removed(_) | Says::Other => {}
                    }
                }
            }
        }
        Ok(total)
    }

    fn next_sequence(&mut self) -> u32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }

    /// Sends `requests` as one nf_tables batch, one transaction of the
    /// kernel's (all or none), and reads every answer: the messages it
    /// echoed, in order, or the first refusal.
    ///
    /// Only the last request asks for an acknowledgement. The kernel
    /// answers a batch inside our `send`, every answer at once: the
    /// echoes when it commits, then, in the requests' order, an error for
    /// each refused and the acknowledgements asked for. So the last one's
    /// answer comes after all the others, and one per request (a
    /// thousand, each a buffer of its own) cannot fill the socket's
    /// receive buffer, where the kernel would drop what does not fit. A
    /// commit the kernel refuses is answered at the batch's first
    /// message.
    fn transaction(&mut self, requests: Vec<Request>) -> Result<Vec<Says>, FaultError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let subsystem = libc::NFNL_SUBSYS_NFTABLES as u16;
        let begin = self.next_sequence();
        let mut bytes = encode_control(ControlMessage::BatchBegin, subsystem, begin);
        let mut named = HashMap::new();
        named.insert(begin, "the batch's commit".to_string());
        let count = requests.len();
        let mut last = begin;
        for (i, request) in requests.into_iter().enumerate() {
            last = self.next_sequence();
            let ack = if i + 1 == count { NLM_F_ACK } else { 0 };
            bytes.extend(encode(
                NetfilterProtoFamily::Inet,
                request.message,
                NLM_F_REQUEST | ack | request.flags,
                last,
            ));
            named.insert(last, request.what);
        }
        let end = self.next_sequence();
        bytes.extend(encode_control(ControlMessage::BatchEnd, subsystem, end));
        self.send(&bytes)?;

        let mut echoed = Vec::new();
        let mut refusal = None;
        loop {
            for answer in self.answers()? {
                let sequence = answer.sequence;
                if !(begin..=end).contains(&sequence) {
                    // An answer to an earlier exchange, late.
                    continue;
                }
                match answer.says {
                    Says::Error(code) => {
                        if code != 0 && refusal.is_none() {
                            let what = named.remove(&sequence).unwrap_or_default();
                            refusal = Some(refused(what, -code));
                        }
                        if sequence == last {
                            return match refusal {
                                Some(error) => Err(error),
                                None => Ok(echoed),
                            };
                        }
                    }
                    says @ (Says::Rule(_) | Says::Removed(_)) => echoed.push(says),
                    Says::Done | Says::Other => {}
                }
            }
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

    /// One datagram's answers, as [`answers`] reads them.
    fn answers(&mut self) -> Result<Vec<Answer>, FaultError> {
        let received = self.receive_bytes()?;
        answers(&self.buffer[..received])
    }

    /// One datagram's messages, parsed whole.
    fn receive(&mut self) -> Result<Vec<NetlinkMessage<NetfilterMessage>>, FaultError> {
        let received = self.receive_bytes()?;
        messages(&self.buffer[..received])
    }

    /// Reads one datagram into the buffer; its length.
    fn receive_bytes(&mut self) -> Result<usize, FaultError> {
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
        Ok(received.min(self.buffer.len()))
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
            let counted = faults.packets(&dropped).unwrap();
            assert!(counted >= 1);
            // The kernel logged it as it dropped it: its head, from the
            // IP header, and the rule's tag.
            let taken = faults.taken().unwrap();
            assert!(!taken.is_empty(), "the dropped SYN was logged");
            assert!(
                taken.iter().all(|t| t.tag == 3 && t.packet[0] >> 4 == 4),
                "{taken:?}"
            );
            // Removed, the kernel echoes what it counted: the same.
            let removed = faults.remove(&dropped).all().unwrap();
            assert_eq!(removed, HashMap::from([(dropped[0], counted)]));
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
            let removed = faults.remove(&rejected).all().unwrap();
            assert_eq!(removed.values().sum::<u64>(), 1);
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
            faults.remove(&drop_rule).all().unwrap();
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

    /// More rules than one transaction holds ([`BATCH_RULES`]) go in and
    /// come out in several, each read back once: 10 ports with `data`,
    /// 220 rules, four transactions each way.
    #[test]
    fn rules_past_one_transaction_go_in_and_out_in_several() {
        let (handles, read, removed, left) = in_fresh_netns(|| {
            let mut faults = Faults::open().unwrap();
            let filters: Vec<Filter> = (9000..9010)
                .map(|port| Filter {
                    data: Some(true),
                    ..filter(Port::Destination(port), Verdict::Drop)
                })
                .collect();
            let handles = faults.install(&filters).unwrap();
            let read = faults.rules().unwrap().len();
            let removed = faults.remove(&handles).all().unwrap();
            let left = faults.rules().unwrap().len();
            (handles, read, removed, left)
        });
        assert!(handles.len() > 3 * BATCH_RULES);
        assert_eq!(handles.len(), 10 * crate::fault::RULES_WITH_DATA);
        let distinct: std::collections::HashSet<_> = handles.iter().collect();
        assert_eq!(distinct.len(), handles.len(), "a handle per rule");
        assert_eq!(read, handles.len());
        let mut removed: Vec<u64> = removed.into_keys().collect();
        removed.sort_unstable();
        let mut sorted = handles.clone();
        sorted.sort_unstable();
        assert_eq!(removed, sorted, "each rule removed and counted");
        assert_eq!(left, 0);
    }

    /// A fault's count is read by its rules' handles alone, and every
    /// rule's by one dump: both the kernel's counters, the same.
    #[test]
    fn counts_by_handle_and_by_dump_agree() {
        let (one, all, third) = in_fresh_netns(|| {
            let mut faults = Faults::open().unwrap();
            let mut handles = Vec::new();
            for port in [9, 10, 11] {
                handles.extend(
                    faults
                        .install(&[filter(Port::Destination(port), Verdict::Drop)])
                        .unwrap(),
                );
            }
            // Two SYNs to port 11, dropped (and not retransmitted yet).
            for _ in 0..2 {
                let socket =
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                        .unwrap();
                socket.set_nonblocking(true).unwrap();
                let to: std::net::SocketAddr = "127.0.0.1:11".parse().unwrap();
                let _ = socket.connect(&to.into());
            }
            // The SYNs reach the input hook in a softirq: wait for them
            // (well before the first retransmission, at 1 s).
            let start = std::time::Instant::now();
            let mut one = faults.packets(&handles[2..]).unwrap();
            while one < 2 && start.elapsed() < Duration::from_millis(500) {
                std::thread::sleep(Duration::from_millis(2));
                one = faults.packets(&handles[2..]).unwrap();
            }
            let all = faults.counts().unwrap();
            (one, all, handles[2])
        });
        assert_eq!(one, 2);
        assert_eq!(all.len(), 3);
        assert_eq!(all[&third], 2);
        assert_eq!(all.values().sum::<u64>(), 2);
    }

    #[test]
    fn a_refusal_names_the_message() {
        in_fresh_netns(|| {
            let mut faults = Faults::open().unwrap();
            faults.install(&[]).unwrap();
            let err = faults.remove(&[12345]).all().unwrap_err();
            assert!(err.to_string().contains("removing rule 12345"), "{err}");
        });
    }
}
