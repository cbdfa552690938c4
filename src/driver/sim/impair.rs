//! Seeded packet impairments: loss, duplication, reordering and corruption.
//!
//! One piece of logic shared by the simulated link ([`super::link`]) and by the
//! [`crate::driver::fault::FaultInjector`] that wraps real drivers, so that "1 % loss" means
//! the same thing in both places.
//!
//! What each impairment models on real networks:
//!
//! - **Loss.** A frame that leaves and never arrives. Besides full queues (which the link
//!   models separately, as drop-tail), frames are lost to bit errors on radio and copper
//!   links (the receiving NIC's CRC check — the Ethernet FCS — fails and the NIC silently
//!   discards the frame), to policers, and to failing hardware. TCP sees loss only as missing
//!   sequence numbers: duplicate ACKs (RFC 5681 §3.2 fast retransmit) or a timeout
//!   (RFC 6298).
//! - **Duplication.** The same frame arrives twice: link-layer retransmission on Wi-Fi when
//!   an ACK was lost, a bridging loop, a mirrored switch port, or a sender retransmitting a
//!   segment that was only delayed. TCP must discard the second copy (RFC 9293 §3.10.7.4:
//!   an old segment is acknowledged, its data dropped) and must not mistake the duplicate
//!   ACKs it triggers for loss too eagerly.
//! - **Reordering.** A frame is held back and later frames overtake it: packets of one flow
//!   spread over parallel links or router line cards (ECMP, link aggregation), or a
//!   retransmission at a lower layer. Three or more later segments overtaking one produce
//!   three duplicate ACKs, which a Reno sender takes for a loss (a *spurious* fast
//!   retransmit). The receiver has to hold the out-of-order data until the gap is filled.
//! - **Corruption.** One bit of the frame is flipped. Corruption on the wire is normally
//!   caught by the Ethernet FCS and becomes loss; what reaches an end host corrupted was
//!   damaged *inside* a router, a NIC or a host's memory (Stone and Partridge, "When the CRC
//!   and TCP checksum disagree", SIGCOMM 2000). The flipped bit is chosen inside the IPv4
//!   packet (header and payload, never the Ethernet header or padding), so that the IPv4
//!   header checksum (RFC 791) or the TCP checksum (RFC 9293 §3.1) covers it: the Internet
//!   checksum (RFC 1071) detects every single-bit error, so a correct receiver drops every
//!   corrupted frame. A receiver that accepts one has a checksum bug.
//!
//! Determinism: every decision comes from a ChaCha8 generator seeded by the caller, and every
//! frame consumes the same number of random draws whatever the configured rates. So two runs
//! with the same seed make identical decisions, and two runs that differ only in, say, the
//! loss rate still see the same reordering pattern ("common random numbers": the comparison
//! shows the effect of the loss rate, not of a different dice roll).

use core::ops::Range;
use core::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Probabilities of each impairment, per frame, as fractions in `0.0..=1.0`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairments {
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that a frame is held back by `reorder_delay`, so later ones overtake it.
    pub reorder: f64,
    /// How long a reordered frame is held back.
    pub reorder_delay: Duration,
    /// Probability that one bit of the frame is flipped.
    pub corrupt: f64,
}

impl Impairments {
    /// No impairment at all.
    pub const NONE: Impairments = Impairments {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay: Duration::ZERO,
        corrupt: 0.0,
    };

    /// Only random loss with probability `loss`.
    pub fn loss(loss: f64) -> Impairments {
        Impairments {
            loss,
            ..Impairments::NONE
        }
    }

    /// Checks that every probability is a number in `0.0..=1.0`.
    pub fn validate(&self) -> Result<(), ImpairmentError> {
        for (name, value) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ImpairmentError::BadProbability { name, value });
            }
        }
        Ok(())
    }
}

/// An impairment setting that makes no sense.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ImpairmentError {
    #[error("the {name} probability must lie between 0 and 1 (0% and 100%), not {value}")]
    BadProbability { name: &'static str, value: f64 },
}

/// What happens to one frame. A lost frame has no other fate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fate {
    pub lost: bool,
    pub duplicated: bool,
    pub reordered: bool,
    /// `Some(draw)`: flip one bit, chosen from `draw` by [`flip_bit`].
    pub corrupt: Option<u64>,
}

/// How many frames met each fate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImpairCounters {
    /// Frames that went through the impairer.
    pub frames: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
}

/// Draws the fate of each frame from a seeded generator.
#[derive(Clone, Debug)]
pub struct Impairer {
    config: Impairments,
    rng: ChaCha8Rng,
    counters: ImpairCounters,
}

impl Impairer {
    /// An impairer for `config`, drawing from stream `stream` of the generator seeded with
    /// `seed`. Different streams of one seed are independent: give each direction its own.
    pub fn new(config: Impairments, seed: u64, stream: u64) -> Result<Impairer, ImpairmentError> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Ok(Impairer {
            config,
            rng,
            counters: ImpairCounters::default(),
        })
    }

    /// The configured probabilities.
    pub fn config(&self) -> &Impairments {
        &self.config
    }

    /// Counters so far.
    pub fn counters(&self) -> ImpairCounters {
        self.counters
    }

    /// Decides the fate of the next frame. Always draws five numbers (see the module docs).
    pub fn roll(&mut self) -> Fate {
        let loss_draw: f64 = self.rng.r#gen();
        let duplicate_draw: f64 = self.rng.r#gen();
        let reorder_draw: f64 = self.rng.r#gen();
        let corrupt_draw: f64 = self.rng.r#gen();
        let bit_draw: u64 = self.rng.r#gen();

        self.counters.frames += 1;
        if loss_draw < self.config.loss {
            self.counters.lost += 1;
            return Fate {
                lost: true,
                ..Fate::default()
            };
        }
        let fate = Fate {
            lost: false,
            duplicated: duplicate_draw < self.config.duplicate,
            reordered: reorder_draw < self.config.reorder,
            corrupt: (corrupt_draw < self.config.corrupt).then_some(bit_draw),
        };
        self.counters.duplicated += u64::from(fate.duplicated);
        self.counters.reordered += u64::from(fate.reordered);
        fate
    }

    /// Applies the corruption part of `fate` to `frame`; counts it if a bit was flipped.
    pub fn apply_corruption(&mut self, fate: &Fate, frame: &mut [u8]) -> Option<usize> {
        let flipped = flip_bit(frame, fate.corrupt?);
        if flipped.is_some() {
            self.counters.corrupted += 1;
        }
        flipped
    }

    /// How long a reordered frame is held back.
    pub fn reorder_delay(&self) -> Duration {
        self.config.reorder_delay
    }
}

const ETHERNET_HEADER_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPV4_MIN_HEADER_LEN: usize = 20;

/// The bytes a receiver's checksums cover: for an IPv4 frame, the IPv4 packet up to its
/// total length (RFC 791), so not the Ethernet header nor the padding of short frames;
/// for any other frame, everything after the Ethernet header.
pub fn checksummed_range(frame: &[u8]) -> Range<usize> {
    if frame.len() <= ETHERNET_HEADER_LEN {
        return 0..frame.len();
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let after_header = ETHERNET_HEADER_LEN..frame.len();
    if ethertype != ETHERTYPE_IPV4 || frame.len() < ETHERNET_HEADER_LEN + IPV4_MIN_HEADER_LEN {
        return after_header;
    }
    let total_len = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    if total_len < IPV4_MIN_HEADER_LEN {
        return after_header;
    }
    ETHERNET_HEADER_LEN..frame.len().min(ETHERNET_HEADER_LEN + total_len)
}

/// Flips the bit chosen by `draw` inside [`checksummed_range`] of `frame`. Returns the
/// index of the flipped bit (counted from the start of the frame), or `None` for an empty
/// frame.
pub fn flip_bit(frame: &mut [u8], draw: u64) -> Option<usize> {
    let range = checksummed_range(frame);
    let bits = u64::try_from(range.len()).ok()?.checked_mul(8)?;
    if bits == 0 {
        return None;
    }
    let bit = usize::try_from(draw % bits).ok()? + range.start * 8;
    let byte = frame.get_mut(bit / 8)?;
    *byte ^= 1 << (bit % 8);
    Some(bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 Internet checksum, written out here so the test does not depend on `wire`.
    fn internet_checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// An Ethernet + IPv4 frame with a correct header checksum and some payload, padded.
    fn ipv4_frame(payload_len: usize, padding: usize) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let total = 20 + payload_len;
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let checksum = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend((0..payload_len).map(|i| i as u8));
        frame.extend(std::iter::repeat_n(0u8, padding));
        frame
    }

    #[test]
    fn corruption_stays_inside_the_ipv4_packet() {
        let frame = ipv4_frame(6, 20);
        assert_eq!(checksummed_range(&frame), 14..40);
        for draw in 0..10_000u64 {
            let mut copy = frame.clone();
            let bit = flip_bit(&mut copy, draw.wrapping_mul(0x9e37_79b9_7f4a_7c15)).unwrap();
            assert!((14 * 8..40 * 8).contains(&bit));
            let changed: Vec<usize> = (0..frame.len()).filter(|&i| frame[i] != copy[i]).collect();
            assert_eq!(changed, vec![bit / 8]);
            assert_eq!((frame[bit / 8] ^ copy[bit / 8]).count_ones(), 1);
        }
    }

    #[test]
    fn every_flip_in_the_ip_header_breaks_its_checksum() {
        let frame = ipv4_frame(0, 0);
        assert_eq!(internet_checksum(&frame[14..34]), 0);
        for draw in 0..(20 * 8) {
            let mut copy = frame.clone();
            flip_bit(&mut copy, draw).unwrap();
            assert_ne!(
                internet_checksum(&copy[14..34]),
                0,
                "flip {draw} went unnoticed"
            );
        }
    }

    #[test]
    fn odd_frames_do_not_panic() {
        assert_eq!(flip_bit(&mut [], 7), None);
        let mut one = [0u8];
        assert_eq!(flip_bit(&mut one, 3), Some(3));
        assert_eq!(one, [8]);
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(checksummed_range(&arp), 14..42);
        // An IPv4 frame whose total length lies: never reach past the frame.
        let mut liar = ipv4_frame(4, 0);
        liar[16..18].copy_from_slice(&0xffffu16.to_be_bytes());
        assert_eq!(checksummed_range(&liar), 14..liar.len());
    }

    #[test]
    fn rates_are_close_to_configured() {
        let config = Impairments {
            loss: 0.02,
            duplicate: 0.01,
            reorder: 0.05,
            reorder_delay: Duration::from_millis(1),
            corrupt: 0.005,
        };
        let mut impairer = Impairer::new(config, 42, 0).unwrap();
        let mut frame = ipv4_frame(100, 0);
        let n = 200_000;
        for _ in 0..n {
            let fate = impairer.roll();
            impairer.apply_corruption(&fate, &mut frame);
        }
        let c = impairer.counters();
        assert_eq!(c.frames, n);
        // Binomial standard deviations are ~63, ~44, ~97, ~31: allow about five of them.
        let near = |count: u64, p: f64, slack: f64| (count as f64 - n as f64 * p).abs() < slack;
        assert!(near(c.lost, 0.02, 320.0), "{c:?}");
        // Lost frames take no other fate, so the others apply to the 98 % that survive.
        assert!(near(c.duplicated, 0.01 * 0.98, 220.0), "{c:?}");
        assert!(near(c.reordered, 0.05 * 0.98, 480.0), "{c:?}");
        assert!(near(c.corrupted, 0.005 * 0.98, 160.0), "{c:?}");
    }

    #[test]
    fn same_seed_same_fates_and_common_random_numbers() {
        let mut a = Impairer::new(Impairments::loss(0.1), 7, 0).unwrap();
        let mut b = Impairer::new(Impairments::loss(0.1), 7, 0).unwrap();
        let fates_a: Vec<Fate> = (0..1000).map(|_| a.roll()).collect();
        let fates_b: Vec<Fate> = (0..1000).map(|_| b.roll()).collect();
        assert_eq!(fates_a, fates_b);

        let mut other_stream = Impairer::new(Impairments::loss(0.1), 7, 1).unwrap();
        let fates_c: Vec<Fate> = (0..1000).map(|_| other_stream.roll()).collect();
        assert_ne!(fates_a, fates_c);

        // Raising the loss rate only adds losses: every frame lost at 10 % is lost at 20 %.
        let mut more = Impairer::new(Impairments::loss(0.2), 7, 0).unwrap();
        let fates_more: Vec<Fate> = (0..1000).map(|_| more.roll()).collect();
        assert!(
            fates_a
                .iter()
                .zip(&fates_more)
                .all(|(l, m)| !l.lost || m.lost)
        );
        assert!(more.counters().lost > a.counters().lost);
    }

    #[test]
    fn bad_probabilities_are_refused() {
        let err = Impairer::new(Impairments::loss(1.5), 0, 0).unwrap_err();
        assert!(err.to_string().contains("loss probability"), "{err}");
        assert!(Impairer::new(Impairments::loss(f64::NAN), 0, 0).is_err());
    }
}
