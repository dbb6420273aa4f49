//! The nf_tables, nflog and nfqueue messages of faults, as bytes: what the
//! rules of a [`Filter`] are, how a batch is framed, and how the kernel's
//! answers are read. Pure: nothing here opens a socket, so every encoding
//! is tested against byte arrays without a kernel (the round trip through
//! the kernel is `nft`'s tests).

use netlink_packet_core::{DefaultNla, NLM_F_REQUEST, NetlinkMessage};
use netlink_packet_netfilter::nftables::{
    Bitwise, Cmp, DataAttribute, ExpressionAttribute, Expressions, Immediate, ListAttribute, Meta,
    MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage,
    Verdict as NftVerdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use nix::libc;

use super::{FaultError, Filter};
use crate::model::{Port, Reject, Verdict};

/// The nfnetlink_queue number delay rules hand their packets to; each
/// case has a namespace, and so queues, of its own.
pub const QUEUE: u16 = 7;

/// The table and chain every case's rules go in.
pub(super) const TABLE: &str = "hangup";
pub(super) const CHAIN: &str = "faults";
/// The chain of delay rules: on the same hook after [`CHAIN`], so a packet
/// a drop or reject takes is not also held, and one a delay lets go has
/// met every other rule already (a verdict lets a packet go on to the
/// next hook, past the rest of its chain).
pub(super) const DELAY_CHAIN: &str = "delays";

// From linux/netfilter/nf_tables.h and linux/netfilter.h.
pub(super) const NFPROTO_IPV4: u8 = 2;
pub(super) const NFPROTO_IPV6: u8 = 10;
pub(super) const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
pub(super) const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
pub(super) const NF_DROP: u32 = 0;
pub(super) const NF_ACCEPT: u32 = 1;
pub(super) const NFTA_REJECT_TYPE: u16 = 1;
pub(super) const NFTA_REJECT_ICMP_CODE: u16 = 2;
pub(super) const NFT_REJECT_TCP_RST: u32 = 1;
pub(super) const NFT_REJECT_ICMPX_UNREACH: u32 = 2;
pub(super) const NFT_REJECT_ICMPX_PORT_UNREACH: u8 = 1;
pub(super) const NFT_REJECT_ICMPX_HOST_UNREACH: u8 = 2;
pub(super) const NFT_REJECT_ICMPX_ADMIN_PROHIBITED: u8 = 3;
pub(super) const NFTA_LOG_GROUP: u16 = 1;
pub(super) const NFTA_LOG_PREFIX: u16 = 2;
pub(super) const NFTA_LOG_SNAPLEN: u16 = 3;
pub(super) const NFTA_LOG_QTHRESHOLD: u16 = 4;
pub(super) const NFTA_TARGET_NAME: u16 = 1;
pub(super) const NFQ_FLAG_BYPASS: u16 = 1;
pub(super) const NFTA_TARGET_REV: u16 = 2;
pub(super) const NFTA_TARGET_INFO: u16 = 3;

/// The nflog group the rules log to; each case has a namespace, and so
/// groups, of its own.
pub const LOG_GROUP: u16 = 7;

/// The bytes of each taken packet the kernel logs: the IP and TCP headers
/// at their longest.
pub(super) const LOG_COPY: u32 = 120;

/// The netlink messages of one datagram.
pub(super) fn messages(mut at: &[u8]) -> Result<Vec<NetlinkMessage<NetfilterMessage>>, FaultError> {
    let mut messages = Vec::new();
    while at.len() >= 16 {
        let length = u32::from_ne_bytes([at[0], at[1], at[2], at[3]]) as usize;
        if length < 16 || length > at.len() {
            return Err(FaultError::Malformed(format!(
                "a message of {length} bytes in a datagram of {} left",
                at.len()
            )));
        }
        let message = NetlinkMessage::<NetfilterMessage>::deserialize(&at[..length])
            .map_err(|e| FaultError::Malformed(format!("an unreadable answer: {e}")))?;
        messages.push(message);
        at = &at[length.next_multiple_of(4).min(at.len())..];
    }
    Ok(messages)
}

/// The handle the kernel gave a rule.
pub(super) fn handle(rule: &RuleMessage) -> Option<u64> {
    rule.attributes.iter().find_map(|a| match a {
        RuleAttribute::Handle(h) => Some(*h),
        _ => None,
    })
}

/// The chain a rule with this verdict goes in.
pub(super) fn chain_of(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Delay { .. } => DELAY_CHAIN,
        Verdict::Drop | Verdict::Reject { .. } => CHAIN,
    }
}

pub(super) fn encode(
    family: NetfilterProtoFamily,
    message: NfTablesMessage,
    flags: u16,
    sequence: u32,
) -> Vec<u8> {
    serialize(
        NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), message),
        flags,
        sequence,
    )
}

/// One netlink message's bytes, with these header flags and sequence
/// number.
pub(super) fn serialize(message: NetfilterMessage, flags: u16, sequence: u32) -> Vec<u8> {
    let mut message = NetlinkMessage::from(message);
    message.header.flags = flags;
    message.header.sequence_number = sequence;
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

pub(super) fn encode_control(message: ControlMessage, subsystem: u16, sequence: u32) -> Vec<u8> {
    serialize(
        NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, subsystem),
            message,
        ),
        NLM_F_REQUEST,
        sequence,
    )
}

pub(super) type Expression = ListAttribute<ExpressionAttribute>;

/// A TCP header's lengths, in 32-bit words (its data offset).
const TCP_HEADER_WORDS: std::ops::RangeInclusive<u16> = 5..=15;

/// The rules of a filter that narrows by `data`: one per IP version and
/// TCP header length (nf_tables cannot subtract the headers' lengths from
/// the packet's, so each length is a rule of its own).
pub const RULES_WITH_DATA: usize =
    2 * (*TCP_HEADER_WORDS.end() - *TCP_HEADER_WORDS.start() + 1) as usize;

/// How many nf_tables rules one [`Filter`] (one port) makes: so a suite
/// can count what its faults will cost before any runs.
pub fn rules_per_port(data: Option<bool>) -> usize {
    if data.is_some() { RULES_WITH_DATA } else { 1 }
}

/// The rules for one filter: one, or, to tell segments with data from
/// those without, one per IP version and TCP header length (nf_tables
/// cannot subtract the header lengths from the packet's; it can compare
/// each against the lengths a header of that size gives).
pub(super) fn rules(filter: &Filter) -> Vec<Vec<Expression>> {
    let mut head = vec![
        load_meta(MetaKey::L4Proto),
        equal(vec![libc::IPPROTO_TCP as u8]),
    ];
    let (offset, port) = match filter.port {
        Port::Source(p) => (0, p),
        Port::Destination(p) => (2, p),
    };
    head.push(load_payload(NFT_PAYLOAD_TRANSPORT_HEADER, offset, 2));
    head.push(equal(port.to_be_bytes().to_vec()));
    if let Some(flags) = filter.flags {
        let (bits, value) = flags.mask_and_value();
        head.push(load_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1));
        head.push(mask(bits));
        head.push(equal(vec![value]));
    }
    let mut tail = Vec::new();
    if let Some(p) = filter.probability.filter(|p| *p < 1.0) {
        // meta random is uniform over all 32 bits: its bytes, compared as
        // memcmp compares, are below the threshold's big-endian bytes with
        // probability threshold / 2^32. A suite's probability is at least
        // 2^-32, whose threshold is 1 (`check` refuses less: a threshold
        // of 0 would never fire); the clamp only keeps a smaller one from
        // wrapping round.
        let threshold = (p * 4_294_967_296.0).round().clamp(1.0, 4_294_967_295.0) as u32;
        tail.push(load_meta(MetaKey::PseudoRandom));
        tail.push(compare(
            Operator::LessThan,
            threshold.to_be_bytes().to_vec(),
        ));
    }
    if let Verdict::Delay { .. } = filter.verdict {
        // Marked with its tag, which the queue's message carries.
        tail.push(
            Expressions::Immediate(vec![
                Immediate::DestinationRegister(Register::Reg1),
                Immediate::Data(DataAttribute::Value(filter.tag.to_ne_bytes().to_vec())),
            ])
            .into(),
        );
        tail.push(
            Expressions::Meta(vec![
                Meta::Key(MetaKey::Mark),
                Meta::SourceRegister(Register::Reg1),
            ])
            .into(),
        );
        tail.push(counter());
    } else {
        // Not a delayed packet: that one is not lost.
        tail.push(counter());
        tail.push(log(filter.tag));
    }
    tail.push(verdict(filter.verdict));

    let Some(data) = filter.data else {
        return vec![[head, tail].concat()];
    };
    let mut all = Vec::new();
    // A TCP header is 5 to 15 words (its data offset); a segment has no
    // data when the IP packet is exactly its headers long.
    for words in TCP_HEADER_WORDS {
        let tcp = words * 4;
        let doff = vec![
            load_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 12, 1),
            mask(0xf0),
            equal(vec![(words as u8) << 4]),
        ];
        let op = if data {
            Operator::NotEqual
        } else {
            Operator::Equal
        };
        // IPv4 without options (hangup's loopback traffic has none):
        // total length = 20 + the TCP header.
        let v4 = vec![
            load_meta(MetaKey::Nfproto),
            equal(vec![NFPROTO_IPV4]),
            load_payload(NFT_PAYLOAD_NETWORK_HEADER, 0, 1),
            mask(0x0f),
            equal(vec![5]),
            load_payload(NFT_PAYLOAD_NETWORK_HEADER, 2, 2),
            compare(op, (20 + tcp).to_be_bytes().to_vec()),
        ];
        // IPv6 without extension headers: payload length = the TCP header.
        let v6 = vec![
            load_meta(MetaKey::Nfproto),
            equal(vec![NFPROTO_IPV6]),
            load_payload(NFT_PAYLOAD_NETWORK_HEADER, 4, 2),
            compare(op, tcp.to_be_bytes().to_vec()),
        ];
        for family in [v4, v6] {
            all.push([head.clone(), doff.clone(), family, tail.clone()].concat());
        }
    }
    all
}

fn load_meta(key: MetaKey) -> Expression {
    Expressions::Meta(vec![
        Meta::Key(key),
        Meta::DestinationRegister(Register::Reg1),
    ])
    .into()
}

fn load_payload(base: u32, offset: u32, len: u32) -> Expression {
    Expressions::Payload(vec![
        Payload::DestinationRegister(Register::Reg1),
        Payload::Base(base),
        Payload::Offset(offset),
        Payload::Len(len),
    ])
    .into()
}

fn mask(bits: u8) -> Expression {
    Expressions::Bitwise(vec![
        Bitwise::SourceRegister(Register::Reg1),
        Bitwise::DestinationRegister(Register::Reg1),
        Bitwise::Length(1),
        Bitwise::Mask(DataAttribute::Value(vec![bits])),
        Bitwise::Xor(DataAttribute::Value(vec![0])),
    ])
    .into()
}

fn equal(value: Vec<u8>) -> Expression {
    compare(Operator::Equal, value)
}

fn compare(op: Operator, value: Vec<u8>) -> Expression {
    Expressions::Cmp(vec![
        Cmp::SourceRegister(Register::Reg1),
        Cmp::Op(op),
        Cmp::Data(DataAttribute::Value(value)),
    ])
    .into()
}

pub(super) fn counter() -> Expression {
    Expressions::Other {
        expression_type: "counter".into(),
        attributes: Vec::new(),
    }
    .into()
}

/// Sends the packet's head to [`LOG_GROUP`], prefixed `hangup <tag>`.
fn log(tag: u32) -> Expression {
    let mut prefix = format!("hangup {tag}").into_bytes();
    prefix.push(0);
    Expressions::Other {
        expression_type: "log".into(),
        attributes: vec![
            // In the order the kernel reads the rule back.
            DefaultNla::new(NFTA_LOG_PREFIX, prefix),
            DefaultNla::new(NFTA_LOG_GROUP, LOG_GROUP.to_be_bytes().to_vec()),
            DefaultNla::new(NFTA_LOG_SNAPLEN, LOG_COPY.to_be_bytes().to_vec()),
            // Sent at once, one packet per message (not batched for up to
            // the instance's flush timeout, a second).
            DefaultNla::new(NFTA_LOG_QTHRESHOLD, 1u16.to_be_bytes().to_vec()),
        ],
    }
    .into()
}

fn verdict(verdict: Verdict) -> Expression {
    let (kind, code) = match verdict {
        Verdict::Drop => {
            return Expressions::Immediate(vec![
                Immediate::DestinationRegister(Register::Verdict),
                Immediate::Data(DataAttribute::Verdict(vec![VerdictAttribute::Code(
                    NftVerdict::Other(NF_DROP),
                )])),
            ])
            .into();
        }
        Verdict::Delay { .. } => {
            // struct xt_NFQ_info_v3: queue number, how many queues, flags,
            // in the host's byte order, padded to 8 as xtables aligns it.
            // NFQ_FLAG_BYPASS: with no listener a packet goes on, as it
            // does once the listener has let go of all it held at the
            // case's end and the table is not yet gone; while the case
            // runs there is always one (it is bound before the rule).
            let mut info = Vec::with_capacity(8);
            for field in [QUEUE, 1, NFQ_FLAG_BYPASS, 0] {
                info.extend(field.to_ne_bytes());
            }
            return Expressions::Other {
                expression_type: "target".into(),
                attributes: vec![
                    DefaultNla::new(NFTA_TARGET_NAME, b"NFQUEUE\0".to_vec()),
                    DefaultNla::new(NFTA_TARGET_REV, 3u32.to_be_bytes().to_vec()),
                    DefaultNla::new(NFTA_TARGET_INFO, info),
                ],
            }
            .into();
        }
        Verdict::Reject {
            with: Reject::TcpReset,
        } => (NFT_REJECT_TCP_RST, None),
        Verdict::Reject {
            with: Reject::PortUnreachable,
        } => (
            NFT_REJECT_ICMPX_UNREACH,
            Some(NFT_REJECT_ICMPX_PORT_UNREACH),
        ),
        Verdict::Reject {
            with: Reject::HostUnreachable,
        } => (
            NFT_REJECT_ICMPX_UNREACH,
            Some(NFT_REJECT_ICMPX_HOST_UNREACH),
        ),
        Verdict::Reject {
            with: Reject::AdminProhibited,
        } => (
            NFT_REJECT_ICMPX_UNREACH,
            Some(NFT_REJECT_ICMPX_ADMIN_PROHIBITED),
        ),
    };
    let mut attributes = vec![DefaultNla::new(
        NFTA_REJECT_TYPE,
        kind.to_be_bytes().to_vec(),
    )];
    if let Some(code) = code {
        attributes.push(DefaultNla::new(NFTA_REJECT_ICMP_CODE, vec![code]));
    }
    Expressions::Other {
        expression_type: "reject".into(),
        attributes,
    }
    .into()
}

#[cfg(test)]
mod tests {
    //! Each encoding against the bytes the kernel's headers define
    //! (`linux/netlink.h`, `linux/netfilter/nfnetlink.h`,
    //! `linux/netfilter/nf_tables.h`), annotated field by field. An
    //! attribute's header is its length and its type, little-endian;
    //! `| NESTED` is `NLA_F_NESTED` (0x8000) in the type.

    use netlink_packet_core::{Emitable, NetlinkPayload};

    use super::*;

    fn bytes(expression: &Expression) -> Vec<u8> {
        let mut out = vec![0; expression.buffer_len()];
        expression.emit(&mut out);
        out
    }

    #[test]
    fn a_batch_begins_with_the_nftables_subsystem_named() {
        #[rustfmt::skip]
        let expected = [
            20, 0, 0, 0,    // nlmsg_len: 20 bytes
            16, 0,          // nlmsg_type: NFNL_MSG_BATCH_BEGIN (0x10)
            1, 0,           // nlmsg_flags: NLM_F_REQUEST
            7, 0, 0, 0,     // nlmsg_seq: 7
            0, 0, 0, 0,     // nlmsg_pid: the kernel's to fill
            0,              // nfgen_family: AF_UNSPEC
            0,              // version: NFNETLINK_V0
            0, 10,          // res_id, big-endian: NFNL_SUBSYS_NFTABLES (10)
        ];
        assert_eq!(encode_control(ControlMessage::BatchBegin, 10, 7), expected);
    }

    #[test]
    fn a_comparison_is_a_cmp_expression_on_register_1() {
        #[rustfmt::skip]
        let expected = [
            44, 0, 1, 0x80,             // NFTA_LIST_ELEM | NESTED, 44 bytes
            8, 0, 1, 0,                 //   NFTA_EXPR_NAME, 8 bytes:
            b'c', b'm', b'p', 0,        //     "cmp"
            32, 0, 2, 0x80,             //   NFTA_EXPR_DATA | NESTED, 32 bytes
            8, 0, 1, 0, 0, 0, 0, 1,     //     NFTA_CMP_SREG: NFT_REG_1 (big-endian)
            8, 0, 2, 0, 0, 0, 0, 0,     //     NFTA_CMP_OP: NFT_CMP_EQ
            12, 0, 3, 0x80,             //     NFTA_CMP_DATA | NESTED, 12 bytes
            5, 0, 1, 0, 6, 0, 0, 0,     //       NFTA_DATA_VALUE: [6] (IPPROTO_TCP), padded
        ];
        assert_eq!(bytes(&equal(vec![libc::IPPROTO_TCP as u8])), expected);
    }

    #[test]
    fn a_drop_is_an_immediate_verdict() {
        #[rustfmt::skip]
        let expected = [
            48, 0, 1, 0x80,             // NFTA_LIST_ELEM | NESTED, 48 bytes
            14, 0, 1, 0,                //   NFTA_EXPR_NAME, 14 bytes:
            b'i', b'm', b'm', b'e', b'd', b'i', b'a', b't', b'e', 0, 0, 0,
                                        //     "immediate", padded
            28, 0, 2, 0x80,             //   NFTA_EXPR_DATA | NESTED, 28 bytes
            8, 0, 1, 0, 0, 0, 0, 0,     //     NFTA_IMMEDIATE_DREG: NFT_REG_VERDICT
            16, 0, 2, 0x80,             //     NFTA_IMMEDIATE_DATA | NESTED, 16 bytes
            12, 0, 2, 0x80,             //       NFTA_DATA_VERDICT | NESTED, 12 bytes
            8, 0, 1, 0, 0, 0, 0, 0,     //         NFTA_VERDICT_CODE: NF_DROP
        ];
        assert_eq!(bytes(&verdict(Verdict::Drop)), expected);
    }

    #[test]
    fn a_rule_matches_tcp_then_the_port_then_counts_logs_and_decides() {
        let filter = Filter {
            port: Port::Destination(8080),
            flags: None,
            data: None,
            probability: None,
            verdict: Verdict::Drop,
            tag: 3,
        };
        let rules = super::rules(&filter);
        assert_eq!(rules.len(), 1, "one rule without `data`");
        let names: Vec<String> = rules[0]
            .iter()
            .map(|e| {
                let b = bytes(e);
                // The name follows the element's and the name's headers.
                let len = u16::from_le_bytes([b[4], b[5]]) as usize - 4;
                String::from_utf8_lossy(&b[8..8 + len])
                    .trim_end_matches('\0')
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "meta",
                "cmp",
                "payload",
                "cmp",
                "counter",
                "log",
                "immediate"
            ]
        );
        // The port, big-endian, at the transport header's offset 2.
        let port = bytes(&rules[0][3]);
        assert_eq!(&port[port.len() - 4..], &[0x1f, 0x90, 0, 0], "8080, padded");
        // With `data`, one rule per IP version and TCP header length.
        let with_data = Filter {
            data: Some(true),
            ..filter
        };
        assert_eq!(super::rules(&with_data).len(), 2 * 11);
        assert_eq!(RULES_WITH_DATA, 2 * 11);
        for data in [None, Some(true), Some(false)] {
            let filter = Filter {
                data,
                ..with_data.clone()
            };
            assert_eq!(super::rules(&filter).len(), rules_per_port(data));
        }
    }

    /// The threshold `meta random` is compared with: probability × 2^32,
    /// big-endian; 2^-32, the least a suite may ask for, is 1 (a
    /// threshold of 0 would never fire).
    #[test]
    fn a_probability_is_a_threshold_of_the_32_bit_random_number() {
        for (p, threshold) in [
            (1.0 / 4_294_967_296.0, 1u32),
            (0.25, 1 << 30),
            (0.5, 1 << 31),
            (1.0 - 1.0 / 4_294_967_296.0, u32::MAX),
        ] {
            let rules = super::rules(&Filter {
                port: Port::Destination(8080),
                flags: None,
                data: None,
                probability: Some(p),
                verdict: Verdict::Drop,
                tag: 3,
            });
            // After the 4 expressions that match the port: meta random,
            // then the comparison, whose data (4 bytes, unpadded) ends it.
            let compare = bytes(&rules[0][5]);
            assert_eq!(
                compare[compare.len() - 4..],
                threshold.to_be_bytes(),
                "{p:e}"
            );
        }
    }

    #[test]
    fn a_datagram_s_answers_are_read_and_a_cut_one_refused() {
        let error = |seq: u32, code: i32| -> Vec<u8> {
            let mut m = Vec::new();
            m.extend(36u32.to_ne_bytes()); // nlmsg_len: 16 + 4 + 16
            m.extend(2u16.to_ne_bytes()); // NLMSG_ERROR
            m.extend(0x100u16.to_ne_bytes()); // NLM_F_CAPPED
            m.extend(seq.to_ne_bytes());
            m.extend(0u32.to_ne_bytes());
            m.extend(code.to_ne_bytes()); // 0: an ack; else -errno
            // The request it answers: its header only.
            m.extend(16u32.to_ne_bytes());
            m.extend(0x0a00u16.to_ne_bytes()); // (NFNL_SUBSYS_NFTABLES << 8) | NEWTABLE
            m.extend(1u16.to_ne_bytes());
            m.extend(seq.to_ne_bytes());
            m.extend(0u32.to_ne_bytes());
            m
        };
        let datagram = [error(1, 0), error(2, -libc::EPERM)].concat();
        let read = messages(&datagram).expect("two answers");
        let codes: Vec<Option<i32>> = read
            .iter()
            .map(|m| match &m.payload {
                NetlinkPayload::Error(e) => e.code.map(|c| c.get()),
                _ => Some(i32::MIN),
            })
            .collect();
        assert_eq!(codes, [None, Some(-libc::EPERM)]);
        let cut = &datagram[..datagram.len() - 8];
        let err = messages(cut).unwrap_err().to_string();
        assert!(
            err.contains("a message of 36 bytes in a datagram of 28 left"),
            "{err}"
        );
    }
}
