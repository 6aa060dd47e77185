//! The durable retry policy (pure): the configured schedule with ± jitter, a floor after 429s and
//! timeouts, `Retry-After` honoured (clamped), then dead.

use crate::providers::ProviderError;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    /// ± this fraction (0.2 = 20 %).
    pub jitter: f64,
    pub min_throttle_delay: Duration,
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn from_settings(s: &crate::config::SyncSettings) -> Self {
        Self {
            schedule: s.schedule(),
            jitter: f64::from(s.jitter_percent) / 100.0,
            min_throttle_delay: Duration::from_secs(s.min_throttle_delay_secs),
            max_retry_after: Duration::from_secs(s.max_retry_after_secs),
        }
    }

    /// How many attempts a mark gets in all.
    pub fn max_attempts(&self) -> usize {
        self.schedule.len() + 1
    }

    /// The wait after failed attempt number `failed` (1-based), or `None` when it was the last.
    /// `unit` in [0, 1) picks the jitter (pass a random number; tests pass fixed ones).
    pub fn next_delay(&self, failed: u32, err: &ProviderError, unit: f64) -> Option<Duration> {
        let base = *self.schedule.get(failed.checked_sub(1)? as usize)?;
        let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let mut d = base.mul_f64(factor.max(0.0));
        if err.is_throttle() {
            d = d.max(self.min_throttle_delay);
        }
        if let Some(ra) = err.retry_after() {
            d = d.max(ra.min(self.max_retry_after));
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: [5, 30, 120]
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter: 0.2,
            min_throttle_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(600),
        }
    }

    fn server() -> ProviderError {
        ProviderError::Transient {
            provider: "Stripe",
            status: Some(500),
            detail: String::new(),
        }
    }

    fn throttled(ra: Option<u64>) -> ProviderError {
        ProviderError::RateLimited {
            provider: "Stripe",
            retry_after: ra.map(Duration::from_secs),
            detail: String::new(),
        }
    }

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let p = policy();
        assert_eq!(
            p.next_delay(1, &server(), 0.5),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            p.next_delay(2, &server(), 0.5),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            p.next_delay(3, &server(), 0.5),
            Some(Duration::from_secs(120))
        );
        assert_eq!(p.next_delay(4, &server(), 0.5), None);
        assert_eq!(p.next_delay(0, &server(), 0.5), None);
        assert_eq!(p.max_attempts(), 4);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let p = policy();
        assert_eq!(
            p.next_delay(2, &server(), 0.0),
            Some(Duration::from_secs(24))
        );
        assert_eq!(
            p.next_delay(2, &server(), 1.0),
            Some(Duration::from_secs(36))
        );
        for i in 0..100 {
            let d = p.next_delay(2, &server(), f64::from(i) / 100.0).unwrap();
            assert!(
                d >= Duration::from_secs(24) && d <= Duration::from_secs(36),
                "{d:?}"
            );
        }
    }

    #[test]
    fn throttles_wait_at_least_the_floor_and_honour_retry_after_clamped() {
        let p = policy();
        assert_eq!(
            p.next_delay(1, &throttled(None), 0.5),
            Some(Duration::from_secs(60))
        );
        let timeout = ProviderError::Timeout {
            provider: "Stripe",
            detail: String::new(),
        };
        assert_eq!(
            p.next_delay(1, &timeout, 0.5),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p.next_delay(3, &throttled(Some(10)), 0.5),
            Some(Duration::from_secs(120)),
            "schedule wins when longer"
        );
        assert_eq!(
            p.next_delay(1, &throttled(Some(300)), 0.5),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            p.next_delay(1, &throttled(Some(100_000)), 0.5),
            Some(Duration::from_secs(600)),
            "clamped"
        );
    }
}
