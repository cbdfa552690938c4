//! `xdpget serve` end to end on the testbed (root; scripts/testbed.sh): the server in the
//! server namespace on xg-s0, port 8080 (nginx keeps port 80), the clients in the client
//! namespace: curl, wget and xdpget itself, every file checked against the testbed's
//! SHA256SUMS. Our NewReno sender runs here against the Linux receiver (curl, wget) and our
//! own (xdpget), and on the lossy testbed (1 % of the server's frames dropped on the
//! bridge) it has to recover for real.
//!
//! After every case the server is still running; at the end it gets SIGINT and must exit
//! 0 leaving nothing behind in the server namespace (no XDP program, no nft table, the
//! reserved ports as before).

#[path = "common/e2e.rs"]
#[expect(dead_code, reason = "this file uses part of the shared e2e helpers")]
mod e2e;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{
    Check, SERVER, Testbed, ensure, ensure_file_sha256, output_of, root_or_skip, serial,
    wait_bounded,
};

const SERVER_IFACE: &str = "xg-s0";
const PORT: u16 = 8080;

/// A running `xdpget serve` in the server namespace; stopped (SIGINT, then SIGKILL after a
/// bound) when dropped.
struct Server {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    fn start(testbed: &Testbed, driver: &str) -> Result<Server, String> {
        let log = testbed.dir.join(format!("serve-{driver}.log"));
        let file = fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = testbed
            .in_server(&testbed.xdpget.to_string_lossy())
            .args(["serve", &testbed.www().to_string_lossy()])
            .args(["--iface", SERVER_IFACE, "--driver", driver])
            .args(["--listen", &format!("{SERVER}:{PORT}")])
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot start xdpget serve: {e}"))?;
        let server = Server {
            child: Some(child),
            log,
        };
        let started = Instant::now();
        while !server.output().contains("Ctrl-C stops") {
            if started.elapsed() > Duration::from_secs(15) {
                return Err(format!(
                    "xdpget serve did not come up:\n{}",
                    server.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGINT, then the exit status (bounded).
    fn stop(&mut self) -> Result<std::process::ExitStatus, String> {
        let child = self.child.take().ok_or("already stopped")?;
        // The child is `ip netns exec`, which execs xdpget: the same pid.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        wait_bounded(child, Duration::from_secs(20))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_millis(500));
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn url(file: &str) -> String {
    format!("http://{SERVER}:{PORT}/{file}")
}

/// curl in the client namespace, bounded; the body to `out`.
fn curl(testbed: &Testbed, file: &str, out: &Path) -> Command {
    let mut command = testbed.in_client("curl");
    command
        .args(["-sS", "--fail", "--noproxy", "*", "--max-time", "120", "-o"])
        .arg(out)
        .arg(url(file));
    command
}

fn expect_file(testbed: &Testbed, dir: &Path, local: &str, name: &str) -> Check {
    let digest = testbed.expected_sha256(name)?;
    ensure_file_sha256(&dir.join(local), &digest)
}

fn curl_case(testbed: &Testbed, name: &str) -> Check {
    let dir = testbed.workdir(&format!("curl-{name}"));
    output_of(&mut curl(testbed, name, &dir.join("out")))?;
    expect_file(testbed, &dir, "out", name)
}

fn wget_case(testbed: &Testbed, name: &str) -> Check {
    let dir = testbed.workdir(&format!("wget-{name}"));
    output_of(
        testbed
            .in_client("wget")
            .args(["-q", "--no-proxy", "--timeout=60", "--tries=1", "-O"])
            .arg(dir.join("out"))
            .arg(url(name)),
    )?;
    expect_file(testbed, &dir, "out", name)
}

fn xdpget_case(testbed: &Testbed, name: &str, driver: &str) -> Check {
    let dir = testbed.workdir(&format!("xdpget-{driver}-{name}"));
    let run = testbed.run_xdpget(driver, &dir, &["-O", "out", &url(name)])?;
    run.ensure_exit(0)?;
    expect_file(testbed, &dir, "out", name)
}

/// Eight curls at once, every file whole.
fn eight_curls(testbed: &Testbed, name: &str) -> Check {
    let dir = testbed.workdir(&format!("curl8-{name}"));
    let children: Vec<Child> = (0..8)
        .map(|i| {
            curl(testbed, name, &dir.join(format!("out{i}")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    for (i, child) in children.into_iter().enumerate() {
        let status = wait_bounded(child, Duration::from_secs(180))?;
        ensure(status.success(), || {
            format!("curl {i} exited with {status}")
        })?;
    }
    for i in 0..8 {
        expect_file(testbed, &dir, &format!("out{i}"), name)?;
    }
    Ok(())
}

/// HEAD, a range, 404, 403 and 405 through curl, against the real kernel client.
fn protocol_case(testbed: &Testbed) -> Check {
    let status = |args: &[&str], target: &str| -> Result<String, String> {
        output_of(
            testbed
                .in_client("curl")
                .args([
                    "-sS",
                    "--noproxy",
                    "*",
                    "--max-time",
                    "20",
                    "-o",
                    "/dev/null",
                ])
                .args(["-w", "%{http_code}"])
                .args(args)
                .arg(format!("http://{SERVER}:{PORT}{target}")),
        )
    };
    ensure(status(&["-I"], "/1M.bin")? == "200", || "HEAD".into())?;
    ensure(status(&["-r", "100-199"], "/1M.bin")? == "206", || {
        "range".into()
    })?;
    ensure(status(&[], "/none")? == "404", || "404".into())?;
    ensure(
        status(&["--path-as-is"], "/../etc/passwd")? == "403",
        || "traversal".into(),
    )?;
    ensure(status(&["-X", "DELETE"], "/1M.bin")? == "405", || {
        "405".into()
    })?;
    Ok(())
}

/// Stops the server and checks it left nothing behind in the server namespace.
fn stop_clean(testbed: &Testbed, mut server: Server, ports_before: &str) -> Check {
    let status = server.stop()?;
    ensure(status.success(), || {
        format!("xdpget serve exited with {status}:\n{}", server.output())
    })?;
    ensure(server.output().contains("stopped by SIGINT"), || {
        format!("no stop line:\n{}", server.output())
    })?;
    let mut link = String::new();
    for _ in 0..40 {
        link = output_of(
            testbed
                .in_server("ip")
                .args(["-d", "link", "show", SERVER_IFACE]),
        )?;
        if !link.contains("prog/xdp") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure(!link.contains("prog/xdp"), || {
        format!("an XDP program is left on {SERVER_IFACE}: {link}")
    })?;
    let tables = output_of(testbed.in_server("nft").args(["list", "tables"]))?;
    ensure(!tables.contains("xdpget_"), || {
        format!("nft tables left: {tables}")
    })?;
    let ports = server_reserved_ports(testbed)?;
    ensure(ports == ports_before, || {
        format!("reserved ports '{ports}', were '{ports_before}'")
    })
}

fn server_reserved_ports(testbed: &Testbed) -> Result<String, String> {
    output_of(
        testbed
            .in_server("cat")
            .arg("/proc/sys/net/ipv4/ip_local_reserved_ports"),
    )
    .map(|s| s.trim().to_string())
}

/// The testbed turns transmit checksum offload off on the server's veth only (the kernel's
/// server then sends whole checksums to our client). Here the kernel is the client: its
/// segments would cross the veth with partial checksums, which our server, like any
/// receiver that is not the peer veth's kernel, must drop as corrupt.
fn client_checksums_in_software(testbed: &Testbed) {
    output_of(
        testbed
            .in_client("ethtool")
            .args(["-K", e2e::CLIENT_IFACE, "tx", "off"]),
    )
    .unwrap_or_else(|e| panic!("ethtool: {e}"));
}

/// A named check run while the server is up.
type ServeCase<'a> = (&'a str, &'a dyn Fn(&Testbed) -> Check);

/// Runs `cases` against a server on `driver`, then stops it and checks the clean-up.
fn with_server(testbed: &Testbed, driver: &str, cases: &[ServeCase<'_>]) {
    client_checksums_in_software(testbed);
    let ports_before = server_reserved_ports(testbed).expect("reserved ports");
    let server = Server::start(testbed, driver).unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for (name, case) in cases {
        let started = Instant::now();
        match case(testbed) {
            Ok(()) => eprintln!(
                "e2e serve ({driver}): {name}: ok ({:.1?})",
                started.elapsed()
            ),
            Err(e) => {
                eprintln!("e2e serve ({driver}): {name}: FAILED: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    let log = server.output();
    eprintln!(
        "e2e serve ({driver}): {} access-log lines",
        log.lines().filter(|l| l.contains("\" 2")).count()
    );
    if let Err(e) = stop_clean(testbed, server, &ports_before) {
        failures.push(format!("stop: {e}"));
    }
    assert!(
        failures.is_empty(),
        "failed:\n{}\nserver log tail:\n{}",
        failures.join("\n"),
        {
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
    );
}

#[test]
fn serve_to_curl_wget_and_xdpget() {
    if !root_or_skip("serve_to_curl_wget_and_xdpget") {
        return;
    }
    let _serial = serial();
    let testbed = Testbed::up("srv", "1M 64M 256M", 0);
    with_server(
        &testbed,
        "afxdp",
        &[
            ("protocol (HEAD, range, 404, 403, 405)", &protocol_case),
            ("curl 1M", &|t| curl_case(t, "1M.bin")),
            ("wget 1M", &|t| wget_case(t, "1M.bin")),
            ("xdpget 1M (both AF_XDP)", &|t| {
                xdpget_case(t, "1M.bin", "afxdp")
            }),
            ("curl 256M", &|t| curl_case(t, "256M.bin")),
            ("wget 256M", &|t| wget_case(t, "256M.bin")),
            ("xdpget 256M (both AF_XDP)", &|t| {
                xdpget_case(t, "256M.bin", "afxdp")
            }),
            ("8 curls at once, 64M", &|t| eight_curls(t, "64M.bin")),
        ],
    );
    with_server(
        &testbed,
        "raw",
        &[
            ("curl 1M (raw server)", &|t| curl_case(t, "1M.bin")),
            ("xdpget 64M (raw server, raw client)", &|t| {
                xdpget_case(t, "64M.bin", "raw")
            }),
        ],
    );
}

#[test]
fn serve_at_one_percent_loss_to_curl() {
    if !root_or_skip("serve_at_one_percent_loss_to_curl") {
        return;
    }
    let _serial = serial();
    let testbed = Testbed::up("srvloss", "64M", 1);
    let before = testbed.loss_drops().unwrap_or(0);
    with_server(
        &testbed,
        "afxdp",
        &[("curl 64M at 1 % loss", &|t| curl_case(t, "64M.bin"))],
    );
    let dropped = testbed.loss_drops().unwrap_or(0) - before;
    assert!(dropped > 100, "the bridge dropped only {dropped} frames");
    eprintln!("e2e serve: the bridge dropped {dropped} of the server's frames");
}
