//! Secrets: random, shown once, stored only as hashes.
//!
//! API keys, session tokens and Trust API keys are 32 random bytes rendered in base62;
//! they are looked up by their SHA-256 (fast, and enough for 256 bits of entropy).
//! Passwords, which people choose, are hashed with argon2id.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

pub const API_KEY_PREFIX: &str = "ac_live_";
pub const SESSION_TOKEN_PREFIX: &str = "ses_";
pub const TRUST_KEY_PREFIX: &str = "tst_";
/// 43 base62 characters carry 256 bits.
const SECRET_CHARS: usize = 43;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` uniformly random base62 characters from the OS generator.
fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buffer = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buffer).expect("the OS random generator is available");
        // Rejection sampling: 248 = 4 × 62, so `b % 62` is unbiased below it.
        for byte in buffer.iter().filter(|b| **b < 248) {
            if out.len() == n {
                break;
            }
            out.push(BASE62[usize::from(*byte % 62)] as char);
        }
    }
    out
}

/// A new agent API key: `ac_live_` + 256 random bits.
pub fn generate_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_base62(SECRET_CHARS))
}

/// A new owner session token.
pub fn generate_session_token() -> String {
    format!("{SESSION_TOKEN_PREFIX}{}", random_base62(SECRET_CHARS))
}

/// A new Trust API key: `tst_` + 256 random bits.
pub fn generate_trust_key() -> String {
    format!("{TRUST_KEY_PREFIX}{}", random_base62(SECRET_CHARS))
}

/// The stored form of a random secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Whether `password` matches a stored PHC hash. A malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// A hash to verify against when the account does not exist, so an unknown email
/// costs as much time as a wrong password and the two cannot be told apart.
pub fn decoy_password_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, matches nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_prefixed_long_and_distinct() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert!(a.starts_with("ac_live_"));
        assert_eq!(a.len(), "ac_live_".len() + 43);
        assert!(
            a["ac_live_".len()..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn trust_keys_are_prefixed_long_and_distinct() {
        let a = generate_trust_key();
        assert!(a.starts_with("tst_"));
        assert_eq!(a.len(), "tst_".len() + 43);
        assert!(a["tst_".len()..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, generate_trust_key());
    }

    #[test]
    fn secret_hashes_are_stable_hex_and_never_the_secret() {
        // Known SHA-256 vectors (FIPS 180-2 "abc", the empty string) and a key-shaped
        // secret hashed outside this code (`printf %s '<key>' | sha256sum`): stored
        // hashes must keep matching what any SHA-256 gives, in lowercase hex.
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hash_secret(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hash_secret("ac_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg"),
            "f9b00aa6ffcbc095134372a6d5ac9044b106b8b62f5d13a2cf20c66d767ddb9f"
        );
        let key = generate_api_key();
        let hash = hash_secret(&key);
        assert_eq!(hash.len(), 64);
        assert!(
            hash.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{hash}"
        );
        assert!(!hash.contains(&key[API_KEY_PREFIX.len()..]));
        assert_ne!(hash, hash_secret(&generate_api_key()));
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let stored = hash_password("correct horse battery");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &stored));
        assert!(!verify_password("correct horse batterx", &stored));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!verify_password("anything", decoy_password_hash()));
    }

    #[test]
    fn base62_characters_cover_the_alphabet() {
        let sample = random_base62(20_000);
        for c in BASE62 {
            assert!(sample.as_bytes().contains(c), "{} never drawn", *c as char);
        }
    }
}
