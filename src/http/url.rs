//! The download target: a user's `http://` or `https://` URL, and redirects resolved
//! against it.
//!
//! Follows RFC 3986 (URI syntax, §5 reference resolution) through the WHATWG `url` crate,
//! RFC 9110 §4.2.1 (the http URI scheme, default port 80), §4.2.2 (the https URI scheme,
//! default port 443) and RFC 9110 §10.2.2 (`Location` is a URI reference, resolved against
//! the target URI). Redirects may switch between http and https either way, as wget's do.
//!
//! Name resolution is not done here: the engine resolves `host`.

use core::fmt;
use std::net::IpAddr;

use ::url::{Host, Url};

use super::error::HttpError;

/// Where a request goes: host, port and the request target (RFC 9112 §3.2.1 origin-form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// A lower-case ASCII domain name, a dotted IPv4 address, or an IPv6 address without
    /// brackets.
    pub host: String,
    /// The TCP port: the URL's, else 80 for http and 443 for https.
    pub port: u16,
    /// The origin-form request target: absolute path plus `?query` (never a fragment).
    pub path_and_query: String,
    /// The whole URL, normalised by the `url` crate (fragment removed).
    pub url: Url,
}

impl Target {
    /// Parses a URL as typed by the user. Without `scheme://` it is taken as `http://`, like
    /// wget does (`xdpget example.com/file`).
    pub fn parse(input: &str) -> Result<Target, HttpError> {
        let trimmed = input.trim();
        let with_scheme;
        let text = if trimmed.contains("://") {
            trimmed
        } else {
            with_scheme = format!("http://{trimmed}");
            &with_scheme
        };
        let url = Url::parse(text).map_err(|e| HttpError::InvalidUrl {
            url: input.to_string(),
            reason: e.to_string(),
        })?;
        check_raw_host_is_ascii(text, input)?;
        Target::from_url(url, input)
    }

    /// Resolves a redirect's `Location` (absolute, scheme-relative, or relative) against this
    /// target (RFC 9110 §10.2.2, RFC 3986 §5.2). A fragment-less `Location` does not inherit
    /// our fragment: we never carry one.
    pub fn resolve_redirect(&self, location: &str) -> Result<Target, HttpError> {
        let bad = |reason: String| HttpError::BadRedirect {
            location: location.to_string(),
            reason,
        };
        let location_trimmed = location.trim();
        if location_trimmed.is_empty() {
            return Err(bad("the Location header is empty".to_string()));
        }
        let url = self
            .url
            .join(location_trimmed)
            .map_err(|e| bad(e.to_string()))?;
        if let Some(authority) = raw_authority(location_trimmed)
            && !authority_is_plain_ascii(authority)
        {
            return Err(bad("its host is not ASCII".to_string()));
        }
        // Scheme errors (ftp://) keep their own clear messages.
        Target::from_url(url, location).map_err(|e| match e {
            HttpError::UnsupportedScheme { .. } => e,
            other => bad(other.to_string()),
        })
    }

    /// Whether the URL is `https://`: the connection speaks TLS (RFC 9110 §4.2.2).
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The default port of the scheme: 443 for https, 80 for http.
    pub fn default_port(&self) -> u16 {
        if self.is_https() { 443 } else { 80 }
    }

    /// The `Host` header value (RFC 9110 §7.2): the port only when it is not the scheme's
    /// default, IPv6 addresses in brackets.
    pub fn host_header(&self) -> String {
        let host = match self.ip_literal() {
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.host.clone(),
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The host as an IP address when the URL names one instead of a domain.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    fn from_url(mut url: Url, original: &str) -> Result<Target, HttpError> {
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(HttpError::UnsupportedScheme {
                    scheme: other.to_string(),
                    url: original.to_string(),
                });
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::CredentialsUnsupported {
                url: original.to_string(),
            });
        }
        let host = match url.host() {
            Some(Host::Domain("")) => None,
            Some(Host::Domain(d)) => Some(d.to_string()),
            Some(Host::Ipv4(v4)) => Some(v4.to_string()),
            Some(Host::Ipv6(v6)) => Some(v6.to_string()),
            None => None,
        };
        let Some(host) = host else {
            return Err(HttpError::MissingHost {
                url: original.to_string(),
            });
        };
        // The url crate turns Unicode names into punycode; we refuse to do that silently.
        if host.split('.').any(|label| label.starts_with("xn--"))
            && !original.to_ascii_lowercase().contains(&host)
        {
            return Err(HttpError::NonAsciiHost {
                url: original.to_string(),
            });
        }
        // RFC 9110 §4.2.1, §4.2.2: the default port of http is 80, of https 443.
        let port = url.port_or_known_default().unwrap_or(80);
        // RFC 9110 §7.1: a fragment is never sent.
        url.set_fragment(None);
        let mut path_and_query = url.path().to_string();
        if path_and_query.is_empty() {
            path_and_query.push('/');
        }
        if let Some(query) = url.query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        Ok(Target {
            host,
            port,
            path_and_query,
            url,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Refuses a URL whose authority, as typed, holds non-ASCII or percent-encoded host bytes.
fn check_raw_host_is_ascii(text: &str, original: &str) -> Result<(), HttpError> {
    match raw_authority(text) {
        Some(authority) if !authority_is_plain_ascii(authority) => Err(HttpError::NonAsciiHost {
            url: original.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The authority of a URI reference as written (RFC 3986 §3.2): after `scheme://` or a
/// leading `//`, up to the path, query or fragment.
fn raw_authority(reference: &str) -> Option<&str> {
    let after_slashes = if let Some(rest) = reference.strip_prefix("//") {
        rest
    } else {
        let (scheme, rest) = reference.split_once(':')?;
        // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        let mut chars = scheme.chars();
        let valid_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return None;
        }
        rest.strip_prefix("//")?
    };
    // The url crate treats '\' like '/' in special schemes.
    let end = after_slashes
        .find(['/', '?', '#', '\\'])
        .unwrap_or(after_slashes.len());
    Some(&after_slashes[..end])
}

/// True when the host part of an authority (userinfo stripped) is ASCII without `%`.
fn authority_is_plain_ascii(authority: &str) -> bool {
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_and_port.is_ascii() && !host_and_port.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Target {
        match Target::parse(s) {
            Ok(t) => t,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn plain_http_url() {
        let t = target("http://Example.COM/dir/file.iso?x=1&y=2#frag");
        assert_eq!(t.host, "example.com");
        assert_eq!(t.port, 80);
        assert_eq!(t.path_and_query, "/dir/file.iso?x=1&y=2");
        assert_eq!(t.host_header(), "example.com");
        assert_eq!(t.to_string(), "http://example.com/dir/file.iso?x=1&y=2");
    }

    #[test]
    fn port_and_empty_path() {
        let t = target("http://10.0.0.2:8080");
        assert_eq!(t.host, "10.0.0.2");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path_and_query, "/");
        assert_eq!(t.host_header(), "10.0.0.2:8080");
        assert_eq!(t.ip_literal(), Some("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn explicit_default_port_is_dropped_from_host_header() {
        let t = target("http://example.com:80/a");
        assert_eq!(t.port, 80);
        assert_eq!(t.host_header(), "example.com");
    }

    #[test]
    fn ipv6_literal() {
        let t = target("http://[::1]:8080/x");
        assert_eq!(t.host, "::1");
        assert_eq!(t.host_header(), "[::1]:8080");
        assert_eq!(t.ip_literal(), Some("::1".parse().unwrap()));
    }

    #[test]
    fn missing_scheme_means_http() {
        let t = target("example.com:81/file");
        assert_eq!((t.host.as_str(), t.port), ("example.com", 81));
        assert_eq!(t.path_and_query, "/file");
    }

    #[test]
    fn spaces_in_path_are_percent_encoded() {
        let t = target("http://h/a b/c");
        assert_eq!(t.path_and_query, "/a%20b/c");
    }

    #[test]
    fn https_urls_default_to_port_443() {
        let t = target("https://Example.com/a?b");
        assert!(t.is_https());
        assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
        assert_eq!(t.host_header(), "example.com");
        let t = target("https://example.com:80/");
        assert_eq!(t.host_header(), "example.com:80");
        let t = target("https://example.com:443/");
        assert_eq!(t.host_header(), "example.com");
        assert!(
            !target("example.com").is_https(),
            "no scheme means http, as wget"
        );
    }

    #[test]
    fn redirects_switch_between_http_and_https() {
        let plain = target("http://h/a");
        let secure = plain.resolve_redirect("https://h/b").unwrap();
        assert!(secure.is_https());
        assert_eq!((secure.port, secure.path_and_query.as_str()), (443, "/b"));
        // A relative Location keeps the scheme; a scheme-relative one too.
        assert!(secure.resolve_redirect("/c").unwrap().is_https());
        let other = secure.resolve_redirect("//other/d").unwrap();
        assert!(other.is_https());
        assert_eq!((other.host.as_str(), other.port), ("other", 443));
        assert!(!secure.resolve_redirect("http://h/e").unwrap().is_https());
    }

    #[test]
    fn other_schemes_are_errors() {
        let e = Target::parse("ftp://example.com/").unwrap_err();
        assert!(matches!(e, HttpError::UnsupportedScheme { ref scheme, .. } if scheme == "ftp"));
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn non_ascii_hosts_are_refused() {
        for url in [
            "http://bücher.de/",
            "http://b%C3%BCcher.de/",
            "bücher.de/x",
            "http://user@bücher.de/",
        ] {
            let e = Target::parse(url).unwrap_err();
            assert!(
                matches!(
                    e,
                    HttpError::NonAsciiHost { .. } | HttpError::CredentialsUnsupported { .. }
                ),
                "{url}: {e:?}"
            );
        }
        // Punycode typed by the user is fine, and so is a non-ASCII path.
        assert_eq!(target("http://xn--bcher-kva.de/").host, "xn--bcher-kva.de");
        assert_eq!(target("http://h/bücher").path_and_query, "/b%C3%BCcher");
    }

    #[test]
    fn unparsable_urls() {
        for url in ["http://", "http://h:99999/", "http://[::1/"] {
            let e = Target::parse(url).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{url}: {e:?}");
        }
    }

    #[test]
    fn credentials_are_refused() {
        let e = Target::parse("http://u:p@h/").unwrap_err();
        assert!(matches!(e, HttpError::CredentialsUnsupported { .. }));
    }

    #[test]
    fn redirects_resolve_relative_and_absolute() {
        let base = target("http://h:8080/a/b/c?q=1");
        let cases = [
            ("/root", "h", 8080, "/root"),
            ("d", "h", 8080, "/a/b/d"),
            ("../e?z", "h", 8080, "/a/e?z"),
            ("?only", "h", 8080, "/a/b/c?only"),
            ("//other/x", "other", 80, "/x"),
            ("http://third:81/y#f", "third", 81, "/y"),
        ];
        for (location, host, port, path) in cases {
            let t = base.resolve_redirect(location).unwrap();
            assert_eq!(
                (t.host.as_str(), t.port, t.path_and_query.as_str()),
                (host, port, path),
                "{location}"
            );
        }
    }

    #[test]
    fn bad_redirects() {
        let base = target("http://h/");
        assert!(matches!(
            base.resolve_redirect("ftp://h/").unwrap_err(),
            HttpError::UnsupportedScheme { .. }
        ));
        assert!(matches!(
            base.resolve_redirect("").unwrap_err(),
            HttpError::BadRedirect { .. }
        ));
        assert!(matches!(
            base.resolve_redirect("http://bücher.de/").unwrap_err(),
            HttpError::BadRedirect { .. }
        ));
        assert!(matches!(
            base.resolve_redirect("http://[zz/").unwrap_err(),
            HttpError::BadRedirect { .. }
        ));
    }
}
