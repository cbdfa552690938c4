//! What the scheduler gave the engine thread: how long it ran, how long it waited for its
//! core, and how often something else took it. Read once, at the end of a download, from
//! `/proc/thread-self/schedstat` (run and wait time in nanoseconds, `Documentation/
//! scheduler/sched-stats.rst`) and `/proc/thread-self/status` (the context switch counts,
//! `proc(5)`).
//!
//! Why `--stats` shows it: a busy-poll thread is only as fast as its core is its own. The
//! per-batch histograms (`own_work` above all) measure wall time, so a batch during which the
//! thread was switched out, or took another task's softirqs, shows it in the tail. When this
//! line says the thread waited tens of milliseconds for its core, the tail is the machine's,
//! not the engine's (docs/user-guide.md, "Reading `--stats`").

use std::time::Duration;

/// The scheduler's account of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadShare {
    /// Time on a core.
    pub ran: Duration,
    /// Time runnable but waiting for a core.
    pub waited: Duration,
    /// Times the thread went to sleep of its own accord (blocking waits, system calls).
    pub voluntary: u64,
    /// Times the scheduler took its core for something else.
    pub involuntary: u64,
}

impl ThreadShare {
    /// The calling thread's share so far; `None` where `/proc` does not tell (no procfs, or
    /// a kernel without schedstats).
    pub fn of_this_thread() -> Option<ThreadShare> {
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
        ThreadShare::parse(&schedstat, &status)
    }

    /// From the text of `schedstat` ("RUN_NS WAIT_NS TIMESLICES") and of `status`.
    fn parse(schedstat: &str, status: &str) -> Option<ThreadShare> {
        let mut numbers = schedstat.split_whitespace().map(str::parse::<u64>);
        let ran = Duration::from_nanos(numbers.next()?.ok()?);
        let waited = Duration::from_nanos(numbers.next()?.ok()?);
        let count = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.trim().parse::<u64>().ok())
        };
        Some(ThreadShare {
            ran,
            waited,
            voluntary: count("voluntary_ctxt_switches:")?,
            involuntary: count("nonvoluntary_ctxt_switches:")?,
        })
    }

    /// The `--stats` line.
    pub fn line(&self) -> String {
        format!(
            "engine thread: ran {:.1} ms, waited {:.1} ms for its core, switched out {} times \
             by the scheduler, slept {} times",
            self.ran.as_secs_f64() * 1e3,
            self.waited.as_secs_f64() * 1e3,
            self.involuntary,
            self.voluntary
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\txdpget-poll\nState:\tR (running)\n\
        voluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t891\n";

    #[test]
    fn reads_the_kernels_two_files() {
        let share = ThreadShare::parse("2772833280 248649751 911\n", STATUS).expect("parses");
        assert_eq!(
            share,
            ThreadShare {
                ran: Duration::from_nanos(2_772_833_280),
                waited: Duration::from_nanos(248_649_751),
                voluntary: 17,
                involuntary: 891,
            }
        );
        assert_eq!(
            share.line(),
            "engine thread: ran 2772.8 ms, waited 248.6 ms for its core, switched out 891 \
             times by the scheduler, slept 17 times"
        );
    }

    #[test]
    fn anything_missing_gives_nothing() {
        assert_eq!(ThreadShare::parse("", STATUS), None);
        assert_eq!(ThreadShare::parse("12 x 3", STATUS), None);
        assert_eq!(ThreadShare::parse("1 2 3", "Name:\tx\n"), None);
    }

    #[test]
    fn this_thread_has_a_share_where_proc_tells() {
        // Linux with procfs and schedstats (every kernel this tool runs on); elsewhere the
        // function says nothing rather than something wrong.
        // (A thread that has just started may read 0 ns of run time: the kernel brings a
        // running task's total up to date only at scheduler events.)
        if std::path::Path::new("/proc/thread-self/schedstat").exists() {
            assert!(ThreadShare::of_this_thread().is_some());
        }
    }
}
