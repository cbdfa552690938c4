//! The `xdpget` binary: everything lives in the library; this only hands over to `cli`.

#![deny(unsafe_code)]

fn main() -> std::process::ExitCode {
    xdpget::cli::main()
}
