//! Entering a user namespace when not root, and explaining why the kernel
//! refused one.

use std::fmt;
use std::fs;
use std::io;

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getegid, geteuid};

use super::SandboxError;

/// What the process may do after [`enter_user_namespace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privileges {
    /// The process was already root (effective uid 0); nothing was changed.
    Root,
    /// The process entered a fresh user namespace in which it is root (uid 0,
    /// gid 0, with every capability over namespaces it creates). `uid` and
    /// `gid` are the ids it had outside, which files it creates still belong
    /// to on disk.
    UserNamespace {
        /// Effective uid outside the namespace, mapped to 0 inside.
        uid: u32,
        /// Effective gid outside the namespace, mapped to 0 inside.
        gid: u32,
    },
}

/// Enters a user namespace unless already root, so that the process may then
/// create a network namespace per case.
///
/// **Call this first thing in `main`, before anything starts a thread**
/// (libtest-mimic, tokio, tracing, a test harness): `unshare(CLONE_NEWUSER)`
/// fails with EINVAL in a multi-threaded process. This function checks
/// `Threads:` in `/proc/self/status` and returns
/// [`SandboxError::ThreadsAlreadyRunning`] instead of letting that happen.
/// Callers may skip it when they only list cases (`--list`).
///
/// If the effective uid is 0 it does nothing and returns [`Privileges::Root`]
/// (so a second call, made from inside the namespace, is harmless).
/// Otherwise it unshares a user namespace, writes `deny` to
/// `/proc/self/setgroups` and maps the current uid and gid to 0.
///
/// When the kernel refuses, the error carries a
/// [`UserNamespaceDiagnosis`]: which switch forbids user namespaces on this
/// machine and how to turn it off.
pub fn enter_user_namespace() -> Result<Privileges, SandboxError> {
    let uid = geteuid().as_raw();
    let gid = getegid().as_raw();
    if uid == 0 {
        return Ok(Privileges::Root);
    }

    let threads = thread_count()?;
    if threads > 1 {
        return Err(SandboxError::ThreadsAlreadyRunning { threads });
    }

    match unshare(CloneFlags::CLONE_NEWUSER) {
        Ok(()) => {}
        // Only a second thread (or a shared filesystem context) makes
        // unshare(CLONE_NEWUSER) fail with EINVAL; report it as such even
        // if the thread started between the check and the call.
        Err(Errno::EINVAL) => {
            return Err(SandboxError::ThreadsAlreadyRunning {
                threads: thread_count().unwrap_or(threads),
            });
        }
        Err(errno) => return Err(refused("unshare(CLONE_NEWUSER)", errno)),
    }

    // setgroups must be denied before an unprivileged process may write
    // gid_map (kernels without the file predate that rule).
    match fs::write("/proc/self/setgroups", "deny") {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_failed("writing deny to /proc/self/setgroups", e)),
    }
    fs::write("/proc/self/uid_map", format!("0 {uid} 1"))
        .map_err(|e| write_failed("writing /proc/self/uid_map", e))?;
    fs::write("/proc/self/gid_map", format!("0 {gid} 1"))
        .map_err(|e| write_failed("writing /proc/self/gid_map", e))?;

    Ok(Privileges::UserNamespace { uid, gid })
}

/// Number of threads of this process, from `/proc/self/status`.
fn thread_count() -> Result<usize, SandboxError> {
    let status = fs::read_to_string("/proc/self/status").map_err(|source| SandboxError::Io {
        action: "read /proc/self/status to count threads".into(),
        source,
    })?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| SandboxError::Io {
            action: "read the thread count in /proc/self/status".into(),
            source: io::Error::new(io::ErrorKind::InvalidData, "no `Threads:` line"),
        })
}

fn refused(step: &'static str, errno: Errno) -> SandboxError {
    SandboxError::UserNamespace {
        step,
        errno,
        diagnosis: diagnose_user_namespaces(),
    }
}

fn write_failed(step: &'static str, e: io::Error) -> SandboxError {
    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
    refused(step, errno)
}

/// Whether an errno from a namespace operation means "the kernel forbids
/// this", as opposed to a bug or a resource problem: only those deserve a
/// [`UserNamespaceDiagnosis`].
pub(super) fn is_refusal(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::EPERM | Errno::EACCES | Errno::ENOSPC | Errno::EUSERS
    )
}

/// A switch of this machine that forbids or cripples user namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserNamespaceBlocker {
    /// `kernel.unprivileged_userns_clone = 0` (Debian and derived kernels):
    /// unprivileged users may not create user namespaces (EPERM).
    UnprivilegedUsernsCloneOff,
    /// `user.max_user_namespaces = 0`: nobody may create a user namespace
    /// (ENOSPC).
    MaxUserNamespacesZero,
    /// `kernel.apparmor_restrict_unprivileged_userns = 1` (Ubuntu 23.10 and
    /// later, 24.04 by default): the user namespace is created but every
    /// capability in it is denied, so the failure shows up later as EPERM
    /// when writing `uid_map` or creating the network namespace.
    AppArmorRestrictsUserNamespaces,
    /// Already root in the initial user namespace yet refused: the process
    /// lacks `CAP_SYS_ADMIN`, typically inside an unprivileged container.
    RootWithoutCapSysAdmin,
}

impl UserNamespaceBlocker {
    /// The cause, in words.
    pub fn cause(self) -> &'static str {
        match self {
            Self::UnprivilegedUsernsCloneOff => {
                "kernel.unprivileged_userns_clone is 0, so unprivileged users may not create user namespaces"
            }
            Self::MaxUserNamespacesZero => {
                "user.max_user_namespaces is 0, so no user namespace may be created"
            }
            Self::AppArmorRestrictsUserNamespaces => {
                "kernel.apparmor_restrict_unprivileged_userns is 1 (Ubuntu's AppArmor restriction), so the user namespace is created but every capability in it is denied, which shows up as EPERM when writing uid_map or creating the network namespace"
            }
            Self::RootWithoutCapSysAdmin => {
                "the process is root in the initial user namespace but lacks CAP_SYS_ADMIN (an unprivileged container, or a seccomp profile that forbids unshare)"
            }
        }
    }

    /// The fix, as a command or setting.
    pub fn fix(self) -> &'static str {
        match self {
            Self::UnprivilegedUsernsCloneOff => {
                "`sudo sysctl -w kernel.unprivileged_userns_clone=1`, or run as root"
            }
            Self::MaxUserNamespacesZero => {
                "`sudo sysctl -w user.max_user_namespaces=10000`, or run as root"
            }
            Self::AppArmorRestrictsUserNamespaces => {
                "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or run as root"
            }
            Self::RootWithoutCapSysAdmin => {
                "run the container with `--cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined` (or `--privileged`)"
            }
        }
    }
}

/// Why user namespaces (and so rootless network namespaces) are refused on
/// this machine, and how to fix it. Its `Display` is the text users see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNamespaceDiagnosis {
    blockers: Vec<UserNamespaceBlocker>,
}

impl UserNamespaceDiagnosis {
    /// The switches found set against user namespaces; empty when none of
    /// the known ones is.
    pub fn blockers(&self) -> &[UserNamespaceBlocker] {
        &self.blockers
    }
}

impl fmt::Display for UserNamespaceDiagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.blockers.is_empty() {
            return f.write_str(
                "none of the known switches forbids user namespaces here \
                 (kernel.unprivileged_userns_clone, user.max_user_namespaces, \
                 kernel.apparmor_restrict_unprivileged_userns); a container's \
                 seccomp or AppArmor profile may (Docker: \
                 `--security-opt seccomp=unconfined --security-opt apparmor=unconfined`), \
                 or run as root",
            );
        }
        for (i, b) in self.blockers.iter().enumerate() {
            if i > 0 {
                f.write_str("; also ")?;
            }
            write!(f, "{}; fix: {}", b.cause(), b.fix())?;
        }
        Ok(())
    }
}

/// Looks at the switches that forbid user namespaces on this machine.
///
/// This is the one place that explains a refusal: [`enter_user_namespace`]
/// and [`CaseNamespace::create`](super::CaseNamespace::create) both call it
/// when the kernel answers EPERM (or ENOSPC), so that an error never ends in
/// a bare errno.
pub fn diagnose_user_namespaces() -> UserNamespaceDiagnosis {
    diagnose_from(root_in_initial_user_namespace(), |name| {
        read_trimmed(&format!("/proc/sys/{name}"))
    })
}

/// Whether this process is root of the machine (uid 0 in the initial
/// user namespace), not root of a user namespace of its own: what the
/// kernel's `capable()` asks, as opposed to `ns_capable()`.
pub fn root_in_initial_user_namespace() -> bool {
    geteuid().is_root() && read_trimmed("/proc/self/uid_map").is_some_and(|m| is_identity_map(&m))
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The initial user namespace maps every id to itself: `0 0 4294967295`.
fn is_identity_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// The diagnosis, from sysctls read through `sysctl` (path under
/// `/proc/sys`, `None` when absent).
fn diagnose_from(
    root_in_initial_namespace: bool,
    sysctl: impl Fn(&str) -> Option<String>,
) -> UserNamespaceDiagnosis {
    // Real root is not subject to any of the switches below.
    if root_in_initial_namespace {
        return UserNamespaceDiagnosis {
            blockers: vec![UserNamespaceBlocker::RootWithoutCapSysAdmin],
        };
    }
    let is = |name: &str, value: &str| sysctl(name).as_deref() == Some(value);
    let mut blockers = Vec::new();
    if is("kernel/unprivileged_userns_clone", "0") {
        blockers.push(UserNamespaceBlocker::UnprivilegedUsernsCloneOff);
    }
    if is("user/max_user_namespaces", "0") {
        blockers.push(UserNamespaceBlocker::MaxUserNamespacesZero);
    }
    if is("kernel/apparmor_restrict_unprivileged_userns", "1") {
        blockers.push(UserNamespaceBlocker::AppArmorRestrictsUserNamespaces);
    }
    UserNamespaceDiagnosis { blockers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn diag(pairs: &[(&str, &str)]) -> UserNamespaceDiagnosis {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        diagnose_from(false, move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[rstest]
    #[case::debian(
        &[("kernel/unprivileged_userns_clone", "0")],
        "sudo sysctl -w kernel.unprivileged_userns_clone=1"
    )]
    #[case::max_zero(&[("user/max_user_namespaces", "0")], "user.max_user_namespaces=")]
    #[case::ubuntu(
        &[("kernel/apparmor_restrict_unprivileged_userns", "1")],
        "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    )]
    fn each_switch_names_its_fix(#[case] sysctls: &[(&str, &str)], #[case] fix: &str) {
        let text = diag(sysctls).to_string();
        assert!(text.contains(fix), "{text}");
        assert!(text.contains("or run as root"), "{text}");
    }

    #[rstest]
    fn permissive_switches_are_not_blamed() {
        let d = diag(&[
            ("kernel/unprivileged_userns_clone", "1"),
            ("user/max_user_namespaces", "63000"),
            ("kernel/apparmor_restrict_unprivileged_userns", "0"),
        ]);
        assert!(d.blockers().is_empty());
        assert!(d.to_string().contains("seccomp"), "{d}");
    }

    #[rstest]
    fn several_switches_are_all_reported() {
        let d = diag(&[
            ("kernel/unprivileged_userns_clone", "0"),
            ("kernel/apparmor_restrict_unprivileged_userns", "1"),
        ]);
        assert_eq!(d.blockers().len(), 2);
    }

    #[rstest]
    fn real_root_is_told_about_capabilities() {
        let d = diagnose_from(true, |_| Some("0".into()));
        assert_eq!(d.blockers(), [UserNamespaceBlocker::RootWithoutCapSysAdmin]);
    }

    #[rstest]
    #[case("0 0 4294967295", true)]
    #[case("         0          0 4294967295", true)]
    #[case("0 1000 1", false)]
    fn identity_map(#[case] map: &str, #[case] identity: bool) {
        assert_eq!(is_identity_map(map), identity);
    }

    #[rstest]
    fn this_test_process_counts_its_threads() {
        // libtest runs this on a worker thread, so there are at least two.
        assert!(thread_count().unwrap() >= 2);
    }
}
