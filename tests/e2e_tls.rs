//! End-to-end TLS checks beside `tests/e2e.rs`'s `https` test: what nginx sees when
//! xdpget rejects its certificate. Root only (prints why it is skipped otherwise); its own
//! testbed (`xge2e<pid>alert`), torn down when the guard drops.
//!
//! RFC 8446 §6.2: the side that detects an error SHOULD send a fatal alert naming it. nginx
//! (OpenSSL) logs the alert it receives at "info" level; scripts/testbed.sh writes that log
//! per HTTPS port to `nginx/logs/tls-PORT.log`.

// The helpers are shared with tests/e2e.rs, which uses the ones this file does not.
#[allow(dead_code)]
#[path = "common/e2e.rs"]
mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::{CLIENT_ADDR, Check, SERVER, Testbed, ensure, ensure_absent, run_cases, serial};

/// wget's exit status for a TLS verification failure.
const EXIT_TLS: i32 = 5;

#[test]
fn rejected_certificates_are_answered_with_an_alert() {
    if !support::root_or_skip("rejected_certificates_are_answered_with_an_alert") {
        return;
    }
    let _serial = serial();
    let tb = Testbed::up("alert", "1M", 0);
    run_cases(
        &tb,
        &[(
            "nginx logs our alert for each rejected certificate, both drivers",
            alerts_reach_nginx,
        )],
    );
}

/// The lines of nginx's TLS log for `port`.
fn tls_log(tb: &Testbed, port: u16) -> Vec<String> {
    fs::read_to_string(tb.dir.join(format!("nginx/logs/tls-{port}.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn alerts_reach_nginx(tb: &Testbed) -> Check {
    let ca = tb.dir.join("tls/ca.pem").to_string_lossy().into_owned();
    // The ports of scripts/testbed.sh, and the alert OpenSSL reports for each (RFC 8446
    // §6.2: certificate_expired 45, bad_certificate 42, unknown_ca 48).
    let cases = [
        (8445, "alert certificate expired"),
        (8446, "alert bad certificate"),
        (8447, "alert unknown ca"),
    ];
    for driver in ["afxdp", "raw"] {
        for (port, alert) in cases {
            let before = tls_log(tb, port).len();
            let dir = tb.workdir(&format!("alert-{driver}-{port}"));
            let url = format!("https://{SERVER}:{port}/1M.bin");
            let run = tb.run_xdpget(driver, &dir, &["--ca-certificate", &ca, &url])?;
            run.ensure_exit(EXIT_TLS)?;
            ensure_absent(&dir, "1M.bin")?;
            // nginx logs once it has read the alert; give it a moment (bounded).
            let started = Instant::now();
            let line = loop {
                let new = tls_log(tb, port).split_off(before);
                if let Some(line) = new.iter().find(|l| l.contains(alert)) {
                    break Ok(line.clone());
                }
                if started.elapsed() > Duration::from_secs(5) {
                    break Err(format!(
                        "{}: nginx logged no '{alert}'; its new TLS log lines:\n{}",
                        run.description,
                        new.join("\n")
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }?;
            eprintln!("e2e: {driver} :{port}: nginx: {}", line.trim());
            ensure(line.contains(CLIENT_ADDR), || {
                format!("the alert line does not name our address: {line}")
            })?;
            tb.ensure_clean()?;
        }
    }
    Ok(())
}
