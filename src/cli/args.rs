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
  sudo xdpget --sack URL                              on a lossy link: offer SACK (RFC 2018)
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
}

/// Which packet driver carries the download.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DriverChoice {
    /// AF_XDP, falling back to the raw driver with a notice.
    Auto,
    /// AF_XDP only (XDP program + AF_XDP socket).
    Afxdp,
    /// AF_PACKET raw socket, for NICs and kernels without XDP.
    Raw,
}

/// How the file sink prepares its mapping (`sink::Prefault`); a knob for benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrefaultChoice {
    /// Nothing: every new page faults on first write.
    Off,
    /// MADV_WILLNEED ahead of the write front.
    Willneed,
    /// MADV_POPULATE_WRITE ahead of the write front, on a preparer thread (the default).
    Populate,
    /// MADV_POPULATE_WRITE ahead of the write front, and the checkpoints, on the engine
    /// thread itself (no helper threads).
    PopulateInline,
    /// Write with pwrite instead of a mapping.
    Pwrite,
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
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,

    /// Network interface to use [default: the interface of the default route].
    #[arg(long, value_name = "IFACE")]
    pub iface: Option<String>,

    /// Packet driver.
    #[arg(long, value_enum, default_value_t = DriverChoice::Auto)]
    pub driver: DriverChoice,

    /// Write the document to FILE ('-' for standard output).
    #[arg(short = 'O', long = "output-document", value_name = "FILE")]
    pub output_document: Option<PathBuf>,

    /// Save files under DIR.
    #[arg(short = 'P', long = "directory-prefix", value_name = "DIR")]
    pub directory_prefix: Option<PathBuf>,

    /// Resume a partially downloaded file.
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,

    /// Print nothing but errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Progress display [default: bar on a terminal, none otherwise].
    #[arg(long, value_enum, value_name = "STYLE")]
    pub progress: Option<ProgressStyle>,

    /// Number of tries per URL (0 means unlimited); fatal errors are not retried.
    #[arg(short = 't', long, default_value_t = 20, value_name = "N")]
    pub tries: u32,

    /// Set connect and read timeouts at once, in seconds.
    #[arg(short = 'T', long, value_name = "SECONDS")]
    pub timeout: Option<f64>,

    /// Connect timeout in seconds [default: 15].
    #[arg(long, value_name = "SECONDS")]
    pub connect_timeout: Option<f64>,

    /// Read (idle) timeout in seconds [default: 900, as wget].
    #[arg(long, value_name = "SECONDS")]
    pub read_timeout: Option<f64>,

    /// Give up (exit 4, the .part kept for -c) when fewer than BYTES per second arrive for
    /// --speed-time seconds, as curl; K and M suffixes count 1024s [default time: 30 s].
    #[arg(long, value_name = "BYTES", value_parser = parse_speed)]
    pub speed_limit: Option<u64>,

    /// Seconds the speed may stay below --speed-limit [default limit: 1 byte/s, as curl].
    #[arg(long, value_name = "SECONDS")]
    pub speed_time: Option<f64>,

    /// aria2's name for --speed-limit.
    #[arg(long, value_name = "BYTES", value_parser = parse_speed, conflicts_with = "speed_limit")]
    pub lowest_speed_limit: Option<u64>,

    /// Maximum redirections to follow.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_redirect: u32,

    /// Extra request header, e.g. --header 'Accept-Language: en' (repeatable).
    #[arg(long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// User-Agent to send [default: xdpget/VERSION].
    #[arg(short = 'U', long, value_name = "AGENT")]
    pub user_agent: Option<String>,

    /// Only check that the URL exists (HEAD request); download nothing.
    #[arg(long)]
    pub spider: bool,

    /// Local TCP ports xdpget owns while it runs (reserved from the kernel).
    #[arg(long, default_value = "61000-61099", value_name = "LOW-HIGH")]
    pub port_range: String,

    /// NIC receive queue to bind [default: every queue the flow may land on].
    #[arg(long, value_name = "N")]
    pub queue: Option<u32>,

    /// CPU core for the busy-poll thread [default: the last core the NIC's receive
    /// interrupts do not land on].
    #[arg(long, value_name = "N")]
    pub core: Option<usize>,

    /// Acknowledge every N full-sized segments within a receive batch (RFC 5681: 2). More
    /// means fewer ACKs ("stretch ACKs", as Linux sends when it drains a backlog); every
    /// batch still ends with an ACK.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub ack_every: u16,

    /// Offer SACK (RFC 2018) and report out-of-order blocks, so that a sender that knows
    /// SACK repairs every loss of a window in one round trip. Off by default: the engine is
    /// SACK-less by design, and recovers Reno-style (slowly under loss).
    #[arg(long)]
    pub sack: bool,

    /// How the output mapping is prepared ahead of the write front (for measurements).
    #[arg(long, value_enum, default_value_t = PrefaultChoice::Populate, hide = true)]
    pub prefault: PrefaultChoice,

    /// Wait for the disk (msync, fsync) before recording progress for -c and before the
    /// file gets its name, so that a power loss loses nothing reported done. Off by default:
    /// a crash or kill of xdpget itself never needs it (docs/sink.md).
    #[arg(long, value_enum, default_value_t = FsyncChoice::Off, value_name = "on|off")]
    pub fsync_policy: FsyncChoice,

    /// Print latency histograms and driver counters at the end.
    #[arg(long)]
    pub stats: bool,

    /// Write the same statistics as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,

    /// Record every frame sent and received to FILE (pcap, opens in Wireshark).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Trust the certificate authorities in FILE (PEM), besides the system's.
    #[arg(long, value_name = "FILE")]
    pub ca_certificate: Option<PathBuf>,

    /// Trust the certificate authorities in the PEM files in DIR, besides the system's.
    #[arg(long, value_name = "DIR")]
    pub ca_directory: Option<PathBuf>,

    /// Do not check the server's certificate (insecure: prints a warning).
    #[arg(long)]
    pub no_check_certificate: bool,

    /// Refuse http:// URLs, including redirects to them.
    #[arg(long)]
    pub https_only: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
        let err = Cli::try_parse_from(["xdpget"]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "wget's exit code for a parse error");
    }
}
