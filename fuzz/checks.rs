//! The checks of every fuzz target (fuzz/fuzz_targets/), as plain functions: the targets
//! call them on libFuzzer's inputs, and tests/fuzz_regressions.rs calls them on every input
//! in fuzz/regressions/<target>/ (crashes the fuzzers found, kept as regression tests).
#![allow(dead_code)] // each fuzz target uses one of these

use core::net::Ipv4Addr;
use xdpget::http::ChunkedDecoder;
use xdpget::http::parse_head;
use xdpget::http::server_request::{RequestReader, parse_request};
use xdpget::tls::{TlsSettings, TlsStream, TrustOptions};
use xdpget::wire::frame::parse_arp_frame;
use xdpget::wire::{ArpPacket, ArpRepr};
use xdpget::wire::{EthernetFrame, EthernetRepr};
use xdpget::wire::{FrameTemplate, IpRepr, emit_tcp_frame, parse_tcp_frame, tcp_frame_len};
use xdpget::wire::{Ipv4Packet, Ipv4Repr};
use xdpget::wire::{Ipv6Packet, Ipv6Repr};
use xdpget::wire::{TcpOptions, TcpPacket, TcpRepr};

/// ARP: parse any bytes; a request or reply that parses must emit back to its own bytes.
pub fn arp(data: &[u8]) {
    let _ = parse_arp_frame(data);
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut bytes = [0u8; 28];
    repr.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]))
        .expect("28 bytes hold an ARP packet");
    assert_eq!(&bytes[..], &data[..28]);
}

/// The body of a chunked input fed in `pieces`, or the decoder's error.
fn decode(pieces: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut decoder = ChunkedDecoder::new();
    let mut body = Vec::new();
    for piece in pieces {
        let used = decoder
            .decode(piece, &mut |bytes| body.extend_from_slice(bytes))
            .map_err(|e| e.to_string())?;
        if used < piece.len() {
            break;
        }
    }
    Ok(body)
}

/// Chunked bodies: decoding never panics, and feeding the input in two pieces gives the
/// same body as feeding it whole (the first byte chooses the split point).
pub fn chunked(data: &[u8]) {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(input.len());
    let whole = decode(&[input]);
    let halves = decode(&[&input[..split], &input[split..]]);
    if let (Ok(a), Ok(b)) = (&whole, &halves) {
        assert_eq!(a, b);
    }
    assert_eq!(whole.is_ok(), halves.is_ok());
}

/// Ethernet II: parse any bytes; what parses must emit back to the same header bytes.
pub fn ethernet(data: &[u8]) {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = frame.payload();
    let repr = EthernetRepr::parse(&frame).expect("a checked frame always parses");
    let mut header = [0u8; 14];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut header[..]))
        .expect("14 bytes hold a header");
    assert_eq!(&header[..], &data[..14]);
}

/// Whole frames: parse any bytes; a TCP frame that parses must emit, by `emit_tcp_frame`
/// and by a `FrameTemplate`, to identical bytes that parse back to the same segment.
pub fn frame(data: &[u8]) {
    let _ = parse_arp_frame(data);
    let _ = parse_tcp_frame(data, true);
    let Ok((eth, ip, tcp)) = parse_tcp_frame(data, false) else {
        return;
    };
    let ident = match ip {
        IpRepr::Ipv4(v4) => v4.ident,
        IpRepr::Ipv6(_) => 0,
    };
    let len = tcp_frame_len(ip, &tcp);
    let mut full = vec![0u8; len];
    assert_eq!(emit_tcp_frame(&mut full, &eth, ip, &tcp), Ok(len));
    let template = FrameTemplate::new(&eth, ip, tcp.src_port, tcp.dst_port);
    let mut fast = vec![0u8; len];
    assert_eq!(template.emit(&mut fast, ident, &tcp), Ok(len));
    assert_eq!(full, fast);
    let (_, ip2, tcp2) = parse_tcp_frame(&full, true).expect("emitted frames parse");
    assert_eq!(
        (ip2.src_addr(), ip2.dst_addr()),
        (ip.src_addr(), ip.dst_addr())
    );
    assert_eq!(
        (tcp2.seq_number, tcp2.ack_number, tcp2.flags),
        (tcp.seq_number, tcp.ack_number, tcp.flags)
    );
    assert_eq!(tcp2.payload, tcp.payload);
}

/// IPv6: parse any bytes (extension headers walked); a header that parses must emit (without
/// extension headers) and parse back to the same repr.
pub fn ipv6(data: &[u8]) {
    let Ok(packet) = Ipv6Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.payload(),
        packet.flow_label(),
        packet.traffic_class(),
    );
    let Ok((repr, upper)) = Ipv6Repr::parse_upper(&packet) else {
        return;
    };
    assert_eq!(upper.len(), repr.payload_len);
    let mut bytes = vec![0u8; repr.buffer_len() + repr.payload_len];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut bytes[..]))
        .expect("the buffer holds the header");
    let again = Ipv6Packet::new_checked(&bytes[..]).expect("emitted lengths are consistent");
    assert_eq!(Ipv6Repr::parse(&again), Ok(repr));
}

/// HTTP response heads: parsing never panics, and a head that parses says how long it is.
pub fn http_head(data: &[u8]) {
    if let Ok(Some(head)) = parse_head(data) {
        assert!(head.head_len <= data.len());
        let _ = head.content_range();
    }
}

/// The heads a request reader yields for `input` fed as `pieces` (given by their start
/// offsets, in the order fed), up to its first error.
fn request_heads(input: &[u8], order: &[(usize, usize)]) -> (Vec<String>, Option<u16>) {
    let mut reader = RequestReader::new();
    let mut heads = Vec::new();
    for &(start, end) in order {
        // Only what fits the reader's window, as TCP would deliver.
        let window_end = usize::try_from(reader.window_end()).unwrap_or(usize::MAX);
        let end = end.min(window_end);
        if start < end
            && let Err(e) = reader.on_stream(start as u64, &input[start..end])
        {
            return (heads, Some(e.status()));
        }
    }
    loop {
        match reader.next_head() {
            Ok(Some(head)) => heads.push(format!("{} {}", head.method.as_str(), head.target)),
            Ok(None) => return (heads, None),
            Err(e) => return (heads, Some(e.status())),
        }
    }
}

/// HTTP request heads: parsing never panics; a head that parses is no longer than its
/// input; and a reader fed the input's two halves in reverse order yields what it yields
/// when fed the whole (the first byte chooses the split point).
pub fn http_request(data: &[u8]) {
    if let Ok(Some(head)) = parse_request(data) {
        assert!(head.head_len <= data.len());
        if let Some(range) = head.range {
            let _ = range.resolve(data.len() as u64);
        }
    }
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(input.len());
    let whole = request_heads(input, &[(0, input.len())]);
    let reversed = request_heads(input, &[(split, input.len()), (0, split)]);
    // Bytes past the first window are cut differently by the two orders, so only compare
    // what the window certainly held.
    if input.len() <= xdpget::http::server_request::MAX_REQUEST_HEAD {
        assert_eq!(whole, reversed);
    }
}

/// IPv4: parse any bytes; a header that parses must emit and parse back to the same repr.
pub fn ipv4(data: &[u8]) {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.payload(),
        packet.verify_checksum(),
        packet.fragment_offset(),
    );
    let _ = Ipv4Repr::parse(&packet, true);
    let Ok(repr) = Ipv4Repr::parse(&packet, false) else {
        return;
    };
    let mut bytes = vec![0u8; repr.buffer_len() + repr.payload_len];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]))
        .expect("the buffer holds the header");
    let again = Ipv4Packet::new_checked(&bytes[..]).expect("emitted lengths are consistent");
    assert_eq!(Ipv4Repr::parse(&again, true), Ok(repr));
}

/// TCP: the first 8 bytes are the pseudo-header addresses, the rest a segment. A segment
/// that parses must emit and parse back to the same repr, up to what emit leaves out
/// (SACK-permitted always, MSS and window scale without SYN).
pub fn tcp(data: &[u8]) {
    let Some((addresses, segment)) = data.split_at_checked(8) else {
        return;
    };
    let src = Ipv4Addr::new(addresses[0], addresses[1], addresses[2], addresses[3]);
    let dst = Ipv4Addr::new(addresses[4], addresses[5], addresses[6], addresses[7]);
    let _ = TcpOptions::parse(segment);
    let Ok(packet) = TcpPacket::new_checked(segment) else {
        return;
    };
    let _ = (
        packet.options(),
        packet.payload(),
        packet.verify_checksum(src, dst),
    );
    let _ = TcpRepr::parse(&packet, src, dst, true);
    let Ok(repr) = TcpRepr::parse(&packet, src, dst, false) else {
        return;
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    let len = repr
        .emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), src, dst)
        .expect("the buffer holds the segment");
    assert_eq!(len, bytes.len());
    let again = TcpPacket::new_checked(&bytes[..]).expect("emitted header length fits");
    let reparsed = TcpRepr::parse(&again, src, dst, true).expect("emitted segments parse");
    let syn = repr.flags.syn();
    let options = TcpOptions {
        mss: repr.options.mss.filter(|_| syn),
        window_scale: repr.options.window_scale.filter(|_| syn),
        sack_permitted: repr.options.sack_permitted && syn,
        timestamps: repr.options.timestamps,
        sack_blocks: if syn {
            Default::default()
        } else {
            repr.options.sack_blocks
        },
    };
    assert_eq!(reparsed, TcpRepr { options, ..repr });
}

/// The TCP stream → TLS records → plaintext path: whatever a server sends, in whatever
/// segment order, `TlsStream` never panics, hands plaintext out only in order, and ends
/// the same way as when the same bytes arrive whole and in order (the first byte chooses
/// the segment size; segments arrive in pairs swapped, one of every three twice).
pub fn tls_stream(data: &[u8]) {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let settings = TlsSettings::new(TrustOptions {
        no_check_certificate: true,
        ..TrustOptions::default()
    });
    let whole = tls_run(&settings, stream, stream.len().max(1));
    let pieces = tls_run(&settings, stream, usize::from(size).max(1));
    // The ClientHello's random differs between runs, so only stream-level outcomes are
    // comparable: a record that fails to parse fails the same way in both.
    assert_eq!(whole.0, pieces.0);
    assert_eq!(whole.1.is_some(), pieces.1.is_some());
}

/// What one run produced: plaintext, and the first error as text.
fn tls_run(settings: &TlsSettings, stream: &[u8], segment: usize) -> (Vec<u8>, Option<String>) {
    let request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec();
    let config = settings
        .client_config()
        .expect("a config without roots always builds");
    let mut tls = match TlsStream::new(config, "h.example", request, 1 << 16) {
        Ok(tls) => tls,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut segments: Vec<(u64, &[u8])> = stream
        .chunks(segment)
        .enumerate()
        .map(|(i, chunk)| ((i * segment) as u64, chunk))
        .collect();
    if segment < stream.len() {
        for pair in segments.chunks_mut(2) {
            pair.reverse();
        }
        let again: Vec<_> = segments.iter().step_by(3).copied().collect();
        segments.extend(again);
    }
    let mut plaintext = Vec::new();
    for (offset, bytes) in segments {
        if let Err(e) = tls.on_stream(offset, bytes) {
            return (plaintext, Some(e.to_string()));
        }
    }
    let result = tls.process(&mut |offset, bytes| {
        assert_eq!(offset, plaintext.len() as u64, "plaintext in order");
        plaintext.extend_from_slice(bytes);
    });
    tls.consume_output(tls.pending_output().len());
    (plaintext, result.err().map(|e| e.to_string()))
}

/// After the handshake: a real rustls server's records, in the order and the pieces the
/// input says, opened by our record layer (`src/tls/records.rs`). The first byte picks the
/// cipher suite, the second the segment size; then each op: write data, a KeyUpdate,
/// flip a byte of what is on the wire, or close_notify. The plaintext handed out is always
/// a prefix of what the server wrote, in order; untouched, it is all of it, and the end is
/// clean exactly when the server sent close_notify.
pub fn tls_records(data: &[u8]) {
    let [suite, segment, ops @ ..] = data else {
        return;
    };
    let server = tls_server(usize::from(*suite));
    let segment = usize::from(*segment).max(1) * 37;
    let mut tls = TlsStream::new(
        tls_client(),
        "h.example",
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        1 << 16,
    )
    .expect("a session starts");
    let mut server = rustls::ServerConnection::new(server).expect("a server session starts");
    server.set_buffer_limit(None);
    let mut wire_offset = 0u64;
    let mut plaintext = Vec::new();
    let mut failed = false;
    // The handshake, whole and in order: a few flights.
    for _ in 0..4 {
        tls_flight(
            &mut tls,
            &mut server,
            &mut wire_offset,
            None,
            1 << 20,
            &mut plaintext,
        )
        .expect("the handshake with our own server succeeds");
    }
    assert!(tls.opens_records_itself(), "the record layer took over");
    let mut written = Vec::new();
    let mut tampered = false;
    let mut closed = false;
    let mut ops = ops.iter();
    while let Some(op) = ops.next() {
        let arg = usize::from(*ops.next().unwrap_or(&0));
        let mut flip = None;
        match op % 4 {
            0 => {
                let bytes: Vec<u8> = (0..arg * 97).map(|i| (written.len() + i) as u8).collect();
                let _ = std::io::Write::write_all(&mut server.writer(), &bytes);
                written.extend_from_slice(&bytes);
            }
            1 => {
                let _ = server.refresh_traffic_keys();
            }
            2 => {
                let _ = std::io::Write::write_all(&mut server.writer(), b"x");
                written.push(b'x');
                flip = Some(arg);
                tampered = true;
            }
            _ => {
                server.send_close_notify();
                closed = true;
            }
        }
        let flight = tls_flight(
            &mut tls,
            &mut server,
            &mut wire_offset,
            flip,
            segment,
            &mut plaintext,
        );
        assert!(
            written.starts_with(&plaintext),
            "plaintext is what was written"
        );
        if flight.is_err() {
            assert!(tampered, "an untouched stream failed: {flight:?}");
            failed = true;
            break;
        }
        if closed {
            break;
        }
    }
    if !tampered {
        assert_eq!(plaintext, written);
        assert_eq!(tls.end_of_stream().is_ok(), closed);
    }
    if failed {
        // The session stays failed.
        assert!(
            tls.process(&mut |_, _| panic!("plaintext after a failure"))
                .is_err()
        );
    }
}

/// Client → server, then the server's bytes → client in `segment`-byte pieces (pairs
/// swapped, every third twice), byte `flip` (if any, modulo the flight) altered.
fn tls_flight(
    tls: &mut TlsStream,
    server: &mut rustls::ServerConnection,
    offset: &mut u64,
    flip: Option<usize>,
    segment: usize,
    plaintext: &mut Vec<u8>,
) -> Result<(), xdpget::tls::TlsError> {
    let mut out = tls.pending_output().to_vec();
    tls.consume_output(out.len());
    let mut reader = &out[..];
    while !reader.is_empty() && server.read_tls(&mut reader).is_ok_and(|n| n > 0) {}
    out.clear();
    let _ = server.process_new_packets();
    let mut wire = Vec::new();
    while server.wants_write() {
        if server.write_tls(&mut wire).is_err() {
            break;
        }
    }
    if let Some(at) = flip
        && !wire.is_empty()
    {
        let at = at * 131 % wire.len();
        wire[at] ^= 0x10;
    }
    let mut segments: Vec<(u64, &[u8])> = wire
        .chunks(segment)
        .enumerate()
        .map(|(i, chunk)| (*offset + (i * segment) as u64, chunk))
        .collect();
    *offset += wire.len() as u64;
    for pair in segments.chunks_mut(2) {
        pair.reverse();
    }
    let again: Vec<_> = segments.iter().step_by(3).copied().collect();
    segments.extend(again);
    for (at, bytes) in segments {
        tls.on_stream(at, bytes)?;
    }
    tls.process(&mut |at, bytes| {
        assert_eq!(at, plaintext.len() as u64, "plaintext in order");
        plaintext.extend_from_slice(bytes);
    })?;
    Ok(())
}

/// The client: any certificate (the handshake's signature is still checked).
fn tls_client() -> std::sync::Arc<rustls::ClientConfig> {
    static SETTINGS: std::sync::OnceLock<TlsSettings> = std::sync::OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            TlsSettings::new(TrustOptions {
                no_check_certificate: true,
                ..TrustOptions::default()
            })
        })
        .client_config()
        .expect("a config without roots always builds")
}

/// A server with one cipher suite of the aws-lc-rs provider (`pick` modulo their number),
/// and a certificate made once per process.
fn tls_server(pick: usize) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::crypto::aws_lc_rs::{cipher_suite as s, default_provider};
    use std::sync::{Arc, OnceLock};
    const SUITES: [rustls::SupportedCipherSuite; 6] = [
        s::TLS13_AES_128_GCM_SHA256,
        s::TLS13_AES_256_GCM_SHA384,
        s::TLS13_CHACHA20_POLY1305_SHA256,
        s::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        s::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        s::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    static SERVERS: OnceLock<Vec<Arc<rustls::ServerConfig>>> = OnceLock::new();
    let servers = SERVERS.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = rcgen::CertificateParams::new(vec!["h.example".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("a certificate");
        SUITES
            .iter()
            .map(|suite| {
                let mut provider = default_provider();
                provider.cipher_suites = vec![*suite];
                let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
                let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
                    .with_protocol_versions(&[suite.version()])
                    .expect("the suite's version")
                    .with_no_client_auth()
                    .with_single_cert(vec![cert.der().clone()], der.into())
                    .expect("the certificate");
                Arc::new(config)
            })
            .collect()
    });
    Arc::clone(&servers[pick % servers.len()])
}
