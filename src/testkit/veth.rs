//! A client and a server network namespace joined by a veth pair:
//!
//! ```text
//!  netns <tag>-c                netns <tag>-s
//!  xgc0 10.77.0.2/24  <—veth—>  xgs0 10.77.0.1/24 (tx checksum offload off)
//! ```

use std::net::Ipv4Addr;
use std::process::{Child, Command, Output, Stdio};

use super::netns::in_netns;
use super::run_ok;

pub(crate) const CLIENT_IF: &str = "xgc0";
pub(crate) const SERVER_IF: &str = "xgs0";
pub(crate) const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub(crate) const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// The two namespaces and the veth pair; dropping it deletes both namespaces (and with
/// them the veth pair and anything attached to it) and kills the processes it started.
pub(crate) struct TestNet {
    pub client_ns: String,
    pub server_ns: String,
    children: Vec<Child>,
}

impl TestNet {
    /// Builds the pair. `tag` must be unique among concurrently running tests.
    pub(crate) fn new(tag: &str) -> TestNet {
        TestNet::with_queues(tag, 1)
    }

    /// Like [`TestNet::new`], with `queues` rx and tx queues on each veth end.
    pub(crate) fn with_queues(tag: &str, queues: u32) -> TestNet {
        let queues = queues.to_string();
        let pid = std::process::id();
        let net = TestNet {
            client_ns: format!("xg-xdp-{tag}-{pid}-c"),
            server_ns: format!("xg-xdp-{tag}-{pid}-s"),
            children: Vec::new(),
        };
        // From here on `net` is dropped (and cleans up) if a step panics.
        let (c, s) = (&net.client_ns, &net.server_ns);
        for command in [
            format!("netns add {c}"),
            format!("netns add {s}"),
            format!(
                "-n {c} link add {CLIENT_IF} numrxqueues {queues} numtxqueues {queues} type veth \
                 peer name {SERVER_IF} numrxqueues {queues} numtxqueues {queues} netns {s}"
            ),
            format!("-n {c} addr add {CLIENT_IP}/24 dev {CLIENT_IF}"),
            format!("-n {s} addr add {SERVER_IP}/24 dev {SERVER_IF}"),
            format!("-n {c} link set lo up"),
            format!("-n {s} link set lo up"),
            format!("-n {c} link set {CLIENT_IF} up"),
            format!("-n {s} link set {SERVER_IF} up"),
        ] {
            let args: Vec<&str> = command.split_whitespace().collect();
            run_ok("ip", &args);
        }
        // DESIGN.md: without this, veth hands us segments with partial checksums.
        net.server(&["ethtool", "-K", SERVER_IF, "tx", "off"]);
        net
    }

    /// Runs a command in the server namespace and waits for it to succeed.
    pub(crate) fn server(&self, command: &[&str]) -> Output {
        let mut args = vec!["netns", "exec", self.server_ns.as_str()];
        args.extend_from_slice(command);
        run_ok("ip", &args)
    }

    /// Runs a command in the client namespace and waits for it to succeed.
    pub(crate) fn client(&self, command: &[&str]) -> Output {
        let mut args = vec!["netns", "exec", self.client_ns.as_str()];
        args.extend_from_slice(command);
        run_ok("ip", &args)
    }

    /// Starts a command in the server namespace; it is killed when `self` drops.
    pub(crate) fn spawn_server(&mut self, command: &[&str]) -> &mut Child {
        let child = Command::new("ip")
            .args(["netns", "exec", self.server_ns.as_str()])
            .args(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        self.children.push(child);
        let last = self.children.len() - 1;
        &mut self.children[last]
    }

    /// Runs `body` on a fresh thread that has entered the client namespace, so that every
    /// socket, netlink query and XDP attach it makes happens there.
    pub(crate) fn in_client<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.client_ns, body)
    }

    /// Like [`TestNet::in_client`], in the server namespace.
    pub(crate) fn in_server<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        in_netns(&self.server_ns, body)
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.client_ns, &self.server_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
