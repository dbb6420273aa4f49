//! What the network does wrong: packets dropped, rejected or delayed
//! inside a case's namespace, by who sends them, their TCP flags, whether
//! they carry data, and a probability.
//!
//! # How
//!
//! Rules go into the kernel's nf_tables, in a table of the case's own
//! network namespace, over netlink (no `nft` binary: hangup runs no
//! external tools). The messages are encoded by **netlink-packet-netfilter**
//! (rust-netlink, MIT, pure Rust, the same family as the netlink crates
//! hangup already uses). The alternatives were weighed in
//! `docs/faults-research.md`: rustables is GPL-3 and needs libclang to
//! build, nftnl links the GPL libnftnl, the `nftables` crate runs `nft`,
//! and neli has no nf_tables types. The crate types every expression a
//! rule here needs but `reject` and `counter`, which go through its
//! `Expressions::Other` with the attributes of
//! `linux/netfilter/nf_tables.h`; `tests` read each rule back from the
//! kernel and compare.
//!
//! Why these choices (each checked on Linux 6.18, rootless):
//! - **The input hook**, not output. A packet dropped on its way out fails
//!   inside its sender (the netfilter drop is an `EPERM` from
//!   `ip_local_out`, which TCP sees and counts as `TCPRetransFail`), which
//!   no packet lost on a wire does. Dropped on its way in, the sender's
//!   kernel believes it went out, as a paused host or a silent firewall
//!   makes it. `reject` works in this hook too.
//! - **The owner flag on the table** (`NFT_TABLE_F_OWNER`): the kernel
//!   deletes the table when the netlink socket that made it closes, so a
//!   case's faults are gone with its [`Faults`], whatever way the case
//!   ended (and the namespace goes with the case anyway).
//! - **Stateless rules** (no conntrack): nothing of a connection's history
//!   decides a packet's fate, only what the suite wrote.
//! - **A counter on every rule**: the report says how many packets each
//!   fault took, as the kernel counted them.
//! - **A log expression on every rule** (nflog, group [`LOG_GROUP`] of the
//!   case's namespace): the kernel sends hangup the head of each packet a
//!   rule took, so the capture can show which packets were lost, and to
//!   which fault, without guessing from the rule.
//! - **A probability from `meta random`**: a uniform 32-bit value, compared
//!   byte by byte (`cmp` is a memcmp) with the threshold's big-endian bytes;
//!   uniform bits make that true with exactly threshold / 2^32, whatever
//!   the host's byte order, so no `byteorder` expression is needed.
//! - **One acknowledgement per transaction**, asked of its last message,
//!   and read before the socket is used again or closed: the kernel
//!   answers a batch at once, in order, so it comes after every echo and
//!   refusal; one per message would fill the socket's receive buffer for
//!   a large batch, and the kernel drops what does not fit.
//! - **Linear in the faults**: each rule's handle is kept from the
//!   kernel's echo when it is put; a lift removes rules by handle, many
//!   faults' in one transaction, and takes each one's count from the
//!   kernel's echo of its removal (counted and removed at once); a `taken`
//!   check asks for its fault's rules by handle; only the case's end
//!   reads the whole table, once. Nothing is read back per fault. The
//!   answers are read by `answer`, not parsed whole (see there why).
//!
//! - **Delays through the netfilter queue** (`delay`): the kernel holds a
//!   delayed packet until hangup's verdict lets it go; this kernel has no
//!   netem (see that module and `docs/faults-research.md`).
//!
//! On one namespace's loopback every packet passes the input hook once, on
//! its way to its receiver, so who sent it is told by its ports: the
//! runner turns "what the client sends" into "TCP to the port the client
//! connects to" and "TCP from the port the server listens on" (see
//! `runner`), and this module only knows ports.

mod answer;
mod delay;
mod encode;
mod nft;

use std::io;

use crate::model::{FlagMatch, Port, Verdict};

pub use delay::{Delay, DelayTrouble, Held};
pub use encode::{LOG_GROUP, QUEUE, RULES_WITH_DATA, rules_per_port};
pub use nft::{Faults, Removed};

/// One rule: the packets it matches and what becomes of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// By port.
    pub port: Port,
    /// These flags, as [`FlagMatch::matches`] reads them.
    pub flags: Option<FlagMatch>,
    /// `Some(false)`: only segments without data (a bare ACK);
    /// `Some(true)`: only segments with data.
    pub data: Option<bool>,
    /// The chance, over 0 and at most 1, that a matching packet is taken.
    pub probability: Option<f64>,
    /// What becomes of it.
    pub verdict: Verdict,
    /// Named in each packet the rule takes, as [`Faults::taken`] hands
    /// them back.
    pub tag: u32,
}

/// A packet a rule took, as the kernel logged it (`nflog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The [`Filter::tag`] of the rule that took it.
    pub tag: u32,
    /// Its first bytes, from its IP header on.
    pub packet: Vec<u8>,
}

/// Why a fault could not be put in place or taken away.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The netlink socket failed.
    #[error("nf_tables: {doing}: {source}")]
    Io {
        /// What hangup was doing.
        doing: &'static str,
        /// The socket's error.
        source: io::Error,
    },
    /// The kernel refused a message.
    #[error("nf_tables refused {what}: {source}{hint}")]
    Refused {
        /// Which message.
        what: String,
        /// The kernel's errno.
        source: io::Error,
        /// What to do about it, when known.
        hint: &'static str,
    },
    /// The kernel's answer made no sense.
    #[error("nf_tables: {0}")]
    Malformed(String),
}
