//! HighLevel's user context: the string the parent window hands an app page, encrypted with the app's Shared
//! Secret (`HIGHLEVEL_SSO_KEY`) in the CryptoJS passphrase format — base64 of `Salted__` + 8-byte salt +
//! AES-256-CBC ciphertext, key and IV from OpenSSL's EVP_BytesToKey (MD5, one round). Decrypted, it is JSON.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Longest payload accepted (HighLevel's are a few hundred bytes).
pub const MAX_SSO_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserContext {
    pub user_id: String,
    pub company_id: String,
    #[serde(default)]
    pub role: Option<String>,
    /// `agency` or `location`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub is_agency_owner: Option<bool>,
    /// The location a location user is in.
    #[serde(default)]
    pub active_location: Option<String>,
}

/// What a caller is told about any user context that does not open a session, whatever the reason.
pub const REFUSED: &str = "the user context was refused: it is not a user context HighLevel encrypted with this app's Shared Secret (HIGHLEVEL_SSO_KEY)";

/// Why a user context was refused: for the debug log only, never for the caller (see [`REFUSED`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SsoError {
    #[error("the user context is empty or longer than {MAX_SSO_LEN} characters")]
    Size,
    #[error("the user context is not base64 of a CryptoJS `Salted__` payload")]
    Format,
    #[error(
        "the user context does not decrypt with HIGHLEVEL_SSO_KEY (another app's, or tampered)"
    )]
    Decrypt,
    #[error("the decrypted user context is not the JSON HighLevel sends: {0}")]
    Json(String),
}

pub fn decrypt(payload: &str, key: &SecretString) -> Result<UserContext, SsoError> {
    let payload = payload.trim();
    if payload.is_empty() || payload.len() > MAX_SSO_LEN {
        return Err(SsoError::Size);
    }
    let raw = B64.decode(payload).map_err(|_| SsoError::Format)?;
    if raw.len() < 32 || &raw[..8] != b"Salted__" || (raw.len() - 16) % 16 != 0 {
        return Err(SsoError::Format);
    }
    let (salt, ciphertext) = (&raw[8..16], &raw[16..]);
    let mut key_iv = [0u8; 48];
    evpkdf::evpkdf::<md5::Md5>(key.expose_secret().as_bytes(), salt, 1, &mut key_iv);
    let (k, iv) = key_iv.split_at(32);
    let plain = Aes256CbcDec::new_from_slices(k, iv)
        .map_err(|_| SsoError::Decrypt)?
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map_err(|_| SsoError::Decrypt)?;
    let ctx: UserContext =
        serde_json::from_slice(&plain).map_err(|e| SsoError::Json(e.to_string()))?;
    if ctx.kind != "agency" && ctx.kind != "location" {
        return Err(SsoError::Json(format!(
            "`type` is `{}`, not agency or location",
            ctx.kind
        )));
    }
    if ctx.kind == "location" && ctx.active_location.as_deref().is_none_or(str::is_empty) {
        return Err(SsoError::Json(
            "a location user's context has no activeLocation".into(),
        ));
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with `echo -n '{"userId":"u1","companyId":"c1","role":"admin","type":"location","activeLocation":"L1"}' |
    /// openssl enc -aes-256-cbc -md md5 -salt -a -A -pass pass:shared-secret` (an independent implementation).
    const VECTOR: &str = "U2FsdGVkX19pz4x7Wf02wrczKD2D2so72FaSTGhNFxe28F/6xc5wARl0BpiHaHgDtLZjADnrSMxJP7sWxqYP4kHHqRtvjTG+FgLCpnNv3UZeAEXbXE8zPKRgnPzZB8DvYzLm3iCDZXDQXs3KTmnkEg==";

    #[test]
    fn decrypts_what_openssl_encrypted() {
        let ctx = decrypt(VECTOR, &SecretString::from("shared-secret".to_owned())).unwrap();
        assert_eq!(ctx.user_id, "u1");
        assert_eq!(ctx.active_location.as_deref(), Some("L1"));
        assert_eq!(ctx.kind, "location");
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let key = SecretString::from("k".to_owned());
        assert_eq!(decrypt("", &key).unwrap_err(), SsoError::Size);
        assert_eq!(decrypt("!!!", &key).unwrap_err(), SsoError::Format);
        assert_eq!(
            decrypt(&B64.encode(b"Salted__12345678short"), &key).unwrap_err(),
            SsoError::Format
        );
        assert_eq!(decrypt(VECTOR, &key).unwrap_err(), SsoError::Decrypt);
        assert_eq!(
            decrypt(&"A".repeat(MAX_SSO_LEN + 4), &key).unwrap_err(),
            SsoError::Size
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Whatever arrives as a user context (text, or a well-formed `Salted__` envelope of random bytes), decrypt
        /// answers an error and never panics.
        #[test]
        fn any_payload_is_refused_without_panicking(
            text in ".{0,300}",
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let key = SecretString::from("shared-secret");
            proptest::prop_assert!(decrypt(&text, &key).is_err());
            let envelope = B64.encode([b"Salted__".as_slice(), &bytes].concat());
            proptest::prop_assert!(decrypt(&envelope, &key).is_err());
        }
    }
}
