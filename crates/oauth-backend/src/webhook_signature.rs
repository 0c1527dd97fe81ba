//! HighLevel webhook signatures: Ed25519 in `x-ghl-signature` (current) or RSA-SHA256 in `x-wh-signature`
//! (legacy), both base64, both over the raw body bytes.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::pkcs8::DecodePublicKey as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::signature::Verifier as _;
use sha2::Sha256;

pub struct WebhookVerifier {
    ed25519: ed25519_dalek::VerifyingKey,
    rsa: rsa::pkcs1v15::VerifyingKey<Sha256>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ed25519,
    Rsa,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::Rsa => "rsa",
        }
    }
}

fn parse_ed25519(s: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    let s = s.trim();
    if s.contains("BEGIN PUBLIC KEY") {
        return ed25519_dalek::VerifyingKey::from_public_key_pem(s).map_err(|e| e.to_string());
    }
    let bytes = B64.decode(s).map_err(|e| format!("not base64: {e}"))?;
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(raw) => ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|e| e.to_string()),
        Err(_) => {
            ed25519_dalek::VerifyingKey::from_public_key_der(&bytes).map_err(|e| e.to_string())
        }
    }
}

fn parse_rsa(s: &str) -> Result<rsa::RsaPublicKey, String> {
    let s = s.trim().replace("\\n", "\n");
    if s.contains("BEGIN RSA PUBLIC KEY") {
        rsa::RsaPublicKey::from_pkcs1_pem(&s).map_err(|e| e.to_string())
    } else if s.contains("BEGIN PUBLIC KEY") {
        rsa::RsaPublicKey::from_public_key_pem(&s).map_err(|e| e.to_string())
    } else {
        let der = B64.decode(s).map_err(|e| format!("not base64: {e}"))?;
        rsa::RsaPublicKey::from_public_key_der(&der).map_err(|e| e.to_string())
    }
}

impl WebhookVerifier {
    /// Keys as PEM, base64 SPKI DER, or (Ed25519) base64 of the raw 32 bytes.
    pub fn new(ed25519: &str, rsa_key: &str) -> Result<WebhookVerifier, String> {
        Ok(WebhookVerifier {
            ed25519: parse_ed25519(ed25519)
                .map_err(|e| format!("WEBHOOK_ED25519_PUBLIC_KEY: {e}"))?,
            rsa: rsa::pkcs1v15::VerifyingKey::new(
                parse_rsa(rsa_key).map_err(|e| format!("WEBHOOK_RSA_PUBLIC_KEY: {e}"))?,
            ),
        })
    }

    /// Checks the current signature if present, else the legacy one. A header that is not base64 (some
    /// deliveries carry the literal `N/A`) counts as absent. `Err` says why, without echoing input.
    pub fn verify(
        &self,
        body: &[u8],
        ghl: Option<&str>,
        legacy: Option<&str>,
    ) -> Result<Scheme, &'static str> {
        let decoded = |h: Option<&str>| h.and_then(|v| B64.decode(v.trim()).ok());
        let (ghl, legacy) = (decoded(ghl), decoded(legacy));
        if let Some(bytes) = ghl {
            let sig = ed25519_dalek::Signature::from_slice(&bytes)
                .map_err(|_| "x-ghl-signature has the wrong length")?;
            return self
                .ed25519
                .verify_strict(body, &sig)
                .map(|_| Scheme::Ed25519)
                .map_err(|_| "x-ghl-signature does not match the body");
        }
        if let Some(bytes) = legacy {
            let sig = rsa::pkcs1v15::Signature::try_from(bytes.as_slice())
                .map_err(|_| "x-wh-signature is malformed")?;
            return self
                .rsa
                .verify(body, &sig)
                .map(|_| Scheme::Rsa)
                .map_err(|_| "x-wh-signature does not match the body");
        }
        Err("no x-ghl-signature or x-wh-signature header with a base64 signature")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlevels_published_keys_parse() {
        WebhookVerifier::new(
            crate::settings::HIGHLEVEL_ED25519_PUBLIC_KEY,
            crate::settings::HIGHLEVEL_RSA_PUBLIC_KEY,
        )
        .unwrap();
    }

    /// A current header of `N/A` (not base64) counts as absent: the legacy header is checked instead.
    #[test]
    fn a_signature_header_that_is_not_base64_counts_as_absent() {
        use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        let mut rng = rand::thread_rng();
        let private = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let v = WebhookVerifier::new(crate::settings::HIGHLEVEL_ED25519_PUBLIC_KEY, &public_pem)
            .unwrap();
        let body = br#"{"type":"INSTALL"}"#;
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(private);
        let sig = B64.encode(signer.sign(body).to_bytes());
        assert_eq!(v.verify(body, Some("N/A"), Some(&sig)), Ok(Scheme::Rsa));
        assert_eq!(v.verify(body, Some("N/A"), None).map_err(|_| ()), Err(()));
    }

    #[test]
    fn unsigned_and_garbage_signatures_are_refused() {
        let v = WebhookVerifier::new(
            crate::settings::HIGHLEVEL_ED25519_PUBLIC_KEY,
            crate::settings::HIGHLEVEL_RSA_PUBLIC_KEY,
        )
        .unwrap();
        assert!(v.verify(b"{}", None, None).is_err());
        assert!(v.verify(b"{}", Some("!!!"), None).is_err());
        assert!(v.verify(b"{}", Some(&B64.encode([0u8; 64])), None).is_err());
        assert!(v
            .verify(b"{}", None, Some(&B64.encode([0u8; 512])))
            .is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// No body and no header value passes, or panics: text headers, and well-formed base64 of random bytes.
        #[test]
        fn forged_signatures_are_refused_without_panicking(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            ghl in proptest::option::of(".{0,120}"),
            legacy in proptest::option::of(".{0,400}"),
            sig in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let v = WebhookVerifier::new(
                crate::settings::HIGHLEVEL_ED25519_PUBLIC_KEY,
                crate::settings::HIGHLEVEL_RSA_PUBLIC_KEY,
            )
            .unwrap();
            proptest::prop_assert!(v.verify(&body, ghl.as_deref(), legacy.as_deref()).is_err());
            let sig = B64.encode(&sig);
            proptest::prop_assert!(v.verify(&body, Some(&sig), None).is_err());
            proptest::prop_assert!(v.verify(&body, None, Some(&sig)).is_err());
        }
    }
}
