//! One URL, wget-style: redirects, retries with resume, output naming, `-c`, `--spider`.
//!
//! Above [`super::transfer`] (one request on one connection) and below the CLI (arguments,
//! progress drawing, exit codes). Works on any [`Network`]: a real interface or the
//! simulator, so the simulator tests exercise exactly this code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::EngineError;
use super::network::Network;
use super::progress::Progress;
use super::stats::EngineStats;
use super::transfer::{self, TransferEnd, TransferOptions};
use crate::http::{BodyPlan, Header, Method, Outcome, Request, ResponseHead, Target};
use crate::sink::naming::{NamingOptions, output_path};
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
    /// The server said the file was already complete (416 on `-c`).
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

/// Fetches `url` over `network`.
pub fn fetch<N: Network>(
    network: &mut N,
    url: &str,
    options: &FetchOptions,
    progress: &Progress,
    stats: &mut EngineStats,
    notices: &mut dyn Notices,
) -> Result<Fetched, EngineError> {
    let original = Target::parse(url)?;
    let destination = destination(&original, options);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // Without -c only a .part this run's earlier try left is continued.
        let continue_partial = options.resume || attempt > 1;
        match fetch_once(
            network,
            &original,
            &destination,
            continue_partial,
            options,
            progress,
            stats,
            notices,
        ) {
            Ok(fetched) => return Ok(fetched),
            Err(error) => {
                let retryable = error.is_retryable()
                    && !matches!(error, EngineError::Resolve { .. })
                    && (options.tries == 0 || attempt < options.tries)
                    && destination.resumable();
                if !retryable {
                    return Err(error);
                }
                notices.notice(format!("{error}. Retrying (try {}).", attempt + 1));
                let pause = Duration::from_secs(u64::from(attempt)).min(options.max_retry_pause);
                network.pause(pause)?;
            }
        }
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
            let naming = NamingOptions {
                output_document: None,
                directory_prefix: directory.clone(),
                continue_partial: options.resume,
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
fn fetch_once<N: Network>(
    network: &mut N,
    original: &Target,
    destination: &Destination,
    continue_partial: bool,
    options: &FetchOptions,
    progress: &Progress,
    stats: &mut EngineStats,
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
    let mut target = original.clone();
    let mut redirects = 0u32;
    loop {
        check_scheme(&target, options, notices)?;
        let remote = network.resolve(&target.host, target.port)?;
        let (driver, endpoint) = network.open(remote)?;
        let request = Request {
            method: if options.spider {
                Method::Head
            } else {
                Method::Get
            },
            range_start: (offset > 0).then_some(offset),
            user_agent: options.user_agent.clone(),
            extra_headers: options.headers.clone(),
            ..Request::get(target.clone())
        };
        let mut open_sink = |head: &ResponseHead, plan: &BodyPlan| {
            open_sink(head, plan, &target, destination, &resume, options, notices)
        };
        let started = std::time::Instant::now();
        let end = transfer::run(
            driver,
            &endpoint,
            &request,
            &options.transfer,
            &mut open_sink,
            progress,
            stats,
        );
        match end {
            Ok(TransferEnd::Body { sink, plan, .. }) => {
                let file_len = sink.finish()?;
                return Ok(Fetched {
                    path: destination.shown_path(),
                    file_len,
                    transferred: file_len.saturating_sub(plan.file_offset),
                    already_complete: false,
                    final_url: target.url.to_string(),
                    elapsed: started.elapsed(),
                });
            }
            Ok(TransferEnd::NoBody { outcome, .. }) => match outcome {
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
                    notices
                        .notice("The file is already fully retrieved; nothing to do.".to_string());
                    return Ok(Fetched {
                        path: destination.shown_path(),
                        file_len: offset,
                        transferred: 0,
                        already_complete: true,
                        final_url: target.url.to_string(),
                        elapsed: started.elapsed(),
                    });
                }
                error @ Outcome::ServerError { .. } => {
                    return Err(error
                        .to_error()
                        .map_or_else(|| EngineError::Setup("server error".into()), Into::into));
                }
                Outcome::Body(_) => unreachable!("a body outcome ends with TransferEnd::Body"),
            },
            Err(failure) => {
                if let Some(sink) = failure.sink {
                    let kept = sink.abandon().unwrap_or(0);
                    if let Destination::File(path) = destination
                        && kept > 0
                    {
                        notices.notice(format!(
                            "{} keeps the first {kept} bytes; `xdpget -c` continues it",
                            sink::control::part_path(path).display()
                        ));
                    }
                }
                return Err(failure.error);
            }
        }
    }
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
