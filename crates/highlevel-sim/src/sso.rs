//! How HighLevel encrypts user context for an app's pages: CryptoJS's passphrase format, i.e. base64 of
//! `Salted__` + an 8-byte random salt + AES-256-CBC (PKCS#7) ciphertext, key and IV from OpenSSL's
//! EVP_BytesToKey with MD5 over the app's Shared Secret and the salt.

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use base64::{engine::general_purpose::STANDARD as B64, Engine};

pub fn encrypt(shared_secret: &str, plaintext: &str) -> String {
    let salt: [u8; 8] = rand::random();
    let mut key_iv = [0u8; 48];
    evpkdf::evpkdf::<md5::Md5>(shared_secret.as_bytes(), &salt, 1, &mut key_iv);
    let (key, iv) = key_iv.split_at(32);
    let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
        .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes()))
        .unwrap_or_default();
    let mut out = b"Salted__".to_vec();
    out.extend_from_slice(&salt);
    out.extend_from_slice(&ct);
    B64.encode(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// `openssl enc -d` reads what the simulator wrote.
    #[test]
    fn openssl_decrypts_it() {
        let payload = encrypt("secret", r#"{"userId":"u"}"#);
        let mut child = std::process::Command::new("openssl")
            .args([
                "enc",
                "-d",
                "-aes-256-cbc",
                "-md",
                "md5",
                "-a",
                "-A",
                "-pass",
                "pass:secret",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(payload.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), r#"{"userId":"u"}"#);
    }
}
