//! Passwords and API keys: made, hashed and checked here, before any command is built,
//! so the aggregates and the event store only ever hold hashes.
//!
//! - Passwords: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), a random
//!   salt per hash, on a blocking thread (tens of milliseconds of CPU each) that keeps
//!   the caller's span.
//! - API keys: `cf_` and 64 hex digits from the thread-local CSPRNG (ChaCha, seeded
//!   from the OS), shown once; stored as their SHA-256, which is enough for 256 random
//!   bits and fast to look up.

use argon2::password_hash::phc::PasswordHash as PhcHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use coinfold_domain::user::{ApiKeyHash, PasswordHash};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tracing::Instrument;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;
const API_KEY_PREFIX: &str = "cf_";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("a password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("hashing failed: {0}")]
    Hashing(String),
}

/// argon2id hashes and verifications running at once, at most: each takes 19 MiB and
/// a core for tens of milliseconds, so unbounded they would let anonymous logins
/// exhaust memory. The rest wait their turn.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

fn hasher() -> Result<Argon2<'static>, CredentialError> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| CredentialError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password policy and hashes it with argon2id.
pub async fn hash_password(password: SecretString) -> Result<PasswordHash, CredentialError> {
    let length = password.expose_secret().chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(CredentialError::WeakPassword);
    }
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| CredentialError::Hashing(e.to_string()))?;
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let phc = hasher()?
            .hash_password(password.expose_secret().as_bytes())
            .map_err(|e| CredentialError::Hashing(e.to_string()))?
            .to_string();
        PasswordHash::parse(phc).map_err(|e| CredentialError::Hashing(e.to_string()))
    })
    .in_current_span()
    .await
    .map_err(|e| CredentialError::Hashing(e.to_string()))?
}

/// True when `password` matches `hash`. Runs on a blocking thread.
pub async fn verify_password(
    password: SecretString,
    hash: &PasswordHash,
) -> Result<bool, CredentialError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| CredentialError::Hashing(e.to_string()))?;
    let phc = hash.as_str().to_owned();
    tokio::task::spawn_blocking(move || {
        let parsed = PhcHash::new(&phc).map_err(|e| CredentialError::Hashing(e.to_string()))?;
        Ok(hasher()?
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| CredentialError::Hashing(e.to_string()))?
}

/// A new API key: the secret (show it once), the prefix to tell it apart, its hash.
pub struct NewApiKey {
    pub secret: SecretString,
    pub prefix: String,
    pub hash: ApiKeyHash,
}

pub fn new_api_key() -> NewApiKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{API_KEY_PREFIX}{}", hex(&bytes));
    NewApiKey {
        prefix: secret[..API_KEY_PREFIX.len() + 6].to_owned(),
        hash: hash_api_key(&secret),
        secret: secret.into(),
    }
}

/// The stored form of a presented key.
pub fn hash_api_key(secret: &str) -> ApiKeyHash {
    ApiKeyHash::parse(hex(&Sha256::digest(secret.as_bytes()))).expect("a SHA-256 is 64 hex digits")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
