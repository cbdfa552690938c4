//! The command line: `xdpget [OPTIONS] URL...` and `xdpget sim [OPTIONS]`.
//!
//! Option names follow wget where wget has the option, so a wget user needs no manual.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  sudo xdpget http://10.77.0.2/1MiB.bin               download with AF_XDP (raw socket fallback)
  sudo xdpget --iface eth0 -O out.iso http://host/big.iso
  sudo xdpget --driver raw -c http://host/big.iso     force the raw-socket driver; resume
  sudo xdpget --stats --stats-json s.json URL         print latency histograms, save as JSON
  sudo xdpget --ack-every 2 URL                       ACK every second segment (RFC 5681 strict)
  sudo xdpget --ca-certificate ca.pem https://host/f  HTTPS, trusting one more authority
  xdpget sim --size 64MiB --rate 1Gbit --rtt 20ms --loss 1% --seed 7
                                                      watch our TCP engine on a simulated link

Exit status (as wget): 0 ok, 1 generic error, 2 bad option or URL, 3 file I/O error,
4 network failure, 5 TLS, 6 authentication, 7 protocol error, 8 server error response.";

/// A wget-style HTTP downloader with its own TCP/IP stack, bypassing the kernel via AF_XDP.
#[derive(Debug, Parser)]
#[command(
    name = "xdpget",
    version,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    next_help_heading = "Startup",
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub download: DownloadArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole transfer through the TCP engine over a simulated link (no root needed).
    Sim(SimArgs),
    /// Serve a directory over HTTP/1.1 on xdpget's own TCP engine (GET and HEAD).
    #[command(after_help = SERVE_REFUSES)]
    Serve(ServeArgs),
}

/// What `xdpget serve --help` says it refuses.
pub const SERVE_REFUSES: &str = "\
What is refused (never anything outside DIR):
  400  a target that is not a path, malformed %-encoding, a NUL byte (raw or %00),
       a malformed or oversized request head (431), HTTP versions other than 1.0/1.1 (505)
  403  '..' segments (raw or %2e%2e), encoded slashes (%2F), backslashes, control characters,
       symlinks that resolve outside DIR, devices, FIFOs and sockets, unreadable files
  405  methods other than GET and HEAD (with Allow: GET, HEAD)
  A connection that sends no complete request for --idle-timeout seconds is closed (408 if a
  request had begun); one whose client stops reading for 60 s is reset.";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The directory to serve.
    #[arg(default_value = ".")]
    pub dir: std::path::PathBuf,

    /// The interface to serve on [default: the default route's].
    #[arg(long, value_name = "IF")]
    pub iface: Option<String>,

    /// The address and port to listen on [default: the interface's IPv4 address, port 8080].
    /// The address must be the interface's own.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,

    /// Packet driver.
    #[arg(long, value_enum, default_value = "auto")]
    pub driver: DriverChoice,

    /// Seconds a connection may wait for its next complete request.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub idle_timeout: u64,

    /// Connections served at once; more SYNs are dropped until one closes.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,

    /// No access log on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Which packet driver carries the download.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DriverChoice {
    /// The raw socket at once, handed over to AF_XDP once 8 MiB came in (a smaller
    /// download never attaches XDP); the raw socket to the end where AF_XDP cannot be had.
    Auto,
    /// AF_XDP only (XDP program + AF_XDP socket).
    Afxdp,
    /// AF_PACKET raw socket, for NICs and kernels without XDP.
    Raw,
}

/// wget's `--prefer-family` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PreferFamily {
    #[value(name = "IPv4")]
    Ipv4,
    #[value(name = "IPv6")]
    Ipv6,
    #[value(name = "none")]
    None,
}

/// How the file sink prepares its mapping (`sink::Prefault`); a knob for benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrefaultChoice {
    /// Nothing: every new page faults on first write.
    Off,
    /// MADV_WILLNEED ahead of the write front.
    Willneed,
    /// MADV_POPULATE_WRITE ahead of the write front, on a preparer thread (the mapping's
    /// fastest mode; the default before `staged`).
    Populate,
    /// MADV_POPULATE_WRITE ahead of the write front, and the checkpoints, on the engine
    /// thread itself (no helper threads).
    PopulateInline,
    /// Write with pwrite instead of a mapping.
    Pwrite,
    /// Copy into staging buffers, written with pwrite by a writer thread (the default).
    Staged,
}

/// `--fsync-policy` (wget2's option): when the output file waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FsyncChoice {
    /// Never (as wget and curl): safe against xdpget dying at any moment, not a power loss.
    Off,
    /// Progress is synced before it is recorded, the file before and after its rename.
    On,
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressStyle {
    /// A bar with percent, bytes, rate and ETA (the default on a terminal).
    Bar,
    /// A dot per chunk received, like wget's dot style.
    Dot,
    /// Nothing.
    None,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The URLs to download (http:// or https://).
    #[arg(required_unless_present = "input_file", value_name = "URL")]
    pub urls: Vec<String>,

    /// Print nothing but errors.
    #[arg(help_heading = "Logging", short = 'q', long)]
    pub quiet: bool,

    /// Connect to IPv4 addresses only.
    #[arg(
        help_heading = "Download",
        short = '4',
        long = "inet4-only",
        conflicts_with = "inet6_only"
    )]
    pub inet4_only: bool,

    /// Connect to IPv6 addresses only.
    #[arg(help_heading = "Download", short = '6', long = "inet6-only")]
    pub inet6_only: bool,

    /// Try the addresses of this family first [default: none, the resolver's order].
    #[arg(
        help_heading = "Download",
        long,
        value_enum,
        ignore_case = true,
        value_name = "FAMILY"
    )]
    pub prefer_family: Option<PreferFamily>,

    /// Write the document to FILE ('-' for standard output).
    #[arg(
        help_heading = "Download",
        short = 'O',
        long = "output-document",
        value_name = "FILE"
    )]
    pub output_document: Option<PathBuf>,

    /// Save files under DIR.
    #[arg(
        help_heading = "Directories",
        short = 'P',
        long = "directory-prefix",
        value_name = "DIR"
    )]
    pub directory_prefix: Option<PathBuf>,

    /// Resume a partially downloaded file.
    #[arg(help_heading = "Download", short = 'c', long = "continue")]
    pub resume: bool,

    /// Progress display [default: bar on a terminal, none otherwise].
    #[arg(help_heading = "Download", long, value_enum, value_name = "STYLE")]
    pub progress: Option<ProgressStyle>,

    /// Number of tries per URL (0 means unlimited); fatal errors are not retried.
    #[arg(
        help_heading = "Download",
        short = 't',
        long,
        default_value_t = 20,
        value_name = "N"
    )]
    pub tries: u32,

    /// Set connect and read timeouts at once, in seconds.
    #[arg(help_heading = "Download", short = 'T', long, value_name = "SECONDS")]
    pub timeout: Option<f64>,

    /// Connect timeout in seconds [default: 15].
    #[arg(help_heading = "Download", long, value_name = "SECONDS")]
    pub connect_timeout: Option<f64>,

    /// Read (idle) timeout in seconds [default: 900, as wget].
    #[arg(help_heading = "Download", long, value_name = "SECONDS")]
    pub read_timeout: Option<f64>,

    /// Give up (exit 4, the .part kept for -c) when fewer than BYTES per second arrive for
    /// --speed-time seconds, as curl; K and M suffixes count 1024s [default time: 30 s].
    #[arg(help_heading = "Download", long, value_name = "BYTES", value_parser = parse_speed)]
    pub speed_limit: Option<u64>,

    /// Seconds the speed may stay below --speed-limit [default limit: 1 byte/s, as curl].
    #[arg(help_heading = "Download", long, value_name = "SECONDS")]
    pub speed_time: Option<f64>,

    /// aria2's name for --speed-limit.
    #[arg(help_heading = "Download", long, value_name = "BYTES", value_parser = parse_speed, conflicts_with = "speed_limit")]
    pub lowest_speed_limit: Option<u64>,

    /// Maximum redirections to follow.
    #[arg(help_heading = "HTTP", long, default_value_t = 20, value_name = "N")]
    pub max_redirect: u32,

    /// Extra request header, e.g. --header 'Accept-Language: en' (repeatable).
    #[arg(help_heading = "HTTP", long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// User-Agent to send [default: xdpget/VERSION].
    #[arg(help_heading = "HTTP", short = 'U', long, value_name = "AGENT")]
    pub user_agent: Option<String>,

    /// Only check that the URL exists (HEAD request); download nothing.
    #[arg(help_heading = "Download", long)]
    pub spider: bool,

    /// Trust the certificate authorities in FILE (PEM), besides the system's.
    #[arg(help_heading = "HTTPS", long, value_name = "FILE")]
    pub ca_certificate: Option<PathBuf>,

    /// Trust the certificate authorities in the PEM files in DIR, besides the system's.
    #[arg(help_heading = "HTTPS", long, value_name = "DIR")]
    pub ca_directory: Option<PathBuf>,

    /// Do not check the server's certificate (insecure: prints a warning).
    #[arg(help_heading = "HTTPS", long)]
    pub no_check_certificate: bool,

    /// Refuse http:// URLs, including redirects to them.
    #[arg(help_heading = "HTTPS", long)]
    pub https_only: bool,

    /// Network interface to use [default: the interface of the default route].
    #[arg(help_heading = "xdpget's own", long, value_name = "IFACE")]
    pub iface: Option<String>,

    /// Packet driver.
    #[arg(help_heading = "xdpget's own", long, value_enum, default_value_t = DriverChoice::Auto)]
    pub driver: DriverChoice,

    /// Local TCP ports xdpget owns while it runs (reserved from the kernel).
    #[arg(
        help_heading = "xdpget's own",
        long,
        default_value = "61000-61099",
        value_name = "LOW-HIGH"
    )]
    pub port_range: String,

    /// NIC receive queue to bind [default: every queue the flow may land on].
    #[arg(help_heading = "xdpget's own", long, value_name = "N")]
    pub queue: Option<u32>,

    /// CPU core for the busy-poll thread [default: the last core the NIC's receive
    /// interrupts do not land on].
    #[arg(help_heading = "xdpget's own", long, value_name = "N")]
    pub core: Option<usize>,

    /// Acknowledge every N full-sized segments (RFC 5681 §4.2 strictly: 2). The default, 0,
    /// acknowledges like a Linux receiver with GRO: one ACK per receive batch (at most
    /// 64 KiB, at most 1 ms late), which senders that count acknowledged bytes (Linux,
    /// CUBIC, BBR) take at full speed.
    #[arg(help_heading = "xdpget's own", long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=64))]
    pub ack_every: u16,

    /// Do not offer SACK (RFC 2018). By default xdpget offers it and reports out-of-order
    /// blocks (newest first, D-SACK for duplicates), so that the server repairs every loss
    /// of a window in one round trip.
    #[arg(help_heading = "xdpget's own", long = "no-sack", action = clap::ArgAction::SetFalse)]
    pub sack: bool,

    /// Accepted for compatibility: SACK is on by default.
    #[arg(long = "sack", hide = true)]
    pub sack_compat: bool,

    /// How the output mapping is prepared ahead of the write front (for measurements).
    #[arg(help_heading = "xdpget's own", long, value_enum, default_value_t = PrefaultChoice::Staged, hide = true)]
    pub prefault: PrefaultChoice,

    /// Wait for the disk (msync, fsync) before recording progress for -c and before the
    /// file gets its name, so that a power loss loses nothing reported done. Off by default:
    /// a crash or kill of xdpget itself never needs it (docs/sink.md).
    #[arg(help_heading = "xdpget's own", long, value_enum, default_value_t = FsyncChoice::Off, value_name = "on|off")]
    pub fsync_policy: FsyncChoice,

    /// Print latency histograms and driver counters at the end.
    #[arg(help_heading = "xdpget's own", long)]
    pub stats: bool,

    /// Write the same statistics as JSON to FILE.
    #[arg(help_heading = "xdpget's own", long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,

    /// Record every frame sent and received to FILE (pcap, opens in Wireshark).
    #[arg(help_heading = "xdpget's own", long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Print the server's response heads (to standard error, as wget).
    #[arg(help_heading = "Logging", short = 'S', long)]
    pub server_response: bool,

    /// User name for authentication (Basic); a user in the URL wins.
    #[arg(help_heading = "Download", long, value_name = "USER")]
    pub user: Option<String>,

    /// Password for authentication (Basic); a password in the URL wins.
    #[arg(help_heading = "Download", long, value_name = "PASS")]
    pub password: Option<String>,

    /// User name for HTTP (overrides --user).
    #[arg(help_heading = "HTTP", long, value_name = "USER")]
    pub http_user: Option<String>,

    /// Password for HTTP (overrides --password).
    #[arg(help_heading = "HTTP", long, value_name = "PASS")]
    pub http_password: Option<String>,

    /// Keep the download time as the file's time (by default the file gets the server's
    /// Last-Modified, as in wget).
    #[arg(help_heading = "Download", long)]
    pub no_use_server_timestamps: bool,

    /// Download only when the server's file is newer than the local one (If-Modified-Since,
    /// else size and date).
    #[arg(help_heading = "Download", short = 'N', long)]
    pub timestamping: bool,

    /// -nc: skip a download whose file already exists (instead of saving NAME.1).
    #[arg(help_heading = "Download", long)]
    pub no_clobber: bool,

    /// Name the file as the server's Content-Disposition header says (made safe: no
    /// directories, no leading dots, no control characters).
    #[arg(help_heading = "HTTP", long)]
    pub content_disposition: bool,

    /// Log to FILE instead of standard error (truncating it).
    #[arg(
        help_heading = "Logging",
        short = 'o',
        long = "output-file",
        value_name = "FILE",
        conflicts_with = "append_output"
    )]
    pub output_file: Option<PathBuf>,

    /// Append the log to FILE instead of standard error.
    #[arg(
        help_heading = "Logging",
        short = 'a',
        long = "append-output",
        value_name = "FILE"
    )]
    pub append_output: Option<PathBuf>,

    /// Wait 1, 2, ... up to SECONDS between retries of a failed try.
    #[arg(
        help_heading = "Download",
        long,
        value_name = "SECONDS",
        default_value_t = 10.0
    )]
    pub waitretry: f64,

    /// Retry when the server refuses the connection (wget gives up at once by default).
    #[arg(help_heading = "Download", long)]
    pub retry_connrefused: bool,

    /// Retry on these HTTP statuses, e.g. --retry-on-http-error=503,504.
    #[arg(
        help_heading = "Download",
        long,
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub retry_on_http_error: Vec<u16>,

    /// Ignore Content-Length: read the body until the server closes the connection.
    #[arg(help_heading = "HTTP", long)]
    pub ignore_length: bool,

    /// Read URLs from FILE, one a line (`-` for standard input; blank lines and lines
    /// starting with # are skipped), after those on the command line.
    #[arg(help_heading = "Download", short = 'i', long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,

    /// Download up to N URLs at once, on one engine thread (default: one after another,
    /// as wget).
    #[arg(help_heading = "Download", long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,

    /// Fetch each file over N connections at once, each a range of it (1-16; default 1,
    /// as wget). Helps where one connection is held back: loss on a long path (one TCP
    /// connection gets about MSS / (RTT x sqrt(loss))) or a server that caps each
    /// connection's rate. Needs a server that sends ranges (206) and an ETag or
    /// Last-Modified, which every range is checked against (If-Range); otherwise one
    /// connection is used, with a notice. Files smaller than 2 MiB use one connection.
    #[arg(help_heading = "Download", short = 'x', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    pub connections: u8,

    /// Limit the download speed to RATE bytes per second, as wget: 20k, 2.5m, 1g (k, m, g
    /// count 1024s; 0: no limit; with -x N, for each connection). Done by the receive window
    /// we advertise, so the server is slowed down, never made to resend.
    #[arg(help_heading = "Download", long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,

    /// Do not use a proxy, even when http_proxy or https_proxy is set (by default they
    /// are used as wget does, with no_proxy's exceptions).
    #[arg(help_heading = "HTTP", long)]
    pub no_proxy: bool,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Bytes to transfer (e.g. 64MiB, 1GiB, 1000).
    #[arg(long, default_value = "64MiB")]
    pub size: String,

    /// Link rate in each direction (e.g. 1Gbit, 100Mbit).
    #[arg(long, default_value = "1Gbit")]
    pub rate: String,

    /// Round-trip time (twice the one-way delay), e.g. 20ms.
    #[arg(long, default_value = "20ms")]
    pub rtt: String,

    /// Random loss per frame, each direction (e.g. 1%).
    #[arg(long, default_value = "0%")]
    pub loss: String,

    /// Share of frames delayed so that later ones overtake them.
    #[arg(long, default_value = "0%")]
    pub reorder: String,

    /// Share of frames delivered twice.
    #[arg(long, default_value = "0%")]
    pub duplicate: String,

    /// Share of frames with a flipped bit (the checksum must catch it).
    #[arg(long, default_value = "0%")]
    pub corrupt: String,

    /// Drop-tail queue limit of the bottleneck, in bytes [default: one bandwidth-delay product].
    #[arg(long, value_name = "BYTES")]
    pub queue_limit: Option<String>,

    /// The receiver's largest window [default: bandwidth-delay product + queue limit].
    #[arg(long, value_name = "BYTES")]
    pub window: Option<String>,

    /// Link MTU (IP packet size).
    #[arg(long, default_value_t = 1500)]
    pub mtu: u16,

    /// Seed for every random choice (loss, reordering, ISNs): same seed, same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,

    /// Write cwnd, ssthresh, rwnd and bytes in flight over time to FILE (CSV).
    #[arg(long, value_name = "FILE.csv")]
    pub trace: Option<PathBuf>,

    /// Draw the same trace to FILE (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// wget's multi-letter short options, which clap cannot spell, turned into their long
/// forms: `-nc` → `--no-clobber`. Everything after `--` is left alone.
pub fn wget_spellings(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut after_separator = false;
    args.into_iter()
        .map(|arg| {
            if arg == "--" {
                after_separator = true;
            }
            match arg.to_str() {
                Some("-nc") if !after_separator => "--no-clobber".into(),
                _ => arg,
            }
        })
        .collect()
}

/// A speed in bytes per second: `1000`, `10K`, `2M` (aria2's suffixes, 1024-based).
fn parse_speed(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.strip_suffix(['K', 'k']) {
        Some(digits) => (digits, 1u64 << 10),
        None => match text.strip_suffix(['M', 'm']) {
            Some(digits) => (digits, 1u64 << 20),
            None => (text, 1),
        },
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{text}' is not a positive number of bytes per second"))
}

/// `--limit-rate`'s RATE as wget reads it: a decimal number, optionally with a fraction,
/// and a suffix k, m, g or t (either case, powers of 1024). 0 is no limit
/// ([`DownloadArgs::rate_limit`]).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let invalid =
        || format!("'{text}' is not a rate: a number of bytes per second, as 20k or 2.5m");
    let trimmed = text.trim();
    let (number, unit) = match trimmed.char_indices().last() {
        Some((at, suffix)) if suffix.is_ascii_alphabetic() => {
            let shift = match suffix.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => return Err(invalid()),
            };
            (&trimmed[..at], (1u64 << shift) as f64)
        }
        _ => (trimmed, 1.0),
    };
    // Digits and at most one point: no signs, exponents, "inf" or "nan".
    let well_formed = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let value: f64 = if well_formed {
        number.parse().map_err(|_| invalid())?
    } else {
        return Err(invalid());
    };
    let bytes = (value * unit).round();
    if bytes >= u64::MAX as f64 {
        return Err(format!("'{text}' is too large a rate"));
    }
    Ok(bytes as u64)
}

impl DownloadArgs {
    /// `--limit-rate` in bytes per second, `None` without a limit (no flag, or 0 as wget).
    pub fn rate_limit(&self) -> Option<u64> {
        self.limit_rate.filter(|rate| *rate > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn limit_rate_reads_wget_rates() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("20k"), Ok(20 * 1024));
        assert_eq!(parse_rate("20K"), Ok(20 * 1024));
        assert_eq!(parse_rate("2.5m"), Ok(2_621_440));
        assert_eq!(parse_rate("1g"), Ok(1 << 30));
        assert_eq!(parse_rate("0.5k"), Ok(512));
        assert_eq!(parse_rate("0"), Ok(0));
        for bad in [
            "",
            "k",
            "-1k",
            "1x",
            "1.2.3",
            "inf",
            "nan",
            "1e3",
            "20 kb",
            "99999999999t",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
        let parse = |args: &[&str]| {
            let mut all = vec!["xdpget"];
            all.extend_from_slice(args);
            all.push("http://h/a");
            Cli::try_parse_from(all).map(|cli| cli.download.rate_limit())
        };
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&["--limit-rate", "0"]).unwrap(),
            None,
            "wget: 0 is no limit"
        );
        assert_eq!(parse(&["--limit-rate", "20m"]).unwrap(), Some(20 << 20));
        assert_eq!(parse(&["--limit-rate=300k"]).unwrap(), Some(300 << 10));
        assert!(parse(&["--limit-rate", "fast"]).is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn urls_and_subcommand_parse() {
        let cli = Cli::try_parse_from(["xdpget", "-c", "-O", "x", "http://h/a"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.download.resume);
        assert_eq!(cli.download.urls, ["http://h/a"]);
        let cli = Cli::try_parse_from(["xdpget", "sim", "--loss", "1%"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Sim(ref s)) if s.loss == "1%"));
        let argv =
            wget_spellings(["xdpget", "-nc", "-N", "http://h/a", "--", "-nc"].map(Into::into));
        let cli = Cli::try_parse_from(argv).unwrap();
        assert!(cli.download.no_clobber && cli.download.timestamping);
        assert_eq!(cli.download.urls, ["http://h/a", "-nc"]);
        let err = Cli::try_parse_from(["xdpget"]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "wget's exit code for a parse error");
    }

    #[test]
    fn sack_is_on_unless_no_sack_and_the_batch_policy_is_the_default() {
        let parse = |args: &[&str]| {
            let mut all = vec!["xdpget"];
            all.extend_from_slice(args);
            all.push("http://h/a");
            Cli::try_parse_from(all).unwrap().download
        };
        let defaults = parse(&[]);
        assert!(defaults.sack);
        assert_eq!(defaults.ack_every, 0);
        assert!(!parse(&["--no-sack"]).sack);
        // The old opt-in flag is still accepted and changes nothing.
        assert!(parse(&["--sack"]).sack);
        assert_eq!(parse(&["--ack-every", "2"]).ack_every, 2);
    }
}
