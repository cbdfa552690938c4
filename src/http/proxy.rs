//! HTTP proxies as wget uses them: which proxy a URL goes through, and the bytes that ask a
//! proxy for it.
//!
//! - Settings come from the environment, as wget reads them: `http_proxy` for `http://`
//!   URLs, `https_proxy` for `https://` ones, `no_proxy` for hosts that go direct; `--no-proxy`
//!   ignores all three. Like curl, the upper-case `HTTPS_PROXY` and `NO_PROXY` are read when
//!   the lower-case ones are unset, but never `HTTP_PROXY`: a CGI program gets the request's
//!   `Proxy:` header in that variable ("httpoxy", CVE-2016-5385).
//! - A proxy URL is `[http://][user[:password]@]host[:port][/]`; without a port, 80 (the
//!   `http` scheme's, as wget). Its credentials go to the proxy, as `Proxy-Authorization:
//!   Basic` (RFC 9110 §11.7.2, RFC 7617), never to the origin server.
//! - A plain `http://` URL is asked of the proxy in absolute form (RFC 9112 §3.2.2): the
//!   request line carries the whole URL; [`super::Request::absolute_form`].
//! - An `https://` URL goes through a tunnel (RFC 9110 §9.3.6): `CONNECT host:port`, a 2xx
//!   answer, then TLS with the origin server over the same connection, end to end; the
//!   proxy sees only ciphertext. [`connect_request`] builds the request.
//! - `no_proxy` is a comma-separated list: `*` (every host), a domain (`example.com` or
//!   `.example.com`: the domain and every name under it), an IP address, or an address
//!   block in CIDR notation (`10.0.0.0/8`, `fd00::/8`), as curl accepts. Names are matched
//!   as written in the URL: no look-up happens here.

use core::fmt;
use std::net::IpAddr;

use super::auth::{Credentials, split_credentials};
use super::error::HttpError;
use super::request::{DEFAULT_USER_AGENT, Header};
use super::response::{ResponseHead, parse_head};
use super::url::Target;

/// A proxy server: where to connect, and what to tell it about us.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// A lower-case name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// From the proxy URL's userinfo; sent as `Proxy-Authorization`.
    pub credentials: Option<Credentials>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials print through their own Debug, which hides the password.
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl fmt::Display for Proxy {
    /// `host:port`, for messages (never the credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&authority(&self.host, self.port))
    }
}

impl Proxy {
    /// Parses a proxy setting as wget accepts it: a URL, with or without `http://`. An
    /// `https://` proxy (TLS to the proxy itself) is refused with a clear error.
    pub fn parse(setting: &str) -> Result<Proxy, HttpError> {
        let invalid = |reason: &str| HttpError::InvalidProxy {
            setting: super::auth::redact(setting),
            reason: reason.to_string(),
        };
        let (without_credentials, credentials) = split_credentials(setting.trim());
        let lower = without_credentials.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(invalid("xdpget talks to proxies in plain HTTP only"));
        }
        if lower.contains("://") && !lower.starts_with("http://") {
            return Err(invalid("only http:// proxies are supported"));
        }
        let target = Target::parse(&without_credentials).map_err(|e| invalid(&e.to_string()))?;
        Ok(Proxy {
            host: target.host,
            port: target.port,
            credentials,
        })
    }

    /// The `Proxy-Authorization` field, when the proxy URL carried credentials.
    pub fn authorization(&self) -> Result<Option<Header>, HttpError> {
        self.credentials
            .as_ref()
            .map(|c| Header::new("Proxy-Authorization", &c.basic_authorization()))
            .transpose()
    }
}

/// One `no_proxy` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bypass {
    /// `*`: every host goes direct.
    Everything,
    /// A domain and every name under it (stored without a leading dot, lower case).
    Domain(String),
    /// An address block; a single address is a block of its full length.
    Block { network: IpAddr, prefix_len: u8 },
}

impl Bypass {
    /// Parses one entry; an empty one (`a,,b`) or one that is nothing at all is `None`.
    fn parse(entry: &str) -> Option<Bypass> {
        let entry = entry.trim();
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            return Some(Bypass::Everything);
        }
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, prefix.parse::<u8>().ok()),
            None => (entry, None),
        };
        let address = address.trim_start_matches('[').trim_end_matches(']');
        if let Ok(network) = address.parse::<IpAddr>() {
            let full = if network.is_ipv4() { 32 } else { 128 };
            let prefix_len = prefix.unwrap_or(full).min(full);
            return Some(Bypass::Block {
                network,
                prefix_len,
            });
        }
        let domain = entry.trim_start_matches('.').to_ascii_lowercase();
        (!domain.is_empty()).then_some(Bypass::Domain(domain))
    }

    /// Whether `host` (as in a [`Target`]) goes direct under this entry.
    fn matches(&self, host: &str) -> bool {
        match self {
            Bypass::Everything => true,
            Bypass::Domain(domain) => {
                let host = host.trim_end_matches('.');
                host == domain
                    || host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            Bypass::Block {
                network,
                prefix_len,
            } => host
                .parse::<IpAddr>()
                .is_ok_and(|address| in_block(address, *network, *prefix_len)),
        }
    }
}

/// Whether `address` lies in `network/prefix_len` (both of one family).
fn in_block(address: IpAddr, network: IpAddr, prefix_len: u8) -> bool {
    let (address, network, bits) = match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (
            u128::from(u32::from(a)) << 96,
            u128::from(u32::from(n)) << 96,
            prefix_len,
        ),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), prefix_len),
        _ => return false,
    };
    let mask = match bits {
        0 => 0,
        bits => u128::MAX << (128 - u32::from(bits.min(128))),
    };
    address & mask == network & mask
}

/// Which proxy each URL uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    bypass: Vec<Bypass>,
}

impl Proxies {
    /// No proxy for anything (`--no-proxy`, or an environment without settings).
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// The settings of an environment, read through `var` (`std::env::var` in the program,
    /// a table in tests). An empty variable counts as unset, as in wget and curl.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Proxies, HttpError> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| var(name).filter(|value| !value.trim().is_empty()))
        };
        let http = get(&["http_proxy"]).map(|s| Proxy::parse(&s)).transpose()?;
        let https = get(&["https_proxy", "HTTPS_PROXY"])
            .map(|s| Proxy::parse(&s))
            .transpose()?;
        let bypass = get(&["no_proxy", "NO_PROXY"])
            .map(|list| list.split(',').filter_map(Bypass::parse).collect())
            .unwrap_or_default();
        Ok(Proxies {
            http,
            https,
            bypass,
        })
    }

    /// The proxy a request for `target` goes through, or `None` to go direct.
    pub fn for_target(&self, target: &Target) -> Option<&Proxy> {
        let proxy = if target.is_https() {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        let host = target.host.to_ascii_lowercase();
        (!self.bypass.iter().any(|entry| entry.matches(&host))).then_some(proxy)
    }
}

/// `host:port` as a request target or `Host` value: an IPv6 address in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `CONNECT` request that opens a tunnel to `target`'s host and port through `proxy`
/// (RFC 9110 §9.3.6; the request target is in authority form, RFC 9112 §3.2.3).
pub fn connect_request(
    target: &Target,
    proxy: &Proxy,
    user_agent: Option<&str>,
) -> Result<Vec<u8>, HttpError> {
    let authority = authority(&target.host, target.port);
    let user_agent = match user_agent {
        Some(agent) => Header::new("User-Agent", agent)?.value,
        None => DEFAULT_USER_AGENT.to_string(),
    };
    let mut out = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {user_agent}\r\n"
    );
    if let Some(header) = proxy.authorization()? {
        out.push_str(&format!("{}: {}\r\n", header.name, header.value));
    }
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

/// The proxy's answer to our `CONNECT`, read from the start of the connection's stream.
///
/// Returns `Ok(None)` while the head is incomplete and `Ok(Some(head))` once the tunnel is
/// open: any 2xx (RFC 9110 §9.3.6), after which the stream from `head.head_len` on belongs to
/// the origin server (a 2xx to CONNECT has no body). Anything else is
/// [`HttpError::ProxyTunnel`] with the proxy's status; a malformed head is the parser's error.
pub fn tunnel_reply(stream: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    let Some(head) = parse_head(stream)? else {
        return Ok(None);
    };
    if (200..300).contains(&head.status) {
        Ok(Some(head))
    } else {
        Err(HttpError::ProxyTunnel {
            status: head.status,
            reason: head.reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn proxy_urls_as_wget_takes_them() {
        let p = Proxy::parse("proxy.lan:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.lan", 3128));
        assert!(p.credentials.is_none());
        let p = Proxy::parse("http://u%40x:p%3Aw@10.0.0.1/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("10.0.0.1", 80));
        let c = p.credentials.as_ref().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("u@x", "p:w"));
        let p = Proxy::parse("http://[fd00::1]:8080").unwrap();
        assert_eq!(p.to_string(), "[fd00::1]:8080");
        assert!(Proxy::parse("https://proxy:443").is_err());
        assert!(Proxy::parse("socks5://proxy:1080").is_err());
        // The password never shows, in an error or in Debug.
        let e = Proxy::parse("https://u:secret@proxy").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        let p = Proxy::parse("u:secret@proxy").unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }

    #[test]
    fn scheme_picks_the_variable() {
        let proxies = Proxies::from_env(env(&[
            ("http_proxy", "plain:3128"),
            ("https_proxy", "secure:3129"),
        ]))
        .unwrap();
        assert_eq!(
            proxies.for_target(&target("http://a/")).unwrap().host,
            "plain"
        );
        assert_eq!(
            proxies.for_target(&target("https://a/")).unwrap().host,
            "secure"
        );
        let only_http = Proxies::from_env(env(&[("http_proxy", "plain:3128")])).unwrap();
        assert!(only_http.for_target(&target("https://a/")).is_none());
    }

    #[test]
    fn upper_case_http_proxy_is_ignored() {
        // httpoxy: HTTP_PROXY may be set by a request header under CGI.
        let proxies = Proxies::from_env(env(&[
            ("HTTP_PROXY", "evil:1"),
            ("HTTPS_PROXY", "secure:3129"),
            ("NO_PROXY", "a"),
        ]))
        .unwrap();
        assert!(proxies.for_target(&target("http://b/")).is_none());
        assert!(proxies.for_target(&target("https://b/")).is_some());
        assert!(proxies.for_target(&target("https://a/")).is_none());
        let empty = Proxies::from_env(env(&[("http_proxy", "  ")])).unwrap();
        assert_eq!(empty, Proxies::none());
    }

    #[test]
    fn no_proxy_entries() {
        let proxies = Proxies::from_env(env(&[
            ("http_proxy", "p:1"),
            (
                "no_proxy",
                " example.com, .lan,10.1.0.0/16 ,192.168.1.7,[fd00::]/8,,",
            ),
        ]))
        .unwrap();
        let direct = |url: &str| proxies.for_target(&target(url)).is_none();
        assert!(direct("http://example.com/"));
        assert!(direct("http://www.EXAMPLE.com/"));
        assert!(!direct("http://notexample.com/"));
        assert!(!direct("http://example.com.evil/"));
        assert!(direct("http://lan/"));
        assert!(direct("http://printer.lan/"));
        assert!(direct("http://10.1.200.3/"));
        assert!(!direct("http://10.2.0.1/"));
        assert!(direct("http://192.168.1.7/"));
        assert!(!direct("http://192.168.1.8/"));
        assert!(direct("http://[fd12::1]/"));
        assert!(!direct("http://[fe80::1]/"));
        assert!(!direct("http://other/"));
        let all = Proxies::from_env(env(&[("http_proxy", "p:1"), ("no_proxy", "*")])).unwrap();
        assert!(all.for_target(&target("http://anything/")).is_none());
    }

    #[test]
    fn tunnel_replies() {
        let reply = b"HTTP/1.1 200 Connection established\r\nProxy-agent: tinyproxy\r\n\r\n";
        for cut in 0..reply.len() {
            assert_eq!(tunnel_reply(&reply[..cut]).unwrap(), None, "cut at {cut}");
        }
        let head = tunnel_reply(reply).unwrap().unwrap();
        assert_eq!(head.head_len, reply.len());
        match tunnel_reply(b"HTTP/1.0 403 Access violation\r\n\r\n") {
            Err(e @ HttpError::ProxyTunnel { status: 403, .. }) => {
                assert_eq!(e.exit_code(), 4);
                assert_eq!(
                    e.to_string(),
                    "Proxy tunneling failed: 403 Access violation"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(tunnel_reply(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn connect_request_bytes() {
        let proxy = Proxy::parse("http://alice:pw@proxy:3128").unwrap();
        let bytes = connect_request(&target("https://[fd00::2]/f"), &proxy, None).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            format!(
                "CONNECT [fd00::2]:443 HTTP/1.1\r\nHost: [fd00::2]:443\r\n\
                 User-Agent: {DEFAULT_USER_AGENT}\r\n\
                 Proxy-Authorization: Basic YWxpY2U6cHc=\r\n\r\n"
            )
        );
        let anonymous = Proxy::parse("proxy:3128").unwrap();
        let bytes = connect_request(&target("https://h:8443/"), &anonymous, Some("UA")).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "CONNECT h:8443 HTTP/1.1\r\nHost: h:8443\r\nUser-Agent: UA\r\n\r\n"
        );
    }
}
