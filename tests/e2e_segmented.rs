//! Segmented downloads (`-x N`, issue 10) against the namespaces testbed's nginx with 1 %
//! of the server's packets dropped (root; run under the network lock):
//! - `-x 8` of 64 MiB byte-exact over both drivers, nginx answering ranges (206) to eight
//!   or more requests, and one busy-poll thread for all the connections;
//! - `-x 16` byte-exact;
//! - kill -9 of an `-x 8` download, then `-c -x 8` completes it byte-exact.
//!
//! How fast they are beside curl and aria2c is the benchmark's job (bench/, docs/benchmarks.md).

#[path = "common/e2e.rs"]
#[expect(dead_code, reason = "the shared helpers serve tests/e2e.rs too")]
mod support;
#[path = "common/threads.rs"]
mod threads;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{
    Check, SERVER, Testbed, ensure, ensure_absent, ensure_file_sha256, run_cases, serial,
};

#[test]
fn segmented() {
    if !support::root_or_skip("segmented") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("segm", "64M 256M", 1);
    run_cases(
        &tb,
        &[
            (
                "-x 8 at 1 % loss, both drivers, one busy-poll thread",
                eight_connections,
            ),
            ("-x 16 at 1 % loss", sixteen_connections),
            ("kill -9 of -x 8, then -c -x 8", kill_9_then_resume),
        ],
    );
}

/// The access log's lines for `file` since `skip` lines, and how many answered 206.
fn ranges_served(tb: &Testbed, file: &str, skip: usize) -> (usize, usize) {
    let log = tb.access_log();
    let lines: Vec<&str> = log
        .lines()
        .skip(skip)
        .filter(|l| l.contains(file))
        .collect();
    let partial = lines.iter().filter(|l| l.contains("\" 206 ")).count();
    (lines.len(), partial)
}

fn eight_connections(tb: &Testbed) -> Check {
    let file = "64M.bin";
    let expected = tb.expected_sha256(file)?;
    for driver in ["afxdp", "raw"] {
        let dir = tb.workdir(&format!("x8-{driver}"));
        let before = tb.access_log().lines().count();
        let url = format!("http://{SERVER}/{file}");
        let log = dir.join("xdpget.log");
        let mut child = tb
            .xdpget(driver, &dir, &["-x", "8", &url])
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot start xdpget: {e}"))?;
        // While it runs, every 20 ms: its threads.
        let started = Instant::now();
        let (status, seen) = threads::wait_sampling_threads(&mut child, driver)?;
        let most_polls = threads::most_busy_poll_threads(&seen);
        let threads_seen: Vec<&str> = seen
            .iter()
            .max_by_key(|t| t.len())
            .map(|t| t.iter().map(|(_, name)| name.as_str()).collect())
            .unwrap_or_default();
        let output = fs::read_to_string(&log).unwrap_or_default();
        ensure(status.code() == Some(0), || {
            format!("{driver}: exit {status}: {output}")
        })?;
        ensure_file_sha256(&dir.join(file), &expected)?;
        ensure_absent(&dir, &format!("{file}.part"))?;
        let (requests, partial) = ranges_served(tb, file, before);
        eprintln!(
            "e2e: {driver}: -x 8: {requests} requests, {partial} answered 206, in {:.1?}; \
             threads: {threads_seen:?}",
            started.elapsed()
        );
        ensure(partial >= 8, || {
            format!("{driver}: nginx answered only {partial} range requests of {requests}")
        })?;
        ensure(most_polls == 1, || {
            format!("{driver}: {most_polls} busy-poll threads: {threads_seen:?}")
        })?;
    }
    Ok(())
}

fn sixteen_connections(tb: &Testbed) -> Check {
    let file = "256M.bin";
    let dir = tb.workdir("x16");
    let before = tb.access_log().lines().count();
    let run = tb.run_xdpget(
        "afxdp",
        &dir,
        &["-x", "16", &format!("http://{SERVER}/{file}")],
    )?;
    run.ensure_exit(0)?;
    ensure_file_sha256(&dir.join(file), &tb.expected_sha256(file)?)?;
    let (requests, partial) = ranges_served(tb, file, before);
    eprintln!("e2e: -x 16: {requests} requests, {partial} answered 206");
    ensure(partial >= 16, || {
        format!("nginx answered only {partial} range requests of {requests}")
    })
}

fn kill_9_then_resume(tb: &Testbed) -> Check {
    let file = "256M.bin";
    let expected = tb.expected_sha256(file)?;
    let dir = tb.workdir("x8-kill");
    let url = format!("http://{SERVER}/{file}");
    let control = dir.join(format!("{file}.part.xdpget"));
    // Each connection held to 10 MiB/s (--limit-rate is per connection), so the 256 MiB take
    // about 3 s and the kill lands in the middle.
    let mut child = tb
        .xdpget("afxdp", &dir, &["-x", "8", "--limit-rate", "10m", &url])
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("first-run.log")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start xdpget: {e}"))?;
    // Killed once a control record lists finished ranges and a second more has passed,
    // so the file has ranges and holes.
    let started = Instant::now();
    let mut recorded = None;
    while started.elapsed() < Duration::from_secs(60) {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if recorded.is_none() && fs::metadata(&control).is_ok_and(|m| m.len() > 0) {
            recorded = Some(Instant::now());
        }
        if recorded.is_some_and(|at| at.elapsed() > Duration::from_secs(1)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let status = child.wait().map_err(|e| e.to_string())?;
    let first = fs::read_to_string(dir.join("first-run.log")).unwrap_or_default();
    ensure(status.signal() == Some(9), || {
        format!("the -x 8 download was not killed mid-way ({status}): {first}")
    })?;
    ensure(!dir.join(file).exists(), || {
        format!("the killed run left the final name {file}")
    })?;
    let record = fs::read(&control).unwrap_or_default();
    eprintln!(
        "e2e: killed -x 8 after {:.1?}; control record:\n{}",
        started.elapsed(),
        String::from_utf8_lossy(&record).replace('\0', "")
    );
    let run = tb.run_xdpget("afxdp", &dir, &["-c", "-x", "8", &url])?;
    run.ensure_exit(0)?;
    ensure_file_sha256(&dir.join(file), &expected)?;
    ensure_absent(&dir, &format!("{file}.part"))
}
