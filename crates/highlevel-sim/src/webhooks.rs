//! Signed webhook delivery, as HighLevel does it: Ed25519 in `x-ghl-signature` and the legacy RSA-SHA256 in
//! `x-wh-signature`, both base64, both over the exact body bytes sent.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey};
use rsa::pkcs1v15::SigningKey as RsaSigningKey;
use rsa::signature::SignatureEncoding;
use rsa::RsaPrivateKey;
use sha2::Sha256;
use std::sync::OnceLock;

pub struct SigningKeys {
    ed25519: SigningKey,
    rsa: RsaSigningKey<Sha256>,
    pub ed25519_public_pem: String,
    pub ed25519_public_raw_b64: String,
    pub rsa_public_pem: String,
}

static KEYS: OnceLock<SigningKeys> = OnceLock::new();

impl SigningKeys {
    /// One key pair per process: RSA key generation is slow, and every simulator in a test run may share it.
    pub fn shared() -> &'static SigningKeys {
        KEYS.get_or_init(SigningKeys::generate)
    }

    fn generate() -> SigningKeys {
        let mut rng = rand::rngs::OsRng;
        let ed25519 = SigningKey::generate(&mut rng);
        let verifying = ed25519.verifying_key();
        let rsa_key = match RsaPrivateKey::new(&mut rng, 2048) {
            Ok(k) => k,
            Err(e) => panic!("RSA key generation failed: {e}"),
        };
        let rsa_public_pem = rsa::pkcs8::EncodePublicKey::to_public_key_pem(
            &rsa_key.to_public_key(),
            LineEnding::LF,
        )
        .unwrap_or_default();
        SigningKeys {
            ed25519_public_pem: verifying
                .to_public_key_pem(LineEnding::LF)
                .unwrap_or_default(),
            ed25519_public_raw_b64: B64.encode(verifying.as_bytes()),
            rsa_public_pem,
            ed25519,
            rsa: RsaSigningKey::<Sha256>::new(rsa_key),
        }
    }

    pub fn sign_ed25519(&self, body: &[u8]) -> String {
        B64.encode(self.ed25519.sign(body).to_bytes())
    }

    pub fn sign_rsa(&self, body: &[u8]) -> String {
        B64.encode(self.rsa.sign(body).to_bytes())
    }
}
