//! nf_tables' answers about rules, read for the little hangup needs of
//! them: a rule's handle, its chain and its counter's packets, and
//! whether a request was acknowledged or refused.
//!
//! netlink-packet-netfilter parses a rule whole, and formats the bytes of
//! each expression list it walks into an error message before it knows
//! whether there is an error (`format!("... {:?}", buf)` for every
//! element): reading one rule back cost about 0.6 ms of a release build,
//! most of a case's time once it held a few thousand rules (measured: 300
//! faults of 22 rules each, put and lifted, 7.9 s of user time in a case
//! of 14 s; 0.2 s with this). Here a rule's
//! attributes are walked in place and only the ones named below are read;
//! the crate still encodes every request, and parses the answers of
//! nflog and the queue, which are few.
//!
//! Pure: tested against annotated byte arrays (`linux/netlink.h`,
//! `linux/netfilter/nfnetlink.h`, `linux/netfilter/nf_tables.h`), and
//! against the kernel by the tests of `nft`.

use nix::libc;

use super::FaultError;

// From linux/netlink.h.
const NLMSG_HEADER: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_HEADER: usize = 4;
/// The flags in an attribute's type (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;
// From linux/netfilter/nfnetlink.h: the message type is the subsystem's
// number, then the message's; a nfgenmsg (4 bytes) precedes attributes.
const NFGENMSG: usize = 4;
// From linux/netfilter/nf_tables.h.
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_COUNTER_PACKETS: u16 = 2;

/// One message of the kernel's, as far as hangup reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answer {
    /// The sequence number of the request it answers.
    pub(super) sequence: u32,
    /// What it says.
    pub(super) says: Says,
}

/// What an [`Answer`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Says {
    /// `NLMSG_ERROR`: 0 acknowledges the request, else minus its errno.
    Error(i32),
    /// `NLMSG_DONE`: the end of a dump.
    Done,
    /// A rule, as added (an echo, a dump's entry, a get's answer).
    Rule(Rule),
    /// A rule as removed (an echo): its counter as it was then.
    Removed(Rule),
    /// Anything else, not read.
    Other,
}

/// What hangup reads of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Rule {
    /// `NFTA_RULE_HANDLE`.
    pub(super) handle: Option<u64>,
    /// `NFTA_RULE_CHAIN`, without its NUL.
    pub(super) chain: Option<String>,
    /// The packets its `counter` expressions counted; `None` when it has
    /// none (so a missing count is never read as 0).
    pub(super) packets: Option<u64>,
}

/// Every message of one datagram.
pub(super) fn answers(mut at: &[u8]) -> Result<Vec<Answer>, FaultError> {
    let mut all = Vec::new();
    while at.len() >= NLMSG_HEADER {
        let length = u32::from_ne_bytes([at[0], at[1], at[2], at[3]]) as usize;
        if length < NLMSG_HEADER || length > at.len() {
            return Err(FaultError::Malformed(format!(
                "a message of {length} bytes in a datagram of {} left",
                at.len()
            )));
        }
        let kind = u16::from_ne_bytes([at[4], at[5]]);
        let sequence = u32::from_ne_bytes([at[8], at[9], at[10], at[11]]);
        let payload = &at[NLMSG_HEADER..length];
        let says = match kind {
            NLMSG_ERROR => {
                let code = payload.get(..4).ok_or_else(|| {
                    FaultError::Malformed("an error message without its code".into())
                })?;
                Says::Error(i32::from_ne_bytes([code[0], code[1], code[2], code[3]]))
            }
            NLMSG_DONE => Says::Done,
            _ if kind >> 8 == libc::NFNL_SUBSYS_NFTABLES as u16 => {
                let attributes = payload.get(NFGENMSG..).unwrap_or_default();
                match kind & 0xff {
                    NFT_MSG_NEWRULE => Says::Rule(rule(attributes)?),
                    NFT_MSG_DELRULE => Says::Removed(rule(attributes)?),
                    _ => Says::Other,
                }
            }
            _ => Says::Other,
        };
        all.push(Answer { sequence, says });
        at = &at[length.next_multiple_of(4).min(at.len())..];
    }
    Ok(all)
}

/// A rule's attributes.
fn rule(attributes: &[u8]) -> Result<Rule, FaultError> {
    let mut rule = Rule::default();
    for (kind, value) in attributes_of(attributes) {
        match kind? {
            NFTA_RULE_HANDLE => rule.handle = Some(be_u64(value, "a rule's handle")?),
            NFTA_RULE_CHAIN => {
                let name = value.strip_suffix(&[0]).unwrap_or(value);
                rule.chain = Some(String::from_utf8_lossy(name).into_owned());
            }
            NFTA_RULE_EXPRESSIONS => rule.packets = counted(value)?,
            _ => {}
        }
    }
    Ok(rule)
}

/// The packets the `counter` expressions of an expression list counted.
fn counted(list: &[u8]) -> Result<Option<u64>, FaultError> {
    let mut packets = None;
    for (kind, element) in attributes_of(list) {
        if kind? != NFTA_LIST_ELEM {
            continue;
        }
        let (mut name, mut data) = (None, None);
        for (kind, value) in attributes_of(element) {
            match kind? {
                NFTA_EXPR_NAME => name = Some(value),
                NFTA_EXPR_DATA => data = Some(value),
                _ => {}
            }
        }
        let (Some(b"counter\0"), Some(data)) = (name, data) else {
            continue;
        };
        for (kind, value) in attributes_of(data) {
            if kind? == NFTA_COUNTER_PACKETS {
                let counted = be_u64(value, "a counter's packets")?;
                packets = Some(packets.unwrap_or(0) + counted);
            }
        }
    }
    Ok(packets)
}

/// The attributes in `bytes`: each one's type (its flags cleared) and
/// value, or an error where one does not fit.
fn attributes_of(mut bytes: &[u8]) -> impl Iterator<Item = (Result<u16, FaultError>, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < NLA_HEADER {
            return None;
        }
        let length = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & NLA_TYPE_MASK;
        if length < NLA_HEADER || length > bytes.len() {
            let left = bytes.len();
            bytes = &[];
            return Some((
                Err(FaultError::Malformed(format!(
                    "an attribute of {length} bytes in {left} left"
                ))),
                &[][..],
            ));
        }
        let value = &bytes[NLA_HEADER..length];
        bytes = &bytes[length.next_multiple_of(4).min(bytes.len())..];
        Some((Ok(kind), value))
    })
}

fn be_u64(value: &[u8], what: &str) -> Result<u64, FaultError> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| FaultError::Malformed(format!("{what} of {} bytes", value.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    //! An attribute's header is its length and its type, in the host's
    //! byte order (little-endian here); `| NESTED` is `NLA_F_NESTED`
    //! (0x8000) in the type. Values the kernel writes in network byte
    //! order (handles, counters) are big-endian.

    use super::*;

    /// A netlink message: its header (length, type, flags, sequence, port
    /// id), then `payload`.
    fn message(kind: u16, sequence: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend((16 + payload.len() as u32).to_ne_bytes());
        m.extend(kind.to_ne_bytes());
        m.extend(0u16.to_ne_bytes());
        m.extend(sequence.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(payload);
        m
    }

    /// A rule as the kernel echoes one removed from chain "faults" (some
    /// expressions left out: they are walked past alike).
    #[rustfmt::skip]
    const REMOVED_RULE: &[u8] = &[
        2, 0, 0, 0,                     // nfgenmsg: NFPROTO_INET, v0, res_id 0
        11, 0, 1, 0,                    // NFTA_RULE_TABLE, 11 bytes:
        b'h', b'a', b'n', b'g', b'u', b'p', 0, 0,   //   "hangup", padded
        11, 0, 2, 0,                    // NFTA_RULE_CHAIN, 11 bytes:
        b'f', b'a', b'u', b'l', b't', b's', 0, 0,   //   "faults", padded
        12, 0, 3, 0x40,                 // NFTA_RULE_HANDLE | NET_BYTEORDER:
        0, 0, 0, 0, 0, 0, 0, 42,        //   42
        84, 0, 4, 0x80,                 // NFTA_RULE_EXPRESSIONS | NESTED, 84 bytes
        44, 0, 1, 0x80,                 //   NFTA_LIST_ELEM | NESTED, 44 bytes
        12, 0, 1, 0,                    //     NFTA_EXPR_NAME: "counter"
        b'c', b'o', b'u', b'n', b't', b'e', b'r', 0,
        28, 0, 2, 0x80,                 //     NFTA_EXPR_DATA | NESTED, 28 bytes
        12, 0, 1, 0x40,                 //       NFTA_COUNTER_BYTES: 180
        0, 0, 0, 0, 0, 0, 0, 180,
        12, 0, 2, 0x40,                 //       NFTA_COUNTER_PACKETS: 3
        0, 0, 0, 0, 0, 0, 0, 3,
        36, 0, 1, 0x80,                 //   NFTA_LIST_ELEM | NESTED, 36 bytes
        12, 0, 1, 0,                    //     NFTA_EXPR_NAME: "payload"
        b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0,
        20, 0, 2, 0x80,                 //     NFTA_EXPR_DATA | NESTED, 20 bytes
        8, 0, 1, 0, 0, 0, 0, 1,         //       NFTA_PAYLOAD_DREG: 1
        8, 0, 3, 0, 0, 0, 0, 2,         //       NFTA_PAYLOAD_OFFSET: 2
    ];

    #[test]
    fn a_removed_rule_s_handle_chain_and_count_are_read() {
        let datagram = [
            message(0x0a08, 7, REMOVED_RULE), // (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELRULE
            message(NLMSG_ERROR, 7, &0i32.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(
            answers(&datagram).expect("two answers"),
            [
                Answer {
                    sequence: 7,
                    says: Says::Removed(Rule {
                        handle: Some(42),
                        chain: Some("faults".into()),
                        packets: Some(3),
                    }),
                },
                Answer {
                    sequence: 7,
                    says: Says::Error(0),
                },
            ]
        );
    }

    #[test]
    fn a_rule_without_a_counter_has_no_count_not_zero() {
        // Up to its expressions.
        let without = &REMOVED_RULE[..40];
        let datagram = message(0x0a06, 1, without); // NFT_MSG_NEWRULE
        let read = answers(&datagram).expect("one answer");
        assert_eq!(
            read[0].says,
            Says::Rule(Rule {
                handle: Some(42),
                chain: Some("faults".into()),
                packets: None,
            })
        );
    }

    #[test]
    fn an_error_a_done_and_other_subsystems_are_told_apart() {
        let datagram = [
            message(NLMSG_ERROR, 1, &(-libc::ENOENT).to_ne_bytes()),
            message(NLMSG_DONE, 2, &0i32.to_ne_bytes()),
            message(0x0a00, 3, &[2, 0, 0, 0]), // NFT_MSG_NEWTABLE
            message(0x0400, 4, &[2, 0, 0, 0]), // NFNL_SUBSYS_ULOG
        ]
        .concat();
        let says: Vec<Says> = answers(&datagram)
            .expect("four answers")
            .into_iter()
            .map(|a| a.says)
            .collect();
        assert_eq!(
            says,
            [
                Says::Error(-libc::ENOENT),
                Says::Done,
                Says::Other,
                Says::Other
            ]
        );
    }

    #[test]
    fn a_cut_message_or_attribute_is_refused_not_misread() {
        let whole = message(0x0a08, 7, REMOVED_RULE);
        let err = answers(&whole[..whole.len() - 8]).unwrap_err().to_string();
        assert!(err.contains("a message of"), "{err}");
        // The expression list says 84 bytes; only 36 are there.
        let cut = &REMOVED_RULE[..REMOVED_RULE.len() - 48];
        let err = answers(&message(0x0a08, 7, cut)).unwrap_err().to_string();
        assert!(err.contains("an attribute of 84 bytes in 36 left"), "{err}");
        // A handle of 4 bytes instead of 8.
        let mut short = REMOVED_RULE.to_vec();
        short[28] = 8;
        let err = answers(&message(0x0a08, 7, &short[..]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a rule's handle of 4 bytes"), "{err}");
    }
}
