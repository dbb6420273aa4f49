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
//! under test's, those it started during the call among them), is the
//! part of the call's duration that was the machine's, not the kernel's
//! answer.
//!
//! A timer can also expire late while the thread that waits on it is
//! neither running nor runnable: `SO_RCVTIMEO` is a timer-wheel timer,
//! run by the timer softirq, and when softirqs pile up (loopback traffic
//! of many cases' namespaces) the kernel hands them to its per-CPU
//! `ksoftirqd` threads, which then wait on the same run queues as
//! everything else. A 200 ms read returned 360 ms late in a soak while its
//! thread waited 7 ms for a CPU; a probe under `stress-ng` with loopback
//! traffic saw reads 13 ms late with `ksoftirqd` waiting 4 ms and their
//! own thread 1.5 ms. So a timing check also allows the longest wait of
//! any `ksoftirqd` thread during its call ([`softirq_threads`]).

use std::time::Duration;

/// What the kernel counts of one thread's time: on a CPU, and runnable
/// but waiting for one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Times {
    /// On a CPU (`sum_exec_runtime`, the first field).
    pub(crate) ran: Duration,
    /// Waiting on a run queue (`run_delay`, the second).
    pub(crate) waited: Duration,
}

impl Times {
    /// Both: the time the thread kept a CPU busy, or would have.
    pub(crate) fn busy(self) -> Duration {
        self.ran.saturating_add(self.waited)
    }
}

fn parse(schedstat: &str) -> Option<Times> {
    let mut fields = schedstat.split_whitespace();
    let mut next =
        || -> Option<Duration> { Some(Duration::from_nanos(fields.next()?.parse().ok()?)) };
    Some(Times {
        ran: next()?,
        waited: next()?,
    })
}

/// Each listed thread's times, by tid; threads that are gone (or a
/// kernel that keeps no count) are left out.
pub(crate) fn snapshot(tids: &[i32]) -> Vec<(i32, Times)> {
    tids.iter()
        .filter_map(|tid| {
            let text = std::fs::read_to_string(format!("/proc/{tid}/schedstat")).ok()?;
            Some((*tid, parse(&text)?))
        })
        .collect()
}

/// How much more, in all, the threads of `now` ran and waited for a CPU
/// than `before` says they had: a thread `before` does not list was born
/// since (a server's thread for a new connection), and all its time
/// counts. Threads gone since count for nothing.
pub(crate) fn since(before: &[(i32, Times)], now: &[(i32, Times)]) -> Times {
    now.iter()
        .map(|(tid, now)| {
            let then = before
                .iter()
                .find(|(t, _)| t == tid)
                .map_or(Times::default(), |(_, then)| *then);
            Times {
                ran: now.ran.saturating_sub(then.ran),
                waited: now.waited.saturating_sub(then.waited),
            }
        })
        .fold(Times::default(), |all, one| Times {
            ran: all.ran.saturating_add(one.ran),
            waited: all.waited.saturating_add(one.waited),
        })
}

/// The longest any one thread of `now` waited for a CPU since `before`:
/// how long a program was kept from running (the threads' waits overlap,
/// so their sum would count one stall as many).
pub(crate) fn longest_wait(before: &[(i32, Times)], now: &[(i32, Times)]) -> Duration {
    now.iter()
        .map(|(tid, now)| {
            let then = before
                .iter()
                .find(|(t, _)| t == tid)
                .map_or(Duration::ZERO, |(_, then)| then.waited);
            now.waited.saturating_sub(then)
        })
        .max()
        .unwrap_or_default()
}

/// The kernel's `ksoftirqd/<cpu>` threads, found once: the softirqs that
/// run expired timers wait for these when the kernel defers them. Every
/// CPU has one from boot, so the list does not change; empty where
/// `/proc` shows no kernel threads (then there is nothing to allow).
pub(crate) fn softirq_threads() -> &'static [i32] {
    static FOUND: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.starts_with("ksoftirqd/"))
            })
            .collect()
    })
}

/// The calling thread's id, to be listed among the case's threads.
pub(crate) fn this_thread() -> i32 {
    nix::unistd::gettid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_field_is_the_run_queue_wait() {
        assert_eq!(
            parse("121902 3182619 2\n"),
            Some(Times {
                ran: Duration::from_nanos(121_902),
                waited: Duration::from_nanos(3_182_619)
            })
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

    /// Without them a timer the softirqs ran late would fail a timing
    /// check on a loaded machine.
    #[test]
    fn this_kernel_has_softirq_threads_with_counts() {
        let found = softirq_threads();
        assert!(!found.is_empty(), "no ksoftirqd thread in /proc");
        assert_eq!(snapshot(found).len(), found.len());
    }

    #[test]
    fn a_program_was_kept_from_running_as_long_as_its_longest_waiting_thread() {
        let t = |ran: u64, waited: u64| Times {
            ran: Duration::from_millis(ran),
            waited: Duration::from_millis(waited),
        };
        let before = [(1, t(5, 100)), (2, t(5, 50))];
        // Thread 1 waited 300 ms more, thread 2 200 ms, thread 3 (born
        // since) 250 ms: the waits overlap, the longest is the stall.
        let now = [(1, t(9, 400)), (2, t(9, 250)), (3, t(1, 250))];
        assert_eq!(longest_wait(&before, &now), Duration::from_millis(300));
        assert_eq!(longest_wait(&before, &[]), Duration::ZERO);
    }
}
