//! AES-256-GCM under a key ring from `TOKEN_ENCRYPTION_KEYS` (`id:base64key[,id:base64key…]`): the first key
//! encrypts, all decrypt, so keys can be rotated (`oauth-backend rotate-keys`).
//!
//! Stored form: `v1:<key id>:<nonce b64>:<ciphertext b64>`. The associated data binds each ciphertext to its
//! row, its token kind and its key id, so a ciphertext copied to another row, kind or key does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use secrecy::SecretString;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
    /// Any other secret kept at rest (a payment gateway's merchant credentials).
    Secret,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::Secret => "secret",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    #[error("TOKEN_ENCRYPTION_KEYS is empty")]
    Empty,
    #[error("TOKEN_ENCRYPTION_KEYS entry {0} is not `id:base64key`")]
    Malformed(usize),
    #[error("TOKEN_ENCRYPTION_KEYS key `{0}` is not base64 of 32 bytes")]
    BadKey(String),
    #[error("TOKEN_ENCRYPTION_KEYS names key `{0}` twice")]
    Duplicate(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    #[error("stored token is not in the v1 format")]
    Format,
    #[error("stored token was encrypted under key `{0}`, which is not in TOKEN_ENCRYPTION_KEYS")]
    UnknownKey(String),
    #[error("stored token does not decrypt (wrong key, or it was moved to another row)")]
    Tampered,
}

#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeyRing").field("key_ids", &ids).finish()
    }
}

fn aad(row: &str, kind: TokenKind, key_id: &str) -> Vec<u8> {
    format!("{row}|{}|{key_id}", kind.as_str()).into_bytes()
}

impl KeyRing {
    pub fn parse(spec: &str) -> Result<KeyRing, KeyRingError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for (i, entry) in spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (id, key) = entry
                .split_once(':')
                .ok_or(KeyRingError::Malformed(i + 1))?;
            if id.is_empty() || id.contains(':') {
                return Err(KeyRingError::Malformed(i + 1));
            }
            let bytes = B64
                .decode(key.trim())
                .map_err(|_| KeyRingError::BadKey(id.to_owned()))?;
            if bytes.len() != 32 {
                return Err(KeyRingError::BadKey(id.to_owned()));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(KeyRingError::Duplicate(id.to_owned()));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| KeyRingError::BadKey(id.to_owned()))?;
            keys.push((id.to_owned(), cipher));
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(KeyRing { keys })
    }

    /// A fresh `id:base64key` entry, for `devstack` and tests.
    pub fn generate_entry(id: &str) -> String {
        format!("{id}:{}", B64.encode(rand::random::<[u8; 32]>()))
    }

    pub fn primary_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Encrypts under the first key with a fresh random nonce. `row` names the row the ciphertext belongs to.
    pub fn encrypt(&self, plaintext: &str, row: &str, kind: TokenKind) -> String {
        let (id, cipher) = &self.keys[0];
        let nonce_bytes: [u8; 12] = rand::random();
        let nonce = Nonce::from_slice(&nonce_bytes);
        let aad = aad(row, kind, id);
        // AES-GCM encryption only fails for inputs over 64 GiB.
        let ct = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        format!("v1:{id}:{}:{}", B64.encode(nonce_bytes), B64.encode(ct))
    }

    pub fn decrypt(
        &self,
        stored: &str,
        row: &str,
        kind: TokenKind,
    ) -> Result<SecretString, DecryptError> {
        let mut parts = stored.splitn(4, ':');
        let (Some("v1"), Some(id), Some(nonce), Some(ct)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DecryptError::Format);
        };
        let cipher = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, c)| c)
            .ok_or_else(|| DecryptError::UnknownKey(id.to_owned()))?;
        let nonce = B64.decode(nonce).map_err(|_| DecryptError::Format)?;
        if nonce.len() != 12 {
            return Err(DecryptError::Format);
        }
        let ct = B64.decode(ct).map_err(|_| DecryptError::Format)?;
        let aad = aad(row, kind, id);
        let pt = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| DecryptError::Tampered)?;
        String::from_utf8(pt)
            .map(SecretString::from)
            .map_err(|_| DecryptError::Tampered)
    }

    /// The key id a stored ciphertext was made with.
    pub fn key_id_of(stored: &str) -> Option<&str> {
        stored.strip_prefix("v1:").and_then(|s| s.split(':').next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn ring(spec: &str) -> KeyRing {
        KeyRing::parse(spec).unwrap()
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let k = ring(&KeyRing::generate_entry("k1"));
        let a = k.encrypt("tok", "inst/", TokenKind::Access);
        let b = k.encrypt("tok", "inst/", TokenKind::Access);
        assert_ne!(a, b, "nonce reuse");
        assert!(!a.contains("tok"));
        assert_eq!(
            k.decrypt(&a, "inst/", TokenKind::Access)
                .unwrap()
                .expose_secret(),
            "tok"
        );
    }

    #[test]
    fn ciphertext_is_bound_to_row_kind_and_key() {
        let k = ring(&KeyRing::generate_entry("k1"));
        let c = k.encrypt("tok", "inst_a/", TokenKind::Access);
        assert_eq!(
            k.decrypt(&c, "inst_b/", TokenKind::Access).unwrap_err(),
            DecryptError::Tampered
        );
        assert_eq!(
            k.decrypt(&c, "inst_a/", TokenKind::Refresh).unwrap_err(),
            DecryptError::Tampered
        );
        // Relabelled as another key id of the same ring: the AAD no longer matches.
        let second = KeyRing::generate_entry("k2");
        let both = ring(&format!("{},{second}", KeyRing::generate_entry("k1")));
        let c = both.encrypt("tok", "r", TokenKind::Access);
        let relabelled = c.replacen("v1:k1:", "v1:k2:", 1);
        assert!(both.decrypt(&relabelled, "r", TokenKind::Access).is_err());
    }

    #[test]
    fn old_keys_still_decrypt_after_rotation() {
        let old = KeyRing::generate_entry("old");
        let c = ring(&old).encrypt("tok", "r", TokenKind::Refresh);
        let rotated = ring(&format!("{},{old}", KeyRing::generate_entry("new")));
        assert_eq!(rotated.primary_id(), "new");
        assert_eq!(
            rotated
                .decrypt(&c, "r", TokenKind::Refresh)
                .unwrap()
                .expose_secret(),
            "tok"
        );
        assert_eq!(KeyRing::key_id_of(&c), Some("old"));
        let without_old = ring(&KeyRing::generate_entry("new"));
        assert_eq!(
            without_old
                .decrypt(&c, "r", TokenKind::Refresh)
                .unwrap_err(),
            DecryptError::UnknownKey("old".into())
        );
    }

    #[test]
    fn bad_specs_are_refused_without_echoing_keys() {
        assert_eq!(KeyRing::parse("").unwrap_err(), KeyRingError::Empty);
        assert_eq!(
            KeyRing::parse("nocolon").unwrap_err(),
            KeyRingError::Malformed(1)
        );
        let err = KeyRing::parse("k:c2hvcnQ=").unwrap_err();
        assert_eq!(err, KeyRingError::BadKey("k".into()));
        assert!(!err.to_string().contains("c2hvcnQ="));
        let e = KeyRing::generate_entry("k");
        assert_eq!(
            KeyRing::parse(&format!("{e},{e}")).unwrap_err(),
            KeyRingError::Duplicate("k".into())
        );
        assert!(!format!("{:?}", ring(&e)).contains(e.split(':').nth(1).unwrap()));
    }
}
