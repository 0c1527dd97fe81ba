//! The custom provider's api keys. HighLevel sends the api key with every queryUrl call, and api-backend must
//! present it again with every payment event it reports. It is never stored: each key is HMAC-SHA256 of the
//! location, the mode and a random salt kept with the provider, keyed with a key derived from
//! SERVICE_JWT_SECRET for this purpose alone (HKDF, `Purpose::ProviderApiKey`). Only the salt and a SHA-256
//! hash of the key are stored. Rotating SERVICE_JWT_SECRET therefore means registering the providers again
//! (`PUT …/payments/provider`), which issues new keys.
//!
//! Providers registered before the derived key existed have salts without the `v2.` prefix: their keys are
//! still made the old way (HMAC keyed with the secret itself), so keys HighLevel already holds keep working
//! until the provider is registered again.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use service_common::crypto::purpose::{purpose_key, Purpose};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    pub fn is_live(self) -> bool {
        self == Mode::Live
    }
}

/// Salts of keys made with the derived key start with this.
const DERIVED: &str = "v2.";

/// A fresh salt for a registration.
pub fn new_salt() -> String {
    format!("{DERIVED}{:032x}", rand::random::<u128>())
}

/// The api key of a location's provider in a mode.
pub fn api_key(secret: &SecretString, location: &str, mode: Mode, salt: &str) -> String {
    let derived;
    let key: &[u8] = if salt.starts_with(DERIVED) {
        derived = purpose_key(secret, Purpose::ProviderApiKey);
        &derived
    } else {
        secret.expose_secret().as_bytes()
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(
        format!(
            "payments-provider-api-key|{location}|{}|{salt}",
            mode.as_str()
        )
        .as_bytes(),
    );
    let digest = mac.finalize().into_bytes();
    format!("sk_{}_{}", mode.as_str(), hex::encode(&digest[..24]))
}

/// A publishable key: public by design (the payment page receives it), random.
pub fn publishable_key(mode: Mode) -> String {
    format!("pk_{}_{:032x}", mode.as_str(), rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sk_test_` + HMAC-SHA256("x" × 40, "payments-provider-api-key|L1|test|salt")[..48 hex], by Python's hmac.
    const LEGACY_L1_TEST_SALT: &str = "sk_test_6684673b33673cda9848968edd3da984c8d0b32c95f96207";

    /// A key made before the derived key existed (legacy salt) is the one HighLevel holds: still the same.
    #[test]
    fn legacy_salts_keep_their_keys() {
        let s = SecretString::from("x".repeat(40));
        assert_eq!(api_key(&s, "L1", Mode::Test, "salt"), LEGACY_L1_TEST_SALT);
    }

    /// New keys do not come from the raw secret: knowing the HMAC keyed with SERVICE_JWT_SECRET is no help.
    #[test]
    fn new_keys_use_the_derived_key() {
        let s = SecretString::from("x".repeat(40));
        let salt = new_salt();
        assert!(salt.starts_with(DERIVED));
        let new = api_key(&s, "L1", Mode::Test, &salt);
        let mut raw = <Hmac<Sha256> as Mac>::new_from_slice(s.expose_secret().as_bytes()).unwrap();
        raw.update(format!("payments-provider-api-key|L1|test|{salt}").as_bytes());
        let hex = hex::encode(raw.finalize().into_bytes());
        assert_ne!(new, format!("sk_test_{}", &hex[..48]));
    }

    #[test]
    fn keys_are_stable_per_salt_and_differ_by_everything_else() {
        let s = SecretString::from("x".repeat(40));
        let k = api_key(&s, "L1", Mode::Test, "salt");
        assert_eq!(k, api_key(&s, "L1", Mode::Test, "salt"));
        assert!(k.starts_with("sk_test_") && k.len() == 56);
        for other in [
            api_key(&s, "L2", Mode::Test, "salt"),
            api_key(&s, "L1", Mode::Live, "salt"),
            api_key(&s, "L1", Mode::Test, "salt2"),
            api_key(
                &SecretString::from("y".repeat(40)),
                "L1",
                Mode::Test,
                "salt",
            ),
        ] {
            assert_ne!(k, other);
        }
    }
}
