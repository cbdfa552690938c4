//! One URL, wget-style: redirects, retries with resume, output naming, `-c`, `--spider`.
//!
//! A task of the busy-poll thread ([`fetch_on`], `async`): it reads top-down like the
//! blocking code it was, and awaits what the loop serves (`engine::runtime`): an exchange
//! on the host, a retry's pause as a deadline, look-ups from the lookup thread. It never
//! touches the driver. Above [`super::transfer`] (one exchange as a session of the host)
//! and below the CLI (arguments, progress drawing, exit codes). [`fetch`] runs one such
//! task over any [`Network`]: a real interface or the simulator, so the simulator tests
//! exercise exactly this code.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use super::body::BodyOut;
use super::error::EngineError;
use super::network::Network;
use super::progress::Progress;
use super::runtime::{self, Executor, LoopSettings, Reactor};
use super::segmented::{self, Segmenting};
use super::stats::EngineStats;
use super::transfer::{TransferEnd, TransferOptions};
use crate::http::auth::{self, Challenge, Credentials};
use crate::http::date::{format_http_date, parse_http_date};
use crate::http::proxy::Proxies;
use crate::http::{BodyPlan, Header, Method, Outcome, Request, ResponseHead, Target};
use crate::sink::naming::{NamingOptions, disposition_file_name, output_path, unclobbered};
use crate::sink::{self, Identity, ResumeInfo, Sink, SinkOptions};
use crate::tls::TlsError;

/// Where the body goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Named after the URL (wget's default), under an optional `-P` directory.
    Auto { directory: Option<PathBuf> },
    /// `-O FILE`.
    Path(PathBuf),
    /// `-O -`.
    Stdout,
}

/// Everything about how to fetch a URL.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub output: Output,
    /// `-c`.
    pub resume: bool,
    /// `--spider`: HEAD only, no file.
    pub spider: bool,
    pub headers: Vec<Header>,
    pub user_agent: Option<String>,
    pub max_redirect: u32,
    /// `--https-only`: refuse `http://` URLs, the user's and redirects' (wget applies it to
    /// the links it recurses into; xdpget does not recurse, so to every URL it fetches).
    pub https_only: bool,
    /// Tries per URL; 0 means unlimited (wget's `--tries`).
    pub tries: u32,
    /// Longest pause between tries; the pause grows by a second per try up to this (wget's
    /// `--waitretry`, 10 s by default).
    pub max_retry_pause: Duration,
    pub transfer: TransferOptions,
    pub sink: SinkOptions,
    /// `-S`: every response head is printed (as notices, indented two spaces like wget).
    pub server_response: bool,
    /// `--user`/`--password` (`--http-user`/`--http-password`); credentials in a URL win.
    pub credentials: Option<Credentials>,
    /// The `host:port`s that asked for Basic authentication this run: later requests to them
    /// send `Authorization` up front, as wget does.
    pub challenged_hosts: Arc<Mutex<Vec<String>>>,
    /// The file gets the server's `Last-Modified` as its mtime (wget's default;
    /// `--no-use-server-timestamps` turns it off).
    pub server_timestamps: bool,
    /// `-N`: download only when the server's copy is newer than the local file.
    pub timestamping: bool,
    /// `-nc`: an existing file is kept and not downloaded again.
    pub no_clobber: bool,
    /// `--content-disposition`: a name from the response's `Content-Disposition` replaces
    /// the one from the URL (not with `-O`).
    pub content_disposition: bool,
    /// `--retry-connrefused`: a refused connection is retried like other network errors
    /// (wget gives up at once by default).
    pub retry_connrefused: bool,
    /// `--retry-on-http-error=LIST`: these statuses are retried instead of failing.
    pub retry_on_http_error: Vec<u16>,
    /// `--ignore-length`: Content-Length is ignored; the body ends at the server's close.
    pub ignore_length: bool,
    /// The proxies of `http_proxy`/`https_proxy`/`no_proxy` (none with `--no-proxy`).
    pub proxies: Proxies,
    /// `-x N`: up to N connections fetch ranges of one file (`engine::segmented`); 1 is
    /// wget's one connection.
    pub connections: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            output: Output::Auto { directory: None },
            resume: false,
            spider: false,
            headers: Vec::new(),
            user_agent: None,
            max_redirect: 20,
            https_only: false,
            tries: 20,
            max_retry_pause: Duration::from_secs(10),
            transfer: TransferOptions::default(),
            sink: SinkOptions::default(),
            server_response: false,
            credentials: None,
            challenged_hosts: Arc::default(),
            server_timestamps: true,
            timestamping: false,
            no_clobber: false,
            content_disposition: false,
            retry_connrefused: false,
            retry_on_http_error: Vec::new(),
            ignore_length: false,
            proxies: Proxies::none(),
            connections: 1,
        }
    }
}

/// What a successful fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The file written (or "standard output"); `None` for `--spider`.
    pub path: Option<PathBuf>,
    /// Length of the complete file.
    pub file_len: u64,
    /// Body bytes this run transferred (less than `file_len` after a resume).
    pub transferred: u64,
    /// Nothing needed transferring: the server said the file was already complete (416 on
    /// `-c`), or `-N`/`-nc` kept the local file.
    pub already_complete: bool,
    /// The final URL, after redirects.
    pub final_url: String,
    /// Time from sending the final request to the last byte (what wget's rate divides by).
    pub elapsed: Duration,
}

/// Things worth a line on the terminal while a fetch goes on (wget prints the same).
pub trait Notices {
    fn notice(&mut self, line: String);
}

impl<F: FnMut(String)> Notices for F {
    fn notice(&mut self, line: String) {
        self(line)
    }
}

/// Fetches `url` over `network`: one [`fetch_on`] task, run to its end.
pub fn fetch<N: Network>(
    network: &mut N,
    url: &str,
    options: &FetchOptions,
    progress: &Progress,
    stats: &mut EngineStats,
    notices: &mut dyn Notices,
) -> Result<Fetched, EngineError> {
    let reactor = Reactor::with_stats(core::mem::take(stats));
    let mut result = None;
    let mut executor = Executor::new(1);
    executor.spawn(async {
        result = Some(fetch_on(&reactor, url, options, progress, notices).await);
    });
    let ran = runtime::run(
        &reactor,
        network,
        &mut executor,
        &LoopSettings::of(&options.transfer),
    );
    drop(executor);
    *stats = reactor.take_stats();
    match (result, ran) {
        (Some(result), _) => result,
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Err(EngineError::Interrupted),
    }
}

/// Fetches `url` on the loop of `reactor` (a task: see the module docs).
pub async fn fetch_on<'a>(
    reactor: &Reactor<'a>,
    url: &str,
    options: &FetchOptions,
    progress: &'a Progress,
    notices: &mut dyn Notices,
) -> Result<Fetched, EngineError> {
    let (url, url_credentials) = auth::split_credentials(url);
    let credentials = url_credentials.or_else(|| options.credentials.clone());
    let original = Target::parse(&url)?;
    let destination = destination(&original, options);
    let local = match &destination {
        Destination::File(path) if options.no_clobber || options.timestamping => {
            LocalCopy::of(path)
        }
        _ => None,
    };
    if let (Some(local), Destination::File(path)) = (&local, &destination)
        && options.no_clobber
    {
        notices.notice(format!(
            "File '{}' already there; not retrieving.",
            path.display()
        ));
        return Ok(kept(&destination, &original, local.len));
    }
    let context = UrlContext {
        credentials: credentials.as_ref(),
        local: local.filter(|_| options.timestamping),
    };
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // Without -c only a .part this run's earlier try left is continued.
        let continue_partial = options.resume || attempt > 1;
        let tried = fetch_once(
            reactor,
            &original,
            &destination,
            continue_partial,
            &context,
            options,
            progress,
            notices,
        )
        .await;
        match tried {
            Ok(fetched) => return Ok(fetched),
            Err(error) => {
                let retryable = is_retried(&error, options)
                    && (options.tries == 0 || attempt < options.tries)
                    && destination.resumable()
                    && !reactor.interrupted();
                if !retryable {
                    return Err(error);
                }
                notices.notice(format!("{error}. Retrying (try {}).", attempt + 1));
                let pause = Duration::from_secs(u64::from(attempt)).min(options.max_retry_pause);
                // A deadline of the loop, not a sleep: other downloads go on meanwhile.
                reactor.sleep(pause).await?;
            }
        }
    }
}

/// Whether a failed try is worth another one: network errors as wget (a refused connection
/// only with `--retry-connrefused`, a failed look-up never), and the statuses of
/// `--retry-on-http-error`.
fn is_retried(error: &EngineError, options: &FetchOptions) -> bool {
    match error {
        EngineError::Resolve { .. } => false,
        EngineError::Refused { .. } => options.retry_connrefused,
        EngineError::Http(crate::http::HttpError::ServerError { status, .. }) => {
            options.retry_on_http_error.contains(status)
        }
        other => other.is_retryable(),
    }
}

/// The output, decided once per URL (before any redirect, as wget names files).
#[derive(Clone, Debug)]
enum Destination {
    Stdout,
    File(PathBuf),
    /// `--spider`: nothing is written.
    Nowhere,
}

impl Destination {
    /// Whether a failed try can be continued by the next one (a file keeps its prefix).
    fn resumable(&self) -> bool {
        !matches!(self, Destination::Stdout)
    }

    /// The path a report names (`-` for standard output), `None` for `--spider`.
    fn shown_path(&self) -> Option<PathBuf> {
        match self {
            Destination::File(path) => Some(path.clone()),
            Destination::Stdout => Some(PathBuf::from("-")),
            Destination::Nowhere => None,
        }
    }

    fn sink_target(&self) -> sink::Target {
        match self {
            Destination::Stdout => sink::Target::Stdout,
            Destination::File(path) => sink::Target::Path(path.clone()),
            Destination::Nowhere => sink::Target::Path(PathBuf::from("/dev/null")),
        }
    }
}

fn destination(target: &Target, options: &FetchOptions) -> Destination {
    if options.spider {
        return Destination::Nowhere;
    }
    match &options.output {
        Output::Stdout => Destination::Stdout,
        Output::Path(path) => Destination::File(path.clone()),
        Output::Auto { directory } => {
            // -N and -nc look at NAME itself, never NAME.1.
            let naming = NamingOptions {
                output_document: None,
                directory_prefix: directory.clone(),
                continue_partial: options.resume || options.timestamping || options.no_clobber,
            };
            Destination::File(output_path(target.url.as_str(), &naming, Path::exists))
        }
    }
}

/// One try: follows redirects, ends with the body in place or an error.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the arguments are the fetch's whole context"
)]
async fn fetch_once<'a>(
    reactor: &Reactor<'a>,
    original: &Target,
    destination: &Destination,
    continue_partial: bool,
    context: &UrlContext<'_>,
    options: &FetchOptions,
    progress: &'a Progress,
    notices: &mut dyn Notices,
) -> Result<Fetched, EngineError> {
    // A file continues from what an earlier run or try left: with -c always; without -c
    // only from a .part this run's earlier try wrote.
    let resume = match destination {
        Destination::File(_) if !continue_partial => ResumeInfo::Fresh,
        Destination::File(path) => {
            let found = ResumeInfo::lookup(path)
                .map_err(|e| EngineError::Sink(sink::SinkError::from_io("read", path, 0, e)))?;
            match found {
                ResumeInfo::Plain { .. } if !options.resume => ResumeInfo::Fresh,
                other => other,
            }
        }
        _ => ResumeInfo::Fresh,
    };
    let offset = resume.offset();
    // -x N asks for a range even from byte 0: a 206 says the server can split the file.
    let segments_wanted =
        options.connections > 1 && !options.spider && matches!(destination, Destination::File(_));
    let mut target = original.clone();
    let mut redirects = 0u32;
    loop {
        check_scheme(&target, options, notices)?;
        // Through a proxy, the connection goes to the proxy (http::proxy).
        let proxy = options.proxies.for_target(&target).cloned();
        let (host, port) = proxy
            .as_ref()
            .map_or((target.host.as_str(), target.port), |p| {
                (p.host.as_str(), p.port)
            });
        let addresses = reactor.resolve(host, port).await?;
        // Credentials belong to the URL's own host: never sent after a redirect elsewhere.
        let own_credentials = context
            .credentials
            .filter(|_| same_origin(&target, original));
        let authorization = own_credentials
            .filter(|_| is_challenged(options, &target))
            .map(|c| Header::new("Authorization", &c.basic_authorization()))
            .transpose()?;
        let sent_authorization = authorization.is_some();
        let mut extra_headers = options.headers.clone();
        // -N (RFC 9110 §13.1.3): the server answers 304 when its copy is not newer.
        if let Some(local) = &context.local {
            extra_headers.push(Header::new(
                "If-Modified-Since",
                &format_http_date(local.modified),
            )?);
        }
        if !extra_headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("authorization"))
        {
            extra_headers.extend(authorization);
        }
        let request = Request {
            method: if options.spider {
                Method::Head
            } else {
                Method::Get
            },
            range_start: (offset > 0 || segments_wanted).then_some(offset),
            user_agent: options.user_agent.clone(),
            extra_headers,
            ignore_length: options.ignore_length,
            proxy,
            ..Request::get(target.clone())
        };
        let mut not_newer = false;
        let mut named: Option<Destination> = None;
        let started = std::time::Instant::now();
        let hurried = TransferOptions {
            connect_timeout: options.transfer.connect_timeout.min(NEXT_ADDRESS_AFTER),
            ..options.transfer.clone()
        };
        // The addresses in turn: one that cannot be set up (no route), refuses or does not
        // answer the SYN within NEXT_ADDRESS_AFTER makes way for the next, with a notice;
        // the last one gets the full connect timeout and its outcome, whatever it is.
        let mut end = None;
        for (index, &remote) in addresses.iter().enumerate() {
            let next = addresses.get(index + 1);
            let transfer_options = if next.is_some() {
                &hurried
            } else {
                &options.transfer
            };
            let endpoint = match (reactor.open(remote).await, next) {
                (Ok(endpoint), _) => endpoint,
                (Err(error), Some(next)) => {
                    notices.notice(format!("{error}; trying {next}"));
                    continue;
                }
                (Err(error), None) => return Err(error),
            };
            let stash = RefCell::new(None);
            let tried = {
                let mut open_sink = |head: &ResponseHead, plan: &BodyPlan| {
                    // -N against a server that ignores If-Modified-Since: wget's size + date
                    // check.
                    if let Some(local) = &context.local
                        && local.is_as_new_as(head, plan)
                    {
                        not_newer = true;
                        return Err(EngineError::Setup("not newer".into()));
                    }
                    let sink = match disposition_path(head, destination, options) {
                        Some(path) => {
                            notices.notice(format!(
                                "Saving to '{}' (named by Content-Disposition)",
                                path.display()
                            ));
                            let renamed = named.insert(Destination::File(path));
                            let fresh = &ResumeInfo::Fresh;
                            open_sink(head, plan, &target, renamed, fresh, options, notices)?
                        }
                        None => {
                            open_sink(head, plan, &target, destination, &resume, options, notices)?
                        }
                    };
                    if !segments_wanted {
                        return Ok(BodyOut::Whole(sink));
                    }
                    match segmented::splittable(head, plan) {
                        Ok(split) => {
                            let (segmenting, out) =
                                Segmenting::begin(sink, split, head, plan, progress);
                            *stash.borrow_mut() = Some(segmenting);
                            Ok(out)
                        }
                        Err(why) => {
                            notices.notice(format!("Downloading over one connection: {why}."));
                            Ok(BodyOut::Whole(sink))
                        }
                    }
                };
                if segments_wanted {
                    let piece_options =
                        segmented::piece_options(transfer_options, options.connections);
                    let job = segmented::Job {
                        reactor,
                        endpoint,
                        request: &request,
                        options: &piece_options,
                        progress,
                        connections: options.connections,
                    };
                    segmented::run(&job, transfer_options, &mut open_sink, &stash).await
                } else {
                    reactor
                        .exchange(
                            &endpoint,
                            &request,
                            transfer_options,
                            progress,
                            &mut open_sink,
                        )
                        .await
                }
            };
            match (tried, next) {
                (Err(failure), Some(next)) if is_connect_failure(&failure.error) => {
                    notices.notice(format!("{}; trying {next}", failure.error));
                }
                (tried, _) => {
                    end = Some(tried);
                    break;
                }
            }
        }
        let Some(end) = end else {
            return Err(EngineError::Setup("no address to connect to".to_string()));
        };
        let destination = named.as_ref().unwrap_or(destination);
        match end {
            Err(_) if not_newer => {
                return Ok(not_retrieving(destination, &target, context, notices));
            }
            Ok(TransferEnd::Body {
                sink, plan, head, ..
            }) => {
                let Some(sink) = sink else {
                    return Err(EngineError::Setup(
                        "internal error: the body ended without its file".into(),
                    ));
                };
                let file_len = sink.finish()?;
                if let Destination::File(path) = destination
                    && options.server_timestamps
                {
                    set_server_time(path, &head, notices);
                }
                return Ok(Fetched {
                    path: destination.shown_path(),
                    file_len,
                    transferred: file_len.saturating_sub(plan.file_offset),
                    already_complete: false,
                    final_url: target.url.to_string(),
                    elapsed: started.elapsed(),
                });
            }
            Ok(TransferEnd::NoBody { outcome, head }) => {
                print_head(&head, options, notices);
                match outcome {
                    Outcome::Redirect(next) => {
                        redirects += 1;
                        if redirects > options.max_redirect {
                            return Err(EngineError::TooManyRedirects {
                                count: options.max_redirect,
                            });
                        }
                        notices.notice(format!("Location: {} [following]", next.url));
                        target = next;
                    }
                    Outcome::AlreadyComplete { .. } => {
                        notices.notice(
                            "The file is already fully retrieved; nothing to do.".to_string(),
                        );
                        return Ok(Fetched {
                            path: destination.shown_path(),
                            file_len: offset,
                            transferred: 0,
                            already_complete: true,
                            final_url: target.url.to_string(),
                            elapsed: started.elapsed(),
                        });
                    }
                    Outcome::ServerError { status: 304, .. } if context.local.is_some() => {
                        return Ok(not_retrieving(destination, &target, context, notices));
                    }
                    Outcome::ServerError { status: 401, .. } => {
                        let offered = auth::challenge(
                            head.headers
                                .iter()
                                .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
                                .map(|(_, v)| v.as_str()),
                        );
                        match (own_credentials, offered) {
                            (Some(_), Challenge::Basic) if !sent_authorization => {
                                remember_challenge(options, &target);
                                notices
                                    .notice("Authentication required; sending credentials.".into());
                            }
                            (Some(_), Challenge::Unsupported(scheme)) if !scheme.is_empty() => {
                                return Err(EngineError::Auth(format!(
                                    "the server asks for {scheme} authentication; xdpget speaks Basic only"
                                )));
                            }
                            _ => {
                                return Err(EngineError::Auth(
                                    "Username/Password Authentication Failed.".into(),
                                ));
                            }
                        }
                    }
                    error @ Outcome::ServerError { .. } => {
                        return Err(error.to_error().map_or_else(
                            || EngineError::Setup("server error".into()),
                            Into::into,
                        ));
                    }
                    Outcome::Body(_) => unreachable!("a body outcome ends with TransferEnd::Body"),
                }
            }
            Err(failure) => {
                if let Some(sink) = failure.sink {
                    let kept = sink.abandon().unwrap_or(0);
                    if let Destination::File(path) = destination
                        && kept > 0
                    {
                        notices.notice(format!(
                            "{} keeps {kept} bytes; `xdpget -c` continues it",
                            sink::control::part_path(path).display()
                        ));
                    }
                }
                return Err(failure.error);
            }
        }
    }
}

/// The connect timeout per address while other addresses of the name remain to be tried
/// (RFC 8305 §5's idea, sequentially): a dead address costs this, not the whole timeout.
const NEXT_ADDRESS_AFTER: Duration = Duration::from_secs(2);

/// Whether the connection never got established (the next address may do better).
fn is_connect_failure(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::ConnectTimeout { .. } | EngineError::Refused { .. }
    )
}

/// `--https-only` refuses `http://`; `--no-check-certificate` warns before each `https://`
/// connection (as wget does), since anyone on the path can then read and change the body.
fn check_scheme(
    target: &Target,
    options: &FetchOptions,
    notices: &mut dyn Notices,
) -> Result<(), EngineError> {
    if options.https_only && !target.is_https() {
        return Err(TlsError::HttpsOnly {
            url: target.url.to_string(),
        }
        .into());
    }
    if target.is_https() && options.transfer.tls.trust.no_check_certificate {
        notices.notice(format!(
            "WARNING: not checking {}'s certificate (--no-check-certificate): the connection \
             is encrypted but not authenticated.",
            target.host
        ));
    }
    Ok(())
}

/// Opens the output once the response head says a body follows.
fn open_sink(
    head: &ResponseHead,
    plan: &BodyPlan,
    target: &Target,
    destination: &Destination,
    resume: &ResumeInfo,
    options: &FetchOptions,
    notices: &mut dyn Notices,
) -> Result<Sink, EngineError> {
    print_head(head, options, notices);
    let identity = Identity {
        url: target.url.to_string(),
        // --spider keeps no body: its sink expects none.
        length: if matches!(destination, Destination::Nowhere) {
            Some(0)
        } else {
            plan.total_len
        },
        etag: head.header("etag").map(str::to_string),
        last_modified: head.header("last-modified").map(str::to_string),
    };
    let resume = if plan.range_ignored {
        notices.notice("The server ignored the range request; starting over.".to_string());
        &ResumeInfo::Fresh
    } else {
        resume
    };
    if let (ResumeInfo::Partial { identity: old, .. }, Destination::File(path)) =
        (resume, destination)
        && !old.same_resource(&identity)
    {
        return Err(EngineError::Setup(format!(
            "the remote file changed since {} was written; remove it to download again",
            sink::control::part_path(path).display()
        )));
    }
    Ok(Sink::open(
        &destination.sink_target(),
        &identity,
        resume,
        &options.sink,
    )?)
}

/// `-S`: the response head as wget prints it, each line indented by two spaces.
fn print_head(head: &ResponseHead, options: &FetchOptions, notices: &mut dyn Notices) {
    if !options.server_response {
        return;
    }
    notices.notice(format!(
        "  HTTP/1.{} {} {}",
        head.version_minor, head.status, head.reason
    ));
    for (name, value) in &head.headers {
        notices.notice(format!("  {name}: {value}"));
    }
}

/// The key a Basic challenge is remembered by (RFC 7617 §2.2: the protection space is the
/// origin; scheme included so that http and https of one host stay apart).
fn origin_key(target: &Target) -> String {
    format!("{}://{}:{}", target.url.scheme(), target.host, target.port)
}

fn same_origin(a: &Target, b: &Target) -> bool {
    origin_key(a) == origin_key(b)
}

fn is_challenged(options: &FetchOptions, target: &Target) -> bool {
    let key = origin_key(target);
    options
        .challenged_hosts
        .lock()
        .is_ok_and(|hosts| hosts.contains(&key))
}

fn remember_challenge(options: &FetchOptions, target: &Target) {
    if let Ok(mut hosts) = options.challenged_hosts.lock() {
        let key = origin_key(target);
        if !hosts.contains(&key) {
            hosts.push(key);
        }
    }
}

/// What one URL's tries share besides the options.
struct UrlContext<'a> {
    /// From the URL, else from the command line.
    credentials: Option<&'a Credentials>,
    /// `-N`: the local file the server's copy is compared with.
    local: Option<LocalCopy>,
}

/// An existing local file: its size and mtime (seconds since the epoch).
#[derive(Clone, Copy, Debug)]
struct LocalCopy {
    len: u64,
    modified: i64,
}

impl LocalCopy {
    fn of(path: &Path) -> Option<LocalCopy> {
        let metadata = std::fs::metadata(path).ok()?;
        let modified = metadata.modified().ok()?;
        let modified = match modified.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).ok()?,
            Err(before) => -i64::try_from(before.duration().as_secs()).ok()?,
        };
        Some(LocalCopy {
            len: metadata.len(),
            modified,
        })
    }

    /// wget's -N rule for a 200: not newer when `Last-Modified` is no later than the local
    /// mtime and the sizes agree.
    fn is_as_new_as(&self, head: &ResponseHead, plan: &BodyPlan) -> bool {
        let remote = head.header("last-modified").and_then(parse_http_date);
        remote.is_some_and(|t| t <= self.modified) && plan.total_len == Some(self.len)
    }
}

/// The result of a fetch that kept the local file.
fn kept(destination: &Destination, target: &Target, len: u64) -> Fetched {
    Fetched {
        path: destination.shown_path(),
        file_len: len,
        transferred: 0,
        already_complete: true,
        final_url: target.url.to_string(),
        elapsed: Duration::ZERO,
    }
}

/// -N found the local file as new as the server's.
fn not_retrieving(
    destination: &Destination,
    target: &Target,
    context: &UrlContext<'_>,
    notices: &mut dyn Notices,
) -> Fetched {
    let shown = destination
        .shown_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    notices.notice(format!(
        "Server file no newer than local file '{shown}' -- not retrieving."
    ));
    kept(destination, target, context.local.map_or(0, |l| l.len))
}

/// Gives `path` the server's `Last-Modified` as its mtime (wget's default), when the head
/// has a valid one.
fn set_server_time(path: &Path, head: &ResponseHead, notices: &mut dyn Notices) {
    let Some(seconds) = head.header("last-modified").and_then(parse_http_date) else {
        return;
    };
    let time = match u64::try_from(seconds) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()),
    };
    let result = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(time));
    if let Err(e) = result {
        notices.notice(format!(
            "cannot set the time of {} to the server's: {e}",
            path.display()
        ));
    }
}

/// `--content-disposition`: where the body goes when the head names a file (RFC 6266),
/// in the directory of the URL-derived name, never clobbering an existing file.
fn disposition_path(
    head: &ResponseHead,
    destination: &Destination,
    options: &FetchOptions,
) -> Option<PathBuf> {
    if !options.content_disposition || !matches!(options.output, Output::Auto { .. }) {
        return None;
    }
    let Destination::File(url_path) = destination else {
        return None;
    };
    let name = disposition_file_name(head.header("content-disposition")?)?;
    let path = url_path.with_file_name(name);
    if path == *url_path {
        return None;
    }
    Some(unclobbered(&path, Path::exists))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    #[test]
    fn retries_follow_wget() {
        let remote = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 80);
        let mut options = FetchOptions::default();
        let refused = EngineError::Refused { remote };
        let reset = EngineError::Reset { remote };
        let unavailable = EngineError::Http(crate::http::HttpError::ServerError {
            status: 503,
            reason: "Service Unavailable".into(),
        });
        let lookup = EngineError::Resolve { host: "h".into() };
        assert!(!is_retried(&refused, &options), "wget gives up on refused");
        assert!(is_retried(&reset, &options));
        assert!(!is_retried(&unavailable, &options));
        assert!(!is_retried(&lookup, &options));
        options.retry_connrefused = true;
        options.retry_on_http_error = vec![503];
        assert!(is_retried(&refused, &options));
        assert!(is_retried(&unavailable, &options));
        assert!(!is_retried(&lookup, &options));
    }
}
