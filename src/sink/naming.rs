//! Output names, chosen the way wget chooses them.
//!
//! - The name is the last segment of the URL's path, percent-decoded (RFC 3986 §2.1), with
//!   the query kept after a `?` as wget does (`a.php?x=1`); the fragment is dropped.
//! - `/`, an empty path, `.` and `..` give `index.html`.
//! - Decoding never escapes the directory: a decoded `/` (from `%2F`), NUL and other control
//!   bytes are written back as `%2F`, `%00`, ...; a segment that decodes to invalid UTF-8 is
//!   kept undecoded.
//! - Names are cut (at a character boundary) to [`MAX_NAME_BYTES`], leaving room for `.part.xdpget` and a
//!   `.NNN` suffix within the 255-byte limit of Linux file systems.
//! - No clobbering: if `NAME` (or its `NAME.part`, an unfinished download) exists, the
//!   next free of `NAME.1`, `NAME.2`, ... is used, unless `-O` names the file or `-c`
//!   continues it.
//! - `-P DIR` prefixes the directory; `-O FILE` is used as given (wget ignores `-P` then).
//!
//! Everything is a pure function over an `exists` check, so tests need no file system.

use std::path::{Path, PathBuf};

use super::control::part_path;

/// Longest file name taken from a URL, in bytes.
pub const MAX_NAME_BYTES: usize = 230;

/// What the command line says about the output name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamingOptions {
    /// `-O FILE` (not `-O -`, which the CLI turns into stdout).
    pub output_document: Option<PathBuf>,
    /// `-P DIR`.
    pub directory_prefix: Option<PathBuf>,
    /// `-c`: continue `NAME` itself, never `NAME.1`.
    pub continue_partial: bool,
}

/// The path a download of `url` is saved to. `exists` tells whether a path is taken.
pub fn output_path(url: &str, options: &NamingOptions, exists: impl Fn(&Path) -> bool) -> PathBuf {
    if let Some(explicit) = &options.output_document {
        return explicit.clone();
    }
    let name = file_name_from_url(url);
    let base = match &options.directory_prefix {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    };
    if options.continue_partial {
        base
    } else {
        unclobbered(&base, exists)
    }
}

/// `path` if neither it nor its `.part` exists, else the first free `path.N` (N = 1, 2, ...).
pub fn unclobbered(path: &Path, exists: impl Fn(&Path) -> bool) -> PathBuf {
    let taken = |p: &Path| exists(p) || exists(&part_path(p));
    if !taken(path) {
        return path.to_path_buf();
    }
    let mut n: u64 = 1;
    loop {
        let mut candidate = path.as_os_str().to_owned();
        candidate.push(format!(".{n}"));
        let candidate = PathBuf::from(candidate);
        if !taken(&candidate) || n == u64::MAX {
            return candidate;
        }
        n += 1;
    }
}

/// The file name wget gives `url`: last path segment (plus `?query`), decoded and made safe.
pub fn file_name_from_url(url: &str) -> String {
    let (path, query) = split_path_and_query(url);
    let segment = path.rsplit('/').next().unwrap_or("");
    let mut name = safe_component(segment);
    if name.is_empty() || name == "." || name == ".." {
        name = "index.html".to_string();
    }
    if let Some(query) = query {
        name.push('?');
        name.push_str(&safe_component(query));
    }
    truncate_at_char_boundary(&mut name, MAX_NAME_BYTES);
    name
}

/// The path (possibly empty) and the query of a URL; scheme, authority and fragment dropped.
fn split_path_and_query(url: &str) -> (&str, Option<&str>) {
    let url = url.split('#').next().unwrap_or("");
    let after_scheme = match url.find("://") {
        Some(at) => &url[at + 3..],
        None => url,
    };
    // The authority ends at the first '/', '?' or end (RFC 3986 §3.2).
    let path_start = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
    let rest = &after_scheme[path_start..];
    match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    }
}

/// Percent-decodes `text` and writes back anything unsafe in a file name as `%XX`.
fn safe_component(text: &str) -> String {
    let decoded = percent_decode(text.as_bytes());
    let bytes = match std::str::from_utf8(&decoded) {
        Ok(_) => decoded,
        Err(_) => text.as_bytes().to_vec(),
    };
    let mut out = Vec::with_capacity(bytes.len());
    for &b in &bytes {
        if b == b'/' || b < 0x20 || b == 0x7f {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
    // Only ASCII bytes were replaced by ASCII, so UTF-8 validity is kept.
    String::from_utf8(out).unwrap_or_default()
}

/// RFC 3986 §2.1 percent-decoding; a `%` without two hex digits stays as it is.
pub(crate) fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = bytes.get(i + 1).and_then(|&b| (b as char).to_digit(16));
            let low = bytes.get(i + 2).and_then(|&b| (b as char).to_digit(16));
            if let (Some(high), Some(low)) = (high, low) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// `--content-disposition`: the file name a `Content-Disposition` value suggests (RFC 6266
/// §4.1 `filename`, or §4.3 `filename*` in RFC 8187's `UTF-8''percent-encoded` form, which
/// wins), made safe as RFC 6266 §4.3 asks: only the last path component (no `/` or `\`),
/// no leading dots (no hidden files, no `..`), control characters written as `%XX`, cut to
/// [`MAX_NAME_BYTES`]. `None` when the value names no usable file.
pub fn disposition_file_name(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for parameter in split_parameters(value).skip(1) {
        let Some((name, raw)) = parameter.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let raw = raw.trim();
        match name.as_str() {
            "filename" => plain = Some(unquote(raw)),
            "filename*" => {
                // ext-value = charset "'" [ language ] "'" value-chars (RFC 8187 §3.2)
                let mut parts = raw.splitn(3, '\'');
                let (charset, _, encoded) = (parts.next()?, parts.next()?, parts.next()?);
                let bytes = percent_decode(encoded.as_bytes());
                extended = match charset.to_ascii_lowercase().as_str() {
                    "utf-8" => String::from_utf8(bytes).ok(),
                    "iso-8859-1" => Some(bytes.iter().map(|&b| char::from(b)).collect()),
                    _ => None,
                };
            }
            _ => {}
        }
    }
    let suggested = extended.or(plain)?;
    let last = suggested.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name = String::with_capacity(last.len());
    for c in last.trim_start_matches('.').chars() {
        if c.is_control() {
            let mut buffer = [0u8; 4];
            for b in c.encode_utf8(&mut buffer).bytes() {
                name.push_str(&format!("%{b:02X}"));
            }
        } else {
            name.push(c);
        }
    }
    let name = name.trim().to_string();
    let mut name = name.trim_start_matches('.').to_string();
    truncate_at_char_boundary(&mut name, MAX_NAME_BYTES);
    (!name.is_empty()).then_some(name)
}

/// The `;`-separated parts of a header value, a `;` inside a quoted string not counting.
fn split_parameters(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter()
}

/// A quoted-string's content (RFC 9110 §5.6.4), or a token as it is.
fn unquote(raw: &str) -> String {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

fn truncate_at_char_boundary(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn name(url: &str) -> String {
        file_name_from_url(url)
    }

    #[test]
    fn content_disposition_names_are_made_safe() {
        let cases = [
            ("attachment; filename=\"report.pdf\"", Some("report.pdf")),
            ("attachment; filename=plain.txt", Some("plain.txt")),
            (
                "inline; filename=\"a;b \\\"q\\\".txt\"",
                Some("a;b \"q\".txt"),
            ),
            // filename* wins (RFC 6266 §4.3) and is RFC 8187-decoded.
            (
                "attachment; filename=\"x.txt\"; filename*=UTF-8''caf%C3%A9.txt",
                Some("café.txt"),
            ),
            ("attachment; filename*=iso-8859-1'en'%E9t%E9", Some("été")),
            // Path separators: only the last component.
            ("attachment; filename=\"../../etc/passwd\"", Some("passwd")),
            ("attachment; filename=\"..\\..\\win.ini\"", Some("win.ini")),
            ("attachment; filename*=UTF-8''..%2F..%2Fx", Some("x")),
            // No leading dots, no control characters.
            ("attachment; filename=\".bashrc\"", Some("bashrc")),
            ("attachment; filename=\"...\"", None),
            ("attachment; filename=\"a%0Ab\"", Some("a%0Ab")),
            ("attachment; filename*=UTF-8''a%0Ab%1B", Some("a%0Ab%1B")),
            ("attachment; filename=\"\"", None),
            ("attachment", None),
            ("attachment; filename*=UTF-8''%FF", None),
        ];
        for (value, expected) in cases {
            let got = disposition_file_name(value);
            assert_eq!(got.as_deref(), expected, "{value}");
            if let Some(name) = got {
                assert!(
                    !name.contains('/') && !name.starts_with('.'),
                    "{value}: {name}"
                );
                assert!(!name.chars().any(char::is_control), "{value}: {name}");
            }
        }
    }

    #[test]
    fn names_from_urls() {
        assert_eq!(name("http://host/dir/big.iso"), "big.iso");
        assert_eq!(name("http://host/"), "index.html");
        assert_eq!(name("http://host"), "index.html");
        assert_eq!(name("http://host/dir/"), "index.html");
        assert_eq!(name("http://host:8080/a%20b.txt"), "a b.txt");
        assert_eq!(name("http://host/caf%C3%A9"), "café");
        assert_eq!(name("http://host/a.iso#part2"), "a.iso");
    }

    #[test]
    fn query_strings_are_kept_like_wget() {
        assert_eq!(name("http://host/a.php?x=1&y=2"), "a.php?x=1&y=2");
        assert_eq!(name("http://host/?q=1"), "index.html?q=1");
        assert_eq!(name("http://host?q=a%2Fb"), "index.html?q=a%2Fb");
    }

    #[test]
    fn decoding_never_escapes_the_directory() {
        assert_eq!(
            name("http://host/a%2F..%2F..%2Fetc%2Fpasswd"),
            "a%2F..%2F..%2Fetc%2Fpasswd"
        );
        assert_eq!(name("http://host/dir/.."), "index.html");
        assert_eq!(name("http://host/%2E%2E"), "index.html");
        assert_eq!(name("http://host/%2e"), "index.html");
        assert_eq!(name("http://host/a%00b%0A"), "a%00b%0A");
        // Invalid UTF-8 after decoding: keep the segment as written.
        assert_eq!(name("http://host/%FF%FE.bin"), "%FF%FE.bin");
        // A stray '%' is kept.
        assert_eq!(name("http://host/100%.txt"), "100%.txt");
        for url in ["http://h/%2F", "http://h/..%2F", "http://h/x?%2F..%2F"] {
            let n = name(url);
            assert!(!n.contains('/') && n != ".." && n != ".", "{url} gave {n}");
        }
    }

    #[test]
    fn long_names_are_cut_at_a_char_boundary() {
        let long = format!("http://host/{}", "é".repeat(300));
        let n = name(&long);
        assert!(n.len() <= MAX_NAME_BYTES);
        assert!(n.chars().all(|c| c == 'é'));
    }

    #[test]
    fn no_clobber_numbers_and_respects_part_files() {
        let taken: HashSet<PathBuf> = ["f.iso", "f.iso.1", "g.iso.part"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let exists = |p: &Path| taken.contains(p);
        let options = NamingOptions::default();
        assert_eq!(
            output_path("http://h/f.iso", &options, exists),
            PathBuf::from("f.iso.2")
        );
        // An unfinished download of g.iso is never overwritten by a fresh one.
        assert_eq!(
            output_path("http://h/g.iso", &options, exists),
            PathBuf::from("g.iso.1")
        );
        assert_eq!(
            output_path("http://h/new.iso", &options, exists),
            PathBuf::from("new.iso")
        );
        // -c continues the name itself.
        let resume = NamingOptions {
            continue_partial: true,
            ..NamingOptions::default()
        };
        assert_eq!(
            output_path("http://h/f.iso", &resume, exists),
            PathBuf::from("f.iso")
        );
    }

    #[test]
    fn directory_prefix_and_output_document() {
        let options = NamingOptions {
            directory_prefix: Some(PathBuf::from("/srv/dl")),
            ..NamingOptions::default()
        };
        let taken: HashSet<PathBuf> = [PathBuf::from("/srv/dl/f.iso")].into_iter().collect();
        assert_eq!(
            output_path("http://h/f.iso", &options, |p| taken.contains(p)),
            PathBuf::from("/srv/dl/f.iso.1")
        );
        let explicit = NamingOptions {
            output_document: Some(PathBuf::from("out.bin")),
            directory_prefix: Some(PathBuf::from("/srv/dl")),
            continue_partial: false,
        };
        // -O is used as given, clobbering and ignoring -P, as in wget.
        assert_eq!(
            output_path("http://h/f.iso", &explicit, |_| true),
            PathBuf::from("out.bin")
        );
    }
}
