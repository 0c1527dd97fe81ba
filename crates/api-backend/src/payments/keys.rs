//! The custom provider's api keys. HighLevel sends the api key with every queryUrl call, and api-backend must
//! present it again with every payment event it reports. It is never stored: each key is derived, with
//! HMAC-SHA256, from SERVICE_JWT_SECRET, the location, the mode and a random salt kept with the provider. Only
//! the salt and a SHA-256 hash of the key are stored. Rotating SERVICE_JWT_SECRET therefore means registering
//! the providers again (`PUT …/payments/provider`), which issues new keys.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
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

/// A fresh salt for a registration.
pub fn new_salt() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The api key of a location's provider in a mode.
pub fn api_key(secret: &SecretString, location: &str, mode: Mode, salt: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(
        format!(
            "payments-provider-api-key|{location}|{}|{salt}",
            mode.as_str()
        )
        .as_bytes(),
    );
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sk_{}_{}", mode.as_str(), &hex[..48])
}

/// A publishable key: public by design (the payment page receives it), random.
pub fn publishable_key(mode: Mode) -> String {
    format!("pk_{}_{:032x}", mode.as_str(), rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

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
