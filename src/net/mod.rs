//! `net/` — interface, address, route and neighbour discovery; port reservation.

pub mod nft;
pub mod ports;
