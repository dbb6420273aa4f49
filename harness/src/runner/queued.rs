//! How long the case's threads waited for a CPU, as the kernel counts it.
//!
//! A call that the kernel ends on time (a 200 ms `SO_RCVTIMEO` expiring)
//! still returns late when its thread then waits on a run queue: on a
//! machine loaded beyond its cores that wait is tens or hundreds of
//! milliseconds, and a timing check would blame the peer for it. So is a
//! call that waits for the *peer*: a server's `poll` for the client's FIN
//! returns late when the client's thread waited 60 ms for a CPU between
//! its timeout and its `close` (seen in a `-j 8` soak). The kernel keeps
//! the sum of those waits per thread (`run_delay`, the second field of
//! `/proc/<pid>/task/<tid>/schedstat`, in nanoseconds); its growth across a
//! call, summed over every thread of the case (the sides', and the program
//! under test's), is the part of the call's duration that was the
//! machine's, not the kernel's answer.

use std::time::Duration;

fn parse(schedstat: &str) -> Option<Duration> {
    let nanos = schedstat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Each listed thread's `run_delay`, by tid; threads that are gone (or a
/// kernel that keeps no count) are left out.
pub(super) fn snapshot(tids: &[i32]) -> Vec<(i32, Duration)> {
    tids.iter()
        .filter_map(|tid| {
            let text = std::fs::read_to_string(format!("/proc/{tid}/schedstat")).ok()?;
            Some((*tid, parse(&text)?))
        })
        .collect()
}

/// How much longer, in all, the threads of `before` waited for a CPU
/// since it was taken (threads gone since count for nothing).
pub(super) fn since(before: &[(i32, Duration)]) -> Duration {
    let now = snapshot(&before.iter().map(|(tid, _)| *tid).collect::<Vec<_>>());
    before
        .iter()
        .filter_map(|(tid, then)| {
            let (_, now) = now.iter().find(|(t, _)| t == tid)?;
            Some(now.saturating_sub(*then))
        })
        .fold(Duration::ZERO, Duration::saturating_add)
}

/// The calling thread's id, to be listed among the case's threads.
pub(super) fn this_thread() -> i32 {
    nix::unistd::gettid().as_raw()
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
        assert_eq!(
            snapshot(&[this_thread()]).len(),
            1,
            "no /proc/<tid>/schedstat"
        );
    }
}
