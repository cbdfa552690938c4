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
    matches!(version, ProtocolVersion::TLSv1_2 | ProtocolVersion::TLSv1_3) && SUITES.contains(&suite)
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
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&CHACHA20_POLY1305, key, iv)
            }
            _ => {
                return Err(RecordError::Rustls(rustls::Error::General(
                    "rustls gave secrets for an AEAD we do not implement".into(),
                )));
            }
        };
        let unbound = UnboundKey::new(algorithm, key.as_ref()).map_err(|_| {
            RecordError::Rustls(rustls::Error::General("a traffic key of the wrong size".into()))
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
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// Moves to the next record's sequence number.
    fn advance(&mut self) -> Result<(), RecordError> {
        self.seq = self.seq.checked_add(1).ok_or(RecordError::SequenceExhausted)?;
        Ok(())
    }
}

/// The receive side's record layer of one session, and the send side for a fatal alert.
pub(crate) struct RecordLayer {
    tls13: bool,
    protection: Protection,
    rx: Keys,
    tx: Keys,
    kernel: KernelConnection<ClientConnectionData>,
    /// A post-handshake message split across records, until it is whole (RFC 8446 §5.1).
    /// Empty on the data path: it allocates only if a server sends such a message.
    handshake: Vec<u8>,
}

impl RecordLayer {
    /// Takes over from rustls with the secrets and sequence numbers it handed out.
    pub(crate) fn new(
        secrets: ExtractedSecrets,
        kernel: KernelConnection<ClientConnectionData>,
    ) -> Result<RecordLayer, RecordError> {
        let tls13 = kernel.protocol_version() == ProtocolVersion::TLSv1_3;
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
            kernel,
            handshake: Vec::new(),
        })
    }

    /// The length of the complete record at the front of `buffer`, if it is all there.
    pub(crate) fn complete_record(buffer: &[u8]) -> Option<usize> {
        let header: &[u8; HEADER_LEN] = buffer.get(..HEADER_LEN)?.try_into().ok()?;
        let len = HEADER_LEN + usize::from(u16::from_be_bytes([header[3], header[4]]));
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
            APPLICATION_DATA => return Err(RecordError::Unexpected("data inside a handshake message")),
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
        match buffer.get(..HEADER_LEN) {
            Some(header) => {
                let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
                self.check_length(len)
            }
            None => Ok(()),
        }
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
            let aad = tls12_aad(self.rx.seq, outer_type, plaintext_len);
            self.rx
                .key
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), ciphertext)
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
        let ignorable = *level == WARNING
            && (!self.tls13 || description == AlertDescription::UserCanceled);
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
                    .kernel
                    .handle_new_session_ticket(body)
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
                    let (seq, secrets) = self
                        .kernel
                        .update_rx_secret()
                        .map_err(RecordError::Rustls)?;
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
        let alert = [FATAL, u8::from(description)];
        let at = out.len();
        let mut record = [0u8; HEADER_LEN + EXPLICIT_NONCE_LEN + 3];
        let nonce = self.tx.xor_nonce();
        let (header_type, explicit, body_len) = if self.tls13 {
            (APPLICATION_DATA, 0, 3)
        } else if self.protection == Protection::ExplicitNonce {
            (ALERT, EXPLICIT_NONCE_LEN, 2)
        } else {
            (ALERT, 0, 2)
        };
        let fragment_len = explicit + body_len + TAG_LEN;
        record[0] = header_type;
        record[1..3].copy_from_slice(&[3, 3]);
        record[3..5].copy_from_slice(&(fragment_len as u16).to_be_bytes());
        // RFC 5288 §3: the explicit nonce is ours to choose, once per key; rustls sends
        // the sequence-derived one, so do we.
        record[HEADER_LEN..HEADER_LEN + explicit].copy_from_slice(&nonce[NONCE_LEN - explicit..]);
        let body = HEADER_LEN + explicit;
        record[body..body + 2].copy_from_slice(&alert);
        if self.tls13 {
            record[body + 2] = ALERT;
        }
        let aad = if self.tls13 {
            let mut aad = [0u8; 13];
            aad[..HEADER_LEN].copy_from_slice(&record[..HEADER_LEN]);
            (aad, HEADER_LEN)
        } else {
            (tls12_aad(self.tx.seq, ALERT, 2), 13)
        };
        let nonce = Nonce::assume_unique_for_key(nonce);
        let tag = self
            .tx
            .key
            .seal_in_place_separate_tag(
                nonce,
                Aad::from(&aad.0[..aad.1]),
                &mut record[body..body + body_len],
            )
            .map_err(|_| RecordError::Rustls(rustls::Error::EncryptError))?;
        self.tx.advance()?;
        out.extend_from_slice(&record[..body + body_len]);
        out.extend_from_slice(tag.as_ref());
        debug_assert_eq!(out.len() - at, HEADER_LEN + fragment_len);
        Ok(())
    }
}

/// TLS 1.2's additional data: seq ‖ type ‖ version ‖ plaintext length (RFC 5246 §6.2.3.3).
fn tls12_aad(seq: u64, content_type: u8, plaintext_len: usize) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = content_type;
    aad[9..11].copy_from_slice(&[3, 3]);
    aad[11..].copy_from_slice(&(plaintext_len as u16).to_be_bytes());
    aad
}
