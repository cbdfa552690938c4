//! Record protection after the handshake: we open the server's records ourselves, in place
//! in the staging buffer, so each plaintext byte is copied once (to its file offset).
//!
//! rustls runs the handshake; once it is complete and the request is on its way,
//! [`TlsStream`](super::TlsStream) turns the session into rustls's
//! [`KernelConnection`] (its `kernel` module, made for kTLS) and takes the traffic
//! secrets. From then on this module is the record layer of the receive side:
//!
//! ```text
//! staging: [ hdr | ciphertext ............................ | tag ] [ hdr | …
//!                  └── AEAD open in place (aws-lc-rs) ──┘
//!          [ hdr | plaintext ........ | type | 0 0 0 (padding) ]     TLS 1.3 inner plaintext
//!                  └── handed out as a slice of the staging buffer
//! ```
//!
//! - TLS 1.3 (RFC 8446 §5.2–5.4): every record is `application_data` on the outside; the
//!   nonce is the IV XOR the 64-bit sequence number (left-padded), the additional data is
//!   the 5-byte record header, and the inner plaintext ends with its real content type
//!   followed by zero padding.
//! - TLS 1.2 AES-GCM (RFC 5288 §3): the record starts with an 8-byte explicit nonce after
//!   the 4-byte implicit salt; the additional data is seq ‖ type ‖ version ‖ plaintext
//!   length (RFC 5246 §6.2.3.3).
//! - TLS 1.2 ChaCha20-Poly1305 (RFC 7905 §2): the nonce as in TLS 1.3, the additional data
//!   as in TLS 1.2.
//!
//! Post-handshake messages go back to rustls: a TLS 1.3 `NewSessionTicket` to
//! [`KernelConnection::handle_new_session_ticket`] (so a retry resumes), a `KeyUpdate` to
//! [`KernelConnection::update_rx_secret`]. A `KeyUpdate` with `update_requested` asks for
//! ours only "prior to sending its next Application Data record" (RFC 8446 §4.6.3); we
//! send none after the request, so we send no `KeyUpdate` either. A TLS 1.2 `HelloRequest`
//! is ignored, as RFC 5246 §7.4.1.1 allows (no renegotiation). The send side is used once:
//! for the fatal alert that tells the server why we stop (RFC 8446 §6.2).
//!
//! What rustls counted for us and this layer must count itself: the sequence numbers
//! (RFC 8446 §5.3: they never wrap), and the cipher suites' confidentiality limits, which
//! concern the sender (the server) only.

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey};
use aws_lc_rs::aead::{Algorithm, NONCE_LEN, Nonce, UnboundKey};
use rustls::client::ClientConnectionData;
use rustls::kernel::KernelConnection;
use rustls::{
    AlertDescription, CipherSuite, ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion,
};

/// The record header: type (1), legacy version (2), length (2) (RFC 8446 §5.1).
pub(crate) const HEADER_LEN: usize = 5;
/// The AEAD tag of every suite we open.
const TAG_LEN: usize = 16;
/// TLS 1.2 AES-GCM's explicit nonce at the front of each record (RFC 5288 §3).
const EXPLICIT_NONCE_LEN: usize = 8;
/// The largest plaintext of a record (RFC 8446 §5.1, RFC 5246 §6.2.1).
const MAX_PLAINTEXT: usize = 1 << 14;
/// The largest ciphertext: TLS 1.3 allows 256 bytes of expansion (§5.2), TLS 1.2 2048
/// (RFC 5246 §6.2.3).
const MAX_EXPANSION_TLS13: usize = 256;
const MAX_EXPANSION_TLS12: usize = 2048;
/// A post-handshake message larger than this is refused (rustls's limit too).
const MAX_HANDSHAKE_MESSAGE: usize = 0xffff;

/// Record content types (RFC 8446 §5.1).
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

/// Handshake message types after the handshake (RFC 8446 §4, RFC 5246 §7.4).
const HELLO_REQUEST: u8 = 0;
const NEW_SESSION_TICKET: u8 = 4;
const KEY_UPDATE: u8 = 24;

/// Alert levels (RFC 5246 §7.2; TLS 1.3 keeps the field).
const WARNING: u8 = 1;
const FATAL: u8 = 2;

/// The cipher suites whose records this module opens: every AEAD suite of rustls's
/// aws-lc-rs provider. Any other suite stays with rustls's record layer.
const SUITES: [CipherSuite; 9] = [
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// Whether this module can take over a session with `suite` and `version`.
pub(crate) fn supports(suite: CipherSuite, version: ProtocolVersion) -> bool {
    matches!(version, ProtocolVersion::TLSv1_2 | ProtocolVersion::TLSv1_3)
        && SUITES.contains(&suite)
}

/// Why a record was refused, with the alert RFC 8446 §6.2 names for it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum RecordError {
    /// The record did not authenticate: altered, or not from the server (RFC 8446 §5.2).
    #[error("a record failed authentication (bad_record_mac): it was altered on the way")]
    BadRecordMac,
    /// Longer than the protocol allows (RFC 8446 §5.2, §5.4).
    #[error("a record is longer than TLS allows (record_overflow)")]
    RecordOverflow,
    /// A record or message that has no place after the handshake.
    #[error("unexpected {0} after the handshake (unexpected_message)")]
    Unexpected(&'static str),
    /// A malformed alert or handshake message.
    #[error("a malformed {0} (decode_error)")]
    Decode(&'static str),
    /// A `KeyUpdate` with a value other than 0 or 1 (RFC 8446 §4.6.3).
    #[error("a KeyUpdate with an unknown request value (illegal_parameter)")]
    IllegalKeyUpdate,
    /// The server ended the connection with an alert.
    #[error("the server sent the alert {0:?}")]
    AlertReceived(AlertDescription),
    /// rustls refused a session ticket or could not derive the next key.
    #[error("{0}")]
    Rustls(rustls::Error),
    /// 2^64 records: the sequence number would wrap (RFC 8446 §5.3).
    #[error("the record sequence number would wrap")]
    SequenceExhausted,
}

impl RecordError {
    /// The alert we answer with; `None` when the server already ended the connection.
    pub(crate) fn alert(&self) -> Option<AlertDescription> {
        Some(match self {
            RecordError::BadRecordMac => AlertDescription::BadRecordMac,
            RecordError::RecordOverflow => AlertDescription::RecordOverflow,
            RecordError::Unexpected(_) => AlertDescription::UnexpectedMessage,
            RecordError::Decode(_) | RecordError::Rustls(rustls::Error::InvalidMessage(_)) => {
                AlertDescription::DecodeError
            }
            RecordError::IllegalKeyUpdate => AlertDescription::IllegalParameter,
            RecordError::AlertReceived(_) => return None,
            RecordError::Rustls(_) | RecordError::SequenceExhausted => {
                AlertDescription::InternalError
            }
        })
    }
}

/// What one record held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Content<'b> {
    /// Application data, decrypted in place: a slice of the caller's buffer (may be empty).
    Data(&'b [u8]),
    /// A post-handshake message or a warning, handled here.
    Control,
    /// `close_notify` (RFC 8446 §6.1): the plaintext stream is complete.
    Closed,
}

/// The AEAD and how its nonce is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protection {
    /// TLS 1.3, and TLS 1.2 ChaCha20-Poly1305: nonce = IV ⊕ sequence number.
    XorNonce,
    /// TLS 1.2 AES-GCM: nonce = salt ‖ explicit nonce carried in the record.
    ExplicitNonce,
}

/// One direction's key, IV and sequence number.
struct Keys {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
}

impl Keys {
    fn new(seq: u64, secrets: ConnectionTrafficSecrets) -> Result<Keys, RecordError> {
        let (algorithm, key, iv): (&'static Algorithm, _, _) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&CHACHA20_POLY1305, key, iv),
            _ => {
                return Err(RecordError::Rustls(rustls::Error::General(
                    "rustls gave secrets for an AEAD we do not implement".into(),
                )));
            }
        };
        let unbound = UnboundKey::new(algorithm, key.as_ref()).map_err(|_| {
            RecordError::Rustls(rustls::Error::General(
                "a traffic key of the wrong size".into(),
            ))
        })?;
        let iv: [u8; NONCE_LEN] = iv.as_ref().try_into().map_err(|_| {
            RecordError::Rustls(rustls::Error::General("an IV of the wrong size".into()))
        })?;
        Ok(Keys {
            key: LessSafeKey::new(unbound),
            iv,
            seq,
        })
    }

    /// IV ⊕ the sequence number, left-padded to the IV's length (RFC 8446 §5.3).
    fn xor_nonce(&self) -> [u8; NONCE_LEN] {
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        nonce
    }

    /// Moves to the next record's sequence number.
    fn advance(&mut self) -> Result<(), RecordError> {
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or(RecordError::SequenceExhausted)?;
        Ok(())
    }
}

/// What rustls still does for the session after the handshake: its key schedule and its
/// session cache (a trait so that the record layer's tests can stand in for it).
pub(crate) trait PostHandshake: Send {
    /// A TLS 1.3 `NewSessionTicket` body (after the 4-byte message header).
    fn new_session_ticket(&mut self, body: &[u8]) -> Result<(), rustls::Error>;
    /// The next receive secret after the peer's `KeyUpdate` (RFC 8446 §7.2), and its first
    /// sequence number.
    fn next_rx_secret(&mut self) -> Result<(u64, ConnectionTrafficSecrets), rustls::Error>;
}

impl PostHandshake for KernelConnection<ClientConnectionData> {
    fn new_session_ticket(&mut self, body: &[u8]) -> Result<(), rustls::Error> {
        self.handle_new_session_ticket(body)
    }

    fn next_rx_secret(&mut self) -> Result<(u64, ConnectionTrafficSecrets), rustls::Error> {
        self.update_rx_secret()
    }
}

/// The receive side's record layer of one session, and the send side for a fatal alert.
pub(crate) struct RecordLayer {
    tls13: bool,
    protection: Protection,
    rx: Keys,
    tx: Keys,
    rustls: Box<dyn PostHandshake>,
    /// A post-handshake message split across records, until it is whole (RFC 8446 §5.1).
    /// Empty on the data path: it allocates only if a server sends such a message.
    handshake: Vec<u8>,
}

/// The fragment length the record header at the front of `buffer` announces, once the
/// header is all there (RFC 8446 §5.1, RFC 5246 §6.2.1: the last two of its five bytes).
fn fragment_len(buffer: &[u8]) -> Option<usize> {
    let header = buffer.get(..HEADER_LEN)?;
    Some(usize::from(u16::from_be_bytes([header[3], header[4]])))
}

impl RecordLayer {
    /// Takes over from rustls with the secrets and sequence numbers it handed out.
    pub(crate) fn new(
        version: ProtocolVersion,
        secrets: ExtractedSecrets,
        rustls: Box<dyn PostHandshake>,
    ) -> Result<RecordLayer, RecordError> {
        let tls13 = version == ProtocolVersion::TLSv1_3;
        let protection = match (&secrets.rx.1, tls13) {
            (ConnectionTrafficSecrets::Aes128Gcm { .. }, false)
            | (ConnectionTrafficSecrets::Aes256Gcm { .. }, false) => Protection::ExplicitNonce,
            _ => Protection::XorNonce,
        };
        let (rx_seq, rx) = secrets.rx;
        let (tx_seq, tx) = secrets.tx;
        Ok(RecordLayer {
            tls13,
            protection,
            rx: Keys::new(rx_seq, rx)?,
            tx: Keys::new(tx_seq, tx)?,
            rustls,
            handshake: Vec::new(),
        })
    }

    /// The length of the complete record at the front of `buffer`, if it is all there.
    pub(crate) fn complete_record(buffer: &[u8]) -> Option<usize> {
        let len = HEADER_LEN + fragment_len(buffer)?;
        (buffer.len() >= len).then_some(len)
    }

    /// Opens the record at the front of `buffer` in place. Returns `None` while it is
    /// incomplete, else its length (what to consume) and what it held. After an error
    /// the session is over: the buffer's record may be half decrypted and is not read
    /// again.
    pub(crate) fn open<'b>(
        &mut self,
        buffer: &'b mut [u8],
    ) -> Result<Option<(usize, Content<'b>)>, RecordError> {
        let Some(len) = Self::complete_record(buffer) else {
            return self.check_partial(buffer).map(|()| None);
        };
        let (header, fragment) = buffer[..len].split_at_mut(HEADER_LEN);
        let header: [u8; HEADER_LEN] = header.try_into().expect("split at HEADER_LEN");
        let (content_type, plaintext) = self.decrypt(header, fragment)?;
        let content = match content_type {
            APPLICATION_DATA if self.handshake.is_empty() => Content::Data(plaintext),
            // RFC 8446 §5.1: a handshake message split over records has no other record
            // between its parts.
            APPLICATION_DATA => {
                return Err(RecordError::Unexpected("data inside a handshake message"));
            }
            ALERT => self.alert(plaintext)?,
            HANDSHAKE => {
                self.handshake(plaintext)?;
                Content::Control
            }
            CHANGE_CIPHER_SPEC => return Err(RecordError::Unexpected("change_cipher_spec")),
            _ => return Err(RecordError::Unexpected("record type")),
        };
        Ok(Some((len, content)))
    }

    /// An incomplete record can already be refused by its header's length.
    fn check_partial(&self, buffer: &[u8]) -> Result<(), RecordError> {
        fragment_len(buffer).map_or(Ok(()), |len| self.check_length(len))
    }

    fn check_length(&self, fragment: usize) -> Result<(), RecordError> {
        let expansion = if self.tls13 {
            MAX_EXPANSION_TLS13
        } else {
            MAX_EXPANSION_TLS12
        };
        if fragment > MAX_PLAINTEXT + expansion {
            return Err(RecordError::RecordOverflow);
        }
        Ok(())
    }

    /// Authenticates and decrypts `fragment` in place: its content type and plaintext.
    fn decrypt<'b>(
        &mut self,
        header: [u8; HEADER_LEN],
        fragment: &'b mut [u8],
    ) -> Result<(u8, &'b [u8]), RecordError> {
        self.check_length(fragment.len())?;
        let outer_type = header[0];
        let opened = if self.tls13 {
            // RFC 8446 §5.2: every protected record is application_data on the outside.
            if outer_type != APPLICATION_DATA {
                return Err(RecordError::Unexpected("unprotected record"));
            }
            let nonce = Nonce::assume_unique_for_key(self.rx.xor_nonce());
            self.rx
                .key
                .open_in_place(nonce, Aad::from(header), fragment)
                .map_err(|_| RecordError::BadRecordMac)?
        } else {
            let (nonce, ciphertext) = match self.protection {
                Protection::ExplicitNonce => {
                    if fragment.len() < EXPLICIT_NONCE_LEN + TAG_LEN {
                        return Err(RecordError::BadRecordMac);
                    }
                    let (explicit, ciphertext) = fragment.split_at_mut(EXPLICIT_NONCE_LEN);
                    let mut nonce = self.rx.iv;
                    nonce[NONCE_LEN - EXPLICIT_NONCE_LEN..].copy_from_slice(explicit);
                    (nonce, ciphertext)
                }
                Protection::XorNonce => (self.rx.xor_nonce(), fragment),
            };
            let plaintext_len = ciphertext
                .len()
                .checked_sub(TAG_LEN)
                .ok_or(RecordError::BadRecordMac)?;
            let aad = tls12_aad(
                self.rx.seq,
                outer_type,
                [header[1], header[2]],
                plaintext_len,
            );
            self.rx
                .key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    ciphertext,
                )
                .map_err(|_| RecordError::BadRecordMac)?
        };
        self.rx.advance()?;
        if !self.tls13 {
            if opened.len() > MAX_PLAINTEXT {
                return Err(RecordError::RecordOverflow);
            }
            return Ok((outer_type, opened));
        }
        // RFC 8446 §5.4: the content type is the last non-zero byte; all zeros is an error.
        if opened.len() > MAX_PLAINTEXT + 1 {
            return Err(RecordError::RecordOverflow);
        }
        let Some(type_at) = opened.iter().rposition(|&b| b != 0) else {
            return Err(RecordError::Unexpected("record without a content type"));
        };
        Ok((opened[type_at], &opened[..type_at]))
    }

    /// An alert record (RFC 8446 §6, RFC 5246 §7.2).
    fn alert(&mut self, plaintext: &[u8]) -> Result<Content<'static>, RecordError> {
        let [level, description] = plaintext else {
            return Err(RecordError::Decode("alert"));
        };
        let description = AlertDescription::from(*description);
        if description == AlertDescription::CloseNotify {
            return Ok(Content::Closed);
        }
        // As rustls: TLS 1.2 warnings are ignored; TLS 1.3 treats every alert but
        // user_canceled as fatal, whatever its level (RFC 8446 §6).
        let ignorable =
            *level == WARNING && (!self.tls13 || description == AlertDescription::UserCanceled);
        if ignorable {
            return Ok(Content::Control);
        }
        if *level != WARNING && *level != FATAL {
            return Err(RecordError::Decode("alert level"));
        }
        Err(RecordError::AlertReceived(description))
    }

    /// A handshake record's messages; a message may continue in the next record.
    fn handshake(&mut self, plaintext: &[u8]) -> Result<(), RecordError> {
        if plaintext.is_empty() {
            // RFC 8446 §5.1: zero-length fragments only for application data.
            return Err(RecordError::Decode("empty handshake record"));
        }
        self.handshake.extend_from_slice(plaintext);
        let mut at = 0;
        while let Some(&[kind, a, b, c]) = self.handshake.get(at..at + 4) {
            let len = u32::from_be_bytes([0, a, b, c]) as usize;
            if len > MAX_HANDSHAKE_MESSAGE {
                return Err(RecordError::Decode("oversized handshake message"));
            }
            let Some(body) = self.handshake.get(at + 4..at + 4 + len) else {
                break;
            };
            let last = at + 4 + len == self.handshake.len();
            match (kind, self.tls13) {
                (NEW_SESSION_TICKET, true) => self
                    .rustls
                    .new_session_ticket(body)
                    .map_err(RecordError::Rustls)?,
                (KEY_UPDATE, true) => {
                    // RFC 8446 §4.6.3: the message is a key change, so it must end its
                    // record (§5.1); update_requested (1) asks for our KeyUpdate before our
                    // next application data, which never comes (module documentation).
                    if !matches!(body, [0] | [1]) {
                        return Err(RecordError::IllegalKeyUpdate);
                    }
                    if !last {
                        return Err(RecordError::Unexpected("data after a KeyUpdate"));
                    }
                    let (seq, secrets) =
                        self.rustls.next_rx_secret().map_err(RecordError::Rustls)?;
                    self.rx = Keys::new(seq, secrets)?;
                }
                // RFC 5246 §7.4.1.1: "MAY be ignored by the client".
                (HELLO_REQUEST, false) if len == 0 => {}
                _ => return Err(RecordError::Unexpected("handshake message")),
            }
            at += 4 + len;
        }
        self.handshake.drain(..at);
        Ok(())
    }

    /// Appends a fatal alert record for `description`, protected with our send key, to
    /// `out` (RFC 8446 §6.2; RFC 5246 §7.2.2).
    pub(crate) fn seal_alert(
        &mut self,
        description: AlertDescription,
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        self.seal(ALERT, &[FATAL, u8::from(description)], out)
    }

    /// Appends one record of `content_type` holding `payload`, protected with our send
    /// key, to `out`. TLS 1.3 adds the inner content type and no padding (RFC 8446 §5.2);
    /// TLS 1.2 AES-GCM sends the nonce's last 8 bytes as the explicit nonce, as rustls
    /// does (RFC 5288 §3 lets the sender choose, once per key).
    pub(crate) fn seal(
        &mut self,
        content_type: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        if payload.len() > MAX_PLAINTEXT {
            return Err(RecordError::RecordOverflow);
        }
        let (outer_type, explicit, inner_len) = match (self.tls13, self.protection) {
            (true, _) => (APPLICATION_DATA, 0, payload.len() + 1),
            (false, Protection::ExplicitNonce) => (content_type, EXPLICIT_NONCE_LEN, payload.len()),
            (false, Protection::XorNonce) => (content_type, 0, payload.len()),
        };
        let fragment_len = (explicit + inner_len + TAG_LEN) as u16;
        let [high, low] = fragment_len.to_be_bytes();
        let header = [outer_type, 3, 3, high, low];
        let nonce = self.tx.xor_nonce();
        let mut aad = [0u8; 13];
        let aad_len = if self.tls13 {
            aad[..HEADER_LEN].copy_from_slice(&header);
            HEADER_LEN
        } else {
            aad = tls12_aad(self.tx.seq, content_type, [3, 3], payload.len());
            aad.len()
        };
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce[NONCE_LEN - explicit..]);
        let body = out.len();
        out.extend_from_slice(payload);
        if self.tls13 {
            out.push(content_type);
        }
        let tag = self
            .tx
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..aad_len]),
                &mut out[body..],
            )
            .map_err(|_| RecordError::Rustls(rustls::Error::EncryptError))?;
        out.extend_from_slice(tag.as_ref());
        self.tx.advance()
    }
}

/// TLS 1.2's additional data: seq ‖ type ‖ version ‖ plaintext length (RFC 5246 §6.2.3.3),
/// the type and version as the record's header says.
fn tls12_aad(seq: u64, content_type: u8, version: [u8; 2], plaintext_len: usize) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = content_type;
    aad[9..11].copy_from_slice(&version);
    aad[11..].copy_from_slice(&(plaintext_len as u16).to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    //! Both ends of a session made of this layer: the "server" seals with the keys the
    //! client opens with, and a stand-in for rustls's `KernelConnection` counts tickets and
    //! hands out the next key.

    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Copy)]
    enum Aead {
        Aes256Gcm,
        Chacha20,
    }

    fn secrets(aead: Aead, key: u8) -> ConnectionTrafficSecrets {
        let iv = rustls::crypto::cipher::Iv::new([key ^ 0x5a; NONCE_LEN]);
        let key = rustls::crypto::cipher::AeadKey::from([key; 32]);
        match aead {
            Aead::Aes256Gcm => ConnectionTrafficSecrets::Aes256Gcm { key, iv },
            Aead::Chacha20 => ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv },
        }
    }

    /// rustls's part: the tickets it was given; the next receive key is `key + 1`.
    struct Stand {
        aead: Aead,
        key: u8,
        tickets: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl PostHandshake for Stand {
        fn new_session_ticket(&mut self, body: &[u8]) -> Result<(), rustls::Error> {
            self.tickets.lock().unwrap().push(body.to_vec());
            Ok(())
        }

        fn next_rx_secret(&mut self) -> Result<(u64, ConnectionTrafficSecrets), rustls::Error> {
            self.key += 1;
            Ok((0, secrets(self.aead, self.key)))
        }
    }

    const CLIENT_KEY: u8 = 10;
    const SERVER_KEY: u8 = 20;

    struct Pair {
        client: RecordLayer,
        server: RecordLayer,
        tickets: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    fn pair(version: ProtocolVersion, aead: Aead) -> Pair {
        let tickets = Arc::new(Mutex::new(Vec::new()));
        let layer = |tx: u8, rx: u8| {
            let stand = Stand {
                aead,
                key: rx,
                tickets: Arc::clone(&tickets),
            };
            let secrets = ExtractedSecrets {
                tx: (0, secrets(aead, tx)),
                rx: (0, secrets(aead, rx)),
            };
            RecordLayer::new(version, secrets, Box::new(stand)).unwrap()
        };
        Pair {
            client: layer(CLIENT_KEY, SERVER_KEY),
            server: layer(SERVER_KEY, CLIENT_KEY),
            tickets,
        }
    }

    const CASES: [(ProtocolVersion, Aead); 4] = [
        (ProtocolVersion::TLSv1_3, Aead::Aes256Gcm),
        (ProtocolVersion::TLSv1_3, Aead::Chacha20),
        (ProtocolVersion::TLSv1_2, Aead::Aes256Gcm),
        (ProtocolVersion::TLSv1_2, Aead::Chacha20),
    ];

    /// What the client read from `wire`: application data, and whether it ended with
    /// close_notify; or the first error.
    fn read(client: &mut RecordLayer, wire: &mut [u8]) -> Result<(Vec<u8>, bool), RecordError> {
        let mut data = Vec::new();
        let mut at = 0;
        while let Some((len, content)) = client.open(&mut wire[at..])? {
            at += len;
            match content {
                Content::Data(plaintext) => data.extend_from_slice(plaintext),
                Content::Control => {}
                Content::Closed => return Ok((data, true)),
            }
        }
        assert_eq!(at, wire.len(), "a record was left unread");
        Ok((data, false))
    }

    fn handshake_message(kind: u8, body: &[u8]) -> Vec<u8> {
        let len = (body.len() as u32).to_be_bytes();
        let mut message = vec![kind, len[1], len[2], len[3]];
        message.extend_from_slice(body);
        message
    }

    #[test]
    fn records_open_in_place_for_every_version_and_aead() {
        for (version, aead) in CASES {
            let Pair {
                mut client,
                mut server,
                ..
            } = pair(version, aead);
            let mut wire = Vec::new();
            let big = vec![0xa5; MAX_PLAINTEXT];
            for payload in [&b"first"[..], b"", &big, b"last"] {
                server.seal(APPLICATION_DATA, payload, &mut wire).unwrap();
            }
            let start = wire.as_ptr();
            let (len, content) = client.open(&mut wire).unwrap().unwrap();
            let Content::Data(plaintext) = content else {
                panic!("{content:?}");
            };
            assert_eq!(plaintext, b"first");
            // The plaintext is a slice of the ciphertext's buffer, where the ciphertext
            // began (after the header and TLS 1.2 AES-GCM's explicit nonce): no copy.
            let explicit = match (version, aead) {
                (ProtocolVersion::TLSv1_2, Aead::Aes256Gcm) => EXPLICIT_NONCE_LEN,
                _ => 0,
            };
            assert_eq!(
                plaintext.as_ptr(),
                start.wrapping_add(HEADER_LEN + explicit)
            );
            let (data, closed) = read(&mut client, &mut wire[len..]).unwrap();
            assert_eq!(data.len(), MAX_PLAINTEXT + 4);
            assert!(data.ends_with(b"last") && !closed);
            assert_eq!(client.rx.seq, 4);
        }
    }

    #[test]
    fn a_partial_record_waits_and_a_long_one_is_refused_early() {
        let Pair {
            mut client,
            mut server,
            ..
        } = pair(ProtocolVersion::TLSv1_3, Aead::Aes256Gcm);
        let mut wire = Vec::new();
        server.seal(APPLICATION_DATA, b"abc", &mut wire).unwrap();
        for cut in 0..wire.len() {
            assert_eq!(client.open(&mut wire[..cut].to_vec()), Ok(None));
        }
        // 2^14 + 256 + 1: record_overflow from the header alone (RFC 8446 §5.2).
        let mut long = vec![APPLICATION_DATA, 3, 3, 0x41, 0x01];
        assert_eq!(client.open(&mut long), Err(RecordError::RecordOverflow));
        assert_eq!(
            RecordError::RecordOverflow.alert(),
            Some(AlertDescription::RecordOverflow)
        );
    }

    #[test]
    fn any_altered_byte_fails_authentication() {
        for (version, aead) in CASES {
            let mut wire = Vec::new();
            pair(version, aead)
                .server
                .seal(APPLICATION_DATA, b"0123456789", &mut wire)
                .unwrap();
            // Every byte after the length field: type and version are in the additional
            // data (TLS 1.3: the header; TLS 1.2: seq ‖ type ‖ version ‖ length).
            for at in (0..wire.len()).filter(|&at| at != 3 && at != 4) {
                let mut altered = wire.clone();
                altered[at] ^= 1;
                let error = pair(version, aead).client.open(&mut altered).unwrap_err();
                let expected = if at == 0 && version == ProtocolVersion::TLSv1_3 {
                    RecordError::Unexpected("unprotected record")
                } else {
                    RecordError::BadRecordMac
                };
                assert_eq!(error, expected, "{version:?} byte {at}");
            }
        }
    }

    #[test]
    fn tls13_padding_is_stripped_and_a_typeless_record_refused() {
        let Pair {
            mut client,
            mut server,
            ..
        } = pair(ProtocolVersion::TLSv1_3, Aead::Chacha20);
        let mut wire = Vec::new();
        // `seal` appends the type byte it is given; type 0 after the real type is padding.
        server
            .seal(0, &[b'h', b'i', APPLICATION_DATA, 0, 0], &mut wire)
            .unwrap();
        assert_eq!(
            read(&mut client, &mut wire).unwrap(),
            (b"hi".to_vec(), false)
        );
        let mut zeros = Vec::new();
        server.seal(0, &[0, 0], &mut zeros).unwrap();
        assert_eq!(
            client.open(&mut zeros),
            Err(RecordError::Unexpected("record without a content type"))
        );
    }

    #[test]
    fn close_notify_ends_and_other_alerts_fail_as_each_version_says() {
        use AlertDescription as A;
        for (version, aead) in CASES {
            let tls13 = version == ProtocolVersion::TLSv1_3;
            let alert = |level: u8, description: A| {
                let Pair {
                    mut client,
                    mut server,
                    ..
                } = pair(version, aead);
                let mut wire = Vec::new();
                server.seal(APPLICATION_DATA, b"body", &mut wire).unwrap();
                server
                    .seal(ALERT, &[level, u8::from(description)], &mut wire)
                    .unwrap();
                read(&mut client, &mut wire)
            };
            assert_eq!(alert(WARNING, A::CloseNotify), Ok((b"body".to_vec(), true)));
            assert_eq!(alert(FATAL, A::CloseNotify), Ok((b"body".to_vec(), true)));
            assert_eq!(
                alert(WARNING, A::UserCanceled),
                Ok((b"body".to_vec(), false))
            );
            let warning = alert(WARNING, A::NoRenegotiation);
            if tls13 {
                // RFC 8446 §6: every alert but close_notify and user_canceled is fatal.
                assert_eq!(warning, Err(RecordError::AlertReceived(A::NoRenegotiation)));
            } else {
                assert_eq!(warning, Ok((b"body".to_vec(), false)));
            }
            let fatal = alert(FATAL, A::InternalError).unwrap_err();
            assert_eq!(fatal, RecordError::AlertReceived(A::InternalError));
            // The server ended the connection: no alert back.
            assert_eq!(fatal.alert(), None);
        }
    }

    #[test]
    fn our_fatal_alert_reaches_the_other_side() {
        for (version, aead) in CASES {
            let Pair {
                mut client,
                mut server,
                ..
            } = pair(version, aead);
            let mut wire = Vec::new();
            // The client's alert, read by a layer that opens with the client's keys.
            client
                .seal_alert(AlertDescription::BadRecordMac, &mut wire)
                .unwrap();
            assert_eq!(
                read(&mut server, &mut wire),
                Err(RecordError::AlertReceived(AlertDescription::BadRecordMac)),
                "{version:?}"
            );
        }
    }

    #[test]
    fn a_ticket_split_over_records_reaches_rustls_whole() {
        let Pair {
            mut client,
            mut server,
            tickets,
        } = pair(ProtocolVersion::TLSv1_3, Aead::Aes256Gcm);
        let ticket = handshake_message(NEW_SESSION_TICKET, &[7; 300]);
        let mut wire = Vec::new();
        server.seal(APPLICATION_DATA, b"a", &mut wire).unwrap();
        server.seal(HANDSHAKE, &ticket[..2], &mut wire).unwrap();
        server.seal(HANDSHAKE, &ticket[2..100], &mut wire).unwrap();
        // The rest of the ticket and a second one in one record.
        let mut rest = ticket[100..].to_vec();
        rest.extend_from_slice(&handshake_message(NEW_SESSION_TICKET, &[8; 40]));
        server.seal(HANDSHAKE, &rest, &mut wire).unwrap();
        server.seal(APPLICATION_DATA, b"b", &mut wire).unwrap();
        assert_eq!(read(&mut client, &mut wire), Ok((b"ab".to_vec(), false)));
        assert_eq!(*tickets.lock().unwrap(), vec![vec![7; 300], vec![8; 40]]);
        assert!(client.handshake.is_empty());

        // RFC 8446 §5.1: nothing else between the parts of a handshake message.
        let mut wire = Vec::new();
        server.seal(HANDSHAKE, &ticket[..10], &mut wire).unwrap();
        server.seal(APPLICATION_DATA, b"c", &mut wire).unwrap();
        assert_eq!(
            read(&mut client, &mut wire),
            Err(RecordError::Unexpected("data inside a handshake message"))
        );
    }

    #[test]
    fn a_key_update_switches_the_receive_key() {
        for aead in [Aead::Aes256Gcm, Aead::Chacha20] {
            let Pair {
                mut client,
                mut server,
                ..
            } = pair(ProtocolVersion::TLSv1_3, aead);
            let mut wire = Vec::new();
            server
                .seal(APPLICATION_DATA, b"old key ", &mut wire)
                .unwrap();
            // update_requested: we owe a KeyUpdate only before our next data (none).
            let update = handshake_message(KEY_UPDATE, &[1]);
            server.seal(HANDSHAKE, &update, &mut wire).unwrap();
            server.tx = Keys::new(0, secrets(aead, SERVER_KEY + 1)).unwrap();
            server
                .seal(APPLICATION_DATA, b"new key", &mut wire)
                .unwrap();
            assert_eq!(
                read(&mut client, &mut wire),
                Ok((b"old key new key".to_vec(), false))
            );
            assert_eq!(client.rx.seq, 1);

            // A record sealed with the old key no longer opens.
            let Pair {
                mut client,
                mut server,
                ..
            } = pair(ProtocolVersion::TLSv1_3, aead);
            let mut wire = Vec::new();
            server.seal(HANDSHAKE, &update, &mut wire).unwrap();
            server.seal(APPLICATION_DATA, b"stale", &mut wire).unwrap();
            assert_eq!(read(&mut client, &mut wire), Err(RecordError::BadRecordMac));
        }
    }

    #[test]
    fn malformed_key_updates_are_refused() {
        let cases = [
            (
                handshake_message(KEY_UPDATE, &[2]),
                RecordError::IllegalKeyUpdate,
            ),
            (
                handshake_message(KEY_UPDATE, &[]),
                RecordError::IllegalKeyUpdate,
            ),
            (
                [
                    handshake_message(KEY_UPDATE, &[0]),
                    vec![NEW_SESSION_TICKET],
                ]
                .concat(),
                RecordError::Unexpected("data after a KeyUpdate"),
            ),
        ];
        for (message, expected) in cases {
            let Pair {
                mut client,
                mut server,
                ..
            } = pair(ProtocolVersion::TLSv1_3, Aead::Aes256Gcm);
            let mut wire = Vec::new();
            server.seal(HANDSHAKE, &message, &mut wire).unwrap();
            assert_eq!(read(&mut client, &mut wire), Err(expected));
        }
    }

    #[test]
    fn tls12_ignores_hello_request_and_refuses_other_messages() {
        let Pair {
            mut client,
            mut server,
            tickets,
        } = pair(ProtocolVersion::TLSv1_2, Aead::Aes256Gcm);
        let mut wire = Vec::new();
        server
            .seal(HANDSHAKE, &handshake_message(HELLO_REQUEST, &[]), &mut wire)
            .unwrap();
        server.seal(APPLICATION_DATA, b"x", &mut wire).unwrap();
        assert_eq!(read(&mut client, &mut wire), Ok((b"x".to_vec(), false)));
        let mut wire = Vec::new();
        let ticket = handshake_message(NEW_SESSION_TICKET, &[1; 20]);
        server.seal(HANDSHAKE, &ticket, &mut wire).unwrap();
        assert_eq!(
            read(&mut client, &mut wire),
            Err(RecordError::Unexpected("handshake message"))
        );
        assert!(tickets.lock().unwrap().is_empty());
        let mut wire = Vec::new();
        server.seal(CHANGE_CIPHER_SPEC, &[1], &mut wire).unwrap();
        assert_eq!(
            read(&mut client, &mut wire),
            Err(RecordError::Unexpected("change_cipher_spec"))
        );
    }

    #[test]
    fn only_the_providers_aead_suites_are_taken_over() {
        assert!(supports(
            CipherSuite::TLS13_AES_128_GCM_SHA256,
            ProtocolVersion::TLSv1_3
        ));
        assert!(supports(
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ProtocolVersion::TLSv1_2
        ));
        assert!(!supports(
            CipherSuite::TLS13_AES_128_CCM_SHA256,
            ProtocolVersion::TLSv1_3
        ));
        assert!(!supports(
            CipherSuite::TLS13_AES_128_GCM_SHA256,
            ProtocolVersion::DTLSv1_3
        ));
    }
}
