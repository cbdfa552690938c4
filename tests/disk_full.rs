//! A full disk at any point of a download, over the simulated network (`engine::fetch::fetch`
//! as the CLI calls it, against `engine::sim_server`), on a 1 MiB tmpfs: wget's exit status 3,
//! one sentence, never a `SIGBUS` from the mapping, and a prefix that `-c` continues.
//!
//! - a `Content-Length` larger than the disk: refused before the transfer, nothing left;
//! - a chunked and a close-delimited body (RFC 9112 §6.3: no length to preallocate) that
//!   outgrow the disk: the file grows until the disk is full, then the download stops with
//!   the bytes that fit kept in `NAME.part`, and after room is made `-c` completes it.
//!
//! Mounting needs root: the test runs itself again inside a private mount namespace
//! (`unshare --mount`) with the tmpfs mounted on a temporary directory, so the mount goes away
//! with the child process, also when a check fails. Without root it skips with a reason.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use xdpget::driver::sim::SimDriver;
use xdpget::driver::sim::content;
use xdpget::driver::sim::impair::Impairments;
use xdpget::driver::sim::link::{Link, LinkConfig};
use xdpget::engine::EngineError;
use xdpget::engine::fetch::{self, FetchOptions, Output};
use xdpget::engine::network::SimNetwork;
use xdpget::engine::progress::Progress;
use xdpget::engine::sim_server::{CONTENT_SEED, SERVER_ADDRESS, SERVER_MAC, SimServer};
use xdpget::engine::stats::EngineStats;
use xdpget::sink::ResumeInfo;
use xdpget::sink::control::{control_path, part_path};
use xdpget::tcp;

/// Set in the child that runs inside the mount namespace: the tmpfs's path.
const TMPFS_DIR: &str = "XDPGET_DISK_FULL_TEST_TMPFS";
/// Size of the tmpfs, and what the bodies that outgrow it send.
const DISK: u64 = 1 << 20;
const BODY: u64 = 3 << 20;

#[test]
fn a_full_disk_stops_with_exit_status_3_and_a_resumable_prefix() {
    if let Some(dir) = std::env::var_os(TMPFS_DIR) {
        return checks_on_a_small_disk(Path::new(&dir));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs -o size=$2 xdpget-disk-full \"$0\" || exit 77; \
             exec \"$1\" --exact a_full_disk_stops_with_exit_status_3_and_a_resumable_prefix \
             --nocapture",
        )
        .arg(dir.path())
        .arg(exe)
        .arg(DISK.to_string())
        .env(TMPFS_DIR, dir.path())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            eprintln!("skipped: cannot run unshare ({error})");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(77) || stderr.contains("unshare failed") {
        eprintln!("skipped: no private mount namespace with a tmpfs here (needs root): {stderr}");
        return;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// The simulated network: 100 Mbit/s, 2 ms RTT, a clean link.
fn network(seed: u64) -> SimNetwork {
    let link = LinkConfig::bottleneck(
        seed,
        100_000_000,
        Duration::from_millis(2),
        Impairments::NONE,
    );
    let server_config = tcp::Config {
        mtu: 1500,
        send_buffer_capacity: 4 << 20,
        msl: Duration::from_millis(100),
        ..tcp::Config::default()
    };
    let server = SimServer::new(SERVER_ADDRESS, SERVER_MAC, server_config);
    let driver = SimDriver::new(Link::new(link).expect("valid link"), server)
        .with_max_frame_len(1514)
        .with_max_events(20_000_000);
    SimNetwork::new(driver, 1500)
}

/// `fetch` of `path` into `-O file` as the CLI calls it (one try: a full disk is not retried
/// anyway): the file's length and the bytes transferred, and the notices.
fn run(file: &Path, path: &str, resume: bool) -> (Result<(u64, u64), EngineError>, Vec<String>) {
    let mut options = FetchOptions {
        output: Output::Path(file.to_path_buf()),
        resume,
        tries: 1,
        ..FetchOptions::default()
    };
    options.transfer.idle_before_wait = Duration::ZERO;
    let mut notices = Vec::new();
    let result = fetch::fetch(
        &mut network(path.len() as u64),
        &format!("http://{}{path}", SERVER_ADDRESS.ip()),
        &options,
        &Progress::default(),
        &mut EngineStats::default(),
        &mut |line: String| notices.push(line),
    );
    (
        result.map(|fetched| (fetched.file_len, fetched.transferred)),
        notices,
    )
}

/// Whether `path` holds exactly the first `len` bytes of the server's contents.
fn holds_prefix(path: &Path, len: u64) -> bool {
    let mut wanted = vec![0u8; len as usize];
    content::fill(CONTENT_SEED, 0, &mut wanted);
    std::fs::read(path).is_ok_and(|actual| actual == wanted)
}

fn checks_on_a_small_disk(dir: &Path) {
    // A length the disk cannot hold: refused before any byte, nothing left behind.
    let file = dir.join("big.bin");
    let (result, _) = run(&file, &format!("/file/{BODY}/big.bin"), false);
    let error = result.expect_err("does not fit");
    assert_eq!(error.exit_code(), 3, "{error}");
    assert_eq!(
        error.to_string(),
        format!("not enough space on {} for {BODY} bytes", dir.display())
    );
    assert_eq!(std::fs::read_dir(dir).expect("list").count(), 0);

    for framing in ["chunked", "close"] {
        let what = format!("{framing} body of {BODY} bytes on a {DISK}-byte disk");
        let file = dir.join(format!("{framing}.bin"));
        let (result, notices) = run(&file, &format!("/{framing}/{BODY}/x.bin"), false);
        let error = result.expect_err(&what);
        assert_eq!(error.exit_code(), 3, "{what}: {error}");
        let sentence = error.to_string();
        assert!(
            sentence.starts_with(&format!("not enough space on {}", dir.display()))
                && !sentence.contains('\n'),
            "{what}: {sentence}"
        );
        // The bytes that fit are kept, in order, and the record vouches for all of them.
        let kept = match ResumeInfo::lookup(&file).expect("lookup") {
            ResumeInfo::Partial { offset, .. } => offset,
            other => panic!("{what}: expected a partial download, found {other:?}"),
        };
        assert!(kept > DISK * 8 / 10, "{what}: only {kept} bytes kept");
        assert!(holds_prefix(&part_path(&file), kept), "{what}: the prefix");
        assert!(!file.exists(), "{what}: no final name for a partial file");
        let told = format!("keeps {kept} bytes");
        assert!(
            notices.iter().any(|line| line.contains(&told)),
            "{what}: {notices:?}"
        );

        // Room is made (the disk grows); -c continues from the prefix, against a server that
        // answers ranges for the same contents, and completes the file.
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={}", 2 * BODY)])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount");
        let (result, notices) = run(&file, &format!("/file/{BODY}/x.bin"), true);
        assert_eq!(
            result.expect(&what),
            (BODY, BODY - kept),
            "{what}: resumed at {kept}: {notices:?}"
        );
        assert!(holds_prefix(&file, BODY), "{what}: the completed file");
        assert!(!part_path(&file).exists() && !control_path(&file).exists());
        std::fs::remove_file(&file).expect("make room");
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={DISK}")])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount");
    }
}
