//! `net/` — interface, address, route and neighbour discovery; port reservation.

pub mod iface;
pub mod irq;
pub mod neigh;
pub mod netlink;
pub(crate) mod nlmsg;
pub mod route;

pub use netlink::NetError;

#[cfg(test)]
mod discovery_tests;
pub mod nft;
pub mod ports;
