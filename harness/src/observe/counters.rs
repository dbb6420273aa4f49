//! The namespace's own TCP and IP counters (`/proc/thread-self/net/snmp`
//! and `netstat`): the kernel's account of what it did that no call
//! returned, kept as an artifact of a failed case.

/// The namespace's own TCP and IP counters that are not zero, as
/// `TcpExt TWKilled 1` lines: the kernel's account of what it did that no
/// call returned (a TIME_WAIT killed, an orphan reset, a segment dropped).
/// Read from `/proc/thread-self/net/{snmp,netstat}`, so call it on a
/// thread inside the case's namespace; a failed case keeps them as an
/// artifact.
pub fn kernel_counters() -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    for file in ["snmp", "netstat"] {
        let text = std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))?;
        lines.extend(nonzero_counters(&text));
    }
    Ok(lines)
}

/// Pairs each header line (`TcpExt: SyncookiesSent ...`) with the value
/// line after it, keeping the counters that are not zero.
fn nonzero_counters(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((group, names)), Some((_, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            if value != "0" {
                out.push(format!("{group} {name} {value}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod counter_tests {
    #[test]
    fn only_counters_that_are_not_zero_are_kept_with_their_group() {
        let text = "TcpExt: TW TWKilled Other\nTcpExt: 0 2 0\nIpExt: InOctets\nIpExt: 40\n";
        assert_eq!(
            super::nonzero_counters(text),
            ["TcpExt TWKilled 2", "IpExt InOctets 40"]
        );
    }
}
