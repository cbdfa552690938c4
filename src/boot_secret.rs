//! The secret that every xdpget process since the machine booted shares: the key of
//! RFC 6528's initial sequence number function and of the timestamp clock offset
//! (`tcp::isn`).
//!
//! RFC 6528 §3 asks for a secret "chosen at boot time". With a secret per process, two
//! downloads that reused a four-tuple (a port of the reserved range) while the server still
//! held the first in TIME-WAIT picked unrelated sequence numbers and timestamps. Half the
//! time Linux then took the new SYN for an old duplicate and answered it with a bare ACK; our
//! RST cleared the TIME-WAIT, and the download waited a whole second for the SYN's
//! retransmission (18 of 40 back-to-back 1 MiB downloads on the testbed). With one secret per
//! boot, the ISN and the timestamps of a four-tuple only move forward with CLOCK_MONOTONIC,
//! as Linux's own do, and Linux accepts the new SYN (RFC 6191).
//!
//! The secret is the file `/run/xdpget/tcp-secret`: `/run` is a tmpfs, so a reboot makes a
//! new one; the file is readable by root only, and made with a link so that two first runs
//! at once agree on one secret.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ledger::LEDGER_DIR;

/// Bytes of the secret (a SipHash key).
const LEN: usize = 16;

/// This boot's secret, made by the first xdpget that asks.
pub fn boot_secret() -> io::Result<[u8; LEN]> {
    boot_secret_in(Path::new(LEDGER_DIR))
}

fn boot_secret_in(dir: &Path) -> io::Result<[u8; LEN]> {
    let path = dir.join("tcp-secret");
    if let Some(secret) = read_secret(&path)? {
        return Ok(secret);
    }
    fs::create_dir_all(dir)?;
    let mut fresh = [0u8; LEN];
    fs::File::open("/dev/urandom")?.read_exact(&mut fresh)?;
    // Written whole under a name of our own, then linked into place: a reader never sees a
    // partial secret, and when two processes race, the first link wins and both read it.
    static ATTEMPT: AtomicU64 = AtomicU64::new(0);
    let attempt = ATTEMPT.fetch_add(1, Ordering::Relaxed);
    let temporary = dir.join(format!("tcp-secret.{}.{attempt}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .and_then(|mut file| io::Write::write_all(&mut file, &fresh));
    let linked = written.and_then(|()| match fs::hard_link(&temporary, &path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = fs::remove_file(&temporary);
    linked?;
    read_secret(&path)?
        .ok_or_else(|| io::Error::other(format!("{} is not a secret", path.display())))
}

/// The secret in `path`, or `None` when there is no such file.
fn read_secret(path: &Path) -> io::Result<Option<[u8; LEN]>> {
    match fs::read(path) {
        Ok(bytes) => match <[u8; LEN]>::try_from(bytes.as_slice()) {
            Ok(secret) => Ok(Some(secret)),
            Err(_) => Err(io::Error::other(format!(
                "{} holds {} bytes, not {LEN}",
                path.display(),
                bytes.len()
            ))),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_then_shared() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run-xdpget");
        let first = boot_secret_in(&run).unwrap();
        let again = boot_secret_in(&run).unwrap();
        assert_eq!(first, again);
        assert_ne!(first, [0u8; LEN]);
        let mode = fs::metadata(run.join("tcp-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Nothing else is left in the directory.
        assert_eq!(fs::read_dir(&run).unwrap().count(), 1);
        // Another boot (another directory) gets another secret.
        assert_ne!(boot_secret_in(&dir.path().join("other")).unwrap(), first);
    }

    #[test]
    fn racing_first_runs_agree() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run-xdpget");
        let secrets: Vec<[u8; LEN]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| boot_secret_in(&run).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(secrets.iter().all(|s| *s == secrets[0]));
    }

    #[test]
    fn a_damaged_secret_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("tcp-secret"), b"short").unwrap();
        assert!(boot_secret_in(dir.path()).is_err());
    }
}
