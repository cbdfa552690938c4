//! HTTP authentication, Basic only: credentials from the URL or the command line, the
//! challenge a server answers with, and the `Authorization` value.
//!
//! Follows RFC 9110 §11 (the framework: `WWW-Authenticate` challenges, §11.6.1; `401`,
//! §15.5.2), RFC 7617 (the Basic scheme: `base64(user ":" password)`) and RFC 3986 §3.2.1
//! (userinfo in a URL, percent-encoded). Credentials never leave this module in a printable
//! form: [`Credentials`]'s `Debug` hides the password, and [`split_credentials`] hands back a
//! URL without them for everything that prints or stores it.

use core::fmt;

use ::url::Url;

/// A user name and a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization` field value for Basic (RFC 7617 §2): `Basic base64(user:password)`.
    pub fn basic_authorization(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64(pair.as_bytes()))
    }
}

/// Splits `user:password@` off a URL as typed. Returns the URL without them (what is shown,
/// logged and stored) and the credentials, percent-decoded (RFC 3986 §3.2.1). A URL the
/// `url` crate cannot parse comes back unchanged: parsing it again reports the error.
pub fn split_credentials(input: &str) -> (String, Option<Credentials>) {
    let trimmed = input.trim();
    // Where userinfo could be: after "scheme://", or at the start of a scheme-less URL.
    let (prefix, rest) = match trimmed.find("://") {
        Some(i) => trimmed.split_at(i + 3),
        None => ("", trimmed),
    };
    let authority_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (input.to_string(), None);
    };
    let (userinfo, host_and_more) = (&rest[..at], &rest[at + 1..]);
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let credentials = Credentials {
        user: percent_decode(user),
        password: percent_decode(password),
    };
    (format!("{prefix}{host_and_more}"), Some(credentials))
}

/// The URL with any credentials removed, for printing (`--` lines, errors).
pub fn redact(input: &str) -> String {
    split_credentials(input).0
}

/// Removes credentials from a parsed URL (a redirect's `Location` may carry some).
pub fn strip_url_credentials(url: &mut Url) {
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

/// What a `401`'s `WWW-Authenticate` fields offer us (RFC 9110 §11.6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic` is among the offered schemes.
    Basic,
    /// Only schemes we do not speak (e.g. Digest, Negotiate): the first one, for the message.
    Unsupported(String),
    /// No `WWW-Authenticate` at all.
    None,
}

/// Reads the challenges of a 401 head's `WWW-Authenticate` values. A challenge begins with
/// its scheme token (case-insensitive, RFC 9110 §11.1); auth-params follow after a space.
pub fn challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Challenge {
    let mut first_other: Option<String> = None;
    let mut any = false;
    for value in values {
        any = true;
        // Challenges in one field are comma-separated, but so are their parameters: a
        // scheme is a token that follows the start or a comma and is not followed by '='.
        for part in value.split(',') {
            let part = part.trim();
            let token = part.split([' ', '\t']).next().unwrap_or("");
            if token.is_empty() || token.contains('=') {
                continue;
            }
            if token.eq_ignore_ascii_case("basic") {
                return Challenge::Basic;
            }
            first_other.get_or_insert_with(|| token.to_string());
        }
    }
    match first_other {
        Some(scheme) => Challenge::Unsupported(scheme),
        None if any => Challenge::Unsupported(String::new()),
        None => Challenge::None,
    }
}

/// RFC 3986 §2.1 percent-decoding, invalid UTF-8 replaced.
pub(crate) fn percent_decode(text: &str) -> String {
    String::from_utf8_lossy(&crate::sink::naming::percent_decode(text.as_bytes())).into_owned()
}

/// RFC 4648 §4 base64 with padding.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_follows_rfc_4648_test_vectors() {
        // RFC 4648 §10.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn basic_authorization_matches_rfc_7617() {
        // RFC 7617 §2's example.
        let c = Credentials {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(
            c.basic_authorization(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn credentials_are_split_off_and_decoded() {
        let (url, c) = split_credentials("http://us%40er:p%3Aw@h:8080/a@b?x=@");
        assert_eq!(url, "http://h:8080/a@b?x=@");
        let c = c.unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("us@er", "p:w"));
        let (url, c) = split_credentials("u@h/x");
        assert_eq!(url, "h/x");
        assert_eq!(c.unwrap().password, "");
        assert_eq!(
            split_credentials("http://h/a@b"),
            ("http://h/a@b".into(), None)
        );
        assert_eq!(redact("http://u:secret@h/"), "http://h/");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials {
            user: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn challenges_find_basic_among_others() {
        assert_eq!(challenge(["Basic realm=\"x\""]), Challenge::Basic);
        assert_eq!(
            challenge(["Digest realm=\"a\", nonce=\"b\", Basic realm=\"c\""]),
            Challenge::Basic
        );
        assert_eq!(challenge(["Negotiate", "basic realm=x"]), Challenge::Basic);
        assert_eq!(
            challenge(["Digest realm=\"a\", qop=\"auth\""]),
            Challenge::Unsupported("Digest".into())
        );
        assert_eq!(challenge([]), Challenge::None);
    }
}
