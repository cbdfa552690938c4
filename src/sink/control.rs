//! The control record beside a partial download, and what `-c` may trust after a crash.
//!
//! While `NAME` downloads, the bytes go to `NAME.part` and a small control record lives in
//! `NAME.part.xdpget` (in the spirit of aria2's `.aria2` file). The record names the resource
//! (URL, length, `ETag`, `Last-Modified`) and the **finished ranges**: the byte ranges of
//! `NAME.part` known to be written (under `--fsync-policy on`: on disk). The file sink records
//! a range only after its bytes are stored (and, under `on`, msynced), so after `kill -9` (or,
//! under `on`, a power loss) `-c` never trusts more than what is there; the `.part` file
//! itself may be longer (it is preallocated) and hold bytes outside the ranges, which are
//! simply downloaded again. With one connection the ranges are mostly one prefix `0..P`;
//! with `-x N` several connections write different parts of the file at once, and `-c`
//! fetches exactly the holes between the ranges.
//!
//! Version 2 of the record lists the ranges, at most [`MAX_RANGES`] of them: a longer set is
//! cut down by dropping its shortest ranges, so the record under-claims and never claims a
//! byte that is not there. Version 1 (a `prefix P` line) is still read, as the one range
//! `0..P`.
//!
//! The record file holds two fixed-size slots written alternately, each a short text record
//! ending in a checksum line, so a torn write (power loss in the middle of an update) spoils
//! at most the slot being written and the other one, one update older, still stands. The
//! valid slot with the highest sequence number wins. `cat NAME.part.xdpget` shows both.
//!
//! HTTP validators follow RFC 9110 §8.8 (`ETag`, `Last-Modified`), which is what `-c` compares
//! before it sends a range request (RFC 9110 §14.2).

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::durability::Durability;
use crate::ranges::RangeSet;

/// Bytes per slot; two slots make the whole record file.
const SLOT_LEN: usize = 4096;
/// First line of every slot; the trailing digit is the format version.
const MAGIC: &str = "xdpget control record 2";
/// The first line of version 1, which recorded a prefix only.
const MAGIC_V1: &str = "xdpget control record 1";
/// The most ranges a record lists (more are cut down, see the module docs). A connection
/// leaves about one hole behind it while it runs, so `-x 16` needs a few dozen.
pub const MAX_RANGES: usize = 64;
/// Longest URL kept in a record, in escaped bytes (it is informational; validators decide).
const MAX_URL: usize = 1024;
/// Longest validator kept in a record, in escaped bytes.
const MAX_VALIDATOR: usize = 256;

/// What identifies the resource a partial file belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The URL asked for (informational: redirects may change it, so it is not compared).
    pub url: String,
    /// The full length of the resource, when the server said it.
    pub length: Option<u64>,
    /// The `ETag` header, verbatim (RFC 9110 §8.8.3).
    pub etag: Option<String>,
    /// The `Last-Modified` header, verbatim (RFC 9110 §8.8.2).
    pub last_modified: Option<String>,
}

impl Identity {
    /// Whether `self` and `other` may be the same representation: every validator that both
    /// carry is equal (lengths, then the `ETag`, then `Last-Modified`). Two identities with
    /// nothing in common to compare count as the same, as wget's `-c` assumes.
    pub fn same_resource(&self, other: &Identity) -> bool {
        fn agree<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
        }
        agree(&self.length, &other.length)
            && agree(&self.etag, &other.etag)
            && agree(&self.last_modified, &other.last_modified)
    }
}

/// `NAME.part`: where `NAME` is written until it is complete.
pub fn part_path(final_path: &Path) -> PathBuf {
    with_suffix(final_path, ".part")
}

/// `NAME.part.xdpget`: the control record of `NAME.part`.
pub fn control_path(final_path: &Path) -> PathBuf {
    with_suffix(final_path, ".part.xdpget")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Where `-c` resumes the download of a file, found by [`ResumeInfo::lookup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResumeInfo {
    /// Neither `NAME` nor `NAME.part` exists: start at byte 0.
    Fresh,
    /// `NAME.part` and a valid control record: the byte ranges `finished` are there, and
    /// `offset` is where the first of them starting at 0 ends (the prefix a single
    /// connection resumes from). `identity` is what they were downloaded from; compare it
    /// with the server's answer ([`Identity::same_resource`]) before resuming.
    Partial {
        offset: u64,
        identity: Identity,
        finished: RangeSet,
    },
    /// `NAME.part` without a readable control record (another program's `.part`, or a crash
    /// before the first record was written): nothing in it can be trusted, start at byte 0.
    Untrusted { part_len: u64 },
    /// A plain `NAME` without `NAME.part` (wget's partial file, or a finished earlier run):
    /// resume from its size, as `wget -c` does.
    Plain { offset: u64 },
}

impl ResumeInfo {
    /// Looks beside `final_path` for something to resume. `NAME.part` wins over `NAME`: a
    /// `.part` file is always the most recent attempt.
    pub fn lookup(final_path: &Path) -> io::Result<ResumeInfo> {
        let part = part_path(final_path);
        match std::fs::metadata(&part) {
            Ok(meta) if meta.is_file() => {
                return Ok(match read_record(&control_path(final_path))? {
                    // The .part may have lost a tail the record covers only if something
                    // other than xdpget touched it; never trust past its end.
                    Some(mut record) => {
                        record.finished.remove(meta.len(), u64::MAX);
                        ResumeInfo::Partial {
                            offset: record.finished.contiguous_len(),
                            identity: record.identity,
                            finished: record.finished,
                        }
                    }
                    None => ResumeInfo::Untrusted {
                        part_len: meta.len(),
                    },
                });
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        match std::fs::metadata(final_path) {
            Ok(meta) if meta.is_file() => Ok(ResumeInfo::Plain { offset: meta.len() }),
            Ok(_) => Ok(ResumeInfo::Fresh),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(ResumeInfo::Fresh),
            Err(error) => Err(error),
        }
    }

    /// The byte offset a single connection resumes from: the end of the finished prefix (0
    /// for `Fresh` and `Untrusted`).
    pub fn offset(&self) -> u64 {
        match self {
            ResumeInfo::Fresh | ResumeInfo::Untrusted { .. } => 0,
            ResumeInfo::Partial { offset, .. } | ResumeInfo::Plain { offset } => *offset,
        }
    }

    /// The byte ranges already there: what segmented downloads (`-x N`) skip.
    pub fn finished(&self) -> RangeSet {
        match self {
            ResumeInfo::Fresh | ResumeInfo::Untrusted { .. } => RangeSet::new(),
            ResumeInfo::Partial { finished, .. } => finished.clone(),
            ResumeInfo::Plain { offset } => RangeSet::from_range(0, *offset),
        }
    }
}

/// One decoded slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) sequence: u64,
    /// The finished ranges (version 1: the one range `0..prefix`).
    pub(super) finished: RangeSet,
    pub(super) identity: Identity,
}

#[cfg(test)]
impl Record {
    /// The end of the finished range that starts at 0.
    pub(super) fn prefix(&self) -> u64 {
        self.finished.contiguous_len()
    }
}

/// Reads the newest valid record of a control file; `None` if the file is missing or no slot
/// is valid.
pub(super) fn read_record(path: &Path) -> io::Result<Option<Record>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(read_slots(&file)?
        .into_iter()
        .flatten()
        .max_by_key(|r| r.sequence))
}

fn read_slots(file: &File) -> io::Result<[Option<Record>; 2]> {
    let mut slots = [None, None];
    for (index, slot) in slots.iter_mut().enumerate() {
        let mut buffer = vec![0u8; SLOT_LEN];
        let read = read_at_most(file, &mut buffer, (index * SLOT_LEN) as u64)?;
        *slot = decode(&buffer[..read]);
    }
    Ok(slots)
}

fn read_at_most(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The open control record of a download in progress.
#[derive(Debug)]
pub(super) struct ControlFile {
    file: File,
    path: PathBuf,
    identity: Identity,
    sequence: u64,
    /// Whether a record is fdatasync'd before it counts (`--fsync-policy`).
    durability: Durability,
}

impl ControlFile {
    /// Opens (or creates) the control file at `path` and records `finished` for `identity`
    /// in it (durably if `durability` syncs), in a sequence number above any valid record
    /// already there, so that a stale record of an earlier run can never win over this one.
    pub(super) fn open(
        path: &Path,
        identity: &Identity,
        finished: &RangeSet,
        durability: Durability,
    ) -> io::Result<ControlFile> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let newest = read_slots(&file)?
            .into_iter()
            .flatten()
            .map(|r| r.sequence)
            .max()
            .unwrap_or(0);
        let mut control = ControlFile {
            file,
            path: path.to_path_buf(),
            identity: identity.clone(),
            sequence: newest,
            durability,
        };
        // Both slots are written now, so that later updates overwrite allocated blocks and
        // cannot fail for lack of space on a disk the download has filled.
        control.record(finished)?;
        control.record(finished)?;
        Ok(control)
    }

    /// Records that the ranges of `finished` are in the file (at most [`MAX_RANGES`] of them,
    /// the longest). The caller must have stored them first, and under
    /// [`FsyncPolicy::On`](super::FsyncPolicy::On) made them durable too (msync or fdatasync
    /// of the data file); the record is then fdatasync'd as well.
    ///
    /// Records alternate between two slots, so the previous one stays whole while this one
    /// is written. The sequence number moves on only once the write is on disk: after a
    /// failed write a retry goes to the same slot, never over the last good record.
    pub(super) fn record(&mut self, finished: &RangeSet) -> io::Result<()> {
        let sequence = self.sequence + 1;
        let slot = encode(&Record {
            sequence,
            finished: finished.clone(),
            identity: self.identity.clone(),
        });
        let offset = (sequence % 2) * SLOT_LEN as u64;
        self.file.write_all_at(&slot, offset)?;
        self.durability.data(&self.file)?;
        self.sequence = sequence;
        Ok(())
    }

    /// Where the record lives.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The sync policy the record (and the flusher that holds it) follows.
    pub(super) fn durability(&self) -> &Durability {
        &self.durability
    }
}

/// Encodes a record as one full slot: text lines, a checksum line, newline padding. Keeps
/// the [`MAX_RANGES`] longest ranges, and fewer if even that would not fit the slot (only
/// with offsets of many digits and the longest URL and validators).
fn encode(record: &Record) -> Vec<u8> {
    let mut finished = record.finished.clone();
    finished.retain_largest(MAX_RANGES);
    loop {
        let slot = encode_with(record, &finished);
        if slot.len() <= SLOT_LEN || finished.is_empty() {
            return pad(slot);
        }
        finished.retain_largest(finished.range_count() - 1);
    }
}

/// The text of a record listing `finished`, with its checksum line, unpadded.
fn encode_with(record: &Record, finished: &RangeSet) -> Vec<u8> {
    let identity = &record.identity;
    // The prefix line is for people and scripts that read the record (`cat`, the e2e
    // tests); `decode` trusts the ranges.
    let mut body = format!(
        "{MAGIC}\nsequence {}\nprefix {}\n",
        record.sequence,
        finished.contiguous_len()
    );
    for (start, end) in finished.iter() {
        body.push_str(&format!("range {start} {end}\n"));
    }
    match identity.length {
        Some(length) => body.push_str(&format!("length {length}\n")),
        None => body.push_str("length unknown\n"),
    }
    if let Some(etag) = &identity.etag {
        body.push_str(&format!("etag {}\n", escape(etag, MAX_VALIDATOR)));
    }
    if let Some(last_modified) = &identity.last_modified {
        body.push_str(&format!(
            "last-modified {}\n",
            escape(last_modified, MAX_VALIDATOR)
        ));
    }
    body.push_str(&format!("url {}\n", escape(&identity.url, MAX_URL)));
    let check = checksum(body.as_bytes());
    body.push_str(&format!("check {check}\n"));
    body.into_bytes()
}

/// Pads a record to a full slot with newlines.
fn pad(mut slot: Vec<u8>) -> Vec<u8> {
    // Escaped fields are bounded (MAX_URL + 2 * MAX_VALIDATOR bytes), the fixed lines are
    // short and `encode` drops ranges until the rest fits, so this never cuts the record;
    // `decode` would reject a cut one anyway.
    slot.resize(SLOT_LEN, b'\n');
    slot.truncate(SLOT_LEN);
    slot
}

/// Decodes one slot; `None` unless it is complete and its checksum matches.
fn decode(slot: &[u8]) -> Option<Record> {
    let text = std::str::from_utf8(slot).ok()?;
    let check_at = text.find("\ncheck ")? + 1;
    let body = &text[..check_at];
    let check_line = text[check_at..].lines().next()?;
    if check_line.strip_prefix("check ")? != checksum(body.as_bytes()) {
        return None;
    }
    let mut lines = body.lines();
    let version_1 = match lines.next()? {
        MAGIC => false,
        MAGIC_V1 => true,
        _ => return None,
    };
    let mut sequence = None;
    let mut prefix = None;
    let mut finished = RangeSet::new();
    let mut identity = Identity::default();
    let mut length_seen = false;
    for line in lines {
        let (key, value) = line.split_once(' ')?;
        match key {
            "sequence" => sequence = Some(value.parse().ok()?),
            "prefix" => prefix = Some(value.parse::<u64>().ok()?),
            "range" if !version_1 => {
                let (start, end) = value.split_once(' ')?;
                let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
                if start >= end || finished.range_count() >= MAX_RANGES {
                    return None;
                }
                finished.insert(start, end);
            }
            "length" => {
                length_seen = true;
                identity.length = match value {
                    "unknown" => None,
                    n => Some(n.parse().ok()?),
                };
            }
            "etag" => identity.etag = Some(unescape(value)?),
            "last-modified" => identity.last_modified = Some(unescape(value)?),
            "url" => identity.url = unescape(value)?,
            // Unknown keys from a newer writer are skipped.
            _ => {}
        }
    }
    if !length_seen {
        return None;
    }
    if version_1 {
        finished = RangeSet::from_range(0, prefix?);
    }
    Some(Record {
        sequence: sequence?,
        finished,
        identity,
    })
}

/// The first 16 bytes of SHA-256, in hex.
fn checksum(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keeps a value on one line: backslash, CR and LF become `\\`, `\r`, `\n`. The result is
/// cut at a character boundary to at most `max` bytes.
fn escape(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max));
    let mut utf8 = [0u8; 4];
    for c in value.chars() {
        let piece: &str = match c {
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            c => c.encode_utf8(&mut utf8),
        };
        if out.len() + piece.len() > max {
            break;
        }
        out.push_str(piece);
    }
    out
}

fn unescape(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(match chars.next()? {
                '\\' => '\\',
                'n' => '\n',
                'r' => '\r',
                _ => return None,
            });
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::FsyncPolicy;

    fn on() -> Durability {
        Durability::new(FsyncPolicy::On)
    }

    /// The one range `0..n`.
    fn upto(n: u64) -> RangeSet {
        RangeSet::from_range(0, n)
    }

    fn identity() -> Identity {
        Identity {
            url: "http://example.test/a b\\c".to_string(),
            length: Some(1234),
            etag: Some("\"abc\nd\"".to_string()),
            last_modified: Some("Tue, 15 Nov 1994 08:12:31 GMT".to_string()),
        }
    }

    #[test]
    fn record_round_trips_and_rejects_damage() {
        let record = Record {
            sequence: 7,
            finished: upto(99),
            identity: identity(),
        };
        let slot = encode(&record);
        assert_eq!(slot.len(), SLOT_LEN);
        assert_eq!(decode(&slot), Some(record.clone()));
        // A torn slot (only the first half written) is rejected.
        assert_eq!(decode(&slot[..40]), None);
        // A flipped digit in the prefix is caught by the checksum.
        let text = String::from_utf8(slot.clone()).expect("utf8");
        let damaged = text.replacen("range 0 99", "range 0 98", 1);
        assert_eq!(decode(damaged.as_bytes()), None);
        // Unknown length survives.
        let mut unknown = record;
        unknown.identity.length = None;
        assert_eq!(decode(&encode(&unknown)), Some(unknown));
    }

    #[test]
    fn long_fields_fit_in_a_slot() {
        let mut long = identity();
        long.url = "\n".repeat(10_000);
        long.etag = Some("\\".repeat(10_000));
        long.last_modified = Some("\u{1F600}".repeat(10_000));
        let record = Record {
            sequence: 1,
            finished: upto(5),
            identity: long,
        };
        let decoded = decode(&encode(&record)).expect("fits");
        assert_eq!(decoded.prefix(), 5);
        assert_eq!(decoded.identity.url, "\n".repeat(MAX_URL / 2));
        assert_eq!(decoded.identity.etag, Some("\\".repeat(MAX_VALIDATOR / 2)));
        assert_eq!(
            decoded.identity.last_modified,
            Some("\u{1F600}".repeat(MAX_VALIDATOR / 4))
        );
    }

    #[test]
    fn newest_valid_slot_wins_and_survives_a_torn_update() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f.part.xdpget");
        let mut control = ControlFile::open(&path, &identity(), &upto(0), on()).expect("open");
        control.record(&upto(100)).expect("record");
        control.record(&upto(200)).expect("record");
        assert_eq!(
            read_record(&path).expect("read").map(|r| r.prefix()),
            Some(200)
        );
        // Tear the slot just written (sequence 4 lives in slot 0): the older one stands.
        let file = File::options().write(true).open(&path).expect("open");
        file.write_all_at(b"garbage", 30).expect("tear");
        assert_eq!(
            read_record(&path).expect("read").map(|r| r.prefix()),
            Some(100)
        );
        // Reopening continues above the highest valid sequence (3) and fills both slots.
        drop(control);
        let reopened = ControlFile::open(&path, &identity(), &upto(150), on()).expect("reopen");
        let record = read_record(&path).expect("read").expect("record");
        assert_eq!((record.sequence, record.prefix()), (5, 150));
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len(),
            2 * SLOT_LEN as u64
        );
        assert_eq!(reopened.path(), path);
    }

    /// Under the default policy a record is written (the page cache keeps it, whatever becomes
    /// of the process) but never synced; under `on` every record is.
    #[test]
    fn records_are_synced_only_under_the_fsync_policy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f.part.xdpget");
        let off = Durability::new(FsyncPolicy::Off);
        let mut control =
            ControlFile::open(&path, &identity(), &upto(0), off.clone()).expect("open");
        control.record(&upto(100)).expect("record");
        assert_eq!(
            read_record(&path).expect("read").map(|r| r.prefix()),
            Some(100)
        );
        assert_eq!(off.calls().get(), 0);
        drop(control);

        let on = on();
        let mut control =
            ControlFile::open(&path, &identity(), &upto(0), on.clone()).expect("open");
        control.record(&upto(200)).expect("record");
        // Two slots at open, one record since.
        assert_eq!(on.calls().get(), 3);
    }

    #[test]
    fn lookup_cases() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.iso");
        assert_eq!(
            ResumeInfo::lookup(&name).expect("lookup"),
            ResumeInfo::Fresh
        );

        std::fs::write(&name, b"12345").expect("write");
        assert_eq!(
            ResumeInfo::lookup(&name).expect("lookup"),
            ResumeInfo::Plain { offset: 5 }
        );

        std::fs::write(part_path(&name), vec![0u8; 50]).expect("write part");
        assert_eq!(
            ResumeInfo::lookup(&name).expect("lookup"),
            ResumeInfo::Untrusted { part_len: 50 }
        );

        let control =
            ControlFile::open(&control_path(&name), &identity(), &upto(30), on()).expect("control");
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(
            info,
            ResumeInfo::Partial {
                offset: 30,
                identity: identity(),
                finished: upto(30),
            }
        );
        assert_eq!(info.offset(), 30);
        drop(control);

        // A record claiming more than the .part holds is trusted only up to the .part's end.
        std::fs::write(part_path(&name), vec![0u8; 20]).expect("shrink part");
        assert_eq!(ResumeInfo::lookup(&name).expect("lookup").offset(), 20);
    }

    /// A record of version 1 (a prefix) from an earlier xdpget reads as the one range.
    #[test]
    fn a_version_1_record_is_one_range() {
        let body = format!("{MAGIC_V1}\nsequence 3\nprefix 77\nlength 100\nurl http://a.test/\n");
        let slot = format!("{body}check {}\n", checksum(body.as_bytes()));
        let record = decode(slot.as_bytes()).expect("valid");
        assert_eq!(record.finished.as_slice(), [(0, 77)]);
        assert_eq!(record.sequence, 3);
        // A version-2 line in a version-1 record (or the reverse) is not trusted.
        let mixed = body.replace("prefix 77", "range 0 77");
        let slot = format!("{mixed}check {}\n", checksum(mixed.as_bytes()));
        assert_eq!(decode(slot.as_bytes()), None);
    }

    /// Ranges round-trip; more than MAX_RANGES are cut to the longest, and even the longest
    /// fields with the largest offsets fit a slot: the record only ever claims less.
    #[test]
    fn finished_ranges_round_trip_bounded_and_never_over_claimed() {
        let many: RangeSet = (0..100u64).map(|i| (i * 1000, i * 1000 + 1 + i)).collect();
        let record = Record {
            sequence: 9,
            finished: many.clone(),
            identity: identity(),
        };
        let decoded = decode(&encode(&record)).expect("fits");
        assert_eq!(decoded.finished.range_count(), MAX_RANGES);
        // The 64 longest are the last 64.
        assert_eq!(
            decoded.finished.as_slice(),
            &many.as_slice()[100 - MAX_RANGES..]
        );

        let mut huge = identity();
        huge.url = "\n".repeat(10_000);
        huge.etag = Some("\\".repeat(10_000));
        huge.last_modified = Some("\r".repeat(10_000));
        let top = u64::MAX - 1000;
        let far: RangeSet = (0..MAX_RANGES as u64)
            .map(|i| (top - 10 * (i + 1), top - 10 * (i + 1) + 5))
            .collect();
        let record = Record {
            sequence: 1,
            finished: far.clone(),
            identity: huge,
        };
        let slot = encode(&record);
        assert_eq!(slot.len(), SLOT_LEN);
        let decoded = decode(&slot).expect("fits");
        assert!(decoded.finished.range_count() > MAX_RANGES / 2);
        for (start, end) in decoded.finished.iter() {
            assert!(far.contains(start, end));
        }
    }

    #[test]
    fn lookup_trusts_ranges_only_within_the_part() {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = dir.path().join("file.iso");
        std::fs::write(part_path(&name), vec![0u8; 250]).expect("write part");
        let ranges: RangeSet = [(0, 50), (100, 200), (240, 300)].into_iter().collect();
        drop(ControlFile::open(&control_path(&name), &identity(), &ranges, on()).expect("open"));
        let info = ResumeInfo::lookup(&name).expect("lookup");
        assert_eq!(info.offset(), 50);
        assert_eq!(
            info.finished().as_slice(),
            [(0, 50), (100, 200), (240, 250)]
        );
    }

    #[test]
    fn identities_compare_by_validators() {
        let a = identity();
        let mut b = identity();
        b.url = "http://mirror.test/other".to_string();
        assert!(a.same_resource(&b));
        b.etag = Some("\"other\"".to_string());
        assert!(!a.same_resource(&b));
        let mut c = identity();
        c.length = Some(1);
        assert!(!a.same_resource(&c));
        assert!(a.same_resource(&Identity::default()));
    }
}
