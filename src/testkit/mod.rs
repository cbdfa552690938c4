//! Test-only fixtures for the root tests that need network namespaces: running commands
//! ([`run`], [`run_ok`], [`run_in`]), moving a thread into a namespace ([`netns`]), a veth
//! pair between two namespaces ([`veth`]) and the full testbed of `scripts/testbed.sh`
//! ([`testbed`]). Everything is torn down by `Drop`, also when the test fails; nothing here
//! touches the host's own interfaces.

use std::io::Write as _;
use std::process::{Command, Output};

pub(crate) mod netns;
pub(crate) mod testbed;
pub(crate) mod veth;

/// True when running as root; otherwise prints why `test` is skipped.
pub(crate) fn root_or_skip(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("");
    if euid == "0" {
        true
    } else {
        // Straight to stderr: libtest captures eprintln! of passing tests, and this line
        // must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipping {test}: needs root (network namespaces, XDP, AF_XDP)"
        );
        false
    }
}

/// Runs `program args…`, panicking only if it cannot be started.
pub(crate) fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"))
}

/// Runs a command that must succeed (test set-up), panicking with its output if it fails.
pub(crate) fn run_ok(program: &str, args: &[&str]) -> Output {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a command inside namespace `ns` (`ip netns exec`).
pub(crate) fn run_in(ns: &str, args: &[&str]) -> Output {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Stdout of a command that must succeed.
pub(crate) fn stdout_of(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
