//! Our drop table, written in nf_tables netlink messages by this process (no `nft` binary)
//! and owned by its netlink socket, so that the kernel deletes it when the socket closes:
//! at exit, on a panic, and on `kill -9` alike.
//!
//! Follows the kernel's uapi headers `<linux/netfilter/nfnetlink.h>` (batches, `nfgenmsg`)
//! and `<linux/netfilter/nf_tables.h>` (message types, attributes, expressions), which are
//! the reference for every number below; RFC 3549 §2.2 for the netlink framing. Integer
//! attributes of nf_tables are big-endian (network order), unlike rtnetlink's.
//!
//! One batch (one `sendmsg`, applied atomically by the kernel) carries the table, the base
//! chain and the rule that `nft` would build from
//!
//! ```text
//! table inet xdpget_<pid>_<n> {                       # flags owner
//!     chain prerouting {
//!         type filter hook prerouting priority -300; policy accept;
//!         ip daddr <addr> tcp dport <first>-<last> counter drop
//!     }
//! }
//! ```
//!
//! The rule in expressions: `meta nfproto == ipv4`, `payload network[16..20] == addr`,
//! `meta l4proto == tcp`, `payload transport[2..4] >= first`, `<= last`, `counter`,
//! `immediate verdict drop`. Ports and addresses are compared in network byte order, which
//! is what `cmp` does (a `memcmp` of the register against the data).
//!
//! `NFT_TABLE_F_OWNER` came with Linux 5.12; an older kernel refuses the flag with
//! EOPNOTSUPP, and the caller falls back to the `nft` binary.

use std::io;
use std::net::IpAddr;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::net::nlmsg::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, NLMSG_ERROR, decode_error, decode_messages,
    encode_request,
};

// <linux/netfilter/nfnetlink.h>
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNETLINK_V0: u8 = 0;

// <linux/netfilter.h>
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

// <linux/netlink.h>
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;

// <linux/netfilter/nf_tables.h>: messages
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
// tables
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFT_TABLE_F_OWNER: u32 = 0x2;
// chains and their hook
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
// rules and expressions
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_LTE: u32 = 3;
const NFT_CMP_GTE: u32 = 5;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
/// The verdict register, and the first 16-byte data register.
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;

/// RFC 791 §3.1: the destination address at byte 16 of the IPv4 header.
const IPV4_DADDR_OFFSET: u32 = 16;
/// RFC 8200 §3: the destination address at byte 24 of the IPv6 header.
const IPV6_DADDR_OFFSET: u32 = 24;
/// RFC 9293 §3.1: the destination port at byte 2 of the TCP header.
const TCP_DPORT_OFFSET: u32 = 2;
const IPPROTO_TCP: u8 = 6;
/// Netfilter's `NF_IP_PRI_RAW`: before connection tracking (-200) and everything else
/// that could answer.
const PRIORITY_RAW: i32 = -300;
const CHAIN: &str = "prerouting";

/// The drop table, alive as long as this value: dropping it closes the socket that owns the
/// table, and the kernel deletes the table.
#[derive(Debug)]
pub(super) struct OwnedTable {
    _socket: Socket,
}

impl OwnedTable {
    /// Creates table `table` owned by a new netlink socket, in the calling thread's network
    /// namespace. Errors carry the kernel's errno (EOPNOTSUPP: no owner flag, Linux < 5.12;
    /// EPERM: no CAP_NET_ADMIN).
    pub(super) fn create(
        table: &str,
        addr: IpAddr,
        first: u16,
        last: u16,
    ) -> io::Result<OwnedTable> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let batch = batch(table, addr, first, last);
        socket.send(&batch.bytes, 0)?;
        await_acks(&socket, &batch.acked)?;
        Ok(OwnedTable { _socket: socket })
    }

    /// A second descriptor of the owning socket.
    pub(super) fn socket_copy(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        self._socket.as_fd().try_clone_to_owned()
    }
}

/// A batch to send, and the sequence numbers whose acknowledgements it asks for.
struct Batch {
    bytes: Vec<u8>,
    acked: Vec<u32>,
}

/// BATCH_BEGIN, NEWTABLE (owned), NEWCHAIN, NEWRULE, BATCH_END; sequence numbers 1 to 5.
fn batch(table: &str, addr: IpAddr, first: u16, last: u16) -> Batch {
    let table_name = strz(table);
    let chain_name = strz(CHAIN);
    let hook = nest(&[
        attr(NFTA_HOOK_HOOKNUM, &be32(NF_INET_PRE_ROUTING)),
        attr(NFTA_HOOK_PRIORITY, &PRIORITY_RAW.to_be_bytes()),
    ]);
    let expressions = nest(&rule_expressions(addr, first, last));
    let create = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;
    let mut bytes = batch_marker(NFNL_MSG_BATCH_BEGIN, 1);
    bytes.extend(nft_message(
        NFT_MSG_NEWTABLE,
        create,
        2,
        &[
            (NFTA_TABLE_NAME, &table_name),
            (NFTA_TABLE_FLAGS, &be32(NFT_TABLE_F_OWNER)),
        ],
    ));
    bytes.extend(nft_message(
        NFT_MSG_NEWCHAIN,
        create,
        3,
        &[
            (NFTA_CHAIN_TABLE, &table_name),
            (NFTA_CHAIN_NAME, &chain_name),
            (NFTA_CHAIN_HOOK | NLA_F_NESTED, &hook),
            (NFTA_CHAIN_POLICY, &be32(NF_ACCEPT)),
            (NFTA_CHAIN_TYPE, &strz("filter")),
        ],
    ));
    bytes.extend(nft_message(
        NFT_MSG_NEWRULE,
        create | NLM_F_APPEND,
        4,
        &[
            (NFTA_RULE_TABLE, &table_name),
            (NFTA_RULE_CHAIN, &chain_name),
            (NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, &expressions),
        ],
    ));
    bytes.extend(batch_marker(NFNL_MSG_BATCH_END, 5));
    Batch {
        bytes,
        acked: vec![2, 3, 4],
    }
}

/// `ip daddr <addr> tcp dport <first>-<last> counter drop` (`ip6 daddr` for IPv6), one
/// list element each.
fn rule_expressions(addr: IpAddr, first: u16, last: u16) -> Vec<Vec<u8>> {
    let (nfproto, daddr_offset, daddr) = match addr {
        IpAddr::V4(v4) => (NFPROTO_IPV4, IPV4_DADDR_OFFSET, v4.octets().to_vec()),
        IpAddr::V6(v6) => (NFPROTO_IPV6, IPV6_DADDR_OFFSET, v6.octets().to_vec()),
    };
    let meta = |key: u32| {
        expression(
            "meta",
            &[
                attr(NFTA_META_DREG, &be32(NFT_REG_1)),
                attr(NFTA_META_KEY, &be32(key)),
            ],
        )
    };
    let payload = |base: u32, offset: u32, len: u32| {
        expression(
            "payload",
            &[
                attr(NFTA_PAYLOAD_DREG, &be32(NFT_REG_1)),
                attr(NFTA_PAYLOAD_BASE, &be32(base)),
                attr(NFTA_PAYLOAD_OFFSET, &be32(offset)),
                attr(NFTA_PAYLOAD_LEN, &be32(len)),
            ],
        )
    };
    let cmp = |op: u32, data: &[u8]| {
        expression(
            "cmp",
            &[
                attr(NFTA_CMP_SREG, &be32(NFT_REG_1)),
                attr(NFTA_CMP_OP, &be32(op)),
                attr(NFTA_CMP_DATA | NLA_F_NESTED, &attr(NFTA_DATA_VALUE, data)),
            ],
        )
    };
    let verdict = nest(&[attr(NFTA_VERDICT_CODE, &be32(NF_DROP))]);
    let drop = expression(
        "immediate",
        &[
            attr(NFTA_IMMEDIATE_DREG, &be32(NFT_REG_VERDICT)),
            attr(
                NFTA_IMMEDIATE_DATA | NLA_F_NESTED,
                &attr(NFTA_DATA_VERDICT | NLA_F_NESTED, &verdict),
            ),
        ],
    );
    let counter = expression(
        "counter",
        &[
            attr(NFTA_COUNTER_BYTES, &0u64.to_be_bytes()),
            attr(NFTA_COUNTER_PACKETS, &0u64.to_be_bytes()),
        ],
    );
    vec![
        meta(NFT_META_NFPROTO),
        cmp(NFT_CMP_EQ, &[nfproto]),
        payload(NFT_PAYLOAD_NETWORK_HEADER, daddr_offset, daddr.len() as u32),
        cmp(NFT_CMP_EQ, &daddr),
        meta(NFT_META_L4PROTO),
        cmp(NFT_CMP_EQ, &[IPPROTO_TCP]),
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, TCP_DPORT_OFFSET, 2),
        cmp(NFT_CMP_GTE, &first.to_be_bytes()),
        cmp(NFT_CMP_LTE, &last.to_be_bytes()),
        counter,
        drop,
    ]
}

/// One `NFTA_LIST_ELEM` holding an expression named `name` with `data` attributes.
fn expression(name: &str, data: &[Vec<u8>]) -> Vec<u8> {
    let body = nest(&[
        attr(NFTA_EXPR_NAME, &strz(name)),
        attr(NFTA_EXPR_DATA | NLA_F_NESTED, &nest(data)),
    ]);
    attr(NFTA_LIST_ELEM | NLA_F_NESTED, &body)
}

/// An nf_tables message of the inet family.
fn nft_message(msg: u16, flags: u16, seq: u32, attributes: &[(u16, &[u8])]) -> Vec<u8> {
    encode_request(
        (NFNL_SUBSYS_NFTABLES << 8) | msg,
        flags,
        seq,
        &nfgenmsg(NFPROTO_INET, 0),
        attributes,
    )
}

/// BATCH_BEGIN or BATCH_END: `res_id` names the subsystem the batch is for.
fn batch_marker(msg_type: u16, seq: u32) -> Vec<u8> {
    encode_request(
        msg_type,
        NLM_F_REQUEST,
        seq,
        &nfgenmsg(NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES),
        &[],
    )
}

/// `struct nfgenmsg`: family, version, resource id (big-endian).
fn nfgenmsg(family: u8, res_id: u16) -> [u8; 4] {
    let [high, low] = res_id.to_be_bytes();
    [family, NFNETLINK_V0, high, low]
}

/// One attribute (`struct nlattr`), padded to 4 bytes.
fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    // Our values are a few hundred bytes at most, far below u16::MAX.
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(value.len() + 8);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// The contents of a nested attribute: its attributes, one after another.
fn nest(attributes: &[Vec<u8>]) -> Vec<u8> {
    attributes.concat()
}

fn be32(value: u32) -> [u8; 4] {
    value.to_be_bytes()
}

/// A NUL-terminated string, as the kernel's NLA_STRING attributes are sent.
fn strz(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// Reads replies until every sequence number in `acked` is acknowledged, or the first
/// error arrives (the kernel then has undone the whole batch).
fn await_acks(socket: &Socket, acked: &[u32]) -> io::Result<()> {
    let mut pending = acked.to_vec();
    let mut buf = Vec::with_capacity(16 * 1024);
    while !pending.is_empty() {
        buf.clear();
        socket.recv(&mut buf, 0)?;
        let messages = decode_messages(&buf)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        for message in messages {
            if message.msg_type != NLMSG_ERROR {
                continue;
            }
            let errno = decode_error(message.payload)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            if errno != 0 {
                return Err(io::Error::from_raw_os_error(errno));
            }
            pending.retain(|&seq| seq != message.seq);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::nlmsg::{attributes, read_u16};
    use std::net::Ipv4Addr;

    /// Attribute `kind` of `buf` (nested flag ignored).
    fn find(buf: &[u8], kind: u16) -> &[u8] {
        attributes(buf)
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no attribute {kind}"))
    }

    #[test]
    fn batch_frames_five_messages_in_sequence() {
        let batch = batch(
            "xdpget_7_0",
            Ipv4Addr::new(10, 77, 0, 1).into(),
            40000,
            40999,
        );
        let messages = decode_messages(&batch.bytes).unwrap();
        let kinds: Vec<(u16, u32)> = messages.iter().map(|m| (m.msg_type, m.seq)).collect();
        assert_eq!(
            kinds,
            [(0x10, 1), (0x0a00, 2), (0x0a03, 3), (0x0a06, 4), (0x11, 5)]
        );
        assert_eq!(batch.acked, [2, 3, 4]);
        // the batch markers name the nf_tables subsystem, big-endian
        assert_eq!(messages[0].payload[..4], [0, 0, 0, 10]);
        // every nf_tables message is for the inet family and asks for an acknowledgement
        for message in &messages[1..4] {
            assert_eq!(message.payload[0], NFPROTO_INET);
            assert_ne!(message.flags & NLM_F_ACK, 0);
        }
        assert_ne!(messages[3].flags & NLM_F_APPEND, 0);

        let table = &messages[1].payload[4..];
        assert_eq!(find(table, NFTA_TABLE_NAME), b"xdpget_7_0\0");
        assert_eq!(find(table, NFTA_TABLE_FLAGS), [0, 0, 0, 2]);

        let chain = &messages[2].payload[4..];
        assert_eq!(find(chain, NFTA_CHAIN_NAME), b"prerouting\0");
        assert_eq!(find(chain, NFTA_CHAIN_TYPE), b"filter\0");
        let hook = find(chain, NFTA_CHAIN_HOOK);
        assert_eq!(find(hook, NFTA_HOOK_HOOKNUM), [0, 0, 0, 0]);
        assert_eq!(find(hook, NFTA_HOOK_PRIORITY), (-300i32).to_be_bytes());
        assert_eq!(find(chain, NFTA_CHAIN_POLICY), [0, 0, 0, 1]);
    }

    #[test]
    fn an_ipv6_rule_matches_nfproto_ipv6_and_the_16_byte_address() {
        let address: std::net::Ipv6Addr = "fd00:77::1".parse().unwrap();
        let expressions = rule_expressions(address.into(), 40000, 40999);
        let whole = batch("t", address.into(), 40000, 40999);
        let messages = decode_messages(&whole.bytes).unwrap();
        assert_eq!(messages.len(), 5);
        let data = |i: usize| {
            let element = &expressions[i][4..];
            find(element, NFTA_EXPR_DATA).to_vec()
        };
        let cmp_value = |data: &[u8]| find(find(data, NFTA_CMP_DATA), NFTA_DATA_VALUE).to_vec();
        assert_eq!(cmp_value(&data(1)), [NFPROTO_IPV6]);
        let offset = u32::from_be_bytes(find(&data(2), NFTA_PAYLOAD_OFFSET).try_into().unwrap());
        assert_eq!(offset, IPV6_DADDR_OFFSET);
        let len = u32::from_be_bytes(find(&data(2), NFTA_PAYLOAD_LEN).try_into().unwrap());
        assert_eq!(len, 16);
        assert_eq!(cmp_value(&data(3)), address.octets());
    }

    #[test]
    fn rule_matches_address_and_port_range_then_drops() {
        let batch = batch("t", Ipv4Addr::new(10, 77, 0, 1).into(), 40000, 40999);
        let messages = decode_messages(&batch.bytes).unwrap();
        let rule = &messages[3].payload[4..];
        assert_eq!(find(rule, NFTA_RULE_CHAIN), b"prerouting\0");
        let expressions: Vec<(String, &[u8])> = attributes(find(rule, NFTA_RULE_EXPRESSIONS))
            .map(|(kind, element)| {
                assert_eq!(kind, NFTA_LIST_ELEM);
                let name = crate::net::nlmsg::attribute_string(find(element, NFTA_EXPR_NAME));
                (name, find(element, NFTA_EXPR_DATA))
            })
            .collect();
        let names: Vec<&str> = expressions.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "meta",
                "cmp",
                "payload",
                "cmp",
                "meta",
                "cmp",
                "payload",
                "cmp",
                "cmp",
                "counter",
                "immediate"
            ]
        );
        let be = |data: &[u8], kind| u32::from_be_bytes(find(data, kind).try_into().unwrap());
        let cmp_value = |data: &[u8]| find(find(data, NFTA_CMP_DATA), NFTA_DATA_VALUE).to_vec();
        assert_eq!(be(expressions[0].1, NFTA_META_KEY), NFT_META_NFPROTO);
        assert_eq!(cmp_value(expressions[1].1), [NFPROTO_IPV4]);
        assert_eq!(be(expressions[2].1, NFTA_PAYLOAD_OFFSET), 16);
        assert_eq!(cmp_value(expressions[3].1), [10, 77, 0, 1]);
        assert_eq!(cmp_value(expressions[5].1), [6]);
        assert_eq!(be(expressions[6].1, NFTA_PAYLOAD_BASE), 2);
        assert_eq!(be(expressions[7].1, NFTA_CMP_OP), NFT_CMP_GTE);
        assert_eq!(cmp_value(expressions[7].1), 40000u16.to_be_bytes());
        assert_eq!(be(expressions[8].1, NFTA_CMP_OP), NFT_CMP_LTE);
        assert_eq!(cmp_value(expressions[8].1), 40999u16.to_be_bytes());
        let verdict = find(
            find(expressions[10].1, NFTA_IMMEDIATE_DATA),
            NFTA_DATA_VERDICT,
        );
        assert_eq!(find(verdict, NFTA_VERDICT_CODE), [0, 0, 0, 0]); // NF_DROP
    }

    #[test]
    fn attributes_are_padded_and_counted_without_padding() {
        let a = attr(3, b"abcde");
        assert_eq!(a.len(), 12);
        assert_eq!(read_u16(&a, 0), Some(9));
        assert_eq!(read_u16(&a, 2), Some(3));
        assert_eq!(read_u16(&attr(1, &[]), 0), Some(4));
    }
}
