//! From a request-target to a file under the served directory, and never outside it.
//!
//! RFC 9112 §3.2 (request-target forms: origin-form, and absolute-form which a server MUST
//! accept), RFC 3986 §2.1 (percent-encoding) and §3.3 (path segments).
//!
//! What is refused, and with which status:
//!
//! | what | status | why |
//! |---|---|---|
//! | a target that is not `/…` (or `http://host/…`) | 400 | not a path |
//! | `%` not followed by two hex digits | 400 | malformed percent-encoding |
//! | a NUL byte, raw or `%00` | 400 | it would cut the path short in C |
//! | a `..` segment, raw or encoded (`%2e%2e`) | 403 | traversal; never normalised away |
//! | an encoded slash `%2F` or a backslash, raw or `%5C` | 403 | another segment separator in disguise |
//! | another control character (0x01–0x1F, 0x7F) | 403 | names nobody serves on purpose |
//! | a path whose symlinks resolve outside the directory | 403 | resolved and checked (`canonicalize`) |
//! | a device, FIFO or socket | 403 | only regular files and directories are served |
//! | a file or directory we may not read | 403 | |
//! | a missing file, or a file used as a directory | 404 | |
//!
//! The check is done twice: on the path (`canonicalize`, then a prefix check against the
//! canonical directory), and on the opened file descriptor (`/proc/self/fd/N`, what the
//! kernel actually opened, against the same prefix), so a symlink swapped in between the two
//! steps cannot lead outside either. The file is opened with `O_NOFOLLOW` and `O_NONBLOCK`
//! (a FIFO that appeared in between must not block the busy-poll thread).

use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The directory served, canonical.
#[derive(Clone, Debug)]
pub struct Root {
    dir: PathBuf,
}

/// Why a target does not lead to something we serve; each maps to a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// 400: the target is not a path we can decode.
    BadRequest(&'static str),
    /// 403: the target leads outside the directory, or to something we do not serve.
    Forbidden(&'static str),
    /// 404.
    NotFound,
}

impl PathError {
    pub fn status(self) -> u16 {
        match self {
            PathError::BadRequest(_) => 400,
            PathError::Forbidden(_) => 403,
            PathError::NotFound => 404,
        }
    }
}

/// A regular file, open for reading, with what the response needs to know about it.
#[derive(Debug)]
pub struct OpenFile {
    pub file: File,
    /// The canonical path (for the Content-Type by extension).
    pub path: PathBuf,
    pub len: u64,
    /// Modification time, seconds since the epoch.
    pub modified: i64,
}

/// What a target leads to.
#[derive(Debug)]
pub enum Resolved {
    /// A regular file (a directory's `index.html` included).
    File(OpenFile),
    /// A directory without `index.html`, asked for with a trailing slash: list it.
    Listing {
        /// The canonical directory.
        dir: PathBuf,
        /// The decoded URL path, for the listing's title (ends with '/').
        url_path: String,
    },
    /// A directory asked for without its trailing slash: redirect (301) to `location`, so
    /// that the listing's relative links resolve inside it.
    AddSlash { location: String },
}

impl Root {
    /// The served directory, which must exist and be a directory.
    pub fn new(dir: &Path) -> io::Result<Root> {
        let dir = dir.canonicalize()?;
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Root { dir })
    }

    /// The canonical directory served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves a request-target (as sent, query included) to what it leads to.
    pub fn resolve(&self, target: &str) -> Result<Resolved, PathError> {
        let decoded = decode_target(target)?;
        let mut path = self.dir.clone();
        for segment in &decoded.segments {
            path.push(OsStr::from_bytes(segment));
        }
        let canonical = self.inside(&path)?;
        let metadata = std::fs::metadata(&canonical).map_err(io_error)?;
        if metadata.is_dir() {
            if !decoded.trailing_slash {
                let mut location = decoded.raw_path.to_string();
                location.push('/');
                return Ok(Resolved::AddSlash { location });
            }
            let index = canonical.join("index.html");
            return match self.inside(&index) {
                Ok(index) => Ok(Resolved::File(self.open(&index)?)),
                Err(PathError::NotFound) => Ok(Resolved::Listing {
                    dir: canonical,
                    url_path: decoded.display_path(),
                }),
                Err(other) => Err(other),
            };
        }
        Ok(Resolved::File(self.open(&canonical)?))
    }

    /// Resolves every symlink of `path` and checks the result is the directory or below it.
    fn inside(&self, path: &Path) -> Result<PathBuf, PathError> {
        let canonical = path.canonicalize().map_err(io_error)?;
        if canonical.starts_with(&self.dir) {
            Ok(canonical)
        } else {
            Err(PathError::Forbidden(
                "resolves outside the served directory",
            ))
        }
    }

    /// Opens a canonical path, checks it is a regular file and that what was opened is
    /// still under the directory.
    fn open(&self, canonical: &Path) -> Result<OpenFile, PathError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(canonical)
            .map_err(io_error)?;
        let metadata = file.metadata().map_err(io_error)?;
        check_regular(&metadata)?;
        // What the kernel opened, by its descriptor: a component swapped for a symlink after
        // `canonicalize` shows here. Without /proc the path check above stands alone.
        let link = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if let Ok(opened) = std::fs::read_link(link)
            && !opened.starts_with(&self.dir)
        {
            return Err(PathError::Forbidden("opened outside the served directory"));
        }
        Ok(OpenFile {
            file,
            path: canonical.to_path_buf(),
            len: metadata.len(),
            modified: metadata.mtime(),
        })
    }
}

fn check_regular(metadata: &Metadata) -> Result<(), PathError> {
    if metadata.is_file() {
        Ok(())
    } else {
        Err(PathError::Forbidden("not a regular file"))
    }
}

/// The status of a failed file-system step.
fn io_error(error: io::Error) -> PathError {
    match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ENAMETOOLONG) => PathError::NotFound,
        Some(libc::ELOOP) => PathError::Forbidden("a symlink where none may be"),
        Some(libc::EACCES) | Some(libc::EPERM) => PathError::Forbidden("permission denied"),
        _ => PathError::Forbidden("cannot be opened"),
    }
}

/// A request-target decoded into path segments.
#[derive(Debug, PartialEq, Eq)]
struct DecodedPath<'a> {
    /// The path as sent (before the query), for a redirect's Location.
    raw_path: &'a str,
    /// Decoded segments, without empty and `.` segments.
    segments: Vec<Vec<u8>>,
    trailing_slash: bool,
}

impl DecodedPath<'_> {
    /// "/a/b/" with the decoded segments (lossy UTF-8), for a listing's title.
    fn display_path(&self) -> String {
        let mut text = String::from("/");
        for segment in &self.segments {
            text.push_str(&String::from_utf8_lossy(segment));
            text.push('/');
        }
        text
    }
}

/// Splits a request-target into decoded segments, refusing what could escape the directory.
fn decode_target(target: &str) -> Result<DecodedPath<'_>, PathError> {
    // RFC 9112 §3.2.2: "a server MUST accept the absolute-form in requests"; the authority
    // is not ours to check (Host names are not used to pick a directory).
    let path = match strip_scheme(target) {
        Some(after_scheme) => match after_scheme.find('/') {
            Some(slash) => &after_scheme[slash..],
            None => "/",
        },
        None => target,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Err(PathError::BadRequest("the target is not an absolute path"));
    }
    let mut segments = Vec::new();
    for raw in path.split('/') {
        let segment = percent_decode(raw)?;
        for &byte in &segment {
            match byte {
                0 => return Err(PathError::BadRequest("NUL byte in the path")),
                b'/' => return Err(PathError::Forbidden("encoded slash in the path")),
                b'\\' => return Err(PathError::Forbidden("backslash in the path")),
                0x01..=0x1f | 0x7f => {
                    return Err(PathError::Forbidden("control character in the path"));
                }
                _ => {}
            }
        }
        match segment.as_slice() {
            b"" | b"." => {}
            b".." => return Err(PathError::Forbidden("'..' in the path")),
            _ => segments.push(segment),
        }
    }
    Ok(DecodedPath {
        raw_path: path,
        segments,
        trailing_slash: path.ends_with('/'),
    })
}

/// The rest of an absolute-form target after `http://` or `https://` (case-insensitive).
fn strip_scheme(target: &str) -> Option<&str> {
    ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| &target[scheme.len()..])
    })
}

/// RFC 3986 §2.1 percent-decoding of one segment; a `%` without two hex digits is a 400.
fn percent_decode(segment: &str) -> Result<Vec<u8>, PathError> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .filter(|_| bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit());
            let Some(byte) = hex else {
                return Err(PathError::BadRequest("malformed percent-encoding"));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A served directory with files, a subdirectory, and symlinks in and out of it, beside
    /// a secret file outside it.
    struct Tree {
        _tmp: tempfile::TempDir,
        root: Root,
    }

    fn tree() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::write(base.join("secret.txt"), b"outside").unwrap();
        let www = base.join("www");
        std::fs::create_dir_all(www.join("sub")).unwrap();
        std::fs::create_dir_all(www.join("site")).unwrap();
        std::fs::write(www.join("a.txt"), b"hello").unwrap();
        std::fs::write(www.join("sub/b.bin"), b"bee").unwrap();
        std::fs::write(www.join("site/index.html"), b"<p>").unwrap();
        std::fs::write(www.join("with space.txt"), b"sp").unwrap();
        symlink(base.join("secret.txt"), www.join("escape")).unwrap();
        symlink("../../secret.txt", www.join("sub/escape-rel")).unwrap();
        symlink(base, www.join("updir")).unwrap();
        symlink("a.txt", www.join("alias")).unwrap();
        symlink(www.join("sub"), www.join("sub-abs")).unwrap();
        symlink("/dev/null", www.join("devnull")).unwrap();
        // std has no call for mkfifo(3).
        let made = std::process::Command::new("mkfifo")
            .arg(www.join("fifo"))
            .status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let root = Root::new(&www).unwrap();
        Tree { _tmp: tmp, root }
    }

    fn served(tree: &Tree, target: &str) -> Result<Vec<u8>, u16> {
        match tree.root.resolve(target) {
            Ok(Resolved::File(mut open)) => {
                let mut bytes = Vec::new();
                io::Read::read_to_end(&mut open.file, &mut bytes).unwrap();
                Ok(bytes)
            }
            Ok(Resolved::Listing { .. }) => Ok(b"<listing>".to_vec()),
            Ok(Resolved::AddSlash { .. }) => Err(301),
            Err(e) => Err(e.status()),
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        let tree = tree();
        let table: &[(&str, u16)] = &[
            ("/../secret.txt", 403),
            ("/sub/../../secret.txt", 403),
            ("/%2e%2e/secret.txt", 403),
            ("/%2E%2E%2Fsecret.txt", 403),
            ("/sub/..%2f..%2fsecret.txt", 403),
            ("/..%5csecret.txt", 403),
            ("/..\\secret.txt", 403),
            ("/a.txt%00.html", 400),
            ("/a.txt\0", 400),
            ("/%", 400),
            ("/%g0", 400),
            ("/%2", 400),
            ("secret.txt", 400),
            ("*", 400),
            ("/escape", 403),
            ("/sub/escape-rel", 403),
            ("/updir/secret.txt", 403),
            ("/devnull", 403),
            ("/fifo", 403),
            ("/a%0d%0aSet-Cookie:%20x", 403),
            ("/nothing-here", 404),
            ("/a.txt/x", 404),
            ("http://evil/../secret.txt", 403),
        ];
        assert!(table.len() >= 15);
        for (target, status) in table {
            assert_eq!(served(&tree, target), Err(*status), "{target:?}");
        }
    }

    #[test]
    fn ordinary_paths_are_served() {
        let tree = tree();
        let table: &[(&str, &[u8])] = &[
            ("/a.txt", b"hello"),
            ("/a.txt?x=1", b"hello"),
            ("//a.txt", b"hello"),
            ("/./a.txt", b"hello"),
            ("/%61.txt", b"hello"),
            ("/alias", b"hello"),
            ("/sub/b.bin", b"bee"),
            ("/sub-abs/b.bin", b"bee"),
            // Out through a symlink and back in: resolved, it is inside.
            ("/updir/www/a.txt", b"hello"),
            ("/with%20space.txt", b"sp"),
            ("/site/", b"<p>"),
            ("/", b"<listing>"),
            ("/sub/", b"<listing>"),
            ("http://host:8080/a.txt", b"hello"),
            ("HTTP://host", b"<listing>"),
        ];
        for (target, body) in table {
            assert_eq!(served(&tree, target).as_deref(), Ok(*body), "{target:?}");
        }
    }

    #[test]
    fn a_directory_without_its_slash_is_redirected() {
        let tree = tree();
        match tree.root.resolve("/sub?q") {
            Ok(Resolved::AddSlash { location }) => assert_eq!(location, "/sub/"),
            other => panic!("{other:?}"),
        }
        match tree.root.resolve("/sub/") {
            Ok(Resolved::Listing { url_path, dir }) => {
                assert_eq!(url_path, "/sub/");
                assert!(dir.ends_with("www/sub"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_open_file_knows_its_length_and_time() {
        let tree = tree();
        let Ok(Resolved::File(open)) = tree.root.resolve("/sub/b.bin") else {
            panic!("not a file");
        };
        assert_eq!(open.len, 3);
        assert!(open.modified > 1_600_000_000);
        assert!(open.path.ends_with("www/sub/b.bin"));
    }

    #[test]
    fn the_root_must_be_a_directory() {
        let tree = tree();
        assert!(Root::new(&tree.root.dir().join("a.txt")).is_err());
        assert!(Root::new(Path::new("/nonexistent/xdpget")).is_err());
    }
}
