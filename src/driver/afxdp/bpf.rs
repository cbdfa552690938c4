//! The two bpf(2) commands the loader issues itself: BPF_PROG_LOAD and BPF_LINK_CREATE.
//!
//! aya's `EbpfLoader::new()` parses the kernel's whole BTF (`/sys/kernel/btf/vmlinux`,
//! ~40 ms here) before `.btf(None)` can say it is not wanted, and probes ~15 kernel features;
//! our program needs neither (no CO-RE relocations, no helpers that differ by kernel). So
//! the loader parses the object with `aya-obj`, creates the maps with aya (`MapData::create`)
//! and loads and attaches the program with these two calls.
//!
//! Reference: `<linux/bpf.h>` (`union bpf_attr`, the `BPF_PROG_LOAD` and `BPF_LINK_CREATE`
//! members) and `<linux/if_link.h>` (`XDP_FLAGS_*`).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: BPF_XDP.
const BPF_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE` and `XDP_FLAGS_DRV_MODE` of `<linux/if_link.h>`.
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `BPF_OBJ_NAME_LEN`.
const OBJ_NAME_LEN: usize = 16;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to `expected_attach_type`; the kernel
/// takes the missing tail as zeros.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_LINK_CREATE` member of `union bpf_attr`: program, interface, attach type, flags,
/// and the zeroed union that follows them (unused for XDP).
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    rest: [u64; 4],
}

/// One BPF instruction (`struct bpf_insn`): 8 bytes.
pub(crate) type Instruction = aya_obj::generated::bpf_insn;

/// Loads an XDP program (verifier included). `name` is cut to 15 bytes, as the kernel keeps.
pub(crate) fn load_xdp(
    name: &str,
    instructions: &[Instruction],
    license: &CStr,
) -> io::Result<OwnedFd> {
    let mut prog_name = [0u8; OBJ_NAME_LEN];
    let kept = name.len().min(OBJ_NAME_LEN - 1);
    prog_name[..kept].copy_from_slice(&name.as_bytes()[..kept]);
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: u32::try_from(instructions.len()).map_err(io::Error::other)?,
        insns: instructions.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        prog_ifindex: 0,
        expected_attach_type: BPF_XDP,
    };
    // SAFETY: `attr` is a live, initialised prefix of `union bpf_attr` of the size passed;
    // the kernel reads `instructions` and `license` through the pointers in it, both
    // borrowed for the duration of the call, and writes nothing (no log buffer).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &raw const attr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    owned_fd(fd)
}

/// Attaches program `prog` to interface `ifindex` through a bpf_link with `flags`
/// (`XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`). The link is the returned fd: closing it
/// (at exit, or by `kill -9`) detaches the program. Linux 5.9+.
pub(crate) fn link_xdp(prog: &OwnedFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let attr = LinkCreateAttr {
        prog_fd: u32::try_from(prog.as_raw_fd()).map_err(io::Error::other)?,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags,
        rest: [0; 4],
    };
    // SAFETY: `attr` is a live, initialised prefix of `union bpf_attr` of the size passed,
    // holding no pointers; `prog` stays open for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_CREATE,
            &raw const attr,
            std::mem::size_of::<LinkCreateAttr>(),
        )
    };
    owned_fd(fd)
}

/// A bpf(2) result as an owned fd, or the errno.
fn owned_fd(result: libc::c_long) -> io::Result<OwnedFd> {
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(result).map_err(io::Error::other)?;
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_layouts_match_the_kernel() {
        // offsetof(union bpf_attr, expected_attach_type) is 68 in <linux/bpf.h>.
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<LinkCreateAttr>(), 48);
        assert_eq!(std::mem::size_of::<Instruction>(), 8);
    }
}
