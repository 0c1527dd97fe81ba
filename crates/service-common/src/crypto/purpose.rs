//! One secret, one purpose. `SERVICE_JWT_SECRET` signs service JWTs (its contract: jobs sign with it
//! directly); every other use gets its own key derived from it with HKDF-SHA256 and a distinct `info` label,
//! so a leak of one derived key (a session signing key, say) exposes neither the secret nor any other key.

use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// What a derived key is for; each has its own HKDF `info` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// oauth-backend: the HMAC over an OAuth `state`.
    OauthState,
    /// api-backend: HS256 key of user sessions.
    Session,
    /// api-backend: the HMAC key api keys of the payments provider are derived with.
    ProviderApiKey,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::OauthState => b"highlevel-backend/v1/oauth-state",
            Purpose::Session => b"highlevel-backend/v1/api-session",
            Purpose::ProviderApiKey => b"highlevel-backend/v1/payments-provider-api-key",
        }
    }
}

/// The 32-byte key for `purpose`, derived from `secret`.
pub fn purpose_key(secret: &SecretString, purpose: Purpose) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(
        Some(b"highlevel-backend"),
        secret.expose_secret().as_bytes(),
    );
    let mut key = [0u8; 32];
    hk.expand(purpose.info(), &mut key)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_purpose_and_secret_and_are_not_the_secret() {
        let s = SecretString::from("a-service-secret-of-forty-characters-xx".to_owned());
        let all = [
            Purpose::OauthState,
            Purpose::Session,
            Purpose::ProviderApiKey,
        ]
        .map(|p| purpose_key(&s, p));
        for (i, a) in all.iter().enumerate() {
            assert_ne!(
                &a[..],
                s.expose_secret().as_bytes().get(..32).unwrap_or_default()
            );
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            purpose_key(&s, Purpose::Session),
            purpose_key(&s, Purpose::Session)
        );
        let other = SecretString::from("another-service-secret-of-forty-chars-xx".to_owned());
        assert_ne!(
            purpose_key(&s, Purpose::Session),
            purpose_key(&other, Purpose::Session)
        );
    }

    /// RFC 5869 test case 1 through the same crate call, so the derivation is the standard one.
    #[test]
    fn hkdf_is_rfc_5869() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
