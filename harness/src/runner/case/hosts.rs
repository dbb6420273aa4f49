//! The namespaces of a two-host case, and running work in one of them.

use std::sync::Arc;

use crate::model::Side;
use crate::sandbox::{CaseNamespace, SandboxError};

/// The namespaces of a two-host case: the case's own (the server's host)
/// and the client's, joined by a veth pair.
pub(super) struct Hosts {
    /// The case's namespace.
    pub(super) server: Arc<std::os::fd::OwnedFd>,
    /// The client's host's.
    pub(super) client: Arc<std::os::fd::OwnedFd>,
}

impl Hosts {
    /// The namespace of the host `side`'s host is not.
    pub(super) fn other(&self, side: Side) -> &Arc<std::os::fd::OwnedFd> {
        match side {
            Side::Client => &self.server,
            Side::Proxy | Side::Server => &self.client,
        }
    }

    /// The namespace of `side`'s host.
    pub(super) fn of(&self, side: Side) -> &Arc<std::os::fd::OwnedFd> {
        match side {
            Side::Client => &self.client,
            Side::Proxy | Side::Server => &self.server,
        }
    }
}

/// On the case's thread: the second host, with the case's sysctls too
/// (its timers are the client's).
pub(super) fn make_hosts(
    namespace: &CaseNamespace,
    sysctls: &[(String, String)],
) -> Result<Hosts, SandboxError> {
    let server = Arc::new(namespace.handle()?);
    let peer = crate::sandbox::topology::two_hosts()?;
    let client = Arc::new(peer.namespace);
    let sysctls = sysctls.to_vec();
    in_host(&client, move |host| {
        for (key, value) in &sysctls {
            host.set_sysctl(key, value)?;
        }
        Ok(())
    })??;
    Ok(Hosts { server, client })
}

/// Runs `f` on a thread in the namespace `host` names, and waits for it.
pub(super) fn in_host<T: Send + 'static>(
    host: &Arc<std::os::fd::OwnedFd>,
    f: impl FnOnce(&CaseNamespace) -> T + Send + 'static,
) -> Result<T, SandboxError> {
    let thread = crate::sandbox::spawn_in_namespace(
        "hangup host".into(),
        Arc::clone(host),
        move |joined| joined.map(|namespace| f(&namespace)),
    )?;
    thread.join().unwrap_or_else(|_| {
        Err(SandboxError::Io {
            action: "run on a host's thread".into(),
            source: std::io::Error::other("the thread panicked"),
        })
    })
}
