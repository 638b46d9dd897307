//! Housekeeping that keeps memory and the store bounded while the server
//! runs: prunes the keyed rate-limit tables (keys back at a full allowance
//! are forgotten) and purges expired sessions from the store, a bounded
//! number a run. One task, ended by the shutdown signal.

use crate::appender::STORE_TIMEOUT;
use crate::auth::{now_ms, AddressLimiter, RateLimiter, SignInLimiter};
use crate::metrics::Metrics;
use crate::store::AccountStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Expired sessions deleted by one purge at most; a full purge runs again
/// on the next tick.
pub const PURGE_BATCH: usize = 10_000;

/// The tables pruned, by the names of `chat_limiter_keys`.
pub struct Limiters {
    pub per_user: Arc<RateLimiter>,
    pub sign_ups: Arc<AddressLimiter>,
    pub sign_in_attempts: Arc<AddressLimiter>,
    pub failed_sign_ins: Arc<SignInLimiter>,
}

impl Limiters {
    fn prune(&self, metrics: &Metrics) {
        self.per_user.prune();
        self.sign_ups.prune();
        self.sign_in_attempts.prune();
        self.failed_sign_ins.prune();
        for (table, len) in [
            ("per_user", self.per_user.len()),
            ("sign_up_addresses", self.sign_ups.len()),
            ("sign_in_addresses", self.sign_in_attempts.len()),
            ("failed_sign_ins", self.failed_sign_ins.len()),
        ] {
            metrics
                .limiter_keys
                .with_label_values(&[table])
                .set(i64::try_from(len).unwrap_or(i64::MAX));
        }
    }
}

/// How often the task wakes, and how often it purges sessions: every
/// `SESSION_TTL` but at least every 60 s / 5 min, at most every second.
fn periods(session_ttl: Duration) -> (Duration, Duration) {
    let tick = session_ttl.clamp(Duration::from_secs(1), Duration::from_secs(60));
    let purge = session_ttl.clamp(Duration::from_secs(1), Duration::from_secs(300));
    (tick, purge)
}

/// Runs until `shutting_down` turns true (or its sender is gone).
pub async fn run(
    limiters: Limiters,
    accounts: Arc<dyn AccountStore>,
    metrics: Arc<Metrics>,
    session_ttl: Duration,
    mut shutting_down: watch::Receiver<bool>,
) {
    let (tick, purge_every) = periods(session_ttl);
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_purge = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutting_down.wait_for(|s| *s) => return,
        }
        limiters.prune(&metrics);
        if Instant::now() < next_purge {
            continue;
        }
        let purged = tokio::time::timeout(
            STORE_TIMEOUT,
            accounts.purge_expired_sessions(now_ms(), PURGE_BATCH),
        )
        .await;
        match purged {
            Ok(Ok(n)) => {
                metrics.sessions_purged.inc_by(n as u64);
                // A full batch: more are waiting, purge again next tick.
                next_purge = if n >= PURGE_BATCH {
                    Instant::now()
                } else {
                    Instant::now() + purge_every
                };
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "purging expired sessions failed"),
            Err(_) => tracing::warn!("purging expired sessions timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purges_follow_the_session_ttl_within_bounds() {
        assert_eq!(
            periods(Duration::ZERO),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
        assert_eq!(
            periods(Duration::from_secs(90)),
            (Duration::from_secs(60), Duration::from_secs(90))
        );
        assert_eq!(
            periods(Duration::from_secs(30 * 24 * 3600)),
            (Duration::from_secs(60), Duration::from_secs(300))
        );
    }
}
