//! xdpget — a wget-style HTTP downloader that takes the kernel's TCP stack out of the data path.
//!
//! An XDP program steers the packets of a reserved local port range into an AF_XDP socket;
//! one pinned busy-poll thread drives our own TCP engine and streams the HTTP body straight
//! into an mmapped output file.
//!
//! The layers, lowest first (a lower layer never imports a higher one):
//!
//! | module | job | I/O |
//! |---|---|---|
//! | [`time`] | `Instant`: time as a value | none |
//! | [`ledger`] | notes of machine changes, so a run after a crash can undo them | `/run` |
//! | [`boot_secret`] | the per-boot key of TCP's ISN and timestamp offset | `/run` |
//! | [`ranges`] | `RangeSet`: the one interval set (arrived, held, finished byte ranges) | none |
//! | [`wire`] | zero-copy views and representations: Ethernet, ARP, IPv4, TCP, checksums | none |
//! | [`tcp`] | sans-IO TCP engine: state machine, RTO, Reno/NewReno, reassembly bookkeeping | none |
//! | [`tls`] | sans-IO TLS client session (rustls) between the TCP stream and HTTP | none |
//! | [`http`] | sans-IO HTTP/1.1: requests, response heads, body framing | none |
//! | [`serve`] | `xdpget serve`: paths under the served directory, responses, one connection's session; a file body mapped under a read lease | files |
//! | [`sink`] | where body bytes land: mmapped file at the right offset, or a stream | file |
//! | [`driver`] | packet I/O behind one trait: `afxdp`, `raw`, `sim` | packets |
//! | [`net`] | interface, route, neighbour discovery; port reservation | netlink, sysfs |
//! | [`engine`] | the busy-poll loop binding driver, connection, HTTP exchange and sink | all |
//! | [`cli`] | arguments, progress, exit codes, reports | terminal |

#![deny(unsafe_code)]

pub mod boot_secret;
pub mod cli;
pub mod driver;
pub mod engine;
pub mod http;
pub mod ledger;
pub mod net;
pub mod ranges;
pub mod serve;
pub mod sink;
pub mod tcp;
#[cfg(test)]
pub(crate) mod testkit;
pub mod time;
pub mod tls;
pub mod wire;
