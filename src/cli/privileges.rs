//! Whether this process may do what xdpget needs: load XDP programs, open AF_XDP and
//! packet sockets, change sysctls and nftables.

/// Capability bits (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// `Err` with the sentence to show when the effective capabilities fall short.
pub fn check() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
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
}
