//! Initial sequence numbers and the timestamp clock offset.
//!
//! RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is
//! a timer ticking every 4 microseconds and F a keyed hash (SipHash-2-4 here). Different
//! connections get unpredictable sequence spaces; reincarnations of the same four-tuple
//! still move forward with the clock.
//! RFC 7323 §5.4 recommends a random per-connection offset of the timestamp clock; we derive
//! it from the same secret so that tests stay reproducible.

use core::hash::Hasher;
use std::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher24;

use crate::time::Instant;
use crate::wire::SeqNumber;

fn keyed_hash(secret: &[u8; 16], purpose: u8, local: SocketAddr, remote: SocketAddr) -> u64 {
    let mut hasher = SipHasher24::new_with_key(secret);
    hasher.write_u8(purpose);
    write_address(&mut hasher, local.ip());
    hasher.write_u16(local.port());
    write_address(&mut hasher, remote.ip());
    hasher.write_u16(remote.port());
    hasher.finish()
}

/// Feeds an address's octets (4 or 16) to the hash.
fn write_address(hasher: &mut SipHasher24, address: IpAddr) {
    match address {
        IpAddr::V4(v4) => hasher.write(&v4.octets()),
        IpAddr::V6(v6) => hasher.write(&v6.octets()),
    }
}

/// The RFC 6528 initial sequence number for a connection opened at `now`.
pub fn initial_sequence_number(
    now: Instant,
    secret: &[u8; 16],
    local: SocketAddr,
    remote: SocketAddr,
) -> SeqNumber {
    // RFC 6528 §3: M is a 4-microsecond timer (truncated to 32 bits, so it wraps).
    let m = (now.total_micros() / 4) as u32;
    let f = keyed_hash(secret, 0, local, remote) as u32;
    SeqNumber(m.wrapping_add(f))
}

/// The per-connection offset added to our timestamp clock (RFC 7323 §5.4).
pub fn timestamp_offset(secret: &[u8; 16], local: SocketAddr, remote: SocketAddr) -> u32 {
    keyed_hash(secret, 1, local, remote) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::new(10, 0, 0, last).into(), port)
    }

    #[test]
    fn isn_moves_with_the_four_microsecond_clock() {
        let key = [7u8; 16];
        let a = initial_sequence_number(Instant::ZERO, &key, addr(1, 40000), addr(2, 80));
        let b =
            initial_sequence_number(Instant::from_micros(400), &key, addr(1, 40000), addr(2, 80));
        assert_eq!(b - a, 100);
    }

    #[test]
    fn isn_depends_on_the_four_tuple_and_the_key() {
        let key = [7u8; 16];
        let a = initial_sequence_number(Instant::ZERO, &key, addr(1, 40000), addr(2, 80));
        let b = initial_sequence_number(Instant::ZERO, &key, addr(1, 40001), addr(2, 80));
        let c = initial_sequence_number(Instant::ZERO, &[8u8; 16], addr(1, 40000), addr(2, 80));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(
            timestamp_offset(&key, addr(1, 40000), addr(2, 80)),
            timestamp_offset(&key, addr(1, 40001), addr(2, 80))
        );
        let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 40000);
        let d = initial_sequence_number(Instant::ZERO, &key, v6, addr(2, 80));
        assert_ne!(a, d);
    }
}
