//! End-to-end proofs of issues 12 (IPv6 at size and under loss) and 15 (HTTP Basic
//! authentication against nginx), on the testbed of tests/e2e.rs (docs/testbed.md), with
//! both packet drivers. Root only: without root every test prints why it is skipped.
//!
//! Like tests/e2e.rs: each test brings up its own testbed, runs its cases in order, checks
//! after every case that no XDP program, nft table or port reservation is left, and tears the
//! testbed down when its guard drops, also on failure.

#[path = "common/e2e.rs"]
#[expect(
    dead_code,
    reason = "the helpers serve tests/e2e.rs too; this file uses some"
)]
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::{
    Check, SERVER, Testbed, ensure, ensure_absent, ensure_file_sha256, output_of, run_cases, serial,
};

const DRIVERS: [&str; 2] = ["afxdp", "raw"];

/// The testbed server's IPv6 address (scripts/testbed.sh ADDR6_SERVER).
const SERVER6: &str = "fd00:77::2";
/// The server's second IPv4 address: another host for a redirect (ADDR_SERVER_OTHER).
const SERVER_OTHER: &str = "10.77.0.3";

/// wget's exit status for an authentication failure.
const EXIT_AUTH: i32 = 6;

/// Downloads `url` into `dir` and checks: exit 0, `file` holds the bytes with sha256
/// `expected`, no `.part` left, no kernel state left. Returns the run's output.
fn download_ok(
    tb: &Testbed,
    driver: &str,
    dir: &Path,
    args: &[&str],
    file: &str,
    expected: &str,
) -> Result<String, String> {
    let run = tb.run_xdpget(driver, dir, args)?;
    run.ensure_exit(0)?;
    ensure_file_sha256(&dir.join(file), expected)
        .map_err(|e| format!("{}: {e}", run.description))?;
    ensure_absent(dir, &format!("{file}.part"))?;
    tb.ensure_clean()
        .map_err(|e| format!("after {}: {e}", run.description))?;
    Ok(run.output)
}

/// Downloads `file` from the server's IPv6 address with each driver.
fn ipv6_downloads_of(tb: &Testbed, file: &str, case: &str) -> Check {
    let expected = tb.expected_sha256(file)?;
    for driver in DRIVERS {
        let dir = tb.workdir(&format!("{case}-{driver}"));
        let url = format!("http://[{SERVER6}]/{file}");
        let output = download_ok(tb, driver, &dir, &["--stats", &url], file, &expected)?;
        // The connection really was IPv6 (nginx logs the client's address).
        tb.wait_for_log_line(&["fd00:77::1", &format!("GET /{file} "), " 200 "])?;
        if let Some(line) = output.lines().find(|l| l.contains("xdp program:")) {
            eprintln!("e2e: {driver}: {line}");
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ issue 12: IPv6

#[test]
fn ipv6_at_size() {
    if !support::root_or_skip("ipv6_at_size") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("sixbig", "256M", 0);
    run_cases(
        &tb,
        &[("256 MiB over IPv6, both drivers", |tb| {
            ipv6_downloads_of(tb, "256M.bin", "v6-256m")
        })],
    );
}

#[test]
fn ipv6_under_loss() {
    if !support::root_or_skip("ipv6_under_loss") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("sixloss", "64M", 1);
    run_cases(
        &tb,
        &[
            ("64 MiB over IPv6 at 1 % loss, both drivers", |tb| {
                ipv6_downloads_of(tb, "64M.bin", "v6-loss")
            }),
            ("the loss applied to IPv6 frames", ipv6_loss_was_injected),
        ],
    );
}

/// The testbed's loss rule sits on the bridge, below IP, so it drops IPv6 frames as it
/// drops IPv4 ones. Only IPv6 downloads ran on this testbed (2 × 64 MiB, about 93 000 of
/// the server's segments, nearly all of them IPv6): at 1 % about 900 drops; a handful would
/// mean the rule saw only the neighbour discovery.
fn ipv6_loss_was_injected(tb: &Testbed) -> Check {
    let drops = tb.loss_drops()?;
    eprintln!("e2e: the loss rule dropped {drops} frames during the IPv6 downloads");
    ensure(drops >= 300, || {
        format!("only {drops} frames were dropped: the loss did not apply to IPv6")
    })
}

// ------------------------------------------------------------------ issue 15: Basic auth

#[test]
fn basic_authentication() {
    if !support::root_or_skip("basic_authentication") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("auth", "1M", 0);
    if let Err(e) = write_htpasswd(&tb, "alice", "wonder land") {
        panic!("cannot write the htpasswd file: {e}");
    }
    run_cases(
        &tb,
        &[
            ("--user/--password on a 401 challenge", credentials_by_flags),
            ("credentials in the URL", credentials_in_the_url),
            ("a wrong password is exit 6", wrong_password),
            (
                "a redirect to another host carries no credentials",
                redirect_drops_credentials,
            ),
        ],
    );
}

/// nginx's user file for /private/, made now with `openssl passwd -apr1` (no apache2-utils
/// needed), in the directory of the testbed's nginx.conf.
fn write_htpasswd(tb: &Testbed, user: &str, password: &str) -> Check {
    let hash = output_of(Command::new("openssl").args(["passwd", "-apr1", password]))?;
    let path = tb.dir.join("nginx/htpasswd");
    fs::write(&path, format!("{user}:{}\n", hash.trim()))
        .map_err(|e| format!("cannot write {path:?}: {e}"))
}

fn credentials_by_flags(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("1M.bin")?;
    for driver in DRIVERS {
        let dir = tb.workdir(&format!("auth-flags-{driver}"));
        let url = format!("http://{SERVER}/private/1M.bin");
        let args = ["--user", "alice", "--password", "wonder land", &url];
        let output = download_ok(tb, driver, &dir, &args, "1M.bin", &expected)?;
        ensure(!output.contains("wonder"), || {
            format!("the password shows in xdpget's output:\n{output}")
        })?;
    }
    // nginx saw the challenge and then the user (its access log's $remote_user).
    tb.wait_for_log_line(&["GET /private/1M.bin ", " 401 "])?;
    tb.wait_for_log_line(&[" - alice [", "GET /private/1M.bin ", " 200 "])?;
    Ok(())
}

fn credentials_in_the_url(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("1M.bin")?;
    for driver in DRIVERS {
        let dir = tb.workdir(&format!("auth-url-{driver}"));
        // RFC 3986 §2.1: the space of the password percent-encoded.
        let url = format!("http://alice:wonder%20land@{SERVER}/private/1M.bin");
        let output = download_ok(tb, driver, &dir, &[&url], "1M.bin", &expected)?;
        ensure(!output.contains("wonder"), || {
            format!("the password shows in xdpget's output:\n{output}")
        })?;
    }
    Ok(())
}

fn wrong_password(tb: &Testbed) -> Check {
    for driver in DRIVERS {
        let dir = tb.workdir(&format!("auth-wrong-{driver}"));
        let url = format!("http://{SERVER}/private/1M.bin");
        let run = tb.run_xdpget(
            driver,
            &dir,
            &["--user", "alice", "--password", "nope", &url],
        )?;
        run.ensure_exit(EXIT_AUTH)?;
        ensure(!dir.join("1M.bin").exists(), || {
            "a file was written for a 401".to_string()
        })?;
        tb.ensure_clean()?;
    }
    // Without any credentials: the same.
    let dir = tb.workdir("auth-none");
    let run = tb.run_xdpget("afxdp", &dir, &[&format!("http://{SERVER}/private/1M.bin")])?;
    run.ensure_exit(EXIT_AUTH)?;
    tb.ensure_clean()
}

/// /private/elsewhere asks for credentials, then redirects to the server's other address.
/// xdpget answers the challenge there, follows the redirect, and must not send the
/// Authorization header to the other host: nginx logs that request with no user ("- -").
fn redirect_drops_credentials(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("1M.bin")?;
    for driver in DRIVERS {
        let dir = tb.workdir(&format!("auth-redirect-{driver}"));
        let url = format!("http://{SERVER}/private/elsewhere");
        let args = [
            "--user",
            "alice",
            "--password",
            "wonder land",
            "-O",
            "1M.bin",
            &url,
        ];
        download_ok(tb, driver, &dir, &args, "1M.bin", &expected)?;
    }
    tb.wait_for_log_line(&[" - alice [", "GET /private/elsewhere ", " 302 "])?;
    let log = tb.access_log();
    let followed: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("GET /1M.bin?from-private "))
        .collect();
    ensure(followed.len() == DRIVERS.len(), || {
        format!(
            "wanted {} requests to {SERVER_OTHER}, nginx logged:\n{log}",
            DRIVERS.len()
        )
    })?;
    for line in followed {
        ensure(line.contains(" 200 ") && line.contains(" - - ["), || {
            format!("the request to the other host carried a user or failed: {line}")
        })?;
    }
    Ok(())
}

// ------------------------------------------------------------------ issue 13: the keeper

/// `kill -9` of a raw-driver download that turned GRO off: the main process cannot clean
/// up, but its clean-up keeper (cli/privileges.rs) sees its pipe close and turns GRO back
/// on at once, where before it stayed off until the next run. Not through `run_cases`: its
/// check after each case would fail on the ports a killed run leaves reserved (the next
/// run releases them; tests/e2e.rs covers that).
#[test]
fn the_keeper_cleans_up_after_kill_9() {
    if !support::root_or_skip("the_keeper_cleans_up_after_kill_9") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("keeper", "256M", 0);
    let outcome = keeper_after_kill_9(&tb);
    let _ = tb.set_gro(false);
    if let Err(e) = outcome {
        panic!("the keeper after kill -9: {e}");
    }
}

fn keeper_after_kill_9(tb: &Testbed) -> Check {
    use std::time::{Duration, Instant};
    tb.set_gro(true)?;
    let dir = tb.workdir("keeper-kill");
    let url = format!("http://{SERVER}/256M.bin");
    let log = fs::File::create(dir.join("xdpget.log")).map_err(|e| e.to_string())?;
    let mut child = tb
        .xdpget("raw", &dir, &[&url])
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start xdpget: {e}"))?;
    // Wait for the body to flow (the .part grows), with GRO off by then.
    let started = Instant::now();
    let part = dir.join("256M.bin.part");
    let flowing = loop {
        let size = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let written = fs::read_to_string(format!("/proc/{}/io", child.id()))
            .ok()
            .and_then(|io| {
                io.lines().find_map(|l| {
                    l.strip_prefix("wchar: ")
                        .and_then(|v| v.parse::<u64>().ok())
                })
            })
            .unwrap_or(0);
        if size > 0 && written > 0 && !tb.gro()? {
            break true;
        }
        if started.elapsed() > Duration::from_secs(20) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    ensure(flowing, || {
        "the download never started with GRO off".to_string()
    })?;
    // The keeper turns GRO on within a moment of the kill.
    let killed = Instant::now();
    while !tb.gro()? {
        if killed.elapsed() > Duration::from_secs(2) {
            return Err("GRO still off 2 s after kill -9: the keeper did not clean up".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("e2e: GRO back on {:?} after kill -9", killed.elapsed());
    // The next run releases the ports the killed one left; then nothing is left.
    let next = tb.workdir("keeper-next");
    download_ok(
        tb,
        "afxdp",
        &next,
        &[&format!("http://{SERVER}/256M.bin")],
        "256M.bin",
        &tb.expected_sha256("256M.bin")?,
    )
    .map(drop)
}
