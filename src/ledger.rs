//! A ledger of changes to the machine that a crashed xdpget must not leave behind.
//!
//! Drop guards undo xdpget's changes (reserved ports, GRO turned off) on every exit but
//! `kill -9` and power loss. So each change is also noted in a file
//! `/run/xdpget/<kind>/<network namespace inode>.<pid>`; the next xdpget in the same
//! namespace takes the notes of dead processes and undoes them. `/run` is a tmpfs: after a
//! reboot there is nothing to undo, and no note either. (`net::nft` does the same with the
//! pid in its table names.)

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the notes live.
pub const LEDGER_DIR: &str = "/run/xdpget";

/// One change of this process, noted until the guard that made it is dropped.
#[derive(Debug)]
pub struct Note {
    path: PathBuf,
}

impl Note {
    /// Notes `content` under `kind` for this process.
    pub fn write(kind: &str, content: &str) -> io::Result<Note> {
        Note::write_in(
            Path::new(LEDGER_DIR),
            namespace()?,
            std::process::id(),
            kind,
            content,
        )
    }

    /// Notes `content` under `kind` for process `pid` of this namespace (a child that
    /// holds a change on this process's behalf).
    pub fn write_for(pid: u32, kind: &str, content: &str) -> io::Result<Note> {
        Note::write_in(Path::new(LEDGER_DIR), namespace()?, pid, kind, content)
    }

    fn write_in(
        root: &Path,
        namespace: u64,
        pid: u32,
        kind: &str,
        content: &str,
    ) -> io::Result<Note> {
        let dir = root.join(kind);
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{namespace}.{pid}"));
        fs::write(&path, content)?;
        Ok(Note { path })
    }

    /// The change was undone: forget it.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Takes the notes of `kind` left by dead processes of this network namespace, deleting
/// them: the caller undoes what they say.
pub fn take_stale(kind: &str) -> Vec<String> {
    match namespace() {
        Ok(namespace) => take_stale_in(Path::new(LEDGER_DIR), namespace, kind, process_alive),
        Err(_) => Vec::new(),
    }
}

/// Takes the notes of `kind` of process `pid` (which is ending: its guards could not undo
/// them) and of dead processes, deleting them: the caller undoes what they say. For the
/// clean-up keeper (`cli::privileges`), which runs while its parent waits for it.
pub fn take_left_by(kind: &str, pid: u32) -> Vec<String> {
    match namespace() {
        Ok(namespace) => take_stale_in(Path::new(LEDGER_DIR), namespace, kind, |other| {
            other != pid && process_alive(other)
        }),
        Err(_) => Vec::new(),
    }
}

/// The notes of `kind` that other live processes of this network namespace hold: what
/// concurrent xdpget runs are using right now (their reserved ports, say).
pub fn held_by_others(kind: &str) -> Vec<String> {
    let Ok(namespace) = namespace() else {
        return Vec::new();
    };
    let own = std::process::id();
    let Ok(entries) = fs::read_dir(Path::new(LEDGER_DIR).join(kind)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            note_owner(&entry.file_name().to_string_lossy())
                .is_some_and(|(ns, pid)| ns == namespace && pid != own && process_alive(pid))
        })
        .filter_map(|entry| fs::read_to_string(entry.path()).ok())
        .collect()
}

/// The namespace and pid in a note's file name `<namespace>.<pid>`.
fn note_owner(name: &str) -> Option<(u64, u32)> {
    let (ns, pid) = name.split_once('.')?;
    Some((ns.parse().ok()?, pid.parse().ok()?))
}

fn take_stale_in(
    root: &Path,
    namespace: u64,
    kind: &str,
    alive: impl Fn(u32) -> bool,
) -> Vec<String> {
    let Ok(entries) = fs::read_dir(root.join(kind)) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        let Some((ns, pid)) = note_owner(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        if ns != namespace || alive(pid) {
            continue;
        }
        if let Ok(content) = fs::read_to_string(entry.path()) {
            stale.push(content);
        }
        let _ = fs::remove_file(entry.path());
    }
    stale
}

/// Whether process `pid` still runs (in this pid namespace). A zombie (killed, not yet
/// reaped by its parent) no longer runs: its descriptors are closed and it will never
/// clean up.
pub(crate) fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !is_zombie(&stat),
        Err(_) => false,
    }
}

/// Whether a `/proc/PID/stat` line says zombie or dead: the state is the field after the
/// command name, which is in parentheses and may itself hold spaces and parentheses.
fn is_zombie(stat: &str) -> bool {
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

/// The inode of this thread's network namespace: sysctls and interfaces are per namespace.
fn namespace() -> io::Result<u64> {
    let link = fs::read_link("/proc/thread-self/ns/net")?;
    namespace_inode(&link.to_string_lossy())
        .ok_or_else(|| io::Error::other(format!("unexpected namespace link {}", link.display())))
}

/// The inode in a namespace link such as `net:[4026531840]`.
fn namespace_inode(link: &str) -> Option<u64> {
    link.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_notes_of_dead_processes_of_this_namespace_are_taken() {
        let root = std::env::temp_dir().join(format!("xdpget-ledger-{}", std::process::id()));
        let live = |pid: u32| pid == 100;
        Note::write_in(&root, 7, 100, "k", "live").unwrap();
        Note::write_in(&root, 7, 200, "k", "dead").unwrap();
        Note::write_in(&root, 8, 300, "k", "other namespace").unwrap();
        let removed = Note::write_in(&root, 7, 400, "k", "undone").unwrap();
        removed.remove();
        assert_eq!(take_stale_in(&root, 7, "k", live), ["dead"]);
        assert!(take_stale_in(&root, 7, "k", live).is_empty(), "taken once");
        assert_eq!(take_stale_in(&root, 8, "k", live), ["other namespace"]);
        assert!(take_stale_in(&root, 7, "none", live).is_empty());
        assert_eq!(namespace_inode("net:[4026531840]"), Some(4_026_531_840));
        assert_eq!(namespace_inode("mnt:[1]"), None);
        assert!(namespace().is_ok());
        assert!(is_zombie("4242 (xdp get) Z 1 4242"));
        assert!(!is_zombie("4242 (a) b) S 1 4242"));
        assert!(process_alive(std::process::id()));
        fs::remove_dir_all(&root).unwrap();
    }
}
