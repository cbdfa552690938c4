//! Compiles the XDP program (`ebpf/xdp_steer.c`) to BPF bytecode with clang.
//!
//! The object lands in `OUT_DIR/xdp_steer.o`; `src/driver/afxdp/loader.rs` embeds it with
//! `include_bytes!`, so the xdpget binary carries its own program and needs no file at run
//! time. A missing clang or missing BPF headers stop the build with one sentence that names
//! the Debian packages to install.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "ebpf/xdp_steer.c";
const PACKAGES: &str = "apt-get install clang libbpf-dev linux-libc-dev";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CLANG");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo always sets OUT_DIR"));
    let object = out_dir.join("xdp_steer.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());

    let mut command = Command::new(&clang);
    command.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"]);
    // Debian keeps <asm/types.h> (pulled in by <linux/bpf.h>) under the multiarch directory,
    // which clang does not search when targeting bpf.
    for dir in multiarch_include_dirs() {
        command.arg(format!("-I{}", dir.display()));
    }
    command.args(["-c", SOURCE, "-o"]).arg(&object);

    let output = match command.output() {
        Ok(output) => output,
        Err(error) => fail(&format!(
            "cannot run `{clang}` ({error}): building xdpget needs clang to compile \
             {SOURCE}; install it with `{PACKAGES}`"
        )),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("file not found") {
            format!("; a BPF header is missing, install them with `{PACKAGES}`")
        } else {
            String::new()
        };
        fail(&format!(
            "clang failed to compile {SOURCE}{hint}:\n{stderr}"
        ));
    }
}

/// `/usr/include/<triple>` directories that exist on this host (Debian multiarch layout).
fn multiarch_include_dirs() -> Vec<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let triples: &[&str] = match arch.as_str() {
        "x86_64" => &["x86_64-linux-gnu"],
        "aarch64" => &["aarch64-linux-gnu"],
        "riscv64" => &["riscv64-linux-gnu"],
        _ => &[],
    };
    triples
        .iter()
        .map(|triple| Path::new("/usr/include").join(triple))
        .filter(|dir| dir.is_dir())
        .collect()
}

fn fail(message: &str) -> ! {
    // `cargo:error` is not on stable cargo yet; a panic from build.rs prints the message and
    // stops the build, which is what we want.
    eprintln!("error: {message}");
    panic!("{message}");
}
