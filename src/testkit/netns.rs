//! Network namespaces for tests: a guard that moves the calling thread into one and back,
//! a way to run a closure on a thread inside one, and a bare namespace deleted on drop.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;

use super::{run, run_in, stdout_of};

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

/// Runs `body` on a fresh thread inside network namespace `ns`, so that every socket,
/// netlink query and XDP attach it makes happens there.
pub(crate) fn in_netns<T: Send>(ns: &str, body: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let _inside = InNetns::enter(ns)
                    .unwrap_or_else(|error| panic!("cannot enter namespace {ns}: {error}"));
                body()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
