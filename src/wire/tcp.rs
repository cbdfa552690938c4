//! TCP header: a zero-copy view and a validated representation.
//!
//! RFCs: 9293 (header format, §3.1), 7323 (window scale and timestamps options),
//! 2018 (SACK-permitted and SACK blocks), 6691 (MSS option).
//!
//! Parsing accepts any option order, skips unknown options by their length and rejects
//! impossible lengths. Emitting uses Linux's layout so our segments look like the kernel's:
//! SYN `MSS, NOP NOP TS, NOP WS`, or `MSS, SACK-permitted TS, NOP WS` when offering SACK;
//! other segments `NOP NOP TS` (12 bytes) or nothing, then `NOP NOP SACK` with the blocks.
//!
//! CONTRACT (shared with `tcp/`): the field names and types of `TcpFlags`, `TcpOptions` and
//! `TcpRepr` are what the engine consumes and produces. Fields may be added; none renamed.

use core::net::IpAddr;

use super::checksum;
use super::error::WireError;
use super::seq::SeqNumber;
use super::{read_u16, read_u32, write_u16, write_u32};

/// The TCP control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);
    pub const NONE: TcpFlags = TcpFlags(0);

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    pub const fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    pub const fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl core::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// The TCP options xdpget understands. Unknown options are skipped by length when parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on SYN segments.
    pub mss: Option<u16>,
    /// Window scale shift count (kind 3, RFC 7323 §2), only meaningful on SYN segments.
    pub window_scale: Option<u8>,
    /// SACK-permitted (kind 4, RFC 2018 §2), only meaningful on SYN segments.
    pub sack_permitted: bool,
    /// Timestamps (kind 8, RFC 7323 §3): `(TSval, TSecr)`.
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (kind 5, RFC 2018 §3), never on SYN segments.
    pub sack_blocks: SackBlocks,
}

/// Up to four SACK blocks, each `(left edge, right edge)`: the sequence numbers of the first
/// byte of a received block and of the byte just after it, in the order sent (RFC 2018 §4:
/// the first is the block holding the segment that triggered the ACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SackBlocks {
    blocks: [(SeqNumber, SeqNumber); SackBlocks::MAX],
    len: u8,
}

impl SackBlocks {
    /// Most blocks one option can carry (40 option bytes; 3 next to timestamps).
    pub const MAX: usize = 4;

    /// Appends a block; returns false (and changes nothing) when four are there already.
    pub fn push(&mut self, left: SeqNumber, right: SeqNumber) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = (left, right);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The blocks, in order.
    pub fn as_slice(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.blocks[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many blocks fit beside the other options of a non-SYN segment: 4, or 3 next to
    /// timestamps (40 option bytes in all). Emit leaves the rest out (RFC 2018 §3: as many
    /// as fit).
    const fn fitting(&self, timestamps: bool) -> usize {
        let room = if timestamps { 3 } else { SackBlocks::MAX };
        let len = self.len as usize;
        if len < room { len } else { room }
    }

    /// Bytes the option takes with its two NOPs of padding: 4 + 8 per block, or nothing.
    const fn emitted_len(&self, timestamps: bool) -> usize {
        match self.fitting(timestamps) {
            0 => 0,
            blocks => 4 + 8 * blocks,
        }
    }
}

/// A parsed, validated TCP segment. `payload` borrows from the frame it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: SeqNumber,
    /// The acknowledgment number; meaningful only when `flags.ack()`.
    pub ack_number: SeqNumber,
    pub flags: TcpFlags,
    /// The window field as sent, before any window scaling.
    pub window_len: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

impl TcpRepr<'_> {
    /// The sequence space this segment occupies: payload length plus one each for SYN and FIN
    /// (RFC 9293 §3.4, SEG.LEN).
    pub fn segment_len(&self) -> usize {
        self.payload.len() + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }
}

/// Option kinds (RFC 9293 §3.2, IANA "TCP Option Kind Numbers").
mod option_kind {
    pub const END_OF_LIST: u8 = 0;
    pub const NO_OPERATION: u8 = 1;
    pub const MAX_SEGMENT_SIZE: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUMBER: Field = 4..8;
    pub const ACK_NUMBER: Field = 8..12;
    /// Data offset in the high nibble; the low nibble is reserved (once NS, RFC 8311).
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT_POINTER: Field = 18..20;
    pub const OPTIONS: usize = 20;
}

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = field::OPTIONS;

/// The longest TCP header: data offset 15 words.
pub const MAX_HEADER_LEN: usize = 60;

/// The bytes of the timestamps option as emitted: NOP, NOP, kind 8, length 10, TSval,
/// TSecr (RFC 7323 Appendix A layout, which Linux sends on every segment).
pub const TIMESTAMPS_OPTION_LEN: usize = 12;

/// A read/write view of a TCP segment (header and payload).
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it; accessors may panic until [`check_len`](Self::check_len) passed.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer whose header, options included, fits; no accessor panics afterwards.
    /// The buffer must be exactly the segment (the IPv4 payload), since the checksum and
    /// the payload run to its end.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the data offset is at least 5 words and the header fits in the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(WireError::Malformed("TCP data offset below 5 words"));
        }
        if len < header_len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.data(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.data(), field::DST_PORT)
    }

    /// The sequence number.
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(read_u32(self.data(), field::SEQ_NUMBER))
    }

    /// The acknowledgment number (meaningful only with ACK set).
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(read_u32(self.data(), field::ACK_NUMBER))
    }

    /// The header length in bytes: data offset × 4, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The eight control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.data()[field::FLAGS])
    }

    /// The window field, unscaled.
    pub fn window_len(&self) -> u16 {
        read_u16(self.data(), field::WINDOW)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.data(), field::CHECKSUM)
    }

    /// The urgent pointer (xdpget ignores urgent data, RFC 9293 §3.8.5 / RFC 6093).
    pub fn urgent_pointer(&self) -> u16 {
        read_u16(self.data(), field::URGENT_POINTER)
    }

    /// The raw option bytes.
    pub fn options(&self) -> &[u8] {
        &self.data()[field::OPTIONS..self.header_len()]
    }

    /// The payload: everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.data()[self.header_len()..]
    }

    /// Whether the checksum over pseudo-header and segment is right (RFC 9293 §3.1).
    /// Over IPv4 or IPv6 (RFC 8200 §8.1), as the addresses are.
    pub fn verify_checksum(
        &self,
        src_addr: impl Into<IpAddr>,
        dst_addr: impl Into<IpAddr>,
    ) -> bool {
        checksum::verify_tcp(src_addr.into(), dst_addr.into(), self.data())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The payload, borrowed for as long as the underlying buffer.
    pub fn payload_ref(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[usize::from(data[field::DATA_OFFSET] >> 4) * 4..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.data_mut(), field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.data_mut(), field::DST_PORT, value);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: SeqNumber) {
        write_u32(self.data_mut(), field::SEQ_NUMBER, value.0);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: SeqNumber) {
        write_u32(self.data_mut(), field::ACK_NUMBER, value.0);
    }

    /// Sets the header length in bytes (a multiple of 4, at most 60); clears the reserved bits.
    pub fn set_header_len(&mut self, header_len: usize) {
        self.data_mut()[field::DATA_OFFSET] = ((header_len / 4) as u8 & 0x0f) << 4;
    }

    /// Sets the control bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.data_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window field.
    pub fn set_window_len(&mut self, value: u16) {
        write_u16(self.data_mut(), field::WINDOW, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.data_mut(), field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_pointer(&mut self, value: u16) {
        write_u16(self.data_mut(), field::URGENT_POINTER, value);
    }

    /// The option bytes, writable (header length must be set first).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.data_mut()[field::OPTIONS..header_len]
    }

    /// The payload, writable (header length must be set first).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let header_len = self.header_len();
        &mut self.data_mut()[header_len..]
    }

    /// Computes and writes the checksum over pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src_addr: impl Into<IpAddr>, dst_addr: impl Into<IpAddr>) {
        self.set_checksum(0);
        let value = checksum::tcp(src_addr.into(), dst_addr.into(), self.data());
        self.set_checksum(value);
    }
}

impl TcpOptions {
    /// Reads the option list of a header (RFC 9293 §3.1 "Options", §3.2): EOL ends it,
    /// NOP pads, known options must have their fixed length, unknown ones are skipped by
    /// their length. A length byte below 2 or running past the header is malformed.
    pub fn parse(mut options: &[u8]) -> Result<TcpOptions, WireError> {
        let mut parsed = TcpOptions::default();
        while let Some((&kind, rest)) = options.split_first() {
            match kind {
                option_kind::END_OF_LIST => break,
                option_kind::NO_OPERATION => {
                    options = rest;
                    continue;
                }
                _ => {}
            }
            let Some(&length) = rest.first() else {
                return Err(WireError::Malformed("TCP option without a length byte"));
            };
            let length = usize::from(length);
            // RFC 9293 §3.1 (MUST-69): be prepared for an illegal option length; the
            // segment cannot be interpreted, so it is malformed.
            if length < 2 || length > options.len() {
                return Err(WireError::Malformed("TCP option length out of bounds"));
            }
            let body = &options[2..length];
            match (kind, body) {
                // RFC 6691 / RFC 9293 §3.2.
                (option_kind::MAX_SEGMENT_SIZE, &[high, low]) => {
                    parsed.mss = Some(u16::from_be_bytes([high, low]));
                }
                // RFC 7323 §2.2. A shift above 14 is kept as sent; RFC 7323 §2.3 has the
                // receiver of the SYN clamp it, which is the engine's job.
                (option_kind::WINDOW_SCALE, &[shift]) => parsed.window_scale = Some(shift),
                // RFC 2018 §2.
                (option_kind::SACK_PERMITTED, &[]) => parsed.sack_permitted = true,
                // RFC 7323 §3.2.
                (option_kind::TIMESTAMPS, &[a, b, c, d, e, f, g, h]) => {
                    let tsval = u32::from_be_bytes([a, b, c, d]);
                    let tsecr = u32::from_be_bytes([e, f, g, h]);
                    parsed.timestamps = Some((tsval, tsecr));
                }
                (
                    option_kind::MAX_SEGMENT_SIZE
                    | option_kind::WINDOW_SCALE
                    | option_kind::SACK_PERMITTED
                    | option_kind::TIMESTAMPS,
                    _,
                ) => {
                    return Err(WireError::Malformed(
                        "TCP option with the wrong length for its kind",
                    ));
                }
                // RFC 2018 §3: 1 to 4 blocks of two sequence numbers. A block list of
                // another length is ignored, as Linux does, not a reason to drop the segment.
                (option_kind::SACK, blocks) if blocks.len() % 8 == 0 => {
                    for block in blocks.chunks_exact(8) {
                        let left = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
                        let right = u32::from_be_bytes([block[4], block[5], block[6], block[7]]);
                        parsed.sack_blocks.push(SeqNumber(left), SeqNumber(right));
                    }
                }
                // RFC 9293 §3.1 (MUST-68): ignore options we do not implement (MPTCP, TFO,
                // …), skipping them by their length field.
                _ => {}
            }
            options = &options[length..];
        }
        Ok(parsed)
    }

    /// How many option bytes [`emit`](Self::emit) writes for a segment with or without SYN:
    /// always a multiple of 4; at most 20 on a SYN and 40 otherwise (the caller keeps SACK
    /// blocks to 3 next to timestamps).
    pub const fn emitted_len(&self, syn: bool) -> usize {
        let timestamps = if self.timestamps.is_some() {
            TIMESTAMPS_OPTION_LEN
        } else {
            0
        };
        if !syn {
            return timestamps + self.sack_blocks.emitted_len(self.timestamps.is_some());
        }
        let mss = if self.mss.is_some() { 4 } else { 0 };
        let window_scale = if self.window_scale.is_some() { 4 } else { 0 };
        // SACK-permitted takes the NOP NOP before TS, or a NOP NOP word of its own.
        let sack_permitted = if self.sack_permitted && self.timestamps.is_none() {
            4
        } else {
            0
        };
        mss + sack_permitted + timestamps + window_scale
    }

    /// Writes the options in Linux's layout at the start of `buffer` and returns how many
    /// bytes that took ([`emitted_len`](Self::emitted_len)); a shorter `buffer` is
    /// [`WireError::Truncated`].
    ///
    /// On SYN: MSS, then SACK-permitted + TS as Linux (NOP NOP in its place when not
    /// offering SACK), then NOP WS. On other segments MSS, window scale and SACK-permitted
    /// are meaningless (RFC 9293 §3.2, RFC 7323 §2.2, RFC 2018 §2) and left out: NOP NOP TS,
    /// then NOP NOP SACK with the blocks, if any (never on a SYN).
    pub fn emit(&self, syn: bool, buffer: &mut [u8]) -> Result<usize, WireError> {
        let Some(buffer) = buffer.get_mut(..self.emitted_len(syn)) else {
            return Err(WireError::Truncated);
        };
        let mut at = 0;
        if syn && let Some(mss) = self.mss {
            let [high, low] = mss.to_be_bytes();
            buffer[at..at + 4].copy_from_slice(&[option_kind::MAX_SEGMENT_SIZE, 4, high, low]);
            at += 4;
        }
        let sack_permitted = syn && self.sack_permitted;
        if sack_permitted && self.timestamps.is_none() {
            buffer[at..at + 4].copy_from_slice(&[
                option_kind::NO_OPERATION,
                option_kind::NO_OPERATION,
                option_kind::SACK_PERMITTED,
                2,
            ]);
            at += 4;
        }
        if let Some((tsval, tsecr)) = self.timestamps {
            let head = if sack_permitted {
                [option_kind::SACK_PERMITTED, 2]
            } else {
                [option_kind::NO_OPERATION, option_kind::NO_OPERATION]
            };
            buffer[at..at + 4].copy_from_slice(&[head[0], head[1], option_kind::TIMESTAMPS, 10]);
            buffer[at + 4..at + 8].copy_from_slice(&tsval.to_be_bytes());
            buffer[at + 8..at + 12].copy_from_slice(&tsecr.to_be_bytes());
            at += TIMESTAMPS_OPTION_LEN;
        }
        if syn && let Some(shift) = self.window_scale {
            buffer[at..at + 4].copy_from_slice(&[
                option_kind::NO_OPERATION,
                option_kind::WINDOW_SCALE,
                3,
                shift,
            ]);
            at += 4;
        }
        let fitting = self.sack_blocks.fitting(self.timestamps.is_some());
        if !syn && fitting > 0 {
            let blocks = &self.sack_blocks.as_slice()[..fitting];
            buffer[at..at + 4].copy_from_slice(&[
                option_kind::NO_OPERATION,
                option_kind::NO_OPERATION,
                option_kind::SACK,
                (2 + 8 * blocks.len()) as u8,
            ]);
            at += 4;
            for (left, right) in blocks {
                buffer[at..at + 4].copy_from_slice(&left.0.to_be_bytes());
                buffer[at + 4..at + 8].copy_from_slice(&right.0.to_be_bytes());
                at += 8;
            }
        }
        Ok(at)
    }
}

impl<'a> TcpRepr<'a> {
    /// Validates and reads a checked segment carried from `src_addr` to `dst_addr`.
    ///
    /// With `verify_checksum` the checksum over pseudo-header and segment must be right;
    /// pass `false` only when something already verified it (NIC offload, a test).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src_addr: impl Into<IpAddr>,
        dst_addr: impl Into<IpAddr>,
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>, WireError> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum(src_addr, dst_addr) {
            return Err(WireError::BadChecksum);
        }
        // RFC 9293 §3.1 port 0 is reserved; no real peer sends from or to it.
        if packet.src_port() == 0 || packet.dst_port() == 0 {
            return Err(WireError::Malformed("TCP port 0"));
        }
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            options: TcpOptions::parse(packet.options())?,
            payload: packet.payload_ref(),
        })
    }
}

impl TcpRepr<'_> {
    /// The header length `emit` writes: 20 bytes plus the options in Linux's layout.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.emitted_len(self.flags.syn())
    }

    /// The segment length `emit` writes: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes header, options and payload into the first [`buffer_len`](Self::buffer_len)
    /// bytes of `packet` and fills the checksum for a segment from `src_addr` to `dst_addr`.
    /// Returns the segment length. The urgent pointer is always zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src_addr: impl Into<IpAddr>,
        dst_addr: impl Into<IpAddr>,
    ) -> Result<usize, WireError> {
        let segment_len = self.buffer_len();
        if packet.buffer.as_ref().len() < segment_len {
            return Err(WireError::Truncated);
        }
        if segment_len > usize::from(u16::MAX) {
            return Err(WireError::Malformed("TCP segment longer than 65535 bytes"));
        }
        let mut segment = TcpPacket::new_unchecked(&mut packet.buffer.as_mut()[..segment_len]);
        self.emit_header(&mut segment);
        segment.payload_mut().copy_from_slice(self.payload);
        segment.fill_checksum(src_addr, dst_addr);
        Ok(segment_len)
    }

    /// Writes every header field but the checksum (left zero); the buffer holds at least
    /// [`header_len`](Self::header_len) bytes.
    pub(crate) fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(self.header_len());
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_pointer(0);
        let syn = self.flags.syn();
        let written = self.options.emit(syn, packet.options_mut());
        debug_assert!(
            written.is_ok(),
            "the header length was set from these options"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{DATA, FIN, RST, SYN, SYN_ACK};
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
    const BODY: &[u8] = b"hello from xdpget wire fixtures\n";

    /// The TCP segment of a captured frame (no IP options, no padding in these captures).
    fn segment(frame: &[u8]) -> &[u8] {
        &frame[34..]
    }

    fn parse(frame: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<TcpRepr<'_>, WireError> {
        TcpRepr::parse(&TcpPacket::new_checked(segment(frame))?, src, dst, true)
    }

    fn syn_ack() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 8080,
            dst_port: 58316,
            seq_number: SeqNumber(2110338589),
            ack_number: SeqNumber(3731876785),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window_len: 65160,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(10),
                sack_permitted: true,
                timestamps: Some((209810093, 3161867925)),
                ..TcpOptions::default()
            },
            payload: &[],
        }
    }

    fn data() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 8080,
            dst_port: 58316,
            seq_number: SeqNumber(2110338589 + 187),
            ack_number: SeqNumber(3731876785 + 88),
            flags: TcpFlags::PSH | TcpFlags::ACK,
            window_len: 64,
            options: TcpOptions {
                timestamps: Some((209810098, 3161867931)),
                ..TcpOptions::default()
            },
            payload: BODY,
        }
    }

    fn fin() -> TcpRepr<'static> {
        TcpRepr {
            seq_number: SeqNumber(2110338589 + 219),
            flags: TcpFlags::FIN | TcpFlags::ACK,
            payload: &[],
            ..data()
        }
    }

    fn rst() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 8081,
            dst_port: 57700,
            seq_number: SeqNumber(0),
            ack_number: SeqNumber(983094464),
            flags: TcpFlags::RST | TcpFlags::ACK,
            window_len: 0,
            options: TcpOptions::default(),
            payload: &[],
        }
    }

    #[test]
    fn test_deconstruct() {
        let packet = TcpPacket::new_checked(segment(&SYN)).unwrap();
        assert_eq!((packet.src_port(), packet.dst_port()), (58316, 8080));
        assert_eq!(packet.seq_number(), SeqNumber(3731876784));
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), TcpFlags::SYN);
        assert_eq!(packet.window_len(), 64240);
        assert_eq!(packet.checksum(), 0x66f0);
        assert_eq!(packet.urgent_pointer(), 0);
        assert!(packet.verify_checksum(CLIENT, SERVER));
        assert!(packet.payload().is_empty());
        let syn = TcpRepr::parse(&packet, CLIENT, SERVER, true).unwrap();
        let expected = TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some((3161867925, 0)),
            ..TcpOptions::default()
        };
        assert_eq!(syn.options, expected);
        assert_eq!(syn.segment_len(), 1);

        assert_eq!(parse(&SYN_ACK, SERVER, CLIENT), Ok(syn_ack()));
        assert_eq!(parse(&DATA, SERVER, CLIENT), Ok(data()));
        assert_eq!(parse(&FIN, SERVER, CLIENT), Ok(fin()));
        assert_eq!(parse(&RST, SERVER, CLIENT), Ok(rst()));
        assert_eq!(data().segment_len(), 32);
        assert_eq!(fin().segment_len(), 1);
    }

    #[test]
    fn test_construct() {
        // Data, FIN and RST come out byte for byte as Linux sent them.
        for (repr, frame) in [(data(), &DATA[..]), (fin(), &FIN[..]), (rst(), &RST[..])] {
            let mut bytes = vec![0xa5u8; repr.buffer_len()];
            let len = repr.emit(
                &mut TcpPacket::new_unchecked(&mut bytes[..]),
                SERVER,
                CLIENT,
            );
            assert_eq!(len, Ok(segment(frame).len()));
            assert_eq!(&bytes[..], segment(frame), "{:?}", repr.flags);
        }
        // The SYN-ACK too, byte for byte, SACK-permitted included.
        let mut bytes = [0u8; 40];
        syn_ack()
            .emit(
                &mut TcpPacket::new_unchecked(&mut bytes[..]),
                SERVER,
                CLIENT,
            )
            .unwrap();
        assert_eq!(&bytes[..], segment(&SYN_ACK));
        // Without SACK-permitted, NOP NOP takes its place.
        let mut expected = segment(&SYN_ACK).to_vec();
        expected[24..26].copy_from_slice(&[1, 1]);
        expected[16..18].copy_from_slice(&[0, 0]);
        let sum = checksum::tcp(SERVER.into(), CLIENT.into(), &expected);
        expected[16..18].copy_from_slice(&sum.to_be_bytes());
        let mut no_sack = syn_ack();
        no_sack.options.sack_permitted = false;
        no_sack
            .emit(
                &mut TcpPacket::new_unchecked(&mut bytes[..]),
                SERVER,
                CLIENT,
            )
            .unwrap();
        assert_eq!(&bytes[..], &expected[..]);
    }

    #[test]
    fn test_truncated() {
        for frame in [&SYN[..], &SYN_ACK[..], &DATA[..], &FIN[..], &RST[..]] {
            let header_len = usize::from(frame[46] >> 4) * 4;
            for len in 0..header_len {
                let result = TcpPacket::new_checked(&segment(frame)[..len]);
                assert_eq!(result.unwrap_err(), WireError::Truncated);
            }
        }
        let mut small = [0u8; 63];
        let result = data().emit(
            &mut TcpPacket::new_unchecked(&mut small[..]),
            SERVER,
            CLIENT,
        );
        assert_eq!(result, Err(WireError::Truncated));
    }

    #[test]
    fn emits_linux_syn_layouts() {
        let options = |mss, window_scale, sack_permitted, timestamps| TcpOptions {
            mss,
            window_scale,
            sack_permitted,
            timestamps,
            ..TcpOptions::default()
        };
        let cases: [(TcpOptions, &[u8]); 8] = [
            (
                options(Some(1460), Some(7), false, Some((1, 2))),
                &[
                    2, 4, 5, 180, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7,
                ],
            ),
            (
                options(Some(1460), Some(7), false, None),
                &[2, 4, 5, 180, 1, 3, 3, 7],
            ),
            (options(Some(536), None, false, None), &[2, 4, 2, 24]),
            (options(None, None, false, None), &[]),
            // Offering SACK: Linux's own SYN layouts.
            (
                options(Some(1460), Some(7), true, Some((1, 2))),
                &[
                    2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7,
                ],
            ),
            (
                options(Some(1460), Some(7), true, None),
                &[2, 4, 5, 180, 1, 1, 4, 2, 1, 3, 3, 7],
            ),
            (
                options(Some(536), None, true, None),
                &[2, 4, 2, 24, 1, 1, 4, 2],
            ),
            (options(None, None, true, None), &[1, 1, 4, 2]),
        ];
        for (options, expected) in cases {
            let mut buffer = [0u8; 20];
            assert_eq!(options.emitted_len(true), expected.len());
            assert_eq!(options.emit(true, &mut buffer), Ok(expected.len()));
            assert_eq!(&buffer[..expected.len()], expected);
            assert_eq!(TcpOptions::parse(expected).unwrap(), options);
        }
        // MSS, window scale and SACK-permitted are only sent with SYN.
        let all = options(Some(1460), Some(7), true, Some((1, 2)));
        assert_eq!(all.emitted_len(false), 12);
        assert_eq!(all.emit(true, &mut [0u8; 19]), Err(WireError::Truncated));
    }

    #[test]
    fn emits_and_parses_sack_blocks() {
        let mut blocks = SackBlocks::default();
        assert!(blocks.push(SeqNumber(100), SeqNumber(200)));
        assert!(blocks.push(SeqNumber(0xffff_ff00), SeqNumber(5)));
        let options = TcpOptions {
            timestamps: Some((1, 2)),
            sack_blocks: blocks,
            ..TcpOptions::default()
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2,
            1, 1, 5, 18, 0, 0, 0, 100, 0, 0, 0, 200, 0xff, 0xff, 0xff, 0, 0, 0, 0, 5,
        ];
        let mut buffer = [0u8; 40];
        assert_eq!(options.emitted_len(false), expected.len());
        assert_eq!(options.emit(false, &mut buffer), Ok(expected.len()));
        assert_eq!(&buffer[..expected.len()], expected);
        assert_eq!(TcpOptions::parse(expected).unwrap(), options);
        // Never on a SYN (RFC 2018 §3 is about ACKs of data).
        assert_eq!(options.emitted_len(true), 12);
        // Four blocks fill the option; a fifth does not fit.
        let mut full = SackBlocks::default();
        for n in 0..4 {
            assert!(full.push(SeqNumber(n), SeqNumber(n + 1)));
        }
        assert!(!full.push(SeqNumber(9), SeqNumber(10)));
        assert_eq!(full.len(), SackBlocks::MAX);
        let four = TcpOptions {
            sack_blocks: full,
            ..TcpOptions::default()
        };
        assert_eq!(four.emitted_len(false), 36);
        // Next to timestamps only three fit: the fourth is left out, never a header over 60.
        let crowded = TcpOptions {
            timestamps: Some((1, 2)),
            ..four
        };
        assert_eq!(crowded.emitted_len(false), 40);
        let mut buffer = [0u8; 40];
        assert_eq!(crowded.emit(false, &mut buffer), Ok(40));
        let parsed = TcpOptions::parse(&buffer).unwrap();
        assert_eq!(parsed.sack_blocks.as_slice(), &full.as_slice()[..3]);
    }

    #[test]
    fn parses_odd_option_lists() {
        // EOL ends the list; what follows is ignored.
        let list = [2, 4, 5, 180, 0, 3, 0xff];
        assert_eq!(TcpOptions::parse(&list).unwrap().mss, Some(1460));
        // A SACK block is read; unknown options (kind 30 MPTCP, a 2-byte unknown) are skipped.
        let list = [5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 30, 4, 0, 0, 99, 2, 3, 3, 9];
        let parsed = TcpOptions::parse(&list).unwrap();
        assert_eq!(parsed.window_scale, Some(9));
        assert_eq!(
            parsed.sack_blocks.as_slice(),
            &[(SeqNumber(1), SeqNumber(2))]
        );
        // SACK blocks of an impossible length are ignored, as Linux does, not malformed.
        let list = [5, 6, 0, 0, 0, 1, 3, 3, 9];
        let parsed = TcpOptions::parse(&list).unwrap();
        assert!(parsed.sack_blocks.is_empty());
        assert_eq!(parsed.window_scale, Some(9));
        // Only NOPs, or nothing: no options.
        assert_eq!(TcpOptions::parse(&[1, 1, 1, 1]), Ok(TcpOptions::default()));
        // A window scale above 14 is kept as sent (the engine clamps, RFC 7323 §2.3).
        assert_eq!(
            TcpOptions::parse(&[3, 3, 15]).unwrap().window_scale,
            Some(15)
        );
    }

    #[test]
    fn rejects_malformed_options() {
        let malformed: [&[u8]; 9] = [
            &[2],                      // no length byte
            &[30],                     // unknown kind, no length byte
            &[30, 0],                  // length below 2
            &[30, 1, 1],               // length below 2
            &[30, 5, 0, 0],            // runs past the end
            &[2, 3, 5],                // MSS with length 3
            &[3, 4, 1, 1],             // window scale with length 4
            &[4, 3, 0],                // SACK-permitted with length 3
            &[8, 8, 0, 0, 0, 0, 0, 0], // timestamps with length 8
        ];
        for list in malformed {
            assert!(
                matches!(TcpOptions::parse(list), Err(WireError::Malformed(_))),
                "{list:?}"
            );
        }
        // Inside a whole segment: the data offset covers a bad option.
        let mut bytes = segment(&SYN).to_vec();
        bytes[21] = 5;
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        let result = TcpRepr::parse(&packet, CLIENT, SERVER, false);
        assert!(matches!(result, Err(WireError::Malformed(_))));
    }

    #[test]
    fn rejects_bad_offsets_ports_and_checksums() {
        let mut bytes = segment(&DATA).to_vec();
        bytes[12] = 0x40; // data offset 4
        assert!(matches!(
            TcpPacket::new_checked(&bytes[..]),
            Err(WireError::Malformed(_))
        ));
        bytes[12] = 0xf0; // 60-byte header in a 64-byte segment: fine for the view
        assert!(TcpPacket::new_checked(&bytes[..]).is_ok());
        let mut bytes = segment(&FIN).to_vec();
        bytes[12] = 0xf0; // 60-byte header in a 32-byte segment
        assert_eq!(
            TcpPacket::new_checked(&bytes[..]).unwrap_err(),
            WireError::Truncated
        );

        let mut bytes = segment(&DATA).to_vec();
        bytes[40] ^= 0x20; // one payload bit
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&packet, SERVER, CLIENT, true),
            Err(WireError::BadChecksum)
        );
        let unverified = TcpRepr::parse(&packet, SERVER, CLIENT, false).unwrap();
        assert_eq!(unverified.payload[8], b'O');
        // Right bytes, wrong pseudo-header (swapped addresses would not show: sums commute).
        let packet = TcpPacket::new_checked(segment(&DATA)).unwrap();
        let elsewhere = Ipv4Addr::new(10, 200, 0, 3);
        assert_eq!(
            TcpRepr::parse(&packet, SERVER, elsewhere, true),
            Err(WireError::BadChecksum)
        );

        let mut bytes = segment(&RST).to_vec();
        bytes[2..4].copy_from_slice(&[0, 0]);
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            TcpRepr::parse(&packet, SERVER, CLIENT, false),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn keeps_every_flag() {
        let mut bytes = segment(&RST).to_vec();
        bytes[13] = 0xff;
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        let repr = TcpRepr::parse(&packet, SERVER, CLIENT, false).unwrap();
        assert_eq!(repr.flags, TcpFlags(0xff));
        assert!(repr.flags.urg() && repr.flags.ece() && repr.flags.cwr());
        assert_eq!(
            format!("{:?}", repr.flags),
            "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"
        );
    }

    pub(crate) fn any_tcp_repr(payload: &[u8]) -> impl Strategy<Value = TcpRepr<'_>> {
        let options = (
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<(u32, u32)>()),
            any::<bool>(),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=3),
        );
        (
            (1u16.., 1u16.., any::<u32>(), any::<u32>()),
            (any::<u8>(), any::<u16>(), options, 0..=payload.len()),
        )
            .prop_map(
                move |((src_port, dst_port, seq, ack), (flags, window_len, options, len))| {
                    let flags = TcpFlags(flags);
                    let (mss, window_scale, timestamps, sack_permitted, blocks) = options;
                    // What survives emit: MSS, window scale and SACK-permitted only on SYN,
                    // SACK blocks never on SYN.
                    let options = if flags.syn() {
                        TcpOptions {
                            mss,
                            window_scale,
                            sack_permitted,
                            timestamps,
                            ..TcpOptions::default()
                        }
                    } else {
                        let mut sack_blocks = SackBlocks::default();
                        for (left, right) in blocks {
                            sack_blocks.push(SeqNumber(left), SeqNumber(right));
                        }
                        TcpOptions {
                            timestamps,
                            sack_blocks,
                            ..TcpOptions::default()
                        }
                    };
                    TcpRepr {
                        src_port,
                        dst_port,
                        seq_number: SeqNumber(seq),
                        ack_number: SeqNumber(ack),
                        flags,
                        window_len,
                        options,
                        payload: &payload[..len],
                    }
                },
            )
    }

    const PAYLOAD: [u8; 300] = {
        let mut bytes = [0u8; 300];
        let mut index = 0;
        while index < bytes.len() {
            bytes[index] = (index * 7 + 3) as u8;
            index += 1;
        }
        bytes
    };

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(repr in any_tcp_repr(&PAYLOAD), src: u32, dst: u32) {
            let (src, dst) = (Ipv4Addr::from_bits(src), Ipv4Addr::from_bits(dst));
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), src, dst).unwrap();
            let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(packet.header_len() % 4, 0);
            prop_assert_eq!(TcpRepr::parse(&packet, src, dst, true), Ok(repr));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(packet) = TcpPacket::new_checked(&bytes[..]) {
                let _ = (packet.options(), packet.payload(), packet.flags());
                let _ = TcpRepr::parse(&packet, CLIENT, SERVER, true);
                let _ = TcpRepr::parse(&packet, CLIENT, SERVER, false);
            }
            let _ = TcpOptions::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_captures(
            cut in 0usize..45,
            flips in proptest::collection::vec((0usize..40, any::<u8>()), 0..6),
        ) {
            let mut bytes = segment(&SYN).to_vec();
            for (at, value) in flips {
                bytes[at] = value;
            }
            bytes.truncate(cut);
            if let Ok(packet) = TcpPacket::new_checked(&bytes[..]) {
                let _ = TcpRepr::parse(&packet, CLIENT, SERVER, false);
            }
        }
    }
}
