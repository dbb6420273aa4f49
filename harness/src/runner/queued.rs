//! How long the calling thread waited for a CPU, as the kernel counts it.
//!
//! A call that the kernel ends on time (a 200 ms `SO_RCVTIMEO` expiring)
//! still returns late when its thread then waits on a run queue: on a
//! machine loaded beyond its cores that wait is tens or hundreds of
//! milliseconds, and a timing check would blame the peer for it. The
//! kernel keeps the sum of those waits per thread (`run_delay`, the second
//! field of `/proc/thread-self/schedstat`, in nanoseconds); its growth
//! across a call is the part of the call's duration that was the machine's,
//! not the kernel's answer.

use std::time::Duration;

/// The calling thread's total time spent runnable but not running, or none
/// when the kernel does not keep it (built without `CONFIG_SCHED_INFO`):
/// then no allowance is made.
pub(super) fn run_delay() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    parse(&text)
}

fn parse(schedstat: &str) -> Option<Duration> {
    let nanos = schedstat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// How much longer the thread waited for a CPU after `before`.
pub(super) fn since(before: Option<Duration>) -> Duration {
    before
        .and_then(|before| Some(run_delay()?.saturating_sub(before)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_field_is_the_run_queue_wait() {
        assert_eq!(
            parse("121902 3182619 2\n"),
            Some(Duration::from_nanos(3_182_619))
        );
        assert_eq!(parse("121902\n"), None);
        assert_eq!(parse(""), None);
    }

    /// Without it every timing check would lose its allowance silently.
    #[test]
    fn this_kernel_counts_it() {
        assert!(run_delay().is_some(), "no /proc/thread-self/schedstat");
    }
}
