//! `net/` — interface, address, route and neighbour discovery; port reservation.
