//! Several URLs in one process (issue 10), against the namespaces testbed's nginx (root;
//! run under the network lock): `--parallel 4` over four URLs, several URLs one after
//! another, and `-i FILE`; every file byte-exact on both drivers, and the process has one
//! busy-poll thread (`xdpget-poll`) for all of it, read from /proc/PID/task while it runs.

#[path = "common/e2e.rs"]
#[expect(dead_code, reason = "the shared helpers serve tests/e2e.rs too")]
mod support;
#[path = "common/threads.rs"]
mod threads;

use std::fs;
use std::path::Path;
use std::process::Stdio;

use support::{
    Check, SERVER, Testbed, ensure, ensure_absent, ensure_file_sha256, run_cases, serial,
};

const DRIVERS: [&str; 2] = ["afxdp", "raw"];
const FILES: [&str; 4] = ["1M.bin", "4M.bin", "16M.bin", "64M.bin"];

#[test]
fn many_urls() {
    if !support::root_or_skip("many_urls") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("many", "1M 4M 16M 64M", 0);
    run_cases(
        &tb,
        &[
            (
                "--parallel 4 over four URLs, one busy-poll thread",
                parallel_four,
            ),
            ("several URLs one after another", one_after_another),
            ("-i FILE", input_file),
        ],
    );
}

fn urls() -> Vec<String> {
    FILES
        .iter()
        .map(|file| format!("http://{SERVER}/{file}"))
        .collect()
}

/// Every file of [`FILES`] is in `dir`, byte-exact, with no `.part` left.
fn all_files_ok(tb: &Testbed, dir: &Path, what: &str) -> Check {
    for file in FILES {
        ensure_file_sha256(&dir.join(file), &tb.expected_sha256(file)?)
            .map_err(|e| format!("{what}: {e}"))?;
        ensure_absent(dir, &format!("{file}.part"))?;
    }
    Ok(())
}

fn parallel_four(tb: &Testbed) -> Check {
    for driver in DRIVERS {
        let dir = tb.workdir(&format!("parallel-{driver}"));
        let urls = urls();
        let mut args: Vec<&str> = vec!["--parallel", "4"];
        args.extend(urls.iter().map(String::as_str));
        let log = dir.join("xdpget.log");
        let log_file = fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut child = tb
            .xdpget(driver, &dir, &args)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start xdpget: {e}"))?;
        // While it runs: every thread's name, once the downloads are under way (both
        // the busy-poll and the lookup thread exist from the second connection on).
        let (status, seen) = threads::wait_sampling_threads(&mut child, driver)?;
        let output = fs::read_to_string(&log).unwrap_or_default();
        ensure(status.code() == Some(0), || {
            format!("{driver}: exit {status}: {output}")
        })?;
        all_files_ok(tb, &dir, driver)?;
        let most: Vec<&str> = seen
            .iter()
            .max_by_key(|threads| threads.len())
            .map(|threads| threads.iter().map(|(_, name)| name.as_str()).collect())
            .unwrap_or_default();
        eprintln!("e2e: {driver}: threads while downloading four files at once: {most:?}");
        // A busy-poll thread is one named so in two samples 20 ms apart.
        let steady = threads::most_busy_poll_threads(&seen);
        ensure(steady <= 1, || {
            format!("{driver}: {steady} busy-poll threads: {seen:?}")
        })?;
        ensure(
            seen.iter()
                .any(|sample| !threads::busy_poll_threads(sample).is_empty()),
            || format!("{driver}: no xdpget-poll thread seen: {seen:?}"),
        )?;
        tb.ensure_clean()?;
    }
    Ok(())
}

fn one_after_another(tb: &Testbed) -> Check {
    for driver in DRIVERS {
        let dir = tb.workdir(&format!("sequence-{driver}"));
        let urls = urls();
        let args: Vec<&str> = urls.iter().map(String::as_str).collect();
        let run = tb.run_xdpget(driver, &dir, &args)?;
        run.ensure_exit(0)?;
        all_files_ok(tb, &dir, &run.description)?;
        // wget's order: each starts after the one before it ended.
        let starts: Vec<usize> = FILES
            .iter()
            .filter_map(|f| run.output.find(&format!("--  http://{SERVER}/{f}")))
            .collect();
        ensure(starts.len() == FILES.len() && starts.is_sorted(), || {
            format!("{driver}: downloads not announced in order: {}", run.output)
        })?;
    }
    Ok(())
}

fn input_file(tb: &Testbed) -> Check {
    let dir = tb.workdir("input-file");
    let mut list = String::from("# four files\n\n");
    for url in urls() {
        list.push_str(&url);
        list.push('\n');
    }
    fs::write(dir.join("urls.txt"), list).map_err(|e| e.to_string())?;
    let run = tb.run_xdpget("afxdp", &dir, &["--parallel", "2", "-i", "urls.txt"])?;
    run.ensure_exit(0)?;
    all_files_ok(tb, &dir, &run.description)
}
