//! Recording frames to a pcap file, so that any run — on a NIC or in the simulator — can be
//! opened in Wireshark or `tcpdump -r`.
//!
//! Format: classic libpcap ("pcap-savefile", documented in the `pcap-savefile(5)` man page
//! and draft-ietf-opsawg-pcap): a 24-byte global header, then per frame a 16-byte record
//! header and the frame's bytes. We write little-endian with the microsecond magic
//! `0xa1b2c3d4` and link type 1 (`LINKTYPE_ETHERNET`), so readers see whole Ethernet frames
//! exactly as the driver handed them over. Timestamps are the driver's clock: virtual time
//! in the simulator (a run starts at 0.000000 s), `CLOCK_MONOTONIC` on a NIC.

use std::io::{self, Write};

use super::{Driver, DriverError, DriverStats};
use crate::time::Instant;

/// The magic number of a microsecond-resolution pcap file.
pub const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`: frames start with an Ethernet II header.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The largest number of bytes stored per frame; longer frames are cut (and say so).
pub const DEFAULT_SNAPLEN: u32 = 65_535;

const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// Writes a classic pcap file to any `Write` (wrap files in a `BufWriter`).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
    frames: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header and returns a writer for the records.
    pub fn new(out: W) -> io::Result<PcapWriter<W>> {
        PcapWriter::with_snaplen(out, DEFAULT_SNAPLEN)
    }

    /// As [`PcapWriter::new`], storing at most `snaplen` bytes of each frame.
    pub fn with_snaplen(mut out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut header = [0u8; GLOBAL_HEADER_LEN];
        header[0..4].copy_from_slice(&PCAP_MAGIC_MICROS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // 8..12 thiszone and 12..16 sigfigs stay zero: timestamps are plain, in UTC.
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            snaplen,
            frames: 0,
        })
    }

    /// Appends one frame seen at `at`.
    pub fn write_frame(&mut self, at: Instant, frame: &[u8]) -> io::Result<()> {
        let micros = at.total_micros();
        let seconds = u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX);
        let sub_micros = (micros % 1_000_000) as u32;
        let original_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let captured_len = original_len.min(self.snaplen);
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&seconds.to_le_bytes());
        header[4..8].copy_from_slice(&sub_micros.to_le_bytes());
        header[8..12].copy_from_slice(&captured_len.to_le_bytes());
        header[12..16].copy_from_slice(&original_len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&frame[..captured_len as usize])?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One record read back from a pcap file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapRecord {
    pub at: Instant,
    /// The frame's length on the wire (may exceed `data.len()` if the snaplen cut it).
    pub original_len: u32,
    pub data: Vec<u8>,
}

/// Why a pcap file could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PcapReadError {
    #[error("the file is too short for a pcap header")]
    Truncated,
    #[error("the file is not a little-endian microsecond pcap file (magic {0:#010x})")]
    BadMagic(u32),
    #[error("the link type is {0}, not Ethernet (1)")]
    NotEthernet(u32),
    #[error("record {index} runs past the end of the file")]
    TruncatedRecord { index: usize },
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

/// Reads back a file written by [`PcapWriter`] (for tests and tools that check captures).
pub fn read_pcap(bytes: &[u8]) -> Result<Vec<PcapRecord>, PcapReadError> {
    let magic = le_u32(bytes, 0).ok_or(PcapReadError::Truncated)?;
    if magic != PCAP_MAGIC_MICROS {
        return Err(PcapReadError::BadMagic(magic));
    }
    let link_type = le_u32(bytes, 20).ok_or(PcapReadError::Truncated)?;
    if link_type != LINKTYPE_ETHERNET {
        return Err(PcapReadError::NotEthernet(link_type));
    }
    let mut records = Vec::new();
    let mut offset = GLOBAL_HEADER_LEN;
    while offset < bytes.len() {
        let index = records.len();
        let truncated = PcapReadError::TruncatedRecord { index };
        let field = |at: usize| le_u32(bytes, offset + at).ok_or(truncated.clone());
        let (seconds, micros, captured_len, original_len) =
            (field(0)?, field(4)?, field(8)?, field(12)?);
        let start = offset + RECORD_HEADER_LEN;
        let end = start
            .checked_add(captured_len as usize)
            .filter(|&end| end <= bytes.len())
            .ok_or(truncated.clone())?;
        records.push(PcapRecord {
            at: Instant::from_micros(u64::from(seconds) * 1_000_000 + u64::from(micros)),
            original_len,
            data: bytes[start..end].to_vec(),
        });
        offset = end;
    }
    Ok(records)
}

/// Any driver, with every frame received or transmitted also written to a pcap file.
///
/// Where it sits in a stack of wrappers decides what it sees: outside a
/// [`FaultInjector`](super::fault::FaultInjector) it records what the engine got and gave
/// (after the faults), inside it what the device carried.
///
/// A write error does not lose frames: the frame still goes through, the first error is
/// kept and returned by the next `receive`, `transmit` or `flush`, and recording stops.
#[derive(Debug)]
pub struct PcapDriver<D: Driver, W: Write> {
    inner: D,
    writer: PcapWriter<W>,
    error: Option<io::Error>,
}

impl<D: Driver, W: Write> PcapDriver<D, W> {
    /// Records `inner`'s traffic with `writer`.
    pub fn new(inner: D, writer: PcapWriter<W>) -> PcapDriver<D, W> {
        PcapDriver {
            inner,
            writer,
            error: None,
        }
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped driver, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Flushes the capture and returns the driver and the writer's output.
    pub fn finish(self) -> (D, io::Result<W>) {
        let out = match self.error {
            Some(error) => Err(error),
            None => self.writer.finish(),
        };
        (self.inner, out)
    }

    fn take_error(&mut self) -> Result<(), DriverError> {
        match self.error.take() {
            Some(source) => Err(DriverError::Io {
                context: "writing the pcap capture",
                source,
            }),
            None => Ok(()),
        }
    }
}

/// Records a frame unless an earlier write failed.
fn record<W: Write>(
    writer: &mut PcapWriter<W>,
    error: &mut Option<io::Error>,
    at: Instant,
    frame: &[u8],
) {
    if error.is_none()
        && let Err(e) = writer.write_frame(at, frame)
    {
        *error = Some(e);
    }
}

impl<D: Driver, W: Write> Driver for PcapDriver<D, W> {
    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn receive<F: FnMut(&[u8])>(&mut self, max: usize, mut f: F) -> Result<usize, DriverError> {
        let now = self.inner.now();
        let (writer, error) = (&mut self.writer, &mut self.error);
        let count = self.inner.receive(max, |frame| {
            record(writer, error, now, frame);
            f(frame);
        })?;
        self.take_error()?;
        Ok(count)
    }

    fn transmit<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut f: F,
    ) -> Result<usize, DriverError> {
        let now = self.inner.now();
        let (writer, error) = (&mut self.writer, &mut self.error);
        let count = self.inner.transmit(max, |buf| {
            let len = f(buf);
            if let Some(frame) = buf.get(..len).filter(|frame| !frame.is_empty()) {
                record(writer, error, now, frame);
            }
            len
        })?;
        self.take_error()?;
        Ok(count)
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        self.inner.flush()?;
        self.take_error()
    }

    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        self.inner.wait(deadline)
    }

    fn max_frame_len(&self) -> usize {
        self.inner.max_frame_len()
    }

    fn stats(&self) -> DriverStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::sim::{Link, LinkConfig, PathConfig, SimDriver, SimPeer};
    use core::time::Duration;

    #[test]
    fn file_layout_byte_for_byte() {
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        writer
            .write_frame(Instant::from_micros(1_500_000), &[0xaa; 3])
            .unwrap();
        writer
            .write_frame(Instant::from_micros(7), &[1, 2])
            .unwrap();
        assert_eq!(writer.frames(), 2);
        let bytes = writer.finish().unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, // magic, version 2.4
            0, 0, 0, 0, 0, 0, 0, 0,             // thiszone, sigfigs
            0xff, 0xff, 0, 0, 1, 0, 0, 0,       // snaplen 65535, LINKTYPE_ETHERNET
            1, 0, 0, 0, 0x20, 0xa1, 0x07, 0,    // 1 s, 500000 µs
            3, 0, 0, 0, 3, 0, 0, 0,             // captured 3, original 3
            0xaa, 0xaa, 0xaa,
            0, 0, 0, 0, 7, 0, 0, 0,             // 0 s, 7 µs
            2, 0, 0, 0, 2, 0, 0, 0,
            1, 2,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn snaplen_cuts_and_reader_reads_back() {
        let mut writer = PcapWriter::with_snaplen(Vec::new(), 4).unwrap();
        writer
            .write_frame(Instant::from_millis(2), &[9; 10])
            .unwrap();
        let bytes = writer.finish().unwrap();
        let records = read_pcap(&bytes).unwrap();
        assert_eq!(
            records,
            vec![PcapRecord {
                at: Instant::from_millis(2),
                original_len: 10,
                data: vec![9; 4]
            }]
        );
        assert_eq!(
            read_pcap(&bytes[..bytes.len() - 1]),
            Err(PcapReadError::TruncatedRecord { index: 0 })
        );
        assert_eq!(read_pcap(&bytes[..3]), Err(PcapReadError::Truncated));
        assert!(matches!(
            read_pcap(&[0; 24]),
            Err(PcapReadError::BadMagic(0))
        ));
    }

    /// Echoes every frame back.
    #[derive(Default)]
    struct Echo(Vec<Vec<u8>>);
    impl SimPeer for Echo {
        fn on_frame(&mut self, _now: Instant, frame: &[u8]) {
            self.0.push(frame.to_vec());
        }
        fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
            let mut frame = self.0.pop()?;
            frame[0] ^= 0xff; // so the reply differs from the request
            buf[..frame.len()].copy_from_slice(&frame);
            Some(frame.len())
        }
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn on_timeout(&mut self, _now: Instant) {}
    }

    #[test]
    fn driver_records_tx_and_rx_with_their_times() {
        let path = PathConfig {
            delay: Duration::from_millis(3),
            ..PathConfig::IDEAL
        };
        let link = Link::new(LinkConfig::symmetric(0, path)).unwrap();
        let sim = SimDriver::new(link, Echo::default());
        let mut driver = PcapDriver::new(sim, PcapWriter::new(Vec::new()).unwrap());
        let request: Vec<u8> = (0..60).collect();
        let mut to_send = Some(&request);
        let sent = driver
            .transmit(4, |buf| match to_send.take() {
                Some(frame) => {
                    buf[..frame.len()].copy_from_slice(frame);
                    frame.len()
                }
                None => 0,
            })
            .unwrap();
        assert_eq!(sent, 1);
        driver.flush().unwrap();
        driver.wait(None).unwrap();
        let mut replies = Vec::new();
        assert_eq!(driver.receive(4, |f| replies.push(f.to_vec())).unwrap(), 1);
        let (_, out) = driver.finish();
        let records = read_pcap(&out.unwrap()).unwrap();
        let mut reply = request.clone();
        reply[0] ^= 0xff;
        assert_eq!(
            records,
            vec![
                PcapRecord {
                    at: Instant::ZERO,
                    original_len: 60,
                    data: request
                },
                PcapRecord {
                    at: Instant::from_millis(6),
                    original_len: 60,
                    data: reply.clone()
                },
            ]
        );
        assert_eq!(replies, vec![reply]);
    }

    #[test]
    fn write_errors_surface_once_frames_still_flow() {
        struct Failing(usize);
        impl Write for Failing {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk full"));
                }
                self.0 -= 1;
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let link = Link::new(LinkConfig::symmetric(0, PathConfig::IDEAL)).unwrap();
        let sim = SimDriver::new(link, Echo::default());
        // The global header is one write; the first record header fails.
        let mut driver = PcapDriver::new(sim, PcapWriter::new(Failing(1)).unwrap());
        let mut once = true;
        let error = driver
            .transmit(1, |_| if std::mem::take(&mut once) { 60 } else { 0 })
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("writing the pcap capture: disk full"),
            "{error}"
        );
        driver.flush().unwrap();
        assert_eq!(driver.inner().stats().tx_frames, 1, "the frame still left");
    }
}
