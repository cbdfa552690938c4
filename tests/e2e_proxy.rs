//! End-to-end tests of proxies (issue 15): xdpget fetches through a real HTTP proxy
//! (tinyproxy, in the testbed's server namespace) by the environment variables wget reads:
//! plain `http://` in absolute form, `https://` through a `CONNECT` tunnel, proxy
//! credentials, `no_proxy` and `--no-proxy`.
//!
//! Root only (see tests/common/e2e.rs); the proxy is started by the test and killed when
//! its guard drops, also when a case fails.

#[allow(dead_code)] // each test file uses part of the shared support
#[path = "common/e2e.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::{
    CLIENT_ADDR, Check, SERVER, Testbed, ensure, ensure_absent, ensure_file_sha256, run_cases,
    serial, wait_bounded,
};

/// The open proxy's port, and the one that asks for credentials.
const OPEN_PORT: u16 = 3128;
const AUTH_PORT: u16 = 3129;
/// tinyproxy's `BasicAuth` user and password on [`AUTH_PORT`].
const PROXY_USER: &str = "alice";
const PROXY_PASSWORD: &str = "s3cret";

#[test]
fn proxies() {
    if !support::root_or_skip("proxies") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("proxy", "1M", 0);
    let proxies = match (
        Proxy::start(&tb, OPEN_PORT, None),
        Proxy::start(&tb, AUTH_PORT, Some((PROXY_USER, PROXY_PASSWORD))),
    ) {
        (Ok(open), Ok(auth)) => (open, auth),
        (Err(e), _) | (_, Err(e)) => panic!("tinyproxy did not start: {e}"),
    };
    run_cases(
        &tb,
        &[
            (
                "http:// through http_proxy, both drivers",
                plain_through_proxy,
            ),
            ("https:// through a CONNECT tunnel", tunnel_through_proxy),
            ("proxy credentials from the proxy URL", proxy_credentials),
            ("no_proxy and --no-proxy go direct", bypass),
            ("a refused tunnel and a bad setting", failures),
        ],
    );
    drop(proxies);
}

/// A tinyproxy process in the server namespace, killed on drop.
struct Proxy {
    child: Child,
}

impl Proxy {
    fn start(tb: &Testbed, port: u16, auth: Option<(&str, &str)>) -> Result<Proxy, String> {
        let dir = tb.dir.join(format!("tinyproxy-{port}"));
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let log = dir.join("tinyproxy.log");
        let mut config = format!(
            "Port {port}\nListen {SERVER}\nTimeout 60\nMaxClients 32\n\
             Allow 10.77.0.0/16\nConnectPort 443\nLogLevel Info\nLogFile \"{}\"\n",
            log.display()
        );
        if let Some((user, password)) = auth {
            config.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let config_path = dir.join("tinyproxy.conf");
        fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let child = tb
            .in_server("tinyproxy")
            .args(["-d", "-c"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start tinyproxy: {e}"))?;
        let proxy = Proxy { child };
        // Ready once it accepts a connection (curl over the client's kernel stack).
        let started = Instant::now();
        loop {
            let probe = tb
                .in_client("curl")
                .args(["-s", "-o", "/dev/null", "--max-time", "2"])
                .args(["-x", &format!("http://{SERVER}:{port}")])
                .arg(format!("http://{SERVER}/1M.bin"))
                .status();
            if probe.is_ok_and(|s| s.code() != Some(7)) {
                return Ok(proxy);
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(format!("tinyproxy on port {port} never listened"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGKILL cannot be ignored, so the wait returns at once.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proxy_url(port: u16) -> String {
    format!("http://{SERVER}:{port}")
}

fn testbed_ca(tb: &Testbed) -> String {
    tb.dir.join("tls/ca.pem").to_string_lossy().into_owned()
}

/// Runs xdpget with `env` set (and nothing else of the proxy variables) and returns its
/// exit code and output.
fn run_with_env(
    tb: &Testbed,
    driver: &str,
    dir: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> Result<(Option<i32>, String), String> {
    let log = dir.join("xdpget.log");
    let out = fs::File::create(&log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut command = tb.xdpget(driver, dir, args);
    command.stdout(out).stderr(err);
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().map_err(|e| e.to_string())?;
    let status = wait_bounded(child, support::RUN_LIMIT)?;
    Ok((status.code(), fs::read_to_string(&log).unwrap_or_default()))
}

/// nginx's access log shows who asked for `path` last: the proxy (our server address,
/// since tinyproxy runs there) or the client itself.
fn last_requester(tb: &Testbed, path: &str) -> Result<String, String> {
    let line = tb.wait_for_log_line(&[path])?;
    let log = tb.access_log();
    let last = log
        .lines()
        .rfind(|l| l.contains(path))
        .unwrap_or(&line)
        .to_string();
    Ok(last
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn plain_through_proxy(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("1M.bin")?;
    for driver in ["afxdp", "raw"] {
        let dir = tb.workdir(&format!("proxy-plain-{driver}"));
        let path = format!("/1M.bin?via=proxy-{driver}");
        let url = format!("http://{SERVER}{path}");
        let (code, output) = run_with_env(
            tb,
            driver,
            &dir,
            &[("http_proxy", &proxy_url(OPEN_PORT))],
            &["-O", "1M.bin", &url],
        )?;
        ensure(code == Some(0), || format!("exit {code:?}: {output}"))?;
        ensure_file_sha256(&dir.join("1M.bin"), &expected)?;
        ensure_absent(&dir, "1M.bin.part")?;
        let who = last_requester(tb, &path)?;
        ensure(who == SERVER, || {
            format!("nginx saw {path} from {who}, not from the proxy at {SERVER}")
        })?;
    }
    Ok(())
}

fn tunnel_through_proxy(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("1M.bin")?;
    let dir = tb.workdir("proxy-tunnel");
    let url = format!("https://{SERVER}/1M.bin");
    let ca = testbed_ca(tb);
    let (code, output) = run_with_env(
        tb,
        "afxdp",
        &dir,
        &[("https_proxy", &proxy_url(OPEN_PORT))],
        &["--ca-certificate", &ca, &url],
    )?;
    ensure(code == Some(0), || format!("exit {code:?}: {output}"))?;
    ensure_file_sha256(&dir.join("1M.bin"), &expected)?;
    // tinyproxy logs the CONNECT it carried.
    let proxies_log =
        fs::read_to_string(tb.dir.join(format!("tinyproxy-{OPEN_PORT}/tinyproxy.log")))
            .unwrap_or_default();
    ensure(proxies_log.contains("CONNECT"), || {
        format!("tinyproxy logged no CONNECT:\n{proxies_log}")
    })
}

fn proxy_credentials(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("1M.bin")?;
    let dir = tb.workdir("proxy-auth");
    let with_credentials = format!("http://{PROXY_USER}:{PROXY_PASSWORD}@{SERVER}:{AUTH_PORT}");
    let url = format!("http://{SERVER}/1M.bin?via=auth-proxy");
    let (code, output) = run_with_env(
        tb,
        "afxdp",
        &dir,
        &[("http_proxy", &with_credentials)],
        &["-O", "1M.bin", &url],
    )?;
    ensure(code == Some(0), || format!("exit {code:?}: {output}"))?;
    ensure_file_sha256(&dir.join("1M.bin"), &expected)?;
    ensure(!output.contains(PROXY_PASSWORD), || {
        format!("the proxy password shows in the output:\n{output}")
    })?;
    // Without credentials the proxy answers 407: a server error, exit 8 as wget.
    let dir = tb.workdir("proxy-auth-missing");
    let (code, output) = run_with_env(
        tb,
        "afxdp",
        &dir,
        &[("http_proxy", &proxy_url(AUTH_PORT))],
        &["-O", "1M.bin", &url],
    )?;
    ensure(code == Some(8), || {
        format!("wanted exit 8, got {code:?}: {output}")
    })?;
    ensure(output.contains("407"), || format!("no 407 in:\n{output}"))?;
    ensure_absent(&dir, "1M.bin")
}

fn bypass(tb: &Testbed) -> Check {
    let expected = tb.expected_sha256("1M.bin")?;
    /// A case's name, extra environment and extra arguments.
    type Bypass<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Bypass<'_>; 2] = [
        (
            "no_proxy",
            &[("no_proxy", "example.org, 10.77.0.0/16")],
            &[],
        ),
        ("--no-proxy", &[], &["--no-proxy"]),
    ];
    for (name, extra_env, extra_args) in cases {
        let dir = tb.workdir(&format!("proxy-bypass-{}", name.trim_start_matches('-')));
        let path = format!("/1M.bin?via=direct-{}", name.trim_start_matches('-'));
        let url = format!("http://{SERVER}{path}");
        let proxy = proxy_url(OPEN_PORT);
        let mut env = vec![("http_proxy", proxy.as_str())];
        env.extend_from_slice(extra_env);
        let mut args = extra_args.to_vec();
        args.extend(["-O", "1M.bin", &url]);
        let (code, output) = run_with_env(tb, "afxdp", &dir, &env, &args)?;
        ensure(code == Some(0), || {
            format!("{name}: exit {code:?}: {output}")
        })?;
        ensure_file_sha256(&dir.join("1M.bin"), &expected)?;
        let who = last_requester(tb, &path)?;
        ensure(who == CLIENT_ADDR, || {
            format!("{name}: nginx saw {path} from {who}, not directly from {CLIENT_ADDR}")
        })?;
    }
    Ok(())
}

fn failures(tb: &Testbed) -> Check {
    // tinyproxy tunnels only to port 443 (ConnectPort): 8443 is refused with 403.
    let dir = tb.workdir("proxy-refused-tunnel");
    let ca = testbed_ca(tb);
    let url = format!("https://{SERVER}:8443/1M.bin");
    let (code, output) = run_with_env(
        tb,
        "afxdp",
        &dir,
        &[("https_proxy", &proxy_url(OPEN_PORT))],
        &["--tries", "1", "--ca-certificate", &ca, &url],
    )?;
    ensure(code == Some(4), || {
        format!("wanted exit 4, got {code:?}: {output}")
    })?;
    ensure(output.contains("Proxy tunneling failed"), || {
        format!("no tunnel failure in:\n{output}")
    })?;
    ensure_absent(&dir, "1M.bin")?;
    // An https:// proxy is refused before any packet is sent.
    let dir = tb.workdir("proxy-bad-setting");
    let (code, output) = run_with_env(
        tb,
        "afxdp",
        &dir,
        &[("https_proxy", "https://proxy.invalid:443")],
        &["--ca-certificate", &ca, &format!("https://{SERVER}/1M.bin")],
    )?;
    ensure(code == Some(1), || {
        format!("wanted exit 1, got {code:?}: {output}")
    })
}
