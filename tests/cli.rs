//! The command line as a user meets it: errors that come before anything is set up on the
//! machine (no root, no network), with wget's exit codes and one sentence each.

use std::process::{Command, Output};

fn xdpget(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdpget"))
        .args(args)
        .env_remove("http_proxy")
        .output()
        .expect("the xdpget binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_unsupported_scheme_is_exit_1_in_one_sentence_before_any_setup() {
    for (url, scheme) in [
        ("htp:/x", "htp"),
        ("ftp://h/f", "ftp"),
        ("gopher://h/", "gopher"),
    ] {
        let output = xdpget(&[url]);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{url}: {text}");
        assert_eq!(
            text.trim_end(),
            format!("xdpget: {url}: Unsupported scheme '{scheme}'"),
            "{url}"
        );
    }
}

#[test]
fn a_malformed_url_is_exit_1_before_any_setup() {
    for url in ["http://", "http://h:99999/", "http://[::1/"] {
        let output = xdpget(&[url]);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{url}: {text}");
        assert_eq!(text.lines().count(), 1, "{url}: one line: {text}");
        // Decided before the privilege check: no word about root or capabilities.
        assert!(!text.contains("root") && !text.contains("CAP_"), "{text}");
    }
}

#[test]
fn output_file_and_append_output_take_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let log_arg = log.to_str().unwrap();
    let first = xdpget(&["-o", log_arg, "htp:/x"]);
    assert_eq!(first.status.code(), Some(1));
    assert_eq!(stderr(&first), "", "-o: nothing on standard error");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "xdpget: htp:/x: Unsupported scheme 'htp'\n");
    // -a appends; -o truncates.
    xdpget(&["-a", log_arg, "gopher://h/"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    xdpget(&["-o", log_arg, "gopher://h/"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
}
