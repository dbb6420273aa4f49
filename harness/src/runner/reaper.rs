//! Closes what takes the kernel a while to close, off the case's path.
//!
//! Closing a packet socket waits for an RCU grace period
//! (`packet_release` calls `synchronize_net`), and so does closing the
//! netlink socket that owns a case's nf_tables table (the table's hooks
//! are unregistered): about 10 ms each on this machine (`hangup bench`),
//! which a case would otherwise spend doing nothing at its end. Each is
//! dropped on a short-lived thread of its own: closes waiting at once share
//! one grace period, where a single reaper thread would queue them one
//! grace period apart and fall behind a run of hundreds of cases a second.

/// Drops `thing` on a thread of its own; when no thread can be started,
/// the closure that owns it, and so the thing, is dropped here.
pub(super) fn drop_later(thing: impl Send + 'static) {
    let _ = std::thread::Builder::new()
        .name("hangup-close".into())
        .spawn(move || drop(thing));
}
