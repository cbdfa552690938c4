//! The full testbed of `scripts/testbed.sh` (docs/testbed.md) under a name of the test's own,
//! torn down even when the test fails.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::stdout_of;

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
