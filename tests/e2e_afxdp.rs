//! End-to-end tests of the AF_XDP driver's queues and start-up (issues 9 §3 and 10), in a
//! testbed of their own (see tests/e2e.rs for the conventions: root only, one test at a
//! time, nothing left behind after each case).

#[path = "common/e2e.rs"]
#[allow(dead_code)] // the helpers other e2e files use
mod support;

use support::{Check, SERVER, Testbed, ensure, ensure_file_sha256, run_cases, serial};

/// Queues on every veth end of the multi-queue testbed.
const QUEUES: usize = 4;

#[test]
fn afxdp_several_rx_queues() {
    if !support::root_or_skip("afxdp_several_rx_queues") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up_with_queues("mq", "1M", 0, QUEUES as u32);
    run_cases(
        &tb,
        &[
            (
                "six connections over four rx queues, one UMEM",
                redirect_chain_over_queues,
            ),
            ("back-to-back runs wait for the last teardown", back_to_back),
        ],
    );
}

/// Five redirects and the file: six connections, each from a port of its own, so their
/// frames land on the rx queues the server's sockets hash to. The file must be
/// byte-exact, every queue must have a socket, and more than one socket must have
/// received frames. Which queue a flow lands on is the server's choice (its socket's hash,
/// or the CPU it sends from, with XPS): all six share one now and then, so up to three
/// chains are run; one that spreads is enough, none that spreads fails.
fn redirect_chain_over_queues(tb: &Testbed) -> Check {
    let mut seen = Vec::new();
    for attempt in 1..=3 {
        let work = tb.workdir(&format!("mq-chain-{attempt}"));
        let url = format!("http://{SERVER}/redirect/hop5");
        let run = tb.run_xdpget("afxdp", &work, &["--stats", "-O", "out.bin", &url])?;
        ensure(run.status.success(), || {
            format!("{} failed: {}", run.description, run.output)
        })?;
        ensure_file_sha256(&work.join("out.bin"), &tb.expected_sha256("1M.bin")?)?;
        let by_queue = frames_by_queue(&run.output)
            .ok_or_else(|| format!("no per-queue frame counts in: {}", run.output))?;
        ensure(by_queue.len() == QUEUES, || {
            format!(
                "{} sockets, expected {QUEUES}: {by_queue:?}",
                by_queue.len()
            )
        })?;
        let busy = by_queue.iter().filter(|(_, frames)| *frames > 0).count();
        if busy > 1 {
            return Ok(());
        }
        seen.push(by_queue);
    }
    Err(format!(
        "in three chains all frames arrived on one queue: {seen:?}"
    ))
}

/// Two downloads, the second started the moment the first exits: the second finds the
/// first's teardown child still closing its sockets and waits for it, instead of falling
/// back to the raw driver or failing.
fn back_to_back(tb: &Testbed) -> Check {
    let work = tb.workdir("mq-back");
    let url = format!("http://{SERVER}/1M.bin");
    let expected = tb.expected_sha256("1M.bin")?;
    for round in 0..3 {
        let run = tb.run_xdpget("afxdp", &work, &["--stats", "-O", "out.bin", &url])?;
        ensure(run.status.success(), || {
            format!("round {round}: {} failed: {}", run.description, run.output)
        })?;
        ensure(run.output.contains("driver: AF_XDP"), || {
            format!("round {round}: not over AF_XDP: {}", run.output)
        })?;
        ensure_file_sha256(&work.join("out.bin"), &expected)?;
    }
    Ok(())
}

/// The `(queue, frames)` pairs of the `--stats` line "frames received by rx queue [...]".
fn frames_by_queue(output: &str) -> Option<Vec<(u32, u64)>> {
    let list = output.split("frames received by rx queue [").nth(1)?;
    let list = &list[..list.find(']')?];
    list.split("), (")
        .map(|pair| {
            let pair = pair.trim_matches(|c| c == '(' || c == ')');
            let (queue, frames) = pair.split_once(", ")?;
            Some((queue.parse().ok()?, frames.parse().ok()?))
        })
        .collect()
}
