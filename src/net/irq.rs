//! Which cores an interface's receive interrupts land on, read from sysfs and procfs, so
//! that the busy-poll thread can run on another one (issue 5: "a core other than the one
//! the interface's receive work lands on, where that can be known").
//!
//! A PCI NIC lists its MSI/MSI-X interrupts in `msi_irqs/` of its PCI device: the one
//! `/sys/class/net/<if>/device` points to, or its parent for virtio-net (whose `device` is
//! the virtio device on the PCI function). `/proc/irq/<n>/` holds a directory named after the
//! handler (`virtio2-input.0`, `eth0-TxRx-3`, `mlx5_comp0@pci:…`) and the cores the
//! interrupt is routed to (`effective_affinity_list`). The receive interrupts are those
//! whose handler name says so ([`is_receive_handler`]); a device whose names say nothing
//! counts all its interrupts. Virtual interfaces (veth, bridges, loopback) have no interrupts
//! of their own: their receive work runs on the sending core, which cannot be known here,
//! and the answer is empty.

use std::fs;
use std::path::{Path, PathBuf};

/// The cores that handle `interface`'s receive interrupts, in ascending order; empty when
/// that cannot be known.
pub fn receive_cores(interface: &str) -> Vec<usize> {
    receive_cores_in(Path::new("/sys"), Path::new("/proc"), interface)
}

fn receive_cores_in(sys: &Path, proc: &Path, interface: &str) -> Vec<usize> {
    let irqs = device_irqs(sys, interface);
    let named: Vec<(u32, Option<String>)> = irqs
        .into_iter()
        .map(|irq| (irq, handler_name(proc, irq)))
        .collect();
    let receive: Vec<u32> = named
        .iter()
        .filter(|(_, name)| name.as_deref().is_some_and(is_receive_handler))
        .map(|(irq, _)| *irq)
        .collect();
    let chosen = if receive.is_empty() {
        named.iter().map(|(irq, _)| *irq).collect()
    } else {
        receive
    };
    let mut cores: Vec<usize> = chosen
        .into_iter()
        .flat_map(|irq| irq_cores(proc, irq))
        .collect();
    cores.sort_unstable();
    cores.dedup();
    cores
}

/// The MSI interrupts of the interface's device (or, for virtio-net, of the PCI function the
/// virtio device sits on; any other parent is a bridge whose interrupts are not the NIC's).
fn device_irqs(sys: &Path, interface: &str) -> Vec<u32> {
    let Ok(device) = fs::canonicalize(sys.join("class/net").join(interface).join("device")) else {
        return Vec::new();
    };
    let virtio = device
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("virtio"));
    let parent = device.parent().filter(|_| virtio).map(Path::to_path_buf);
    let candidates: [Option<PathBuf>; 2] = [Some(device.clone()), parent];
    for dir in candidates.into_iter().flatten() {
        let Ok(entries) = fs::read_dir(dir.join("msi_irqs")) else {
            continue;
        };
        let mut irqs: Vec<u32> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect();
        if !irqs.is_empty() {
            irqs.sort_unstable();
            return irqs;
        }
    }
    Vec::new()
}

/// The handler's name: the one directory inside `/proc/irq/<irq>/`.
fn handler_name(proc: &Path, irq: u32) -> Option<String> {
    fs::read_dir(proc.join("irq").join(irq.to_string()))
        .ok()?
        .flatten()
        .find(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .and_then(|entry| entry.file_name().into_string().ok())
}

/// Whether a handler name is a receive (or combined receive/transmit) queue's: `rx`,
/// `input`, `TxRx`, mlx5's completion queues `comp`, ENA's `io`. Names of transmit-only,
/// configuration and management interrupts (`output`, `tx`, `config`, `async`) are not.
fn is_receive_handler(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["rx", "input", "comp", "-io-"]
        .iter()
        .any(|word| name.contains(word))
}

/// The cores interrupt `irq` is delivered to.
fn irq_cores(proc: &Path, irq: u32) -> Vec<usize> {
    let dir = proc.join("irq").join(irq.to_string());
    ["effective_affinity_list", "smp_affinity_list"]
        .iter()
        .find_map(|file| fs::read_to_string(dir.join(file)).ok())
        .map(|list| parse_cpu_list(list.trim()))
        .unwrap_or_default()
}

/// A kernel CPU list such as `0-3,8,10-11`; malformed parts are skipped.
fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cores = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((low, high)) => {
                if let (Ok(low), Ok(high)) = (low.parse::<usize>(), high.parse::<usize>()) {
                    // A list names at most a few thousand cores; a bogus range stays bounded.
                    cores.extend(low..=high.min(low.saturating_add(4096)));
                }
            }
            None => cores.extend(part.parse::<usize>().ok()),
        }
    }
    cores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), [0]);
        assert_eq!(parse_cpu_list("0-3,8,10-11"), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("x,2,3-y"), [2]);
    }

    #[test]
    fn receive_handler_names() {
        for name in [
            "virtio2-input.0",
            "eth0-TxRx-3",
            "mlx5_comp0@pci:0000:3b:00.0",
            "ena-io-0",
            "eth0-rx-1",
        ] {
            assert!(is_receive_handler(name), "{name}");
        }
        for name in [
            "virtio2-output.0",
            "virtio2-config",
            "eth0-tx-1",
            "mlx5_async0@pci",
        ] {
            assert!(!is_receive_handler(name), "{name}");
        }
    }

    /// A fake virtio-net NIC: `device` is the virtio device, the PCI function above it has
    /// the interrupts: config on core 0, input on core 1, output on core 0.
    fn fake_tree(root: &Path) -> (PathBuf, PathBuf) {
        let sys = root.join("sys");
        let proc = root.join("proc");
        let pci = sys.join("devices/pci0000:00/0000:00:03.0");
        fs::create_dir_all(pci.join("virtio2")).unwrap();
        fs::create_dir_all(pci.join("msi_irqs")).unwrap();
        fs::create_dir_all(sys.join("class/net/eth0")).unwrap();
        std::os::unix::fs::symlink(pci.join("virtio2"), sys.join("class/net/eth0/device")).unwrap();
        for (irq, name, cores) in [
            (37, "virtio2-config", "0"),
            (38, "virtio2-input.0", "1"),
            (39, "virtio2-output.0", "0"),
        ] {
            fs::write(pci.join("msi_irqs").join(irq.to_string()), "msix").unwrap();
            let dir = proc.join("irq").join(irq.to_string());
            fs::create_dir_all(dir.join(name)).unwrap();
            fs::write(dir.join("effective_affinity_list"), format!("{cores}\n")).unwrap();
        }
        // A virtual interface: no device at all.
        fs::create_dir_all(sys.join("class/net/veth0")).unwrap();
        (sys, proc)
    }

    #[test]
    fn finds_the_receive_cores_of_a_virtio_nic_and_none_for_a_veth() {
        let dir = tempfile::tempdir().unwrap();
        let (sys, proc) = fake_tree(dir.path());
        assert_eq!(receive_cores_in(&sys, &proc, "eth0"), [1]);
        assert_eq!(receive_cores_in(&sys, &proc, "veth0"), Vec::<usize>::new());
        assert_eq!(receive_cores_in(&sys, &proc, "nosuch"), Vec::<usize>::new());
    }

    /// On this machine: whatever interfaces exist, every core named is a possible CPU.
    #[test]
    fn the_receive_cores_of_this_machine_are_possible_cores() {
        let possible = parse_cpu_list(
            fs::read_to_string("/sys/devices/system/cpu/possible")
                .unwrap_or_default()
                .trim(),
        );
        for entry in fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let cores = receive_cores(&name);
            eprintln!("{name}: receive interrupts on cores {cores:?}");
            for core in cores {
                assert!(possible.contains(&core), "{name}: core {core} is not a CPU");
            }
        }
    }

    #[test]
    fn without_receive_names_every_interrupt_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (sys, proc) = fake_tree(dir.path());
        for irq in [37, 38, 39] {
            let irq_dir = proc.join("irq").join(irq.to_string());
            for entry in fs::read_dir(&irq_dir).unwrap().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    fs::rename(entry.path(), irq_dir.join(format!("queue{irq}"))).unwrap();
                }
            }
        }
        assert_eq!(receive_cores_in(&sys, &proc, "eth0"), [0, 1]);
    }
}
