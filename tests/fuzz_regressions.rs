//! Every input kept in fuzz/regressions/<target>/ runs through that fuzz target's checks
//! (fuzz/checks.rs, the same functions the targets call), on stable and in every
//! `cargo test`. scripts/test.sh copies each crash a bounded fuzz run finds there, so a
//! crash found once stays a failing test until it is fixed. A few hand-made inputs per
//! target (valid packets, edge cases) are kept there too, so the checks always run on
//! something that parses.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// The checks of one target: panics on an input that breaks them.
type Checks = fn(&[u8]);

/// The fuzz targets (fuzz/Cargo.toml), each with its checks.
const TARGETS: [(&str, Checks); 11] = [
    ("arp", checks::arp),
    ("chunked", checks::chunked),
    ("ethernet", checks::ethernet),
    ("frame", checks::frame),
    ("http_head", checks::http_head),
    ("http_request", checks::http_request),
    ("ipv4", checks::ipv4),
    ("ipv6", checks::ipv6),
    ("tcp", checks::tcp),
    ("tls_records", checks::tls_records),
    ("tls_stream", checks::tls_stream),
];

#[test]
fn every_kept_input_passes_its_targets_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut total = 0;
    for (target, check) in TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut inputs: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        inputs.sort();
        for input in inputs {
            let data = std::fs::read(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            eprintln!("{target}: {} ({} bytes)", input.display(), data.len());
            check(&data);
            total += 1;
        }
    }
    // The hand-made inputs: at least one per target, so this test checks something.
    assert!(total >= TARGETS.len(), "only {total} inputs under {root:?}");
}

/// The targets listed here are the ones fuzz/Cargo.toml builds.
#[test]
fn every_fuzz_target_is_listed() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
            .expect("fuzz/Cargo.toml");
    let mut names: Vec<&str> = manifest
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .filter(|name| *name != "xdpget-fuzz")
        .collect();
    names.sort_unstable();
    let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, listed);
}
