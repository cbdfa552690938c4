//! A running xdpget's threads, sampled from /proc, for the end-to-end tests that show one
//! busy-poll thread drives every connection (tests/e2e_many.rs, tests/e2e_segmented.rs).

use std::fs;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use super::support::RUN_LIMIT;

/// One look at a process's threads: (thread id, name) pairs.
pub type Threads = Vec<(String, String)>;

/// The threads of `pid`: (thread id, name) from /proc/PID/task/*/comm, by name.
pub fn threads(pid: u32) -> Threads {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut threads: Threads = tasks
        .filter_map(|t| {
            let path = t.ok()?.path();
            let tid = path.file_name()?.to_string_lossy().into_owned();
            let name = fs::read_to_string(path.join("comm")).ok()?;
            Some((tid, name.trim().to_string()))
        })
        .collect();
    threads.sort_by(|a, b| a.1.cmp(&b.1));
    threads
}

/// Waits for `child` (at most [`RUN_LIMIT`], then kills it and fails), sampling its threads
/// every 20 ms meanwhile; returns its exit status and the samples.
pub fn wait_sampling_threads(
    child: &mut Child,
    what: &str,
) -> Result<(ExitStatus, Vec<Threads>), String> {
    let started = Instant::now();
    let mut samples = Vec::new();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok((status, samples));
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what}: xdpget did not finish in {RUN_LIMIT:?}"));
        }
        let now = threads(child.id());
        if !now.is_empty() {
            samples.push(now);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The busy-poll threads (`xdpget-poll`) of one sample, by thread id.
pub fn busy_poll_threads(threads: &[(String, String)]) -> Vec<&str> {
    threads
        .iter()
        .filter(|(_, name)| name == "xdpget-poll")
        .map(|(tid, _)| tid.as_str())
        .collect()
}

/// The most busy-poll threads alive at once over `samples` (20 ms apart). A thread has its
/// parent's name until it names itself, so one counts only when it is named so in two
/// samples in a row.
pub fn most_busy_poll_threads(samples: &[Threads]) -> usize {
    samples
        .windows(2)
        .map(|pair| {
            let before = busy_poll_threads(&pair[0]);
            busy_poll_threads(&pair[1])
                .iter()
                .filter(|t| before.contains(t))
                .count()
        })
        .max()
        .unwrap_or(0)
}
