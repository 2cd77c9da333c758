//! Secrets at rest and API tokens: the keyring that seals secret fields with
//! an authenticated cipher (each ciphertext names its key), master key files,
//! and hashing of API tokens so that only hashes are stored.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use grantry_core::ports::Sealer;
use grantry_core::{Error, Sealed};
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the master key must be 32 random bytes in base64 (44 characters); {0}")]
    Malformed(String),
}

/// The 32-byte master key. Debug never shows it.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id {})", self.id())
    }
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        MasterKey(bytes)
    }

    /// Reads the base64 text of a key (surrounding whitespace allowed).
    pub fn from_base64(text: &str) -> Result<MasterKey, KeyError> {
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text.trim().as_bytes())
                .map_err(|_| KeyError::Malformed("it is not valid base64".into()))?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Malformed(format!("it decodes to {} bytes", decoded.len())))?;
        Ok(MasterKey(Zeroizing::new(bytes)))
    }

    /// The text written to a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    /// A public fingerprint of the key: names it in ciphertexts and in the
    /// database, so that a wrong key is detected before anything is read.
    pub fn id(&self) -> String {
        let digest = Sha256::new().chain_update(b"grantry master key id\0").chain_update(self.0.as_ref()).finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Keys that can open sealed values, and the one that seals new ones.
/// Old keys stay in the ring so that rotation can re-seal online.
pub struct Keyring {
    current: (String, XChaCha20Poly1305),
    older: Vec<(String, XChaCha20Poly1305)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("current", &self.current.0).finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(current: &MasterKey) -> Keyring {
        Keyring { current: (current.id(), XChaCha20Poly1305::new(current.0.as_ref().into())), older: Vec::new() }
    }

    /// Adds a key that may still open values sealed before a rotation.
    pub fn with_older(mut self, key: &MasterKey) -> Keyring {
        self.older.push((key.id(), XChaCha20Poly1305::new(key.0.as_ref().into())));
        self
    }

    pub fn current_id(&self) -> &str {
        &self.current.0
    }

    fn cipher(&self, id: &str) -> Option<&XChaCha20Poly1305> {
        std::iter::once(&self.current).chain(self.older.iter()).find(|(k, _)| k == id).map(|(_, c)| c)
    }
}

impl Sealer for Keyring {
    /// `v1.<key id>.<base64url(nonce ‖ ciphertext)>`, with `context` as associated data.
    fn seal(&self, plaintext: &str, context: &str) -> Result<Sealed, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .current
            .1
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .map_err(|_| Error::Internal("a secret could not be sealed".into()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(Sealed(format!("{VERSION}.{}.{}", self.current.0, URL_SAFE_NO_PAD.encode(blob))))
    }

    fn open(&self, sealed: &Sealed, context: &str) -> Result<SecretString, Error> {
        let mut parts = sealed.0.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Internal("a stored secret has an unknown format".into()));
        };
        let cipher = self.cipher(key_id).ok_or_else(|| {
            Error::Internal(format!("a stored secret was sealed with master key {key_id}, which is not configured"))
        })?;
        let blob = URL_SAFE_NO_PAD.decode(body).map_err(|_| Error::Internal("a stored secret is damaged".into()))?;
        if blob.len() < NONCE_LEN {
            return Err(Error::Internal("a stored secret is damaged".into()));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let plain = Zeroizing::new(
            cipher
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
                .map_err(|_| Error::Internal("a stored secret does not open with its key (damaged or moved)".into()))?,
        );
        let text =
            String::from_utf8(plain.to_vec()).map_err(|_| Error::Internal("a stored secret is damaged".into()))?;
        Ok(SecretString::from(text))
    }
}

/// `bytes` random bytes from the operating system, in lowercase hex (session ids, CSRF tokens).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let key = MasterKey::generate();
        let ring = Keyring::new(&key);
        let sealed = ring.seal("s3cr3t-value", "rec/secret").unwrap();
        assert!(!sealed.0.contains("s3cr3t"));
        assert!(sealed.0.starts_with(&format!("v1.{}.", key.id())));
        assert_eq!(ring.open(&sealed, "rec/secret").unwrap().expose_secret(), "s3cr3t-value");
        assert!(ring.open(&sealed, "other/secret").is_err(), "context is bound");
        let other = Keyring::new(&MasterKey::generate());
        assert!(other.open(&sealed, "rec/secret").unwrap_err().to_string().contains("not configured"));
        let rotated = Keyring::new(&MasterKey::generate()).with_older(&key);
        assert_eq!(rotated.open(&sealed, "rec/secret").unwrap().expose_secret(), "s3cr3t-value");
    }

    #[test]
    fn master_keys_round_trip_through_base64_and_reject_wrong_lengths() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(key.id(), again.id());
        assert!(MasterKey::from_base64("c2hvcnQ=").unwrap_err().to_string().contains("5 bytes"));
        assert!(!format!("{key:?}").contains(key.to_base64().as_str()));
    }
}
