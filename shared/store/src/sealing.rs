//! Secrets the service must read back (webhook signing secrets) are sealed before they
//! are stored: AES-256-GCM with a key from the environment (`WEBHOOK_SECRET_KEY`, 32
//! bytes as 64 hex characters), bound to the item they belong to (the associated data),
//! so a sealed value copied to another item does not open. Behind [`SecretSealer`], so a
//! KMS-backed sealer can replace the local key without touching the callers.

use std::future::Future;
use std::pin::Pin;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};

/// The key `make dev` and the tests use. Never for a deployment.
pub const DEV_KEY_HEX: &str = "6169636974792d6465762d6b65792d6e6f742d666f722d70726f64756374696f";
/// The environment variable holding the key.
pub const KEY_ENV: &str = "WEBHOOK_SECRET_KEY";

const VERSION: &str = "v1";
const NONCE_BYTES: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealing key must be 32 bytes written as 64 hex characters")]
    BadKey,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value does not open with this key and context")]
    Unopenable,
}

pub type SealFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SealError>> + Send + 'a>>;

/// Seals and opens secrets; `context` names what the secret belongs to (e.g. the
/// subscription id) and must be the same to open it.
pub trait SecretSealer: Send + Sync {
    fn seal<'a>(&'a self, plaintext: &'a [u8], context: &'a str) -> SealFuture<'a, String>;
    fn open<'a>(&'a self, sealed: &'a str, context: &'a str) -> SealFuture<'a, Vec<u8>>;
}

/// AES-256-GCM with a local key: `v1:<hex(nonce ‖ ciphertext ‖ tag)>`.
#[derive(Clone)]
pub struct AesGcmSealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for AesGcmSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesGcmSealer(..)")
    }
}

impl AesGcmSealer {
    pub fn from_hex(key: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(key.trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
        Ok(Self { cipher })
    }

    /// The sealer of `WEBHOOK_SECRET_KEY`: `Ok(None)` when it is unset or empty.
    pub fn from_env() -> Result<Option<Self>, SealError> {
        match std::env::var(KEY_ENV) {
            Ok(key) if !key.trim().is_empty() => Self::from_hex(&key).map(Some),
            _ => Ok(None),
        }
    }

    pub fn seal_now(&self, plaintext: &[u8], context: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::BadKey)?;
        let sealed = self
            .cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unopenable)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION}:{}", hex::encode(out)))
    }

    pub fn open_now(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or(SealError::Malformed)?;
        let bytes = hex::decode(body).map_err(|_| SealError::Malformed)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        self.cipher
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Unopenable)
    }
}

impl SecretSealer for AesGcmSealer {
    fn seal<'a>(&'a self, plaintext: &'a [u8], context: &'a str) -> SealFuture<'a, String> {
        Box::pin(async move { self.seal_now(plaintext, context) })
    }

    fn open<'a>(&'a self, sealed: &'a str, context: &'a str) -> SealFuture<'a, Vec<u8>> {
        Box::pin(async move { self.open_now(sealed, context) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_its_key_and_context() {
        let sealer = AesGcmSealer::from_hex(DEV_KEY_HEX).unwrap();
        let sealed = sealer.seal_now(b"whsec_abc", "wh_1").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(sealer.open_now(&sealed, "wh_1").unwrap(), b"whsec_abc");
        assert_eq!(sealer.open_now(&sealed, "wh_2"), Err(SealError::Unopenable));
        let other = AesGcmSealer::from_hex(&"11".repeat(32)).unwrap();
        assert_eq!(other.open_now(&sealed, "wh_1"), Err(SealError::Unopenable));
        // A fresh nonce each time.
        assert_ne!(sealed, sealer.seal_now(b"whsec_abc", "wh_1").unwrap());
        assert_eq!(sealer.open_now("v1:00", "wh_1"), Err(SealError::Malformed));
        assert_eq!(
            sealer.open_now("whsec_abc", "wh_1"),
            Err(SealError::Malformed)
        );
        assert_eq!(
            AesGcmSealer::from_hex("abcd").unwrap_err(),
            SealError::BadKey
        );
        assert_eq!(
            AesGcmSealer::from_hex(&"zz".repeat(32)).unwrap_err(),
            SealError::BadKey
        );
    }
}
