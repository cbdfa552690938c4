//! End-to-end tests of the default driver's hand-over (src/driver/handover.rs): a download
//! starts on the raw packet socket and moves to AF_XDP once 8 MiB came in.
//!
//! - 256 MiB with the default driver starts raw and ends on AF_XDP, byte-exact, and leaves
//!   nothing behind;
//! - 1 MiB never starts the AF_XDP set-up (no program is ever attached);
//! - `kill -9` while the XDP program has just been attached (mid-hand-over) leaves no
//!   program and no nftables table; the next run takes the ports back and finishes.
//!
//! Root only (see tests/common/e2e.rs).

#[allow(dead_code)] // each test file uses part of the shared support
#[path = "common/e2e.rs"]
mod support;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Check, SERVER, Testbed, ensure, ensure_file_sha256, output_of, run_cases, serial};

#[test]
fn hand_over() {
    if !support::root_or_skip("hand_over") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("handover", "1M 256M", 0);
    run_cases(
        &tb,
        &[
            ("256 MiB starts raw and ends on AF_XDP", large_hands_over),
            ("1 MiB never attaches XDP", small_stays_raw),
            ("kill -9 mid-hand-over leaves nothing", kill_9_mid_hand_over),
        ],
    );
}

/// The frames a `hand-over frames: <which> N received` line of `--stats` reports.
fn frames_received(output: &str, which: &str) -> Option<u64> {
    let prefix = format!("hand-over frames: {which} ");
    let line = output.lines().find(|l| l.starts_with(&prefix))?;
    line[prefix.len()..].split_whitespace().next()?.parse().ok()
}

fn large_hands_over(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("256M.bin")?;
    let dir = tb.workdir("large");
    let url = format!("http://{SERVER}/256M.bin");
    let run = tb.run_xdpget("auto", &dir, &["--stats", &url])?;
    run.ensure_exit(0)?;
    ensure_file_sha256(&dir.join("256M.bin"), &expected)?;
    let output = &run.output;
    ensure(
        output.contains("driver: raw AF_PACKET socket, then AF_XDP"),
        || format!("the download did not end on AF_XDP:\n{output}"),
    )?;
    let raw = frames_received(output, "raw socket").unwrap_or(0);
    let afxdp = frames_received(output, "AF_XDP").unwrap_or(0);
    eprintln!("e2e: hand-over of 256 MiB: {raw} frames on the raw socket, {afxdp} on AF_XDP");
    for line in output.lines().filter(|l| l.starts_with("hand-over")) {
        eprintln!("e2e:   {line}");
    }
    // 8 MiB is ~5,800 full-size segments; the set-up adds tens of ms of raw traffic. Most
    // of 256 MiB (~184,000 segments) must come over AF_XDP.
    ensure(raw >= 5_000, || {
        format!("only {raw} frames on the raw socket: did it start raw?\n{output}")
    })?;
    ensure(afxdp >= 100_000, || {
        format!("only {afxdp} frames on AF_XDP:\n{output}")
    })?;
    tb.ensure_clean()
}

fn small_stays_raw(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("1M.bin")?;
    let dir = tb.workdir("small");
    let url = format!("http://{SERVER}/1M.bin");
    // A watcher samples the interface while the download runs: no program may appear.
    let watching = std::sync::atomic::AtomicBool::new(true);
    let (run, seen) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut samples = 0u32;
            while watching.load(std::sync::atomic::Ordering::Relaxed) && samples < 2_000 {
                if let Ok(Some(link)) = tb.xdp_attached() {
                    return Some(link);
                }
                samples += 1;
            }
            None
        });
        let run = tb.run_xdpget("auto", &dir, &["--stats", &url]);
        watching.store(false, std::sync::atomic::Ordering::Relaxed);
        (run, watcher.join().unwrap_or(None))
    });
    let run = run?;
    run.ensure_exit(0)?;
    ensure_file_sha256(&dir.join("1M.bin"), &expected)?;
    let output = &run.output;
    ensure(output.contains("below the hand-over threshold"), || {
        format!("1 MiB left the raw socket:\n{output}")
    })?;
    ensure(!output.contains("set-up started"), || {
        format!("1 MiB started the AF_XDP set-up:\n{output}")
    })?;
    ensure(seen.is_none(), || {
        format!("an XDP program was attached during a 1 MiB download: {seen:?}")
    })?;
    tb.ensure_clean()
}

fn kill_9_mid_hand_over(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("256M.bin")?;
    let dir = tb.workdir("kill");
    let url = format!("http://{SERVER}/256M.bin");
    let log = fs::File::create(dir.join("first-run.log")).map_err(|e| e.to_string())?;
    // Slowed down, so that the 8 MiB threshold comes after ~0.2 s and the hand-over is a
    // moment the watcher below can catch.
    let mut child = tb
        .xdpget("auto", &dir, &["--limit-rate", "40m", &url])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start xdpget: {e}"))?;
    // Kill the moment the XDP program shows up: the set-up thread has attached it and is
    // binding sockets, or the packet socket is being drained.
    let started = Instant::now();
    let mut attached = false;
    let mut tables_while_running = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if tb.xdp_attached()?.is_some() {
            attached = true;
            let _ = child.kill();
            tables_while_running = tb.xdpget_tables()?;
            break;
        }
    }
    let _ = child.kill();
    let status = child.wait().map_err(|e| e.to_string())?;
    let first_log = fs::read_to_string(dir.join("first-run.log")).unwrap_or_default();
    ensure(attached && status.signal() == Some(9), || {
        format!("xdpget was not killed mid-hand-over ({status}, attached {attached}): {first_log}")
    })?;
    eprintln!(
        "e2e: killed {:.0} ms after the start, with the program attached; nft tables then: {tables_while_running:?}",
        started.elapsed().as_secs_f64() * 1000.0
    );
    // The link, the sockets and the owned table die with the process (the kernel may take
    // a moment to release the link: bounded wait).
    let xdp = tb.xdp_still_attached()?;
    ensure(xdp.is_none(), || {
        format!("after kill -9 an XDP program is still attached: {xdp:?}")
    })?;
    let tables = tb.xdpget_tables()?;
    ensure(tables.is_empty(), || {
        format!("after kill -9 nft tables of xdpget are left: {tables:?}")
    })?;
    let sockets = output_of(tb.in_client("cat").arg("/proc/net/protocols"))?;
    eprintln!(
        "e2e: after kill -9: reserved ports '{}' (before: '{}'); XDP line of /proc/net/protocols: {:?}",
        tb.reserved_ports()?,
        tb.reserved_ports_before,
        sockets.lines().find(|l| l.starts_with("XDP"))
    );
    // The next run takes the killed run's ports back and finishes byte-exact.
    let run = tb.run_xdpget("auto", &dir, &["-c", &url])?;
    run.ensure_exit(0)?;
    ensure_file_sha256(&dir.join("256M.bin"), &expected)?;
    tb.ensure_clean()
}
