//! Per-namespace sysctls: keys under `net.`, read and written through
//! `/proc/sys/net`, which shows the calling *thread's* network namespace.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use nix::errno::Errno;

use super::SandboxError;

/// Checks that `key` names a per-network-namespace sysctl, without needing a
/// namespace (for validating a suite before anything runs).
///
/// A key is dot-separated like `net.ipv4.tcp_fin_timeout`; it must start
/// with `net.` (every other tree is host-wide: changing it from a test would
/// change the machine), and each part may only hold ASCII letters, digits,
/// `_` and `-`. Interface names containing a dot (`eth0.100`) are therefore
/// not expressible; hangup's own namespaces have none. Whether the key
/// exists is only known inside a namespace ([`CaseNamespace::set_sysctl`]).
///
/// [`CaseNamespace::set_sysctl`]: super::CaseNamespace::set_sysctl
pub fn validate_sysctl_key(key: &str) -> Result<(), String> {
    let Some(rest) = key.strip_prefix("net.") else {
        return Err(format!(
            "only per-network-namespace sysctls (under `net.`) may be set, and `{key}` is host-wide"
        ));
    };
    if rest.is_empty() {
        return Err("`net.` names a directory, not a sysctl".into());
    }
    for part in rest.split('.') {
        if part.is_empty() {
            return Err(format!(
                "`{key}` has an empty part (two dots in a row, or a trailing dot)"
            ));
        }
        if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(format!(
                "`{key}` contains {c:?}; a sysctl key holds only ASCII letters, digits, `_`, `-` and `.` between parts"
            ));
        }
    }
    Ok(())
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
    #[case("net.ipv4.tcp_fin_timeout")]
    #[case("net.ipv4.conf.all.rp_filter")]
    #[case("net.ipv6.conf.lo.disable_ipv6")]
    #[case("net.core.somaxconn")]
    #[case("net.ipv4.ip_local_port_range")]
    #[case("net.netfilter.nf-conntrack-max")]
    fn good_keys(#[case] key: &str) {
        assert_eq!(validate_sysctl_key(key), Ok(()));
    }

    #[rstest]
    #[case("kernel.pid_max", "host-wide")]
    #[case("vm.swappiness", "host-wide")]
    #[case("netx.foo", "host-wide")]
    #[case("net", "host-wide")]
    #[case("net.", "directory")]
    #[case("net.ipv4..tcp_fin_timeout", "empty part")]
    #[case("net.ipv4.tcp_fin_timeout.", "empty part")]
    #[case("net.ipv4/../../kernel/pid_max", "'/'")]
    #[case("net.ipv4.tcp fin", "' '")]
    fn bad_keys(#[case] key: &str, #[case] reason: &str) {
        let err = validate_sysctl_key(key).unwrap_err();
        assert!(err.contains(reason), "{key}: {err}");
    }

    #[rstest]
    fn path_maps_dots_to_slashes() {
        assert_eq!(
            path_of("net.ipv4.tcp_fin_timeout").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/tcp_fin_timeout")
        );
    }
}
