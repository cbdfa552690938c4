//! Local port reservation: keeps the kernel from handing our port range to its own sockets.
//!
//! Our TCP engine picks its source ports from a range of its own. If the kernel gave one of
//! those ports to an ordinary socket (an ephemeral `connect`), both would claim the same
//! 4-tuples. `net.ipv4.ip_local_reserved_ports` (per network namespace) takes ports out of
//! the kernel's ephemeral pool. [`ReservedPorts`] adds our range while xdpget runs and takes
//! back, on drop, exactly the ports that it added: reservations that were there before, or
//! that someone else adds meanwhile, stay.
//!
//! The kernel's list syntax (Documentation/networking/ip-sysctl.rst): comma-separated
//! ports and inclusive `first-last` ranges, e.g. `8080,40000-40999`; the empty string is the
//! empty list. The kernel prints it sorted and merged.

use std::fmt;
use std::fs;

use crate::ledger::{self, Note};
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// Where the kernel keeps the list, for the network namespace of the calling thread.
pub const RESERVED_PORTS_PATH: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/// Errors of port reservation.
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path} (xdpget needs root or CAP_NET_ADMIN): {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("'{0}' is not a port list like 8080,40000-40999")]
    Syntax(String),
    #[error("the port range {first}-{last} is empty")]
    EmptyRange { first: u16, last: u16 },
}

/// A set of ports as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet {
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    /// The empty set.
    pub fn new() -> PortSet {
        PortSet::default()
    }

    /// Parses the kernel's list syntax; whitespace around items and a trailing newline are
    /// accepted.
    pub fn parse(text: &str) -> Result<PortSet, PortsError> {
        let mut set = PortSet::new();
        let text = text.trim();
        if text.is_empty() {
            return Ok(set);
        }
        let syntax = || PortsError::Syntax(text.to_owned());
        for item in text.split(',') {
            let item = item.trim();
            let (first, last) = match item.split_once('-') {
                Some((first, last)) => (first.trim(), last.trim()),
                None => (item, item),
            };
            let first: u16 = first.parse().map_err(|_| syntax())?;
            let last: u16 = last.parse().map_err(|_| syntax())?;
            if first > last {
                return Err(syntax());
            }
            set.insert(first..=last);
        }
        Ok(set)
    }

    /// The ranges, sorted and merged.
    pub fn ranges(&self) -> impl Iterator<Item = RangeInclusive<u16>> + '_ {
        self.ranges.iter().map(|&(first, last)| first..=last)
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(first, last)| (first..=last).contains(&port))
    }

    /// Adds `range`, merging it with ranges it overlaps or touches.
    pub fn insert(&mut self, range: RangeInclusive<u16>) {
        let (mut first, mut last) = (*range.start(), *range.end());
        if first > last {
            return;
        }
        let mut merged = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for &(a, b) in &self.ranges {
            // Disjoint and not adjacent: strictly before or after, with a gap of one or more.
            if u32::from(b) + 1 < u32::from(first) {
                merged.push((a, b));
            } else if u32::from(last) + 1 < u32::from(a) {
                if !placed {
                    merged.push((first, last));
                    placed = true;
                }
                merged.push((a, b));
            } else {
                first = first.min(a);
                last = last.max(b);
            }
        }
        if !placed {
            merged.push((first, last));
        }
        self.ranges = merged;
    }

    /// The ports of `self` that are not in `other`.
    pub fn difference(&self, other: &PortSet) -> PortSet {
        let mut result = Vec::new();
        for &(a, b) in &self.ranges {
            // Walk the pieces of [a, b] left over after cutting out each range of `other`.
            let mut next = u32::from(a);
            let end = u32::from(b);
            for &(c, d) in &other.ranges {
                let (c, d) = (u32::from(c), u32::from(d));
                if d < next || c > end {
                    continue;
                }
                if c > next {
                    result.push((next, c - 1));
                }
                next = d + 1;
                if next > end {
                    break;
                }
            }
            if next <= end {
                result.push((next, end));
            }
        }
        PortSet {
            // Every bound came from a u16, and next only exceeds u16::MAX when it is > end.
            ranges: result
                .into_iter()
                .filter_map(|(a, b)| Some((u16::try_from(a).ok()?, u16::try_from(b).ok()?)))
                .collect(),
        }
    }

    /// `self` with every port of `other` added.
    pub fn union(&self, other: &PortSet) -> PortSet {
        let mut set = self.clone();
        for range in other.ranges() {
            set.insert(range);
        }
        set
    }
}

/// Formats in the kernel's syntax: `8080,40000-40999`, or the empty string.
impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(first, last)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if first == last {
                write!(f, "{first}")?;
            } else {
                write!(f, "{first}-{last}")?;
            }
        }
        Ok(())
    }
}

/// Our port range in `ip_local_reserved_ports` for as long as this guard lives.
///
/// Drop removes the ports this guard added (those not reserved before it) from whatever the
/// list holds at that moment, so concurrent changes by others survive.
#[derive(Debug)]
#[must_use = "the reservation ends when the guard is dropped"]
pub struct ReservedPorts {
    path: PathBuf,
    added: PortSet,
    /// The ledger note of the ports we added, so that a run after a `kill -9` of this one
    /// takes them back (see [`crate::ledger`]).
    note: Option<Note>,
}

/// The ledger kind of port reservations.
const LEDGER_KIND: &str = "reserved-ports";

impl ReservedPorts {
    /// Reserves `range` in the calling thread's network namespace.
    /// Ports left reserved by dead xdpget processes of this namespace are released first.
    pub fn reserve(range: RangeInclusive<u16>) -> Result<ReservedPorts, PortsError> {
        let path = Path::new(RESERVED_PORTS_PATH);
        ReservedPorts::release_stale()?;
        let mut guard = ReservedPorts::reserve_at(path, range)?;
        if !guard.added.is_empty() {
            // Without a note a kill -9 leaks the reservation until reboot, but the download
            // itself is unaffected: say so and go on.
            match Note::write(LEDGER_KIND, &format!("{}\n", guard.added)) {
                Ok(note) => guard.note = Some(note),
                Err(error) => eprintln!("xdpget: cannot note the reserved ports: {error}"),
            }
        }
        Ok(guard)
    }

    /// Releases the ports that dead xdpget processes of this namespace left reserved (their
    /// ledger notes say which): at start, and again at exit, in case one was killed while
    /// this one ran. Returns how many such processes there were.
    pub fn release_stale() -> Result<usize, PortsError> {
        let path = Path::new(RESERVED_PORTS_PATH);
        let stale = ledger::take_stale(LEDGER_KIND);
        for ports in &stale {
            release(path, &PortSet::parse(ports)?)?;
        }
        Ok(stale.len())
    }

    /// The port sets other live xdpget processes of this namespace reserved.
    pub fn held_by_others() -> Vec<PortSet> {
        ledger::held_by_others(LEDGER_KIND)
            .iter()
            .filter_map(|text| PortSet::parse(text).ok())
            .collect()
    }

    /// Reserves `range` in the list kept in the file at `path` (tests use a plain file).
    pub fn reserve_at(
        path: &Path,
        range: RangeInclusive<u16>,
    ) -> Result<ReservedPorts, PortsError> {
        let (first, last) = (*range.start(), *range.end());
        if first > last {
            return Err(PortsError::EmptyRange { first, last });
        }
        let before = read_list(path)?;
        let mut ours = PortSet::new();
        ours.insert(range);
        let added = ours.difference(&before);
        if !added.is_empty() {
            write_list(path, &before.union(&ours))?;
        }
        Ok(ReservedPorts {
            path: path.to_owned(),
            added,
            note: None,
        })
    }

    /// The ports this guard added (and will take back on drop).
    pub fn added(&self) -> &PortSet {
        &self.added
    }

    /// Ends the reservation now, reporting errors that drop would have to swallow.
    pub fn release(mut self) -> Result<(), PortsError> {
        let result = self.restore();
        self.added = PortSet::new();
        result
    }

    fn restore(&mut self) -> Result<(), PortsError> {
        release(&self.path, &self.added)?;
        if let Some(note) = self.note.take() {
            note.remove();
        }
        Ok(())
    }
}

impl Drop for ReservedPorts {
    fn drop(&mut self) {
        if let Err(error) = self.restore() {
            eprintln!("xdpget: {error}");
        }
    }
}

/// Removes `ports` from the list at `path`, leaving everything else in it.
fn release(path: &Path, ports: &PortSet) -> Result<(), PortsError> {
    if ports.is_empty() {
        return Ok(());
    }
    let now = read_list(path)?;
    let remaining = now.difference(ports);
    if remaining != now {
        write_list(path, &remaining)?;
    }
    Ok(())
}

fn read_list(path: &Path) -> Result<PortSet, PortsError> {
    let text = fs::read_to_string(path).map_err(|source| PortsError::Read {
        path: path.to_owned(),
        source,
    })?;
    PortSet::parse(&text)
}

fn write_list(path: &Path, set: &PortSet) -> Result<(), PortsError> {
    // The kernel parses the whole write at once; "\n" alone empties the list.
    fs::write(path, format!("{set}\n")).map_err(|source| PortsError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> PortSet {
        PortSet::parse(text).expect("valid list")
    }

    #[test]
    fn parse_kernel_syntax() {
        assert_eq!(set(""), PortSet::new());
        assert_eq!(set("\n"), PortSet::new());
        assert_eq!(set("8080").to_string(), "8080");
        assert_eq!(set("40000-40999\n").to_string(), "40000-40999");
        assert_eq!(set("1,3-5, 9 ,0-0").to_string(), "0-1,3-5,9");
        assert_eq!(set("65535,0").to_string(), "0,65535");
    }

    #[test]
    fn parse_merges_overlapping_and_adjacent() {
        assert_eq!(set("10-20,15-30").to_string(), "10-30");
        assert_eq!(set("10-20,21-30").to_string(), "10-30");
        assert_eq!(set("10-20,22-30").to_string(), "10-20,22-30");
        assert_eq!(set("30,10,20,11-19").to_string(), "10-20,30");
        assert_eq!(set("5-10,1-100").to_string(), "1-100");
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in ["x", "1-", "-1", "5-1", "65536", "1,,2", "1-2-3", "1;2"] {
            assert!(
                matches!(PortSet::parse(bad), Err(PortsError::Syntax(_))),
                "{bad:?} parsed"
            );
        }
    }

    #[test]
    fn difference_cuts_holes() {
        assert_eq!(
            set("1-100").difference(&set("50")).to_string(),
            "1-49,51-100"
        );
        assert_eq!(set("1-100").difference(&set("1-100")).to_string(), "");
        assert_eq!(
            set("1-100").difference(&set("0-10,90-65535")).to_string(),
            "11-89"
        );
        assert_eq!(set("5,7,9").difference(&set("6-8")).to_string(), "5,9");
        assert_eq!(set("0-65535").difference(&set("0")).to_string(), "1-65535");
        assert_eq!(
            set("0-65535").difference(&set("65535")).to_string(),
            "0-65534"
        );
        assert_eq!(set("10-20").difference(&set("")).to_string(), "10-20");
    }

    #[test]
    fn contains_and_union() {
        let s = set("10-20,30");
        assert!(s.contains(10) && s.contains(20) && s.contains(30));
        assert!(!s.contains(9) && !s.contains(21) && !s.contains(31));
        assert_eq!(s.union(&set("21-29")).to_string(), "10-30");
    }

    fn temp_list(name: &str, content: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("xdpget-ports-{}-{name}", std::process::id()));
        fs::write(&path, content).expect("write temp file");
        path
    }

    #[test]
    fn guard_merges_then_takes_back_only_its_own_ports() {
        let path = temp_list("merge", "8080,40500-41500\n");
        let guard = ReservedPorts::reserve_at(&path, 40000..=40999).expect("reserve");
        assert_eq!(fs::read_to_string(&path).unwrap(), "8080,40000-41500\n");
        assert_eq!(guard.added().to_string(), "40000-40499");
        // Someone else reserves a port while we run: it must survive our drop.
        fs::write(&path, "8080,9000,40000-41500\n").unwrap();
        drop(guard);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "8080,9000,40500-41500\n"
        );
        fs::remove_file(&path).ok();
    }

    #[test]
    fn guard_on_empty_list_restores_empty() {
        let path = temp_list("empty", "\n");
        let guard = ReservedPorts::reserve_at(&path, 50000..=50009).expect("reserve");
        assert_eq!(fs::read_to_string(&path).unwrap(), "50000-50009\n");
        guard.release().expect("release");
        assert_eq!(set(&fs::read_to_string(&path).unwrap()), PortSet::new());
        fs::remove_file(&path).ok();
    }

    #[test]
    fn guard_with_range_already_reserved_changes_nothing() {
        let path = temp_list("covered", "1000-2000\n");
        let guard = ReservedPorts::reserve_at(&path, 1500..=1600).expect("reserve");
        assert!(guard.added().is_empty());
        drop(guard);
        assert_eq!(fs::read_to_string(&path).unwrap(), "1000-2000\n");
        fs::remove_file(&path).ok();
    }

    /// Root only: the real sysctl, in a namespace of its own (the list is per namespace).
    #[test]
    fn guard_on_the_kernel_list() {
        use crate::testkit::netns::{InNetns, Netns};
        use crate::testkit::root_or_skip;
        if !root_or_skip("guard_on_the_kernel_list") {
            return;
        }
        let netns = Netns::new("ports");
        let _in = InNetns::enter(&netns.name).expect("enter the namespace");
        let path = Path::new(RESERVED_PORTS_PATH);
        fs::write(path, "8080,40500-40600\n").expect("write the sysctl");
        // This thread's view of /proc/sys/net is the namespace's, as `ip netns exec` sees it.
        let seen_by_ip = crate::testkit::run_in(&netns.name, &["cat", RESERVED_PORTS_PATH]);
        assert_eq!(
            String::from_utf8_lossy(&seen_by_ip.stdout),
            "8080,40500-40600\n"
        );
        let guard = ReservedPorts::reserve(40000..=40999).expect("reserve");
        // The kernel prints its own canonical form of what we wrote.
        assert_eq!(fs::read_to_string(path).unwrap(), "8080,40000-40999\n");
        assert_eq!(guard.added().to_string(), "40000-40499,40601-40999");
        drop(guard);
        assert_eq!(fs::read_to_string(path).unwrap(), "8080,40500-40600\n");
        fs::write(path, "\n").expect("write the sysctl");
        let guard = ReservedPorts::reserve(50000..=50000).expect("reserve");
        assert_eq!(fs::read_to_string(path).unwrap(), "50000\n");
        guard.release().expect("release");
        assert_eq!(fs::read_to_string(path).unwrap(), "\n");
    }

    #[test]
    fn guard_rejects_empty_range_and_bad_file() {
        let path = temp_list("bad", "not a list\n");
        assert!(matches!(
            ReservedPorts::reserve_at(&path, 10..=20),
            Err(PortsError::Syntax(_))
        ));
        #[expect(clippy::reversed_empty_ranges, reason = "the empty range is the point")]
        let empty = 20..=10;
        assert!(matches!(
            ReservedPorts::reserve_at(&path, empty),
            Err(PortsError::EmptyRange { .. })
        ));
        fs::remove_file(&path).ok();
    }
}
