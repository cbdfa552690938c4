//! A plain HTML listing of a directory that has no `index.html`.
//!
//! Names come from the file system and may hold any byte but '/' and NUL, so every name is
//! HTML-escaped in the text and percent-encoded in the link (RFC 3986 §2.1: everything but
//! the unreserved characters), and links are relative (`./name`, so a name such as `a:b` is
//! not read as a scheme). Directories get a trailing '/'. Names are sorted; the listing
//! stops at [`MAX_ENTRIES`] names so that one request cannot make a connection hold
//! megabytes.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The most names listed; the rest are counted.
pub const MAX_ENTRIES: usize = 4096;

/// The listing of `dir` (canonical) for the URL path `url_path` (decoded, ends with '/').
pub fn render(dir: &Path, url_path: &str) -> io::Result<Vec<u8>> {
    let mut names: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut hidden = 0usize;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if names.len() == MAX_ENTRIES {
            hidden += 1;
            continue;
        }
        // file_type() does not follow symlinks; a symlink to a directory is listed as a file
        // and resolved (and checked) when asked for.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        names.push((entry.file_name().as_bytes().to_vec(), is_dir));
    }
    names.sort();
    let title = escape_html(url_path.as_bytes());
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
         <body>\n<h1>Index of {title}</h1>\n<hr>\n<pre>\n"
    );
    if url_path != "/" {
        html.push_str("<a href=\"../\">../</a>\n");
    }
    for (name, is_dir) in &names {
        let slash = if *is_dir { "/" } else { "" };
        html.push_str(&format!(
            "<a href=\"./{}{slash}\">{}{slash}</a>\n",
            percent_encode(name),
            escape_html(name)
        ));
    }
    if hidden > 0 {
        html.push_str(&format!("... and {hidden} more\n"));
    }
    html.push_str("</pre>\n<hr>\n</body>\n</html>\n");
    Ok(html.into_bytes())
}

/// Text safe inside an HTML element or a quoted attribute; invalid UTF-8 is replaced.
pub fn escape_html(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// RFC 3986 §2.1/§2.3: every byte but ALPHA / DIGIT / "-" / "." / "_" / "~" as %XX.
pub fn percent_encode(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &byte in raw {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn names_are_escaped_and_linked_relative() {
        let tmp = tempfile::tempdir().unwrap();
        let hostile = "<img src=x onerror=alert('x')>&\"";
        std::fs::write(tmp.path().join(hostile), b"").unwrap();
        std::fs::write(tmp.path().join("a b.txt"), b"").unwrap();
        std::fs::write(tmp.path().join(OsStr::from_bytes(b"raw\xffbyte")), b"").unwrap();
        std::fs::create_dir(tmp.path().join("dir")).unwrap();
        let html = String::from_utf8(render(tmp.path(), "/x/<y>/").unwrap()).unwrap();
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("Index of /x/&lt;y&gt;/"));
        assert!(html.contains("&lt;img src=x onerror=alert(&#39;x&#39;)&gt;&amp;&quot;</a>"));
        assert!(html.contains("<a href=\"./a%20b.txt\">a b.txt</a>"));
        assert!(html.contains("<a href=\"./raw%FFbyte\">raw\u{fffd}byte</a>"));
        assert!(html.contains("<a href=\"./dir/\">dir/</a>"));
        assert!(html.contains("<a href=\"../\">"));
        // Sorted by name: "<img…" < "a b.txt" < "dir" < "raw…".
        let a = html.find("a%20b.txt").unwrap();
        let d = html.find("./dir/").unwrap();
        assert!(a < d);
    }

    #[test]
    fn the_top_has_no_parent_link_and_long_listings_stop() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..MAX_ENTRIES + 3 {
            std::fs::write(tmp.path().join(format!("f{i}")), b"").unwrap();
        }
        let html = String::from_utf8(render(tmp.path(), "/").unwrap()).unwrap();
        assert!(!html.contains("../"));
        assert_eq!(html.matches("<a href=").count(), MAX_ENTRIES);
        assert!(html.contains("... and 3 more"));
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        assert_eq!(percent_encode(b"a-Z_0.~"), "a-Z_0.~");
        assert_eq!(percent_encode(b"a/b?c#d%e"), "a%2Fb%3Fc%23d%25e");
    }
}
