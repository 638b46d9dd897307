//! Users, sessions and limits: argon2 password hashes (on a small bounded
//! pool of their own), random 256-bit tokens stored only as their SHA-256,
//! token expiry, the per-user request rate limit, the per-address flood
//! limits of sign-up and sign-in, and the limit on failed sign-ins. Every
//! table keyed by client input is bounded in size and pruned. No HTTP here:
//! the routes read the headers and map [`AuthError`] to responses.

use crate::store::{AccountStore, StoreError};
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::Argon2;
use base64::Engine;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub token_hash: String,
}

/// A slow salted hash of a password (argon2, PHC string format). Fails
/// only on a bug (argon2's parameters are fixed).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Argon2Memory::default().hash(password)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2Memory::default().verify(password, hash)
}

/// argon2's working memory (19 MiB with the default parameters), kept and
/// reused by one hashing thread: allocating and freeing it for every hash
/// fragments malloc's arenas (measured with `MALLOC_ARENA_MAX=2`: +150 MiB
/// RSS per round of 128 sign-ups, round after round).
#[derive(Default)]
pub struct Argon2Memory {
    blocks: Vec<argon2::Block>,
}

impl Argon2Memory {
    /// Stored hashes asking for more memory than this are refused (ours use
    /// 19 MiB; this is 256 MiB).
    const MAX_BLOCKS: usize = 256 * 1024;

    /// argon2 as [`Argon2::hash_password`] does it, on this memory.
    fn hash_with<'a>(
        &mut self,
        argon: &Argon2<'_>,
        algorithm: argon2::Algorithm,
        password: &[u8],
        salt: argon2::password_hash::Salt<'a>,
    ) -> Result<PasswordHash<'a>, argon2::password_hash::Error> {
        let params = argon.params();
        let need = params.block_count();
        if need > Self::MAX_BLOCKS {
            return Err(argon2::password_hash::Error::ParamValueInvalid(
                argon2::password_hash::errors::InvalidValue::TooLong,
            ));
        }
        if self.blocks.len() < need {
            self.blocks.resize(need, argon2::Block::default());
        }
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf)?;
        let output_len = params
            .output_len()
            .unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
        let blocks = &mut self.blocks;
        let output = argon2::password_hash::Output::init_with(output_len, |out| {
            Ok(argon.hash_password_into_with_memory(password, salt_bytes, out, &mut **blocks)?)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(argon2::Version::V0x13.into()),
            params: argon2::password_hash::ParamsString::try_from(params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }

    /// A new hash of `password` with a random salt (argon2id, default parameters).
    pub fn hash(&mut self, password: &str) -> Result<String, argon2::password_hash::Error> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let argon = Argon2::default();
        self.hash_with(
            &argon,
            argon2::Algorithm::default(),
            password.as_bytes(),
            salt.as_salt(),
        )
        .map(|h| h.to_string())
    }

    /// Whether `password` matches the PHC string `stored` (compared in
    /// constant time); false for a hash that does not parse.
    pub fn verify(&mut self, password: &str, stored: &str) -> bool {
        let Ok(expected) = PasswordHash::new(stored) else {
            return false;
        };
        let (Some(salt), Some(want)) = (expected.salt, expected.hash) else {
            return false;
        };
        let Ok(algorithm) = argon2::Algorithm::try_from(expected.algorithm) else {
            return false;
        };
        let version = match expected.version.map(argon2::Version::try_from) {
            None => argon2::Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let Ok(params) = argon2::Params::try_from(&expected) else {
            return false;
        };
        if version != argon2::Version::V0x13 {
            return false;
        }
        let argon = Argon2::new(algorithm, version, params);
        match self.hash_with(&argon, algorithm, password.as_bytes(), salt) {
            // `Output`'s equality is constant-time.
            Ok(got) => got.hash == Some(want),
            Err(_) => false,
        }
    }
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
pub async fn authenticate(
    store: &dyn AccountStore,
    token: Option<String>,
) -> Result<Caller, AuthError> {
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

/// Sessions found in the store, kept for a short while so that a request
/// does not read the store for its token every time (a store read is a
/// trip to the blocking pool on the embedded store, a round trip on
/// MongoDB). Only tokens the store knows are kept, at most
/// [`SessionCache::MAX`]. An entry is trusted for `fresh_for` and never past
/// its session's expiry; a logout removes it: on this instance at once
/// ([`SessionCache::forget`] before the answer), from other instances
/// through the bus ([`forget_logouts`]).
pub struct SessionCache {
    entries: Mutex<HashMap<String, CachedSession>>,
    /// Counts forgets: a lookup that started before one does not put back
    /// what it read, which may be the session just deleted.
    forgets: AtomicU64,
    fresh_for: Duration,
}

struct CachedSession {
    user: String,
    expires_ms: i64,
    fetched: Instant,
}

impl SessionCache {
    /// Sessions kept at most (about 200 bytes each); the cache is emptied
    /// when it is full.
    pub const MAX: usize = 16_384;

    pub fn new(fresh_for: Duration) -> Self {
        SessionCache {
            entries: Mutex::default(),
            forgets: AtomicU64::new(0),
            fresh_for,
        }
    }

    /// [`authenticate`], from the cache when it has the token.
    pub async fn authenticate(
        &self,
        store: &dyn AccountStore,
        token: Option<String>,
    ) -> Result<Caller, AuthError> {
        let token = token.ok_or(AuthError::Unauthorized)?;
        let hash = token_hash(&token);
        let now = now_ms();
        if let Some(user) = self.cached(&hash, now) {
            return Ok(Caller {
                user,
                token_hash: hash,
            });
        }
        let forgets = self.forgets.load(Ordering::Acquire);
        match store.session(&hash).await? {
            Some((user, expires_ms)) if expires_ms > now => {
                let mut entries = self.entries.lock().expect("session cache lock");
                if self.forgets.load(Ordering::Acquire) == forgets {
                    if entries.len() >= Self::MAX {
                        entries.clear();
                    }
                    entries.insert(
                        hash.clone(),
                        CachedSession {
                            user: user.clone(),
                            expires_ms,
                            fetched: Instant::now(),
                        },
                    );
                }
                Ok(Caller {
                    user,
                    token_hash: hash,
                })
            }
            _ => Err(AuthError::Unauthorized),
        }
    }

    fn cached(&self, hash: &str, now: i64) -> Option<String> {
        let entries = self.entries.lock().expect("session cache lock");
        let s = entries.get(hash)?;
        (s.expires_ms > now && s.fetched.elapsed() < self.fresh_for).then(|| s.user.clone())
    }

    /// A logged-out token: never answered from the cache again.
    pub fn forget(&self, token_hash: &str) {
        let mut entries = self.entries.lock().expect("session cache lock");
        self.forgets.fetch_add(1, Ordering::AcqRel);
        entries.remove(token_hash);
    }

    /// Logouts may have been missed: nothing is answered from the cache
    /// until the store is asked again.
    pub fn forget_all(&self) {
        let mut entries = self.entries.lock().expect("session cache lock");
        self.forgets.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("session cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes the tokens logged out on any instance (the bus's logouts) from
/// `cache`, until the bus stops; when some were missed, all of them.
pub async fn forget_logouts(
    cache: Arc<SessionCache>,
    mut logouts: tokio::sync::broadcast::Receiver<String>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match logouts.recv().await {
            Ok(hash) => cache.forget(&hash),
            Err(RecvError::Lagged(_)) => cache.forget_all(),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Keyed state tables are pruned when they grow past this many keys (and
/// every minute by [`crate::maintenance`]).
const MAX_KEYS: usize = 100_000;

/// A GCRA rate limit per key (governor): `n` a period with bursts of
/// `burst`, state pruned once a key is back to a full burst.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
    /// When the table was last pruned because it was full (ms since start).
    pruned_at_ms: AtomicU64,
    start: Instant,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(quota: Quota) -> Self {
        Keyed {
            limiter: governor::RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            pruned_at_ms: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// Takes one from `key`'s allowance, or says how many seconds until
    /// there is one (at least a second). A table past [`MAX_KEYS`] is pruned
    /// first (at most once a second); if every key in it is still in use, a
    /// new key is let through uncounted rather than stored.
    fn check(&self, key: &K) -> Result<(), u64> {
        if self.limiter.len() >= MAX_KEYS {
            let now_ms = self.start.elapsed().as_millis() as u64;
            let last = self.pruned_at_ms.load(Ordering::Relaxed);
            if now_ms >= last + 1000
                && self
                    .pruned_at_ms
                    .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.prune();
            }
            if self.limiter.len() >= MAX_KEYS {
                return Ok(());
            }
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }

    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// The per-user request rate limit of the contract (`RATE_LIMIT_PER_USER`):
/// HTTP requests and WebSocket submits of a user alike. Keys are user ids of
/// authenticated callers only.
pub struct RateLimiter {
    keyed: Option<Keyed<String>>,
}

impl RateLimiter {
    /// `per_second` a second per key, bursts of `burst`; 0 turns it off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let keyed = NonZeroU32::new(per_second).map(|n| {
            let burst = NonZeroU32::new(burst).unwrap_or(n);
            Keyed::new(Quota::per_second(n).allow_burst(burst))
        });
        RateLimiter { keyed }
    }

    /// Takes a token, or says how many seconds until one is there.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        match &self.keyed {
            Some(k) => k.check(&key.to_owned()),
            None => Ok(()),
        }
    }

    /// Forgets keys whose allowance is full again (they are the same as new ones).
    pub fn prune(&self) {
        if let Some(k) = &self.keyed {
            k.prune();
        }
    }

    /// Keys in the table.
    pub fn len(&self) -> usize {
        self.keyed.as_ref().map_or(0, Keyed::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a client address is counted as: the address itself for IPv4, its
/// /64 network for IPv6 (one host usually has a whole /64, so counting single
/// IPv6 addresses would let one client use millions of keys).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// A flood limit per client address (sign-ups, sign-in attempts): `n` a
/// minute, bursts of as many; 0 turns it off.
pub struct AddressLimiter {
    keyed: Option<Keyed<IpAddr>>,
}

impl AddressLimiter {
    pub fn per_minute(n: u32) -> Self {
        AddressLimiter {
            keyed: NonZeroU32::new(n).map(|n| Keyed::new(Quota::per_minute(n))),
        }
    }

    /// Takes one from the address's allowance, or the seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        match &self.keyed {
            Some(k) => k.check(&address_key(ip)),
            None => Ok(()),
        }
    }

    pub fn prune(&self) {
        if let Some(k) = &self.keyed {
            k.prune();
        }
    }

    pub fn len(&self) -> usize {
        self.keyed.as_ref().map_or(0, Keyed::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Failed sign-ins per (user id, client address): at most [`Self::MAX`] a
/// minute (a bucket of 10 that refills one every 6 s). The user id is kept
/// only as 128 bits of its SHA-256, so a key costs the same whatever the
/// client sent; the table holds at most [`MAX_KEYS`] keys and forgets a key
/// once its bucket is full again.
///
/// Hand-written rather than governor: a sign-in must ask "is this pair
/// locked?" before verifying the password and count only failures after,
/// and governor has no check that does not also count.
pub struct SignInLimiter {
    failures: Mutex<HashMap<([u8; 16], IpAddr), Bucket>>,
}

/// Failures still counted (fractional: it drains at `MAX` a minute) as of `at`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn level_at(&self, now: Instant) -> f64 {
        let drained = now.duration_since(self.at).as_secs_f64() * SignInLimiter::per_second();
        (self.level - drained).max(0.0)
    }
}

impl SignInLimiter {
    pub const MAX: u32 = 10;
    pub const WINDOW: Duration = Duration::from_secs(60);

    fn per_second() -> f64 {
        f64::from(Self::MAX) / Self::WINDOW.as_secs_f64()
    }

    pub fn new() -> Self {
        SignInLimiter {
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(user: &str, ip: IpAddr) -> ([u8; 16], IpAddr) {
        let digest = Sha256::digest(user.as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&digest[..16]);
        (k, address_key(ip))
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<([u8; 16], IpAddr), Bucket>> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds to wait when the pair has used up its failures.
    pub fn blocked(&self, user: &str, ip: IpAddr) -> Option<u64> {
        let key = Self::key(user, ip);
        let now = Instant::now();
        let level = self.table().get(&key)?.level_at(now);
        let max = f64::from(Self::MAX);
        (level > max - 1.0).then(|| {
            let wait = (level - (max - 1.0)) / Self::per_second();
            wait.ceil().max(1.0) as u64
        })
    }

    /// Counts a failure of the pair.
    pub fn failed(&self, user: &str, ip: IpAddr) {
        let key = Self::key(user, ip);
        let now = Instant::now();
        let mut table = self.table();
        if table.len() >= MAX_KEYS && !table.contains_key(&key) {
            prune_buckets(&mut table, now);
            if table.len() >= MAX_KEYS {
                // Failures are bounded by the hashing pool (a failure costs a
                // hash), so this takes a flood from thousands of addresses:
                // the new pair goes uncounted rather than the table growing.
                tracing::warn!("failed sign-in table full; a failure is not counted");
                return;
            }
        }
        let b = table.entry(key).or_insert(Bucket {
            level: 0.0,
            at: now,
        });
        b.level = b.level_at(now) + 1.0;
        b.at = now;
    }

    /// Forgets pairs whose failures have all drained.
    pub fn prune(&self) {
        let mut table = self.table();
        prune_buckets(&mut table, Instant::now());
        table.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn prune_buckets(table: &mut HashMap<([u8; 16], IpAddr), Bucket>, now: Instant) {
    table.retain(|_, b| b.level_at(now) > 0.0);
}

impl Default for SignInLimiter {
    fn default() -> Self {
        Self::new()
    }
}

/// The answer when the password pool has no room: too many hashes wanted
/// at once (429 `rate_limited`, retry after a second).
#[derive(Debug, thiserror::Error)]
#[error("too many password checks at once")]
pub struct PoolBusy;

/// Where argon2 runs: `threads` OS threads of its own, fed by a queue of at
/// most `queue` jobs; when the queue is full callers are refused
/// ([`PoolBusy`]) instead of waiting without bound. A hash takes about
/// 19 MiB and a core for ~15 ms, so this bounds both the memory and the CPU
/// that sign-ups and sign-ins can take from everything else. Threads of
/// its own, not the blocking pool: on the blocking pool every thread that
/// once ran a hash kept 19 MiB in its malloc arena (measured: +450 MiB peak
/// RSS over 96 sign-ups even one hash at a time), and store calls never
/// wait behind hashes.
pub struct PasswordPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// A hash of a random password, verified against when a user id is
    /// unknown, so that an unknown id takes as long as a wrong password.
    dummy_hash: String,
}

/// A job gets its thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut Argon2Memory) + Send>;

impl PasswordPool {
    /// Starts the threads (they end when the pool is dropped) and computes
    /// the dummy hash (one argon2 run): call from a blocking context.
    pub fn new(threads: usize, queue: usize) -> Self {
        let (jobs, queued) = std::sync::mpsc::sync_channel::<Job>(queue);
        let queued = Arc::new(Mutex::new(queued));
        for i in 0..threads.max(1) {
            let queued = queued.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory = Argon2Memory::default();
                    loop {
                        let job = match queued.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        let mut random = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let dummy_hash =
            hash_password(&hex::encode(random)).expect("argon2 with default parameters hashes");
        PasswordPool { jobs, dummy_hash }
    }

    /// The pool's size for this machine: half the cores (at least one), so
    /// hashing never takes every core from the requests of others.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
    }

    /// Runs `f` on the pool, or refuses at once when the queue is full. A
    /// job whose caller has gone (the client closed the connection) is
    /// skipped when its turn comes.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Argon2Memory) -> T + Send + 'static,
    ) -> Result<T, PoolBusy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            if !tx.is_closed() {
                let _ = tx.send(f(memory));
            }
        });
        self.jobs.try_send(job).map_err(|_| PoolBusy)?;
        rx.await.map_err(|_| {
            tracing::error!("a password hashing job ended without an answer");
            PoolBusy
        })
    }

    /// A new password hash (argon2).
    pub async fn hash(
        &self,
        password: String,
    ) -> Result<Result<String, argon2::password_hash::Error>, PoolBusy> {
        self.run(move |memory| memory.hash(&password)).await
    }

    /// Whether `password` matches `stored`; when there is no stored hash
    /// (unknown user) the password is checked against the dummy hash, so
    /// both take the same time, and the answer is false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PoolBusy> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self
            .run(move |memory| memory.verify(&password, &hash))
            .await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    /// A session of `user` stored for `ms`, then found through `cache`.
    async fn signed_in(
        store: &EmbeddedStore,
        cache: &SessionCache,
        user: &str,
        ms: i64,
    ) -> (String, String) {
        let (token, hash) = new_token();
        store.put_session(&hash, user, now_ms() + ms).await.unwrap();
        let who = cache
            .authenticate(store, Some(token.clone()))
            .await
            .unwrap();
        assert_eq!(who.user, user);
        (token, hash)
    }

    #[tokio::test]
    async fn a_cached_session_ends_with_a_logout_its_expiry_or_its_freshness() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let cache = SessionCache::new(Duration::from_millis(300));
        let (token, hash) = signed_in(&store, &cache, "alice", 60_000).await;
        assert_eq!(cache.len(), 1);
        // Deleted in the store: the cache still answers while fresh...
        store.delete_session(&hash).await.unwrap();
        assert!(cache
            .authenticate(&store, Some(token.clone()))
            .await
            .is_ok());
        // ...but not once this instance's logout forgot it.
        cache.forget(&hash);
        assert!(matches!(
            cache.authenticate(&store, Some(token)).await,
            Err(AuthError::Unauthorized)
        ));
        // Another instance's logout missed: not past `fresh_for`.
        let (token, hash) = signed_in(&store, &cache, "bob", 60_000).await;
        store.delete_session(&hash).await.unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(cache.authenticate(&store, Some(token)).await.is_err());
        // An expired session is never answered from the cache.
        let (token, _) = signed_in(&store, &cache, "carol", 200).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(cache.authenticate(&store, Some(token)).await.is_err());
        // Unknown tokens are not kept.
        cache.forget_all();
        for _ in 0..100 {
            let _ = cache.authenticate(&store, Some(new_token().0)).await;
        }
        assert!(cache.is_empty());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ten_failures_lock_the_pair_and_only_that_pair() {
        let l = SignInLimiter::new();
        for _ in 0..SignInLimiter::MAX {
            assert_eq!(l.blocked("alice", ip("10.0.0.1")), None);
            l.failed("alice", ip("10.0.0.1"));
        }
        let wait = l.blocked("alice", ip("10.0.0.1")).expect("locked");
        assert!((1..=6).contains(&wait), "{wait}");
        assert_eq!(l.blocked("bob", ip("10.0.0.1")), None);
        assert_eq!(l.blocked("alice", ip("10.0.0.2")), None);
    }

    #[test]
    fn the_failed_sign_in_table_is_bounded_whatever_the_ids() {
        let l = SignInLimiter::new();
        let huge = "x".repeat(60_000);
        for i in 0..MAX_KEYS + 100 {
            // the id is kept as 16 bytes of its hash, not as sent
            let id = if i < 10 {
                format!("{huge}{i}")
            } else {
                i.to_string()
            };
            l.failed(&id, ip("10.0.0.1"));
        }
        assert_eq!(l.len(), MAX_KEYS);
        // counted pairs stay counted
        for _ in 1..SignInLimiter::MAX {
            l.failed(&format!("{huge}3"), ip("10.0.0.1"));
        }
        assert!(l.blocked(&format!("{huge}3"), ip("10.0.0.1")).is_some());
    }

    #[test]
    fn ipv6_clients_count_by_their_64_network() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        let l = AddressLimiter::per_minute(2);
        assert!(l.check(ip("2001:db8::1")).is_ok());
        assert!(l.check(ip("2001:db8::2")).is_ok());
        assert!(l.check(ip("2001:db8::3")).unwrap_err() >= 1);
        assert!(l.check(ip("10.0.0.1")).is_ok());
        assert!(AddressLimiter::per_minute(0).check(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn the_per_user_limit_allows_bursts_of_five_seconds_worth() {
        let l = RateLimiter::new(2, 10);
        for _ in 0..10 {
            assert_eq!(l.check("alice"), Ok(()));
        }
        assert_eq!(l.check("alice"), Err(1));
        assert_eq!(l.check("bob"), Ok(()));
        let off = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert_eq!(off.check("alice"), Ok(()));
        }
        assert!(off.is_empty());
    }

    #[tokio::test]
    async fn a_full_password_queue_refuses_at_once() {
        let pool = Arc::new(PasswordPool::new(1, 1));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        // one job running (held), one queued: the third is refused
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move |_| {
                    started_tx.send(()).unwrap();
                    let _ = release_rx.recv();
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        // polled once: its job is queued, the answer awaited
        let mut queued = Box::pin(pool.run(|_| 7));
        tokio::select! {
            biased;
            _ = &mut queued => panic!("the queued job ran while the pool was busy"),
            () = std::future::ready(()) => {}
        }
        assert!(matches!(pool.run(|_| 0).await, Err(PoolBusy)));
        release_tx.send(()).unwrap();
        assert!(running.await.unwrap().is_ok());
        assert_eq!(queued.await.unwrap(), 7);
    }

    #[test]
    fn hashes_on_reused_memory_are_argon2s_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = Argon2Memory::default();
        // ours verify with the argon2 crate, and the crate's with ours
        let ours = memory.hash("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(memory.verify("battery staple", &theirs));
        assert!(!memory.verify("battery stapler", &theirs));
        assert!(memory.verify("correct horse", &ours));
        assert!(!memory.verify("correct horse", "not a hash"));
        // other parameters (argon2i, less memory) verify too, on the same memory
        let other = Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 3, 1, None).unwrap(),
        )
        .hash_password(b"x-password", &salt)
        .unwrap()
        .to_string();
        assert!(memory.verify("x-password", &other));
        assert!(!memory.verify("y-password", &other));
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let pool = PasswordPool::new(1, 4);
        let stored = hash_password("correct horse").unwrap();
        assert!(pool
            .verify("correct horse".into(), Some(stored.clone()))
            .await
            .unwrap());
        assert!(!pool.verify("wrong".into(), Some(stored)).await.unwrap());
        assert!(!pool.verify("correct horse".into(), None).await.unwrap());
    }
}
