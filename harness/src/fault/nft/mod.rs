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
        let sequence = self.ask_for_rules()?;
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

    /// Asks the kernel for a dump of every rule of the table; the
    /// sequence number its answers carry.
    fn ask_for_rules(&mut self) -> Result<u32, FaultError> {
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
        Ok(sequence)
    }

    /// How many packets each rule in place took so far, by handle, by the
    /// kernel's counters: one dump, for the end of a case, where every
    /// fault left is counted.
    pub fn counts(&mut self) -> Result<HashMap<u64, u64>, FaultError> {
        let mut counts = HashMap::new();
        if !self.table_made {
            return Ok(counts);
        }
        let sequence = self.ask_for_rules()?;
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
mod tests;
