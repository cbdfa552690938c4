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
//! | permitted, bounding| those, and CAP_NET_ADMIN                       | clean-up (see below)         |
//! | inheritable, ambient| none                                          |                              |
//! | no_new_privs       | set                                            | no exec can gain any         |
//!
//! The file capabilities keep `sudo xdpget -P ~/dl URL` working as before: uid 0 without
//! CAP_DAC_OVERRIDE could not create a file in a directory the user owns, nor continue a
//! `.part` the user owns with `-c` (CAP_FOWNER: renames in sticky directories such as
//! /tmp). The uid stays 0, so files are owned by root as before.
//!
//! Clean-up: the XDP program is held by a bpf_link and the sockets by their descriptors, all
//! of which die with the process; the port reservation is a write to
//! /proc/sys/net/ipv4/ip_local_reserved_ports and the ledger lives in /run/xdpget, both of
//! which uid 0 may write without a capability. What needs CAP_NET_ADMIN is deleting the
//! nftables table (the `nft` child it runs gets it from the permitted set: with
//! no_new_privs an exec never gains more than the permitted set) and turning GRO back on
//! after the raw driver. So CAP_NET_ADMIN stays permitted but not effective, and
//! [`raise_for_cleanup`] makes it effective on the engine thread just before the network's
//! guards drop.
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
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

const fn bit(cap: u32) -> u64 {
    1u64 << cap
}

/// Kept effective for the whole run: writing files where the user asked.
pub const FILES: u64 = bit(CAP_DAC_OVERRIDE) | bit(CAP_FOWNER);
/// Kept permitted (not effective) for the clean-up: the nftables table, GRO.
pub const CLEANUP: u64 = bit(CAP_NET_ADMIN);

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
    let before = CapSets::of_this_thread()?;
    let permitted = before.permitted & (FILES | CLEANUP);
    let effective = before.permitted & FILES;
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

/// Makes the clean-up capabilities (CAP_NET_ADMIN) effective again on the calling thread,
/// where [`drop_for_run`] left them permitted. Harmless when they were never dropped.
pub fn raise_for_cleanup() -> io::Result<()> {
    let mut sets = CapSets::of_this_thread()?;
    sets.effective |= sets.permitted & CLEANUP;
    sys::capset(sets)
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
    use std::io;

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
            "cap_dac_override,cap_fowner,cap_net_admin"
        );
        assert_eq!(Names(u64::MAX).to_string(), "all");
        assert_eq!(Names(!bit(24)).to_string(), "all but cap_sys_resource");
    }

    /// In a thread of its own (capabilities are per thread): after the drop only the file
    /// capabilities are effective, CAP_NET_ADMIN is permitted and can be raised again, and
    /// no_new_privs is set. Without CAP_SETPCAP (not root) the drop still works on what
    /// the thread has.
    #[test]
    fn a_thread_drops_to_the_run_sets_and_raises_the_cleanup_one() {
        let result = std::thread::spawn(|| {
            let transition = drop_for_run().expect("drop");
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
            raise_for_cleanup().expect("raise");
            (
                transition,
                status,
                CapSets::of_this_thread().expect("capget"),
            )
        })
        .join()
        .expect("thread");
        let (transition, status, raised) = result;
        let had = transition.before.permitted;
        assert_eq!(transition.after.effective, had & FILES);
        assert_eq!(transition.after.permitted, had & (FILES | CLEANUP));
        assert_eq!(transition.after.inheritable, 0);
        assert!(status.lines().any(|l| l == "NoNewPrivs:\t1"), "{status}");
        assert_eq!(raised.effective, had & (FILES | CLEANUP));
        assert!(transition.to_string().contains("no_new_privs"));
    }
}
