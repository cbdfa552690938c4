//! Whether this process may do what xdpget needs (load XDP programs, open AF_XDP and packet
//! sockets, change sysctls and nftables), and giving up what it no longer needs once the
//! network is set up (docs/design.md, "Least privilege").
//!
//! Set-up needs CAP_BPF (or CAP_SYS_ADMIN), CAP_NET_ADMIN and CAP_NET_RAW: loading and
//! attaching the XDP program, binding AF_XDP or packet sockets, installing the nftables
//! table. Once that is done, the sockets, the XDP link and the maps are file descriptors
//! that keep working without any capability, and the engine parses what the network sends
//! with nothing it does not need:
//!
//! | set                | after set-up                                   | why                          |
//! |--------------------|------------------------------------------------|------------------------------|
//! | effective          | CAP_DAC_OVERRIDE, CAP_FOWNER                   | files where the user asked   |
//! | (`xdpget serve`)   | and CAP_LEASE                                  | leases on the files it maps  |
//! | permitted, bounding| the same                                       |                              |
//! | inheritable, ambient| none                                          |                              |
//! | no_new_privs       | set                                            | no exec can gain any         |
//!
//! The file capabilities keep `sudo xdpget -P ~/dl URL` working as before: uid 0 without
//! CAP_DAC_OVERRIDE could not create a file in a directory the user owns, nor continue a
//! `.part` the user owns with `-c` (CAP_FOWNER: renames in sticky directories such as
//! /tmp). The uid stays 0, so files are owned by root as before.
//!
//! Clean-up: the XDP program is held by a bpf_link and the sockets by their descriptors,
//! the raw driver's nftables table is owned by its netlink socket (`NFT_TABLE_F_OWNER`), all
//! of which die with the process; the port reservation is a write to
//! /proc/sys/net/ipv4/ip_local_reserved_ports and the ledger lives in /run/xdpget, both of
//! which uid 0 may write without a capability. What still needs CAP_NET_ADMIN is turning GRO
//! back on after the raw driver and deleting the nftables tables that a killed xdpget left.
//! That is the [`CleanupKeeper`]'s job: a child process forked just before the drop that
//! keeps CAP_NET_ADMIN (and CAP_NET_RAW, for the socket its ioctl goes through), closes
//! every descriptor it inherited, and does nothing but wait on a pipe. When the main
//! process closes the pipe (at its end, or by dying, `kill -9` included), the keeper does
//! the clean-up the main process could not, and exits; the main process waits for it on a
//! normal exit, so nothing is left when the command returns.
//!
//! Capabilities belong to threads, not processes: every thread that exists at the drop
//! calls [`drop_for_run`] itself (the engine thread after set-up, the main thread when
//! the engine tells it); threads started later inherit the reduced sets.
#![allow(unsafe_code)] // capget/capset/prctl in `sys`, each with a SAFETY comment

use std::fmt;
use std::io;

/// Capability bits (linux/capability.h).
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_FOWNER: u32 = 3;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_LEASE: u32 = 28;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

const fn bit(cap: u32) -> u64 {
    1u64 << cap
}

/// Kept effective for the whole run: writing files where the user asked.
pub const FILES: u64 = bit(CAP_DAC_OVERRIDE) | bit(CAP_FOWNER);
/// What `xdpget serve` keeps: [`FILES`] and CAP_LEASE (leases on the files it maps).
pub const SERVE: u64 = FILES | bit(CAP_LEASE);
/// What the clean-up keeper keeps: GRO and stale nftables tables need CAP_NET_ADMIN, the
/// packet socket its ethtool ioctl goes through CAP_NET_RAW.
pub const CLEANUP: u64 = bit(CAP_NET_ADMIN) | bit(CAP_NET_RAW);

/// `Err` with the sentence to show when the effective capabilities fall short.
pub fn check() -> Result<(), String> {
    let effective = CapSets::of_this_thread().map_or(0, |sets| sets.effective);
    if sufficient(effective) {
        Ok(())
    } else {
        Err("xdpget needs root, or CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF".to_string())
    }
}

fn sufficient(effective: u64) -> bool {
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    // CAP_SYS_ADMIN stands in for CAP_BPF on kernels before 5.8.
    has(CAP_NET_ADMIN) && has(CAP_NET_RAW) && (has(CAP_BPF) || has(CAP_SYS_ADMIN))
}

/// A thread's capability sets (capget(2)), as 64-bit masks of capability numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

impl CapSets {
    pub fn of_this_thread() -> io::Result<CapSets> {
        sys::capget()
    }
}

/// The calling thread's sets before and after [`drop_for_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub before: CapSets,
    pub after: CapSets,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capabilities: effective {} -> {}; permitted {} -> {}; no_new_privs set",
            Names(self.before.effective),
            Names(self.after.effective),
            Names(self.before.permitted),
            Names(self.after.permitted),
        )
    }
}

/// Drops, for the calling thread, every capability the rest of the run does not need
/// (module doc), and sets no_new_privs. Only capabilities the thread has are kept.
pub fn drop_for_run() -> io::Result<Transition> {
    drop_to(FILES)
}

/// [`drop_for_run`] for `xdpget serve`, which also keeps CAP_LEASE: a file body is mapped
/// under a read lease (serve/mapped.rs), which needs the file's owner or CAP_LEASE; without
/// it, files not owned by root would be read with `pread` instead.
pub fn drop_for_serve() -> io::Result<Transition> {
    drop_to(SERVE)
}

/// Keeps `keep` (effective and permitted) of what the calling thread has, drops the rest
/// from every set and the bounding set, and sets no_new_privs.
fn drop_to(keep: u64) -> io::Result<Transition> {
    let before = CapSets::of_this_thread()?;
    let permitted = before.permitted & keep;
    let effective = permitted;
    // The bounding set limits what any exec could get back; it needs CAP_SETPCAP, still
    // effective here. A kernel that does not know a capability number says EINVAL.
    for cap in 0..=sys::last_cap() {
        if permitted & bit(cap) == 0 {
            let _ = sys::bounding_drop(cap);
        }
    }
    sys::ambient_clear()?;
    sys::no_new_privs()?;
    sys::capset(CapSets {
        effective,
        permitted,
        inheritable: 0,
    })?;
    Ok(Transition {
        before,
        after: CapSets::of_this_thread()?,
    })
}

/// A child process that keeps the clean-up capabilities ([`CLEANUP`]) after the main
/// process dropped them, and uses them for one thing: once the main process closes its end
/// of the pipe (its clean-up ran, or it died), the keeper runs `work(parent pid, commands)`
/// with the command bytes the main process sent meanwhile, and exits.
///
/// Calling order: [`CleanupKeeper::start`] on the thread that still holds the capabilities,
/// before [`drop_for_run`]; [`CleanupKeeper::send`] any time; [`CleanupKeeper::finish`] (or
/// drop) after everything else of the main process's clean-up, which waits for the keeper.
#[derive(Debug)]
#[must_use = "dropping the keeper runs its clean-up at once"]
pub struct CleanupKeeper {
    pid: libc::pid_t,
    /// The write end of the pipe; closing it tells the keeper to clean up.
    commands: Option<std::fs::File>,
}

impl CleanupKeeper {
    /// Forks the keeper. The child closes every inherited descriptor but the pipe (the
    /// AF_XDP and packet sockets, the bpf_link, the nftables socket, the output file: none
    /// of them may outlive the main process because of it), ignores the stop signals (a
    /// Ctrl-C reaches the whole process group; the keeper must live to clean up), keeps only
    /// [`CLEANUP`] and sets no_new_privs, then blocks on the pipe.
    ///
    /// `work` runs in a forked copy of a multi-threaded process, where only the forking
    /// thread exists: it must not print (another thread may have held the stderr lock at the
    /// fork) and should only read and write files, make ioctls and run programs.
    pub fn start(work: fn(u32, &[u8])) -> io::Result<CleanupKeeper> {
        let parent = std::process::id();
        let (read, write) = sys::pipe()?;
        match sys::fork()? {
            0 => {
                drop(write);
                let code = match keeper_main(read, parent, work) {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                sys::exit_now(code)
            }
            pid => {
                drop(read);
                Ok(CleanupKeeper {
                    pid,
                    commands: Some(write),
                })
            }
        }
    }

    /// The keeper's process id.
    pub fn pid(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Sends one command byte for `work` (a keeper that is gone is not an error here: the
    /// wait in [`CleanupKeeper::finish`] reports it).
    pub fn send(&mut self, command: u8) {
        use std::io::Write;
        if let Some(pipe) = self.commands.as_mut() {
            let _ = pipe.write_all(&[command]);
        }
    }

    /// Closes the pipe, so the keeper cleans up, and waits for it to exit.
    pub fn finish(mut self) -> io::Result<()> {
        self.close_and_wait()
    }

    fn close_and_wait(&mut self) -> io::Result<()> {
        if self.commands.take().is_none() {
            return Ok(());
        }
        match sys::wait(self.pid)? {
            0 => Ok(()),
            code => Err(io::Error::other(format!(
                "the clean-up process ended with status {code}"
            ))),
        }
    }
}

impl Drop for CleanupKeeper {
    fn drop(&mut self) {
        if let Err(e) = self.close_and_wait() {
            eprintln!("xdpget: {e}");
        }
    }
}

/// The keeper's life, in the forked child (see [`CleanupKeeper::start`]).
fn keeper_main(pipe: std::fs::File, parent: u32, work: fn(u32, &[u8])) -> io::Result<()> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    sys::close_all_but(pipe.as_raw_fd())?;
    // Standard input, output and error on /dev/null: a pipe the main process writes to
    // (`-O - | sha256sum`) must see its end when the main process exits, not the keeper.
    for _ in 0..3 {
        std::mem::forget(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?,
        );
    }
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        sys::ignore(signal);
    }
    drop_to(CLEANUP)?;
    let mut commands = Vec::new();
    let mut pipe = pipe;
    // EOF: the main process closed its end or died. An error (EINTR cannot happen: the
    // stop signals are ignored) ends the wait the same way.
    let _ = pipe.read_to_end(&mut commands);
    work(parent, &commands);
    Ok(())
}

/// A capability mask as `cap_dac_override,cap_fowner`, `none`, `all`, or `all but
/// cap_sys_resource` (root in a container often lacks a few).
struct Names(u64);

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = sys::last_cap();
        let all = if last >= 63 {
            u64::MAX
        } else {
            (1u64 << (last + 1)) - 1
        };
        let missing = all & !self.0;
        match (self.0, missing.count_ones()) {
            (0, _) => f.write_str("none"),
            (_, 0) => f.write_str("all"),
            (_, 1..=4) => write!(f, "all but {}", List(missing)),
            (mask, _) => write!(f, "{}", List(mask)),
        }
    }
}

/// The names of the capabilities in a mask, comma-separated.
struct List(u64);

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for cap in (0..64u32).filter(|cap| self.0 & bit(*cap) != 0) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            match NAMES.get(cap as usize) {
                Some(name) => f.write_str(name)?,
                None => write!(f, "cap_{cap}")?,
            }
        }
        Ok(())
    }
}

/// capability.h's names, by number.
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// The system calls, each a thin safe wrapper.
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::fd::{FromRawFd, RawFd};

    use super::CapSets;

    /// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
    const VERSION_3: u32 = 0x2008_0522;

    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    fn check(result: libc::c_long) -> io::Result<()> {
        if result < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub fn capget() -> io::Result<CapSets> {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: capget reads the header and writes two `Data` (VERSION_3) into `data`,
        // which is exactly that large; pid 0 is the calling thread.
        check(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
        let join = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
        Ok(CapSets {
            effective: join(data[0].effective, data[1].effective),
            permitted: join(data[0].permitted, data[1].permitted),
            inheritable: join(data[0].inheritable, data[1].inheritable),
        })
    }

    pub fn capset(sets: CapSets) -> io::Result<()> {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let split = |mask: u64| [mask as u32, (mask >> 32) as u32];
        let (e, p, i) = (
            split(sets.effective),
            split(sets.permitted),
            split(sets.inheritable),
        );
        let data = [0, 1].map(|word| Data {
            effective: e[word],
            permitted: p[word],
            inheritable: i[word],
        });
        // SAFETY: capset reads the header and two `Data` (VERSION_3) from `data`; pid 0
        // is the calling thread, the only one capset may change.
        check(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) })
    }

    fn prctl(option: libc::c_int, arg: libc::c_ulong, arg2: libc::c_ulong) -> io::Result<()> {
        // SAFETY: the options used here (PR_CAPBSET_DROP, PR_CAP_AMBIENT,
        // PR_SET_NO_NEW_PRIVS) take integer arguments only, no pointers.
        let result =
            unsafe { libc::prctl(option, arg, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong) };
        check(libc::c_long::from(result))
    }

    pub fn bounding_drop(cap: u32) -> io::Result<()> {
        prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0)
    }

    pub fn ambient_clear() -> io::Result<()> {
        match prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
        ) {
            // Kernels before 4.3 have no ambient set, so nothing to clear.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other,
        }
    }

    pub fn no_new_privs() -> io::Result<()> {
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
    }

    /// A pipe, both ends close-on-exec: (read, write).
    pub fn pipe() -> io::Result<(File, File)> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`, which has room for exactly two.
        check(libc::c_long::from(unsafe {
            libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC)
        }))?;
        // SAFETY: the read end was just made by pipe2 and is owned by nobody else.
        let read = unsafe { File::from_raw_fd(fds[0]) };
        // SAFETY: the same for the write end.
        let write = unsafe { File::from_raw_fd(fds[1]) };
        Ok((read, write))
    }

    /// fork(2): 0 in the child, the child's pid in the parent.
    pub fn fork() -> io::Result<libc::pid_t> {
        // SAFETY: fork has no memory-safety preconditions; the child only runs code that
        // takes no lock another thread could hold (CleanupKeeper::start's contract).
        let pid = unsafe { libc::fork() };
        check(libc::c_long::from(pid)).map(|()| pid)
    }

    /// Ends the calling (forked) process at once: no atexit handlers, no flushing of
    /// buffers that belong to the parent.
    pub fn exit_now(code: libc::c_int) -> ! {
        // SAFETY: _exit takes an integer and never returns.
        unsafe { libc::_exit(code) }
    }

    /// Closes every descriptor but `keep` (close_range(2), Linux 5.9; one close per open
    /// descriptor from /proc/self/fd before that).
    pub fn close_all_but(keep: RawFd) -> io::Result<()> {
        let ranges = [(0, keep - 1), (keep + 1, libc::c_int::MAX)];
        let mut done = true;
        for (first, last) in ranges {
            if first > last {
                continue;
            }
            // SAFETY: close_range takes integers; the descriptors it closes are the
            // inherited ones nobody in this forked child uses.
            let result = unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    first as libc::c_uint,
                    last as libc::c_uint,
                    0,
                )
            };
            done &= result == 0;
        }
        if done {
            return Ok(());
        }
        let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect();
        for fd in open.into_iter().filter(|fd| *fd != keep) {
            // SAFETY: see above; a descriptor of read_dir itself is already closed (EBADF).
            unsafe { libc::close(fd) };
        }
        Ok(())
    }

    /// Ignores `signal` (SIG_IGN).
    pub fn ignore(signal: libc::c_int) {
        // SAFETY: SIG_IGN installs no handler code; the signal numbers are valid.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }

    /// Waits for child `pid`; its exit code (128 + the signal when killed).
    pub fn wait(pid: libc::pid_t) -> io::Result<libc::c_int> {
        let mut status = 0;
        loop {
            // SAFETY: waitpid writes the status into `status`, a valid c_int.
            let result = unsafe { libc::waitpid(pid, &mut status, 0) };
            if result >= 0 {
                break;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        Ok(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        })
    }

    /// The highest capability number this kernel knows.
    pub fn last_cap() -> u32 {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(40)
            .min(63)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_all_three_capabilities() {
        let bit = |c: u32| 1u64 << c;
        assert!(sufficient(
            bit(CAP_NET_ADMIN) | bit(CAP_NET_RAW) | bit(CAP_BPF)
        ));
        assert!(sufficient(
            bit(CAP_NET_ADMIN) | bit(CAP_NET_RAW) | bit(CAP_SYS_ADMIN)
        ));
        assert!(!sufficient(bit(CAP_NET_ADMIN) | bit(CAP_NET_RAW)));
        assert!(!sufficient(bit(CAP_NET_RAW) | bit(CAP_BPF)));
        assert!(sufficient(u64::MAX));
        assert!(!sufficient(0));
    }

    #[test]
    fn names_list_a_mask() {
        assert_eq!(Names(0).to_string(), "none");
        assert_eq!(Names(FILES).to_string(), "cap_dac_override,cap_fowner");
        assert_eq!(
            Names(FILES | CLEANUP).to_string(),
            "cap_dac_override,cap_fowner,cap_net_admin,cap_net_raw"
        );
        assert_eq!(Names(u64::MAX).to_string(), "all");
        assert_eq!(Names(!bit(24)).to_string(), "all but cap_sys_resource");
    }

    /// In a thread of its own (capabilities are per thread): after the drop only the file
    /// capabilities are left, in every set, and no_new_privs is set. Without CAP_SETPCAP
    /// (not root) the drop still works on what the thread has.
    #[test]
    fn a_thread_drops_to_the_file_capabilities() {
        let (transition, status) = std::thread::spawn(|| {
            let transition = drop_for_run().expect("drop");
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
            (transition, status)
        })
        .join()
        .expect("thread");
        let had = transition.before.permitted;
        assert_eq!(transition.after.effective, had & FILES);
        assert_eq!(transition.after.permitted, had & FILES);
        assert_eq!(transition.after.inheritable, 0);
        assert!(status.lines().any(|l| l == "NoNewPrivs:\t1"), "{status}");
        assert!(transition.to_string().contains("no_new_privs"));
    }

    /// Where the keeper of the test below writes what it saw (the work function is a plain
    /// `fn`, so the place comes from the parent's pid).
    fn keeper_report(parent: u32) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("xdpget-keeper-test-{parent}"))
    }

    /// The keeper's work: its capability sets, its open descriptors and the commands.
    fn report_what_the_keeper_sees(parent: u32, commands: &[u8]) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let descriptors = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count());
        let caps: Vec<&str> = status
            .lines()
            .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs"))
            .collect();
        let report = format!(
            "{}\ndescriptors {descriptors}\ncommands {}\n",
            caps.join("\n"),
            String::from_utf8_lossy(commands)
        );
        let _ = std::fs::write(keeper_report(parent), report);
    }

    /// The keeper runs its work only once the pipe closes, with the commands sent, holding
    /// only the clean-up capabilities (of those the test process had) and no descriptor but
    /// the pipe and /dev/null thrice (read_dir's own is the fifth); `finish` waits for it.
    #[test]
    fn the_keeper_cleans_up_when_the_pipe_closes() {
        let had = CapSets::of_this_thread().expect("capget").permitted;
        // Descriptors the keeper must not keep: a file of the "main process".
        let _held = std::fs::File::open("/proc/self/status").expect("open");
        let report = keeper_report(std::process::id());
        let _ = std::fs::remove_file(&report);
        let mut keeper = CleanupKeeper::start(report_what_the_keeper_sees).expect("fork");
        assert_ne!(keeper.pid(), std::process::id());
        keeper.send(b'T');
        keeper.send(b'x');
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!report.exists(), "the keeper worked before the pipe closed");
        keeper.finish().expect("the keeper's exit");
        let text = std::fs::read_to_string(&report).expect("the keeper's report");
        let _ = std::fs::remove_file(&report);
        let mask = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or_else(|| panic!("no {name} in {text}"))
        };
        assert_eq!(mask("CapEff:"), had & CLEANUP, "{text}");
        assert_eq!(mask("CapPrm:"), had & CLEANUP, "{text}");
        assert_eq!(mask("CapInh:"), 0, "{text}");
        assert!(text.contains("NoNewPrivs:\t1"), "{text}");
        assert!(text.contains("descriptors 5\n"), "{text}");
        assert!(text.contains("commands Tx\n"), "{text}");
    }
}
