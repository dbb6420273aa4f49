//! Per-namespace sysctls: keys under `net.`, read and written through
//! `/proc/sys/net`, which shows the calling *thread's* network namespace.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use nix::errno::Errno;

use super::SandboxError;

/// The sysctls a suite may set, and what each is for. Every one is kept per
/// network namespace by the kernel (a new namespace starts from the
/// default, and a write changes only the calling thread's namespace) and
/// has no effect outside it. Anything else under `net.` is refused: some
/// keys there are host-wide switches (`net.netfilter.nf_hooks_lwtunnel`,
/// written in any namespace, turns on a host-wide hook until reboot).
pub const ALLOWED_SYSCTLS: &[(&str, &str)] = &[
    (
        "net.ipv4.tcp_fin_timeout",
        "how long an orphaned FIN_WAIT2 lives (S3)",
    ),
    (
        "net.ipv4.tcp_syn_retries",
        "SYN retransmissions before connect fails with ETIMEDOUT (S11)",
    ),
    (
        "net.ipv4.tcp_synack_retries",
        "SYN-ACK retransmissions before a half-open connection is dropped (S11)",
    ),
    (
        "net.ipv4.tcp_retries1",
        "retransmissions before the route is re-checked",
    ),
    (
        "net.ipv4.tcp_retries2",
        "retransmissions before an established connection gives up with ETIMEDOUT (S13)",
    ),
    (
        "net.ipv4.tcp_orphan_retries",
        "retransmissions of an orphaned socket's FIN before it is dropped (S9)",
    ),
    (
        "net.ipv4.tcp_keepalive_time",
        "idle time before the first keepalive probe",
    ),
    (
        "net.ipv4.tcp_keepalive_intvl",
        "time between keepalive probes",
    ),
    (
        "net.ipv4.tcp_keepalive_probes",
        "unanswered keepalive probes before the connection is dropped",
    ),
    (
        "net.ipv4.tcp_abort_on_overflow",
        "answer a full accept queue with RST instead of dropping the ACK",
    ),
    (
        "net.ipv4.tcp_max_syn_backlog",
        "half-open connections a listener keeps",
    ),
    (
        "net.ipv4.tcp_syncookies",
        "SYN cookies when the SYN queue overflows",
    ),
    (
        "net.ipv4.tcp_tw_reuse",
        "reuse of TIME_WAIT 4-tuples for new outgoing connections (S4)",
    ),
    (
        "net.ipv4.tcp_rfc1337",
        "whether TIME_WAIT ignores a reset (RFC 1337), so a stray RST cannot end it early (S1, S4)",
    ),
    ("net.core.somaxconn", "the most a listen backlog may be"),
];

/// Checks that `key` is one of [`ALLOWED_SYSCTLS`], without needing a
/// namespace (for validating a suite before anything runs).
///
/// [`CaseNamespace::set_sysctl`](super::CaseNamespace::set_sysctl) writes
/// it through `/proc/sys`, in the calling thread's namespace.
pub fn validate_sysctl_key(key: &str) -> Result<(), String> {
    if ALLOWED_SYSCTLS.iter().any(|(allowed, _)| *allowed == key) {
        return Ok(());
    }
    let names: Vec<&str> = ALLOWED_SYSCTLS.iter().map(|(name, _)| *name).collect();
    let why = if key.starts_with("net.") {
        "it is not one hangup knows to be per network namespace and harmless outside it"
    } else {
        "it is host-wide"
    };
    Err(format!(
        "`{key}` may not be set: {why} (the sysctls a suite may set are {})",
        names.join(", ")
    ))
}

/// Checks that a sysctl's value is a plain number or word, as every allowed
/// sysctl takes (no spaces, no paths, no lists).
pub fn validate_sysctl_value(value: &str) -> Result<(), String> {
    let plain = !value.is_empty()
        && value
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphanumeric() || c == '_' || (c == '-' && i == 0));
    if plain {
        Ok(())
    } else {
        Err(format!(
            "expected a sysctl value that is a plain number or word, found `{value}`"
        ))
    }
}

/// `/proc/sys/...` for a validated key.
fn path_of(key: &str) -> Result<PathBuf, SandboxError> {
    validate_sysctl_key(key).map_err(|reason| SandboxError::InvalidSysctlKey {
        key: key.to_owned(),
        reason,
    })?;
    Ok(PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

fn io_error(key: &str, path: PathBuf, op: &'static str, e: io::Error) -> SandboxError {
    match e.kind() {
        io::ErrorKind::NotFound => SandboxError::UnknownSysctl {
            key: key.to_owned(),
            path,
        },
        _ => SandboxError::Sysctl {
            key: key.to_owned(),
            op,
            path,
            source: e,
        },
    }
}

/// Reads a sysctl of the calling thread's network namespace, trailing
/// newline removed.
pub(super) fn read(key: &str) -> Result<String, SandboxError> {
    let path = path_of(key)?;
    let mut value = String::new();
    if let Err(e) = OpenOptions::new()
        .read(true)
        .open(&path)
        .and_then(|mut f| f.read_to_string(&mut value))
    {
        return Err(io_error(key, path, "read", e));
    }
    value.truncate(value.trim_end_matches('\n').len());
    Ok(value)
}

/// Writes a sysctl of the calling thread's network namespace, in one
/// `write(2)` as sysctl(8) does.
pub(super) fn write(key: &str, value: &str) -> Result<(), SandboxError> {
    let path = path_of(key)?;
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| io_error(key, path.clone(), "write", e))?;
    match file.write(value.as_bytes()) {
        Ok(n) if n == value.len() => Ok(()),
        Ok(n) => Err(SandboxError::Sysctl {
            key: key.to_owned(),
            op: "write",
            path,
            source: io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {n} of {} bytes written", value.len()),
            ),
        }),
        Err(e) if e.raw_os_error() == Some(Errno::EINVAL as i32) => {
            Err(SandboxError::SysctlRejected {
                key: key.to_owned(),
                value: value.to_owned(),
            })
        }
        Err(e) => Err(io_error(key, path, "write", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    fn every_allowed_key_is_valid() {
        for (key, _) in ALLOWED_SYSCTLS {
            assert_eq!(validate_sysctl_key(key), Ok(()));
        }
    }

    #[rstest]
    #[case("kernel.pid_max", "host-wide")]
    #[case("vm.swappiness", "host-wide")]
    #[case("netx.foo", "host-wide")]
    #[case("net", "host-wide")]
    #[case("net.", "not one hangup knows")]
    #[case("net.netfilter.nf_hooks_lwtunnel", "not one hangup knows")]
    #[case("net.core.bpf_jit_enable", "not one hangup knows")]
    #[case("net.ipv4.conf.all.rp_filter", "not one hangup knows")]
    #[case("net.ipv4.tcp_fin_timeout.", "not one hangup knows")]
    #[case("net.ipv4/../../kernel/pid_max", "not one hangup knows")]
    fn bad_keys(#[case] key: &str, #[case] reason: &str) {
        let err = validate_sysctl_key(key).unwrap_err();
        assert!(err.contains(reason), "{key}: {err}");
        assert!(err.contains("net.ipv4.tcp_fin_timeout, "), "{err}");
    }

    #[rstest]
    #[case("5")]
    #[case("-1")]
    #[case("cubic")]
    fn plain_values(#[case] value: &str) {
        assert_eq!(validate_sysctl_value(value), Ok(()));
    }

    #[rstest]
    #[case("")]
    #[case("5 6")]
    #[case("1-2")]
    #[case("../x")]
    #[case("5\n")]
    fn values_that_are_not_plain(#[case] value: &str) {
        let err = validate_sysctl_value(value).unwrap_err();
        assert!(err.contains("plain number or word"), "{err}");
    }

    #[rstest]
    fn path_maps_dots_to_slashes() {
        assert_eq!(
            path_of("net.ipv4.tcp_fin_timeout").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/tcp_fin_timeout")
        );
    }
}
