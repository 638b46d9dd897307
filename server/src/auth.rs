//! Users, sessions and limits: argon2 password hashes, random 256-bit
//! tokens stored only as their SHA-256, token expiry, the per-user request
//! rate limit and the limit on failed sign-ins. No HTTP here: the routes
//! read the headers and map [`AuthError`] to responses.

use crate::store::{Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub token_hash: String,
}

/// A slow salted hash of a password (argon2, PHC string format). Fails
/// only on a bug (argon2's parameters are fixed).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random token (256 bits, base64url) and the hash under which it is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Why a caller is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// [401] no token, an unknown token, or an expired one.
    #[error("no valid token")]
    Unauthorized,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a token: unauthorized when missing, unknown or expired.
pub async fn authenticate(store: &dyn Store, token: Option<String>) -> Result<Caller, AuthError> {
    let token = token.ok_or(AuthError::Unauthorized)?;
    let hash = token_hash(&token);
    match store.session(&hash).await? {
        Some((user, expires)) if expires > now_ms() => Ok(Caller {
            user,
            token_hash: hash,
        }),
        _ => Err(AuthError::Unauthorized),
    }
}

/// A token bucket per key.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` tokens a second, bursts of `burst`; 0 turns it off.
    pub fn new(per_second: f64, burst: f64) -> Self {
        RateLimiter {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token, or says how many seconds until one is there.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > 100_000 {
            // Forget full buckets: they are the same as new ones.
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil() as u64)
        }
    }
}

/// Failed sign-ins per (user id, client address): at most `MAX` a minute.
pub struct SignInLimiter {
    failures: Mutex<HashMap<(String, IpAddr), Vec<Instant>>>,
}

impl SignInLimiter {
    const MAX: usize = 10;
    const WINDOW: Duration = Duration::from_secs(60);

    pub fn new() -> Self {
        SignInLimiter {
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait when the limit is reached.
    pub fn blocked(&self, user: &str, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let mut f = self.failures.lock().expect("sign-in limiter lock");
        let list = f.get_mut(&(user.to_owned(), ip))?;
        list.retain(|t| now.duration_since(*t) < Self::WINDOW);
        (list.len() >= Self::MAX).then(|| {
            let oldest = list[0];
            (Self::WINDOW - now.duration_since(oldest)).as_secs().max(1)
        })
    }

    pub fn failed(&self, user: &str, ip: IpAddr) {
        let mut f = self.failures.lock().expect("sign-in limiter lock");
        if f.len() > 100_000 {
            let now = Instant::now();
            f.retain(|_, l| l.iter().any(|t| now.duration_since(*t) < Self::WINDOW));
        }
        f.entry((user.to_owned(), ip))
            .or_default()
            .push(Instant::now());
    }
}

impl Default for SignInLimiter {
    fn default() -> Self {
        Self::new()
    }
}

/// Tells open sockets that a token was logged out.
pub type Logouts = broadcast::Sender<String>;
