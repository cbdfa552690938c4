//! Root-only test fixtures: a testbed of our own (scripts/testbed.sh under a unique name)
//! that is torn down even when the test fails, and a guard that moves the calling thread
//! into a network namespace and back.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Output};

/// True when running as root; otherwise prints why `test` is skipped.
pub(crate) fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping {test}: it needs root to create network namespaces");
    }
    root
}

/// Runs `program args…`, panicking only if it cannot be started.
pub(crate) fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"))
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

/// A testbed of our own: namespaces `<name>-client` and `<name>-server` (see
/// docs/testbed.md). `down --purge` runs on drop, also when the test panics.
pub(crate) struct Testbed {
    pub name: String,
    pub dir: PathBuf,
    down: bool,
}

pub(crate) const CLIENT_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 0, 1);
pub(crate) const SERVER_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 0, 2);
pub(crate) const CLIENT_DEV: &str = "xg-c0";
pub(crate) const SERVER_DEV: &str = "xg-s0";

fn script() -> String {
    format!("{}/scripts/testbed.sh", env!("CARGO_MANIFEST_DIR"))
}

impl Testbed {
    /// Brings up testbed `xg-<tag>-<pid>` serving one small file (64K.bin).
    pub(crate) fn up(tag: &str) -> Testbed {
        let name = format!("xg-{tag}-{}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/xdpget-testbed-{name}"));
        // Built first: if `up` fails half-way, Drop still tears down what exists.
        let bed = Testbed {
            name,
            dir,
            down: false,
        };
        let output = bed.script(&["up"]);
        assert!(
            output.status.success(),
            "testbed up failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        bed
    }

    fn script(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .env("XG_TESTBED_NAME", &self.name)
            .env("XG_TESTBED_DIR", &self.dir)
            .env("XG_TESTBED_SIZES", "64K")
            .env("XG_TESTBED_LOSS", "0")
            .output()
            .unwrap_or_else(|error| panic!("cannot run testbed.sh: {error}"))
    }

    pub(crate) fn client_ns(&self) -> String {
        format!("{}-client", self.name)
    }

    pub(crate) fn server_ns(&self) -> String {
        format!("{}-server", self.name)
    }

    /// Runs `testbed.sh status`.
    pub(crate) fn status(&self) -> String {
        stdout_of(self.script(&["status"]), "testbed status")
    }

    /// Tears the testbed down now; returns the script's output.
    pub(crate) fn down(&mut self) -> Output {
        self.down = true;
        self.script(&["down", "--purge"])
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if !self.down {
            let output = self.down();
            if !output.status.success() {
                eprintln!(
                    "testbed {} down failed: {}",
                    self.name,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
}

/// The calling thread inside another network namespace until drop, which moves it back.
/// Sockets opened, sysctls read and processes spawned by this thread meanwhile belong to
/// that namespace.
pub(crate) struct InNetns {
    original: OwnedFd,
}

fn setns(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: setns takes a descriptor we hold open and a constant; it changes only the
    // calling thread's namespace.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl InNetns {
    pub(crate) fn enter(ns: &str) -> io::Result<InNetns> {
        let original = OwnedFd::from(File::open("/proc/thread-self/ns/net")?);
        let target = File::open(format!("/run/netns/{ns}"))?;
        setns(&target)?;
        Ok(InNetns { original })
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        if let Err(error) = setns(&self.original) {
            // A thread left in a deleted namespace would run the next test in it.
            panic!("cannot return to the original network namespace: {error}");
        }
    }
}

/// A bare network namespace of our own (only `lo`), deleted on drop.
pub(crate) struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates namespace `xg-<tag>-<pid>`.
    pub(crate) fn new(tag: &str) -> Netns {
        let name = format!("xg-{tag}-{}", std::process::id());
        // A namespace left by an earlier crashed run of the same pid is replaced.
        let _ = run("ip", &["netns", "del", &name]);
        stdout_of(run("ip", &["netns", "add", &name]), "ip netns add");
        let netns = Netns { name };
        stdout_of(
            run_in(&netns.name, &["ip", "link", "set", "lo", "up"]),
            "lo up",
        );
        netns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let output = run("ip", &["netns", "del", &self.name]);
        if !output.status.success() {
            eprintln!(
                "cannot delete namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
