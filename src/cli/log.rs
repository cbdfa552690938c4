//! `-o FILE` / `-a FILE`: the log goes to a file instead of standard error, as in wget.
//!
//! Everything xdpget prints for the user (the `--` lines, notices, progress, `-S` heads,
//! errors, `--stats`) goes to standard error, so the whole log moves with one `dup2` of the
//! file onto descriptor 2, before anything is printed. A terminal is then no longer attached
//! to standard error, so the progress display falls back to its non-terminal default.

#![allow(unsafe_code)] // one dup2, nothing else

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use super::args::DownloadArgs;

/// Points standard error at `-o FILE` (truncated) or `-a FILE` (appended to), if given.
pub fn redirect(args: &DownloadArgs) -> Result<(), String> {
    let (path, append) = match (&args.output_file, &args.append_output) {
        (Some(path), _) => (path, false),
        (None, Some(path)) => (path, true),
        (None, None) => return Ok(()),
    };
    let file =
        open(path, append).map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
    // SAFETY: dup2 on two valid descriptors (the file we own, and 2); the file's descriptor
    // stays open until `file` drops, after dup2 made 2 an independent duplicate of it.
    let result = unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) };
    if result < 0 {
        return Err(format!(
            "cannot log to {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn open(path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    options.open(path)
}
