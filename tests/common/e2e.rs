//! Support for the end-to-end tests (tests/e2e.rs): a testbed of network namespaces that is
//! torn down when its guard drops, running the built `xdpget` inside it, and the checks
//! that xdpget left no kernel state behind.
//!
//! Every testbed is made by `scripts/testbed.sh` (docs/testbed.md) under a name of its own,
//! `xge2e<pid><group>`, with its own state dir, so tests never touch another testbed (the
//! developer's default `xg` one included). A testbed left by an earlier test process that
//! was killed before its guards ran is found by the pid in its name and removed first.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The client's and the server's addresses and interface inside every testbed.
pub const SERVER: &str = "10.77.0.2";
pub const CLIENT_ADDR: &str = "10.77.0.1";
pub const CLIENT_IFACE: &str = "xg-c0";

/// Prefix of every testbed name these tests make.
const NAME_PREFIX: &str = "xge2e";

/// Longest any one xdpget run may take before it is killed and the case fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A case's verdict: `Err` carries a sentence for the failure list.
pub type Check = Result<(), String>;

/// `Err(message)` unless `condition`.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Check {
    if condition { Ok(()) } else { Err(message()) }
}

/// One test at a time: the testbeds would compete for the two cores, and every xdpget
/// pins its busy-poll thread to the same (last) core.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds [`SERIAL`] for as long as it lives.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The effective uid of this process, from /proc (no unsafe `geteuid` needed).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// True when the tests can run; otherwise prints why they are skipped.
pub fn root_or_skip(test: &str) -> bool {
    if effective_uid() == Some(0) {
        return true;
    }
    eprintln!(
        "e2e: {test} skipped: needs root (it creates network namespaces and attaches XDP); \
         run `sudo bash scripts/test.sh`"
    );
    false
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command`, returning its stdout, or a message with its stderr when it fails.
pub fn output_of(command: &mut Command) -> Result<String, String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when process `pid` exists.
fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A testbed for one group of cases; `Drop` stops its processes, deletes both namespaces
/// and its state dir (data files included).
pub struct Testbed {
    pub name: String,
    pub dir: PathBuf,
    pub client_ns: String,
    pub server_ns: String,
    /// The copy of the xdpget binary this testbed's cases run.
    pub xdpget: PathBuf,
    /// `ip_local_reserved_ports` in the client namespace before any xdpget ran.
    pub reserved_ports_before: String,
    sizes: String,
    /// rx and tx queues of every veth end (`XG_TESTBED_QUEUES`).
    queues: u32,
}

impl Testbed {
    /// Brings a testbed up with data files of `sizes` (testbed.sh syntax, e.g. "1M 256M")
    /// and `loss_percent` of the server's packets dropped. `group` is one short lowercase
    /// word that tells the tests' testbeds apart.
    pub fn up(group: &str, sizes: &str, loss_percent: u32) -> Testbed {
        Testbed::up_with_queues(group, sizes, loss_percent, 1)
    }

    /// Like [`Testbed::up`], with `queues` rx and tx queues on every veth end, so that
    /// flows spread over the client interface's rx queues.
    pub fn up_with_queues(group: &str, sizes: &str, loss_percent: u32, queues: u32) -> Testbed {
        remove_stale_testbeds();
        let name = format!("{NAME_PREFIX}{}{group}", std::process::id());
        let dir = std::env::temp_dir().join(format!("xdpget-testbed-{name}"));
        let mut testbed = Testbed {
            client_ns: format!("{name}-client"),
            server_ns: format!("{name}-server"),
            xdpget: dir.join("xdpget"),
            name,
            dir,
            reserved_ports_before: String::new(),
            sizes: sizes.to_string(),
            queues,
        };
        // The guard exists before `up` runs, so a half-built testbed is removed too.
        if let Err(e) = testbed.script(&["up", "--loss", &loss_percent.to_string()]) {
            panic!("the testbed did not come up: {e}");
        }
        // A copy, so that a cargo build running meanwhile cannot swap the binary mid-test.
        if let Err(e) = fs::copy(env!("CARGO_BIN_EXE_xdpget"), &testbed.xdpget) {
            panic!("cannot copy the xdpget binary: {e}");
        }
        testbed.reserved_ports_before = testbed
            .reserved_ports()
            .unwrap_or_else(|e| panic!("cannot read the reserved ports: {e}"));
        testbed
    }

    fn script(&self, args: &[&str]) -> Result<String, String> {
        output_of(
            Command::new("bash")
                .arg(repo_root().join("scripts/testbed.sh"))
                .args(args)
                .env("XG_TESTBED_NAME", &self.name)
                .env("XG_TESTBED_DIR", &self.dir)
                .env("XG_TESTBED_SIZES", &self.sizes)
                .env("XG_TESTBED_QUEUES", self.queues.to_string()),
        )
    }

    /// `ip netns exec <client ns> program args...`
    pub fn in_client(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.client_ns, program]);
        command
    }

    /// `ip netns exec <server ns> program args...`
    pub fn in_server(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.server_ns, program]);
        command
    }

    /// The directory nginx serves.
    pub fn www(&self) -> PathBuf {
        self.dir.join("www")
    }

    /// nginx's access log (one line per request: status and body bytes sent).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.join("nginx/logs/access.log")).unwrap_or_default()
    }

    /// Waits (at most 5 s: nginx writes the line once it has handed the last byte to its
    /// socket) for an access-log line containing every one of `parts`.
    pub fn wait_for_log_line(&self, parts: &[&str]) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let log = self.access_log();
            if let Some(line) = log
                .lines()
                .find(|line| parts.iter().all(|part| line.contains(part)))
            {
                return Ok(line.to_string());
            }
            if started.elapsed() > Duration::from_secs(5) {
                return Err(format!(
                    "nginx logged no request with {parts:?}; its log:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// File name -> sha256 hex, from the testbed's SHA256SUMS.
    pub fn sha256sums(&self) -> HashMap<String, String> {
        let text = fs::read_to_string(self.www().join("SHA256SUMS")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (digest, name) = line.split_once(char::is_whitespace)?;
                Some((
                    name.trim_start_matches([' ', '*']).to_string(),
                    digest.to_string(),
                ))
            })
            .collect()
    }

    /// The expected digest of data file `name` ("1M.bin").
    pub fn expected_sha256(&self, name: &str) -> Result<String, String> {
        self.sha256sums()
            .remove(name)
            .ok_or_else(|| format!("{name} is not in the testbed's SHA256SUMS"))
    }

    /// A fresh, empty working directory for one case.
    pub fn workdir(&self, case: &str) -> PathBuf {
        let dir = self.dir.join("work").join(case);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
        dir
    }

    /// The `xdpget` command in the client namespace on the testbed's interface, with
    /// `driver` ("afxdp" or "raw"), in working directory `cwd`, stderr to `cwd/stderr.txt`
    /// when `stdout` is not the caller's.
    pub fn xdpget(&self, driver: &str, cwd: &Path, args: &[&str]) -> Command {
        let mut command = self.in_client(&self.xdpget.to_string_lossy());
        command
            .args([
                "--iface",
                CLIENT_IFACE,
                "--driver",
                driver,
                "--progress",
                "none",
            ])
            // A hung transfer fails the case instead of the test run.
            .args(["--timeout", "30"])
            .args(args)
            // Packets go only to the testbed: never to a proxy of the machine's environment.
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("no_proxy")
            .env_remove("NO_PROXY")
            .current_dir(cwd)
            .stdin(Stdio::null());
        command
    }

    /// Runs `xdpget` (see [`Testbed::xdpget`]) to completion, bounded by [`RUN_LIMIT`].
    pub fn run_xdpget(&self, driver: &str, cwd: &Path, args: &[&str]) -> Result<Run, String> {
        let log = cwd.join(format!("xdpget-{driver}.log"));
        let log_file = fs::File::create(&log).map_err(|e| format!("cannot create {log:?}: {e}"))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut command = self.xdpget(driver, cwd, args);
        command.stdout(log_file).stderr(log_err);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let status = wait_bounded(child, RUN_LIMIT)?;
        Ok(Run {
            status,
            output: fs::read_to_string(&log).unwrap_or_default(),
            description: format!("xdpget --driver {driver} {}", args.join(" ")),
        })
    }

    /// `ip_local_reserved_ports` in the client namespace.
    pub fn reserved_ports(&self) -> Result<String, String> {
        output_of(
            self.in_client("cat")
                .arg("/proc/sys/net/ipv4/ip_local_reserved_ports"),
        )
        .map(|s| s.trim().to_string())
    }

    /// The XDP program attached to the client interface, if any (`ip -d link show`).
    pub fn xdp_attached(&self) -> Result<Option<String>, String> {
        let link = output_of(
            self.in_client("ip")
                .args(["-d", "link", "show", CLIENT_IFACE]),
        )?;
        // "... mtu 1500 xdp qdisc ..." and "prog/xdp id 7 name xdp_steer" while attached;
        // xdpgeneric / xdpdrv / xdpoffload for the other attach modes.
        let attached = link
            .split_whitespace()
            .any(|word| word.starts_with("xdp") || word.starts_with("prog/xdp"));
        Ok(attached.then_some(link))
    }

    /// Waits (bounded, 2 s) for the XDP program to leave the client interface, as the
    /// kernel releases a bpf_link from a worker after its last descriptor closes; returns
    /// the program still attached after that, if any.
    pub fn xdp_still_attached(&self) -> Result<Option<String>, String> {
        let mut xdp = self.xdp_attached()?;
        for _ in 0..40 {
            if xdp.is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            xdp = self.xdp_attached()?;
        }
        Ok(xdp)
    }

    /// The nft tables named xdpget_* in the client namespace.
    pub fn xdpget_tables(&self) -> Result<Vec<String>, String> {
        let tables = output_of(self.in_client("nft").args(["list", "tables"]))?;
        Ok(tables
            .lines()
            .filter(|line| line.contains("xdpget_"))
            .map(|line| line.trim().to_string())
            .collect())
    }

    /// Checks that no xdpget left kernel state in the client namespace: no XDP program
    /// on the interface, no nft table of ours, the reserved ports as they were before.
    pub fn ensure_clean(&self) -> Check {
        // The kernel releases a bpf_link from a worker after its last fd closes, so give
        // the XDP program a moment (bounded) to go.
        let xdp = self.xdp_still_attached()?;
        ensure(xdp.is_none(), || {
            format!("an XDP program is still attached: {xdp:?}")
        })?;
        // The raw driver's table belongs to its netlink socket, which a teardown child of
        // the exited xdpget closes (the close waits for an RCU grace period): bounded too.
        let mut tables = self.xdpget_tables()?;
        for _ in 0..40 {
            if tables.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            tables = self.xdpget_tables()?;
        }
        ensure(tables.is_empty(), || {
            format!("nft tables of xdpget are left: {tables:?}")
        })?;
        let ports = self.reserved_ports()?;
        ensure(ports == self.reserved_ports_before, || {
            format!(
                "ip_local_reserved_ports is '{ports}', was '{}' before",
                self.reserved_ports_before
            )
        })
    }

    /// Whether generic receive offload is on for the client interface.
    pub fn gro(&self) -> Result<bool, String> {
        let features = output_of(self.in_client("ethtool").args(["-k", CLIENT_IFACE]))?;
        features
            .lines()
            .find_map(|line| line.strip_prefix("generic-receive-offload: "))
            .map(|state| state.starts_with("on"))
            .ok_or_else(|| format!("ethtool -k shows no generic-receive-offload: {features}"))
    }

    /// Turns generic receive offload on the client interface on or off.
    pub fn set_gro(&self, on: bool) -> Check {
        output_of(self.in_client("ethtool").args([
            "-K",
            CLIENT_IFACE,
            "gro",
            if on { "on" } else { "off" },
        ]))
        .map(|_| ())
    }

    /// How many of the server's packets the testbed's loss table on the bridge (in the
    /// link namespace) has dropped.
    pub fn loss_drops(&self) -> Result<u64, String> {
        let link_ns = self.server_ns.replace("-server", "-link");
        let table = output_of(Command::new("ip").args([
            "netns",
            "exec",
            &link_ns,
            "nft",
            "list",
            "table",
            "bridge",
            "xg_testbed_loss",
        ]))?;
        table
            .split("counter packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no counter in the loss table: {table}"))
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Err(e) = self.script(&["down", "--purge"]) {
            eprintln!("e2e: tearing down testbed {}: {e}", self.name);
        }
    }
}

/// How one xdpget run ended.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    /// stdout and stderr together.
    pub output: String,
    pub description: String,
}

impl Run {
    /// Ok when xdpget exited with `code`.
    pub fn ensure_exit(&self, code: i32) -> Check {
        ensure(self.status.code() == Some(code), || {
            format!(
                "{} exited with {} (wanted {code}); its output:\n{}",
                self.description, self.status, self.output
            )
        })
    }
}

/// Waits for `child` at most `limit`, killing it when the limit passes.
pub fn wait_bounded(mut child: Child, limit: Duration) -> Result<ExitStatus, String> {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {limit:?}: it did not finish"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for a child: {e}")),
        }
    }
}

/// sha256 of a file, by the system's `sha256sum`.
pub fn sha256_file(path: &Path) -> Result<String, String> {
    let out = output_of(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum printed nothing for {path:?}"))
}

/// sha256 of bytes read from `reader` to its end, by `sha256sum` on stdin.
pub fn sha256_reader(reader: &mut impl Read) -> Result<String, String> {
    let mut hasher = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run sha256sum: {e}"))?;
    let copied = match hasher.stdin.take() {
        Some(mut stdin) => std::io::copy(reader, &mut stdin).map_err(|e| e.to_string()),
        None => Err("sha256sum has no stdin".to_string()),
    };
    let out = hasher.wait_with_output().map_err(|e| e.to_string())?;
    copied?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| "sha256sum printed nothing".to_string())
}

/// Ok when `path` holds exactly the bytes with sha256 `expected`.
pub fn ensure_file_sha256(path: &Path, expected: &str) -> Check {
    ensure(path.is_file(), || format!("{path:?} was not written"))?;
    let actual = sha256_file(path)?;
    ensure(actual == expected, || {
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        format!("{path:?} ({len} bytes) has sha256 {actual}, wanted {expected}")
    })
}

/// The trusted prefix in an xdpget control record (`NAME.part.xdpget`, docs/sink.md): the
/// `prefix` of the copy with the highest `sequence`.
pub fn control_prefix(path: &Path) -> Option<u64> {
    let bytes = fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut sequence = None;
    let mut best: Option<(u64, u64)> = None;
    for line in text.split(['\n', '\0']) {
        if let Some(n) = line.strip_prefix("sequence ") {
            sequence = n.trim().parse::<u64>().ok();
        } else if let (Some(n), Some(seq)) = (line.strip_prefix("prefix "), sequence)
            && let Ok(prefix) = n.trim().parse::<u64>()
            && best.is_none_or(|(s, _)| seq > s)
        {
            best = Some((seq, prefix));
        }
    }
    best.map(|(_, prefix)| prefix)
}

/// Ok when nothing named `name` or `name.part*` is in `dir`.
pub fn ensure_absent(dir: &Path, name: &str) -> Check {
    let left: Vec<String> = fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|file| file == name || file.starts_with(&format!("{name}.part")))
        .collect();
    ensure(left.is_empty(), || format!("{dir:?} holds {left:?}"))
}

/// A named case of a group: runs against the group's testbed.
pub type Case = (&'static str, fn(&Testbed) -> Check);

/// Runs every case, collecting failures, and panics with all of them at the end.
pub fn run_cases(testbed: &Testbed, cases: &[Case]) {
    let mut failures = Vec::new();
    for (name, case) in cases {
        let started = Instant::now();
        let verdict = case(testbed).and_then(|()| testbed.ensure_clean());
        match verdict {
            Ok(()) => eprintln!("e2e: {name}: ok ({:.1?})", started.elapsed()),
            Err(message) => {
                eprintln!("e2e: {name}: FAILED: {message}");
                failures.push(format!("{name}: {message}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Removes testbeds of earlier test processes that died before their guards ran: names
/// `xge2e<pid><group>` whose pid no longer runs.
fn remove_stale_testbeds() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    let mut stale: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let ns = entry.file_name().to_string_lossy().into_owned();
            let name = ns
                .strip_suffix("-client")
                .or_else(|| ns.strip_suffix("-server"))
                .or_else(|| ns.strip_suffix("-link"))?
                .to_string();
            let digits: String = name
                .strip_prefix(NAME_PREFIX)?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let pid: u32 = digits.parse().ok()?;
            (!pid_alive(pid)).then_some(name)
        })
        .collect();
    stale.sort();
    stale.dedup();
    for name in stale {
        let dir = std::env::temp_dir().join(format!("xdpget-testbed-{name}"));
        eprintln!("e2e: removing testbed {name}, left by a test run that was killed");
        let _ = output_of(
            Command::new("bash")
                .arg(repo_root().join("scripts/testbed.sh"))
                .args(["down", "--purge"])
                .env("XG_TESTBED_NAME", &name)
                .env("XG_TESTBED_DIR", &dir),
        );
    }
}
