//! End-to-end test of `--limit-rate` (issue 15): 64 MiB from nginx (no `limit_rate` of its
//! own) at `--limit-rate 20m` takes 64/20 s within 5 %, byte-exact, on both drivers, and
//! the server's kernel never fires a retransmission timeout for it (`nstat`'s
//! TcpExtTCPTimeouts in the server namespace): the receive window paced the sender.
//!
//! Root only (see tests/common/e2e.rs).

#[allow(dead_code)] // each test file uses part of the shared support
#[path = "common/e2e.rs"]
mod support;

use std::time::Instant;

use support::{Check, SERVER, Testbed, ensure, ensure_file_sha256, output_of, run_cases, serial};

const RATE: f64 = 20.0 * 1024.0 * 1024.0;
const SIZE: f64 = 64.0 * 1024.0 * 1024.0;

#[test]
fn limit_rate() {
    if !support::root_or_skip("limit_rate") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("rate", "64M", 0);
    run_cases(
        &tb,
        &[("--limit-rate 20m on 64 MiB, both drivers", paced_downloads)],
    );
}

/// The rate in xdpget's closing line `... (20.9 MB/s) - '64M.bin' saved [...]`, in bytes
/// per second.
fn closing_rate(output: &str) -> Option<f64> {
    let line = output.lines().rev().find(|l| l.contains("' saved ["))?;
    let inside = line.split_once('(')?.1.split_once(')')?.0;
    let (number, unit) = inside.split_once(' ')?;
    let scale = match unit {
        "GB/s" => 1e9,
        "MB/s" => 1e6,
        "KB/s" => 1e3,
        "B/s" => 1.0,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// The server kernel's retransmission timeouts so far.
fn server_timeouts(tb: &Testbed) -> Result<u64, String> {
    let out = output_of(tb.in_server("nstat").args(["-az", "TcpExtTCPTimeouts"]))?;
    out.lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some("TcpExtTCPTimeouts"))
                .then(|| fields.next()?.parse().ok())
                .flatten()
        })
        .ok_or_else(|| format!("no TcpExtTCPTimeouts in nstat's output:\n{out}"))
}

fn paced_downloads(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("64M.bin")?;
    for driver in ["afxdp", "raw"] {
        let dir = tb.workdir(&format!("rate-{driver}"));
        let timeouts_before = server_timeouts(tb)?;
        let url = format!("http://{SERVER}/64M.bin");
        let started = Instant::now();
        let run = tb.run_xdpget(driver, &dir, &["--limit-rate", "20m", &url])?;
        let took = started.elapsed().as_secs_f64();
        run.ensure_exit(0)?;
        ensure_file_sha256(&dir.join("64M.bin"), &expected)?;
        // The rate of the closing line, as wget prints it: the body over the time from the
        // request to the last byte (decimal MB/s, 0.1 MB/s steps: 0.5 % at 20 MiB/s).
        let rate = closing_rate(&run.output)
            .ok_or_else(|| format!("{driver}: no rate in the closing line:\n{}", run.output))?;
        eprintln!(
            "e2e: {driver}: 64 MiB at {:.2} MiB/s by the closing line ({took:.3} s wall, \
             start-up included) at --limit-rate 20m",
            rate / 1024.0 / 1024.0
        );
        ensure((rate - RATE).abs() <= 0.05 * RATE, || {
            format!(
                "{driver}: {:.2} MiB/s, not within 5 % of 20 MiB/s",
                rate / 1024.0 / 1024.0
            )
        })?;
        ensure(SIZE / took >= 0.9 * RATE, || {
            format!("{driver}: {took:.3} s of wall time for 64 MiB")
        })?;
        let timeouts = server_timeouts(tb)? - timeouts_before;
        ensure(timeouts == 0, || {
            format!("{driver}: the server had {timeouts} retransmission timeouts")
        })?;
    }
    Ok(())
}
