//! An nftables table of our own that keeps the kernel's TCP stack away from our packets.
//!
//! xdpget's TCP engine owns the connections of its port range, but the address is the
//! interface's, so the kernel would take every inbound segment to that range for a packet
//! to a closed port and answer it with a RST (RFC 9293 §3.10.7.1), killing our connection.
//! [`NftGuard`] installs
//!
//! ```text
//! table inet xdpget_<pid>_<n> {
//!     chain prerouting {
//!         type filter hook prerouting priority raw; policy accept;   # raw = -300
//!         ip daddr <addr> tcp dport <first>-<last> counter drop
//!     }
//! }
//! ```
//!
//! which drops those segments before connection tracking and routing see them. Only the raw
//! driver needs it: in AF_XDP mode the XDP program drops every segment of the range that it
//! cannot hand to a socket, so the kernel never sees one (docs/xdp.md). The raw driver still
//! receives the segments: AF_PACKET taps frames in `__netif_receive_skb_core`, before
//! netfilter's prerouting hook.
//!
//! Two ways in, tried in this order:
//! - [`owned`]: nf_tables messages over netlink from this process, one batch, well under a
//!   millisecond, with the table flagged `owner` (Linux 5.12+): it belongs to our netlink
//!   socket, and the kernel deletes it when that socket closes, `kill -9` included.
//! - the `nft` binary (`nft -f -`, one atomic transaction per change, 10-20 ms per run), for
//!   older kernels. Such a table outlives a `kill -9`; its name holds the pid, so a table
//!   whose pid no longer runs is stale and is deleted by the next install, which lists the
//!   tables in the same run.
//!
//! Everything runs in the calling thread's network namespace.

mod owned;

use std::io::{self, Write};
use std::net::IpAddr;
#[cfg(test)]
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use self::owned::OwnedTable;
use crate::ledger;

/// Every table of ours is named `<TABLE_PREFIX><pid>_<n>`.
pub const TABLE_PREFIX: &str = "xdpget_";

/// Errors of the nftables guard.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("the nft program was not found; install nftables (apt-get install nftables)")]
    Missing,
    #[error("cannot run nft: {0}")]
    Spawn(#[source] io::Error),
    #[error("nft refused to {action} (xdpget needs root or CAP_NET_ADMIN): {stderr}")]
    Failed {
        action: &'static str,
        stderr: String,
    },
    #[error("the kernel refused the nftables drop table (xdpget needs root or CAP_NET_ADMIN): {0}")]
    Netlink(#[source] io::Error),
    #[error("the port range {first}-{last} is empty")]
    EmptyRange { first: u16, last: u16 },
}

/// How the table was made, and so how it goes away.
#[derive(Debug)]
enum Table {
    /// Owned by our netlink socket: closing it deletes the table.
    Owned(OwnedTable),
    /// Made by the `nft` binary: deleted by another run of it, on drop.
    Spawned { installed: bool },
}

/// Our drop table, for as long as this guard lives.
#[derive(Debug)]
#[must_use = "the table is deleted when the guard is dropped"]
pub struct NftGuard {
    name: String,
    table: Table,
}

impl NftGuard {
    /// Installs a table that drops inbound TCP to `addr` with a destination port in `ports`:
    /// over netlink when the kernel has owned tables, through `nft` otherwise (which then
    /// also deletes stale tables of dead xdpget processes).
    pub fn install(
        addr: impl Into<IpAddr>,
        ports: RangeInclusive<u16>,
    ) -> Result<NftGuard, NftError> {
        let addr = addr.into();
        let (first, last) = (*ports.start(), *ports.end());
        if first > last {
            return Err(NftError::EmptyRange { first, last });
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = table_name(std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        match OwnedTable::create(&name, addr, first, last) {
            Ok(owned) => Ok(NftGuard {
                name,
                table: Table::Owned(owned),
            }),
            // EOPNOTSUPP: no owner flag (Linux < 5.12). EPROTONOSUPPORT: no nfnetlink.
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EPROTONOSUPPORT)
                ) =>
            {
                NftGuard::install_with_nft(name, addr, first, last)
            }
            Err(error) => Err(NftError::Netlink(error)),
        }
    }

    /// The fallback: one `nft` run installs the table and lists the tables, a second one
    /// runs only when stale tables are found.
    fn install_with_nft(
        name: String,
        addr: IpAddr,
        first: u16,
        last: u16,
    ) -> Result<NftGuard, NftError> {
        let listing = run_nft("add the drop table", &ruleset(&name, addr, first, last))?;
        let guard = NftGuard {
            name,
            table: Table::Spawned { installed: true },
        };
        remove_stale_tables(&listing)?;
        Ok(guard)
    }

    /// The table's name, e.g. `xdpget_4242_0` (family `inet`).
    pub fn table(&self) -> &str {
        &self.name
    }

    /// Whether the kernel deletes the table by itself when this process ends, even by
    /// `kill -9` (an owned table); false for a table made by the `nft` fallback.
    pub fn dies_with_process(&self) -> bool {
        matches!(self.table, Table::Owned(_))
    }

    /// A second descriptor of the netlink socket that owns the table (an owned table
    /// only), for a teardown that closes it in another process: the kernel waits for an
    /// RCU grace period when it deletes the table on the last close.
    pub fn socket_copy(&self) -> Option<std::os::fd::OwnedFd> {
        match &self.table {
            Table::Owned(owned) => owned.socket_copy().ok(),
            Table::Spawned { .. } => None,
        }
    }

    /// How many packets the drop rule has dropped so far (runs `nft list table`: for tests
    /// and diagnostics, never on the way to the first packet).
    pub fn dropped_packets(&self) -> Result<u64, NftError> {
        let listing = run_nft_args(
            "list the drop table",
            &["list", "table", "inet", &self.name],
        )?;
        Ok(parse_counter_packets(&listing).unwrap_or(0))
    }

    /// Deletes the tables of dead xdpget processes (as install does): at exit, in case one
    /// was killed while this one ran.
    pub fn remove_stale() -> Result<(), NftError> {
        remove_stale_tables(&run_nft_args(
            "list the tables",
            &["list", "tables", "inet"],
        )?)
    }

    /// Deletes the table now, reporting errors that drop would have to swallow.
    pub fn remove(mut self) -> Result<(), NftError> {
        match std::mem::replace(&mut self.table, Table::Spawned { installed: false }) {
            // Closing the owning socket deletes the table; close(2) cannot fail here.
            Table::Owned(owned) => {
                drop(owned);
                Ok(())
            }
            Table::Spawned { installed } if installed => delete_table(&self.name),
            Table::Spawned { .. } => Ok(()),
        }
    }
}

impl Drop for NftGuard {
    fn drop(&mut self) {
        if let Table::Spawned { installed: true } = self.table
            && let Err(error) = delete_table(&self.name)
        {
            eprintln!("xdpget: {error}");
        }
    }
}

fn table_name(pid: u32, serial: u32) -> String {
    format!("{TABLE_PREFIX}{pid}_{serial}")
}

/// The pid in a table name of ours, or None for somebody else's table.
fn table_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TABLE_PREFIX)?;
    let (pid, serial) = rest.split_once('_')?;
    serial.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// The whole transaction: `add table` makes the `delete` valid even on first use, so the
/// table is (re)created from scratch atomically; then the `inet` tables are listed, for
/// [`remove_stale_tables`].
fn ruleset(table: &str, addr: IpAddr, first: u16, last: u16) -> String {
    // `ip daddr` matches IPv4, `ip6 daddr` IPv6, in the `inet` family's one table.
    let family = if addr.is_ipv6() { "ip6" } else { "ip" };
    format!(
        "add table inet {table}\n\
         delete table inet {table}\n\
         table inet {table} {{\n\
         \tchain prerouting {{\n\
         \t\ttype filter hook prerouting priority -300; policy accept;\n\
         \t\t{family} daddr {addr} tcp dport {first}-{last} counter drop\n\
         \t}}\n\
         }}\n\
         list tables inet\n"
    )
}

/// Names of the `inet` tables in `nft list tables` output.
fn inet_tables(listing: &str) -> impl Iterator<Item = &str> {
    listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("table inet "))
        .map(str::trim)
}

/// Packets of the first `counter packets N bytes M` in a listing.
fn parse_counter_packets(listing: &str) -> Option<u64> {
    let after = listing.split("counter packets ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// Deletes the tables of dead xdpget processes named in `listing` (`nft list tables`), in
/// one transaction; runs nothing when there are none. Each delete follows an `add` of the
/// same table, so a table that another xdpget starting at the same time removed first is
/// no error.
fn remove_stale_tables(listing: &str) -> Result<(), NftError> {
    let own_pid = std::process::id();
    let script: String = inet_tables(listing)
        .filter(|table| {
            table_pid(table).is_some_and(|pid| pid != own_pid && !ledger::process_alive(pid))
        })
        .map(|table| format!("add table inet {table}\ndelete table inet {table}\n"))
        .collect();
    if script.is_empty() {
        return Ok(());
    }
    run_nft("delete stale tables", &script).map(drop)
}

fn delete_table(table: &str) -> Result<(), NftError> {
    run_nft_args("delete the drop table", &["delete", "table", "inet", table]).map(drop)
}

fn nft_command() -> Command {
    let mut command = Command::new("nft");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn spawn_error(error: io::Error) -> NftError {
    if error.kind() == io::ErrorKind::NotFound {
        NftError::Missing
    } else {
        NftError::Spawn(error)
    }
}

fn check(action: &'static str, output: std::process::Output) -> Result<String, NftError> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(NftError::Failed {
            action,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

fn run_nft_args(action: &'static str, args: &[&str]) -> Result<String, NftError> {
    let output = nft_command().args(args).output().map_err(spawn_error)?;
    check(action, output)
}

/// Runs `nft -f -` with `script` on stdin.
fn run_nft(action: &'static str, script: &str) -> Result<String, NftError> {
    finish_nft(action, spawn_nft(script)?)
}

/// Starts `nft -f -` and hands it `script` (a few hundred bytes: the pipe takes them
/// without waiting for nft to read).
fn spawn_nft(script: &str) -> Result<Child, NftError> {
    let mut child = nft_command()
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means nft exited early; its status and stderr say why. Dropping
        // stdin closes it, which ends nft's input.
        let _ = stdin.write_all(script.as_bytes());
    }
    Ok(child)
}

/// Waits for an `nft` started by [`spawn_nft`]; its output, or why it failed.
fn finish_nft(action: &'static str, child: Child) -> Result<String, NftError> {
    let output = child.wait_with_output().map_err(NftError::Spawn)?;
    check(action, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_round_trip() {
        assert_eq!(table_name(4242, 7), "xdpget_4242_7");
        assert_eq!(table_pid("xdpget_4242_7"), Some(4242));
        assert_eq!(table_pid("xdpget_4242"), None);
        assert_eq!(table_pid("xdpget_x_1"), None);
        assert_eq!(table_pid("xdpget"), None);
        assert_eq!(table_pid("filter"), None);
    }

    #[test]
    fn ruleset_text() {
        let text = ruleset(
            "xdpget_1_0",
            Ipv4Addr::new(10, 77, 0, 1).into(),
            40000,
            40999,
        );
        let v6 = ruleset("xdpget_1_0", "fd00::2".parse().unwrap(), 40000, 40999);
        assert!(v6.contains("ip6 daddr fd00::2 tcp dport 40000-40999 counter drop"));
        assert!(text.starts_with("add table inet xdpget_1_0\ndelete table inet xdpget_1_0\n"));
        assert!(text.contains("hook prerouting priority -300;"));
        assert!(text.contains("ip daddr 10.77.0.1 tcp dport 40000-40999 counter drop"));
        assert!(text.ends_with("}\nlist tables inet\n"), "{text}");
    }

    #[test]
    fn parses_listings() {
        let tables = "table inet filter\ntable inet xdpget_12_0\ntable ip nat\n";
        assert_eq!(
            inet_tables(tables).collect::<Vec<_>>(),
            ["filter", "xdpget_12_0"]
        );
        let table = "table inet xdpget_1_0 {\n\tchain prerouting {\n\t\ttype filter hook \
                     prerouting priority raw; policy accept;\n\t\tip daddr 10.77.0.1 tcp dport \
                     40000-40999 counter packets 3 bytes 180 drop\n\t}\n}\n";
        assert_eq!(parse_counter_packets(table), Some(3));
        assert_eq!(parse_counter_packets("table inet x {}"), None);
    }

    /// Root only: in a namespace of its own, the netlink table reads back in `nft` as the
    /// rule we mean, is owned, and goes away with its guard; two guards coexist.
    #[test]
    fn owned_table_reads_back_as_our_rule_and_goes_with_the_guard() {
        use crate::testkit::netns::{InNetns, Netns};
        use crate::testkit::{root_or_skip, run, stdout_of};
        if !root_or_skip("owned_table_reads_back_as_our_rule_and_goes_with_the_guard") {
            return;
        }
        let netns = Netns::new("nftown");
        let _in = InNetns::enter(&netns.name).expect("enter the namespace");
        let tables = || stdout_of(run("nft", &["list", "tables"]), "nft list tables");

        let guard = NftGuard::install(Ipv4Addr::new(10, 1, 2, 3), 40000..=40009).expect("install");
        assert!(
            guard.dies_with_process(),
            "this kernel has owned tables (5.12+)"
        );
        let rules = stdout_of(
            run("nft", &["list", "table", "inet", guard.table()]),
            "list",
        );
        assert!(rules.contains("flags owner"), "{rules}");
        assert!(
            rules.contains("type filter hook prerouting priority raw; policy accept;"),
            "{rules}"
        );
        assert!(
            rules
                .contains("ip daddr 10.1.2.3 tcp dport 40000-40009 counter packets 0 bytes 0 drop"),
            "{rules}"
        );
        assert_eq!(guard.dropped_packets().expect("counter"), 0);

        let second = NftGuard::install(Ipv4Addr::new(10, 1, 2, 4), 1..=2).expect("second");
        assert_ne!(second.table(), guard.table());
        let first_name = guard.table().to_owned();
        guard.remove().expect("remove");
        let listing = tables();
        assert!(
            !listing.contains(&first_name) && listing.contains(second.table()),
            "{listing}"
        );
        drop(second);
        assert!(!tables().contains(&format!("xdpget_{}_", std::process::id())));
    }

    /// Root only: the `nft` fallback removes a stale table of a dead pid, keeps a live
    /// foreign table, adds ours, and drop removes it.
    #[test]
    fn nft_fallback_cleans_stale_tables_and_drop_removes_ours() {
        use crate::testkit::netns::{InNetns, Netns};
        use crate::testkit::{root_or_skip, run, stdout_of};
        if !root_or_skip("nft_fallback_cleans_stale_tables_and_drop_removes_ours") {
            return;
        }
        let netns = Netns::new("nft");
        let _in = InNetns::enter(&netns.name).expect("enter the namespace");
        // pid 4194305 is above the kernel's largest pid_max: never alive. pid 1 always is.
        let stale = "xdpget_4194305_0";
        let live = "xdpget_1_0";
        for table in [stale, live, "unrelated"] {
            stdout_of(
                run("nft", &["add", "table", "inet", table]),
                "nft add table",
            );
        }
        let tables = || stdout_of(run("nft", &["list", "tables"]), "nft list tables");

        let name = table_name(std::process::id(), 9999);
        let guard =
            NftGuard::install_with_nft(name, Ipv4Addr::new(10, 1, 2, 3).into(), 40000, 40009)
                .expect("install");
        assert!(!guard.dies_with_process());
        let listing = tables();
        assert!(!listing.contains(stale), "stale table kept: {listing}");
        assert!(
            listing.contains(live) && listing.contains("unrelated"),
            "{listing}"
        );
        assert!(listing.contains(guard.table()), "{listing}");
        let rules = stdout_of(
            run("nft", &["list", "table", "inet", guard.table()]),
            "list",
        );
        assert!(
            rules.contains("ip daddr 10.1.2.3 tcp dport 40000-40009"),
            "{rules}"
        );
        assert!(rules.contains("priority raw"), "{rules}");
        drop(guard);
        assert!(!tables().contains(&format!("xdpget_{}_", std::process::id())));
    }

    #[test]
    fn empty_range_is_refused_before_nft_runs() {
        #[expect(clippy::reversed_empty_ranges, reason = "the empty range is the point")]
        let empty = 9..=1;
        assert!(matches!(
            NftGuard::install(Ipv4Addr::LOCALHOST, empty),
            Err(NftError::EmptyRange { .. })
        ));
    }
}
