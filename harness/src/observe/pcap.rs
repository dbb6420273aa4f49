//! A capture as a pcap file that tshark and Wireshark open: the classic
//! format with nanosecond timestamps (magic `0xa1b23c4d`), link type
//! Ethernet, each frame cut at [`SNAP_LEN`] with its real length kept.
//!
//! Written here rather than with a crate: the format is a 24-byte header
//! and a 16-byte header per frame, and `pcap-file` 2 would bring syn 1 and
//! thiserror 1 beside ours (3.0 needs a newer Rust). The tests read what
//! this writes back with `pcap-parser`, and CI opens a case's capture with
//! tshark.

use std::io::{self, Write};
use std::time::SystemTime;

use super::capture::{Frame, SNAP_LEN};

/// pcap's magic for nanosecond timestamps, written in our byte order.
const MAGIC_NANOSECONDS: u32 = 0xa1b2_3c4d;
/// `LINKTYPE_ETHERNET`: `lo` and veth frames carry an Ethernet header.
const LINKTYPE_ETHERNET: u32 = 1;

/// Writes `frames` as a pcap file to `out`.
pub fn write_pcap(mut out: impl Write, frames: &[Frame]) -> io::Result<()> {
    let mut header = Vec::with_capacity(24);
    header.extend(MAGIC_NANOSECONDS.to_ne_bytes());
    header.extend(2u16.to_ne_bytes());
    header.extend(4u16.to_ne_bytes());
    header.extend(0i32.to_ne_bytes());
    header.extend(0u32.to_ne_bytes());
    header.extend((SNAP_LEN as u32).to_ne_bytes());
    header.extend(LINKTYPE_ETHERNET.to_ne_bytes());
    out.write_all(&header)?;
    for frame in frames {
        let since = frame
            .stamp
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut record = Vec::with_capacity(16 + frame.data.len());
        record.extend((since.as_secs() as u32).to_ne_bytes());
        record.extend(since.subsec_nanos().to_ne_bytes());
        record.extend((frame.data.len() as u32).to_ne_bytes());
        record.extend(frame.len.to_ne_bytes());
        record.extend(&frame.data);
        out.write_all(&record)?;
    }
    out.flush()
}
