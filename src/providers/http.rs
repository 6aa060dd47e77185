//! The shared HTTP transport of the adapters: one reqwest client, a token bucket per connection,
//! quick in-attempt retries of transport failures (backon), and per-connection call statistics.

use super::ProviderError;
use backon::{ExponentialBuilder, Retryable};
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The rate limit of one provider connection (or one base URL, for Paddle), and the pause a
/// `Retry-After` puts on everything that shares it.
///
/// Requests are released at evenly spaced slots, `period / count` apart, so no window ever holds
/// more than the rate allows. Each request reserves the next free slot when it asks and sleeps
/// until then: a sender that wakes a little late does not push the following slots back, so a
/// busy connection runs at the full rate; one woken later than half a slot (at least 5 ms) takes a
/// new slot, so senders held up by a stall are spaced again rather than sent together. (A
/// test-and-set bucket with a burst of one, as governor offers, loses every wake-up delay: 6 % of
/// the rate at 500 requests per second on 2 cores.)
pub struct Limiter {
    spacing: Duration,
    /// The earliest instant the next request may be sent.
    next_slot: Mutex<tokio::time::Instant>,
    per_second: f64,
    /// After a 429 with `Retry-After`, no request is sent before this instant.
    paused_until: Mutex<Option<Instant>>,
}

impl Limiter {
    /// `count` requests per `period`, evenly spaced.
    pub fn new(count: u32, period: Duration) -> Self {
        let count = count.max(1);
        Self {
            spacing: period / count,
            next_slot: Mutex::new(tokio::time::Instant::now()),
            per_second: f64::from(count) / period.as_secs_f64(),
            paused_until: Mutex::new(None),
        }
    }

    /// Pauses everything sharing this bucket until `until` (extends, never shortens).
    pub fn pause_until(&self, until: Instant) {
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        *p = Some(p.map_or(until, |x| x.max(until)));
    }

    /// How long the bucket stays paused, if it is.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = (*self.paused_until.lock().unwrap_or_else(|e| e.into_inner()))?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Waits for this request's slot. A sender woken more than a little late (the process was
    /// stalled) takes a fresh slot instead of going at once, so a stall never turns into a burst
    /// of the senders it held up.
    pub async fn ready(&self) {
        let late = (self.spacing / 2).max(Duration::from_millis(5));
        loop {
            let slot = {
                let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
                let slot = (*next).max(tokio::time::Instant::now());
                *next = slot + self.spacing;
                slot
            };
            tokio::time::sleep_until(slot).await;
            if tokio::time::Instant::now() <= slot + late {
                return;
            }
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }
}

/// What `/status` shows of a connection's calls.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CallStats {
    pub calls: u64,
    pub throttled_429: u64,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// A raw answer.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One provider connection's way to the network.
pub struct Transport {
    pub provider: &'static str,
    client: reqwest::Client,
    limiter: Arc<Limiter>,
    stats: Mutex<CallStats>,
    max_pause: Duration,
}

/// A pause shorter than this is waited out inside the call; a longer one fails the call fast.
const WAIT_OUT_PAUSE: Duration = Duration::from_secs(10);

/// Why a send did not produce an answer.
#[derive(Debug)]
enum SendError {
    Http(reqwest::Error),
    /// The connection is paused by a `Retry-After` for this much longer.
    Paused(Duration),
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

impl Transport {
    /// `max_pause` clamps how long a provider's `Retry-After` may pause this connection.
    pub fn new(
        provider: &'static str,
        client: reqwest::Client,
        limiter: Arc<Limiter>,
        max_pause: Duration,
    ) -> Self {
        Self {
            provider,
            client,
            limiter,
            stats: Mutex::new(CallStats::default()),
            max_pause,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    pub fn stats(&self) -> CallStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How long the connection stays paused by a `Retry-After` (its own, or one answered to a
    /// connection sharing its bucket), if it is.
    pub fn paused_for(&self) -> Option<Duration> {
        self.limiter.paused_for()
    }

    /// Waits for a token, then honours a pause: short ones are waited out (and a token taken
    /// again), long ones fail the call as throttled. Checked right before each send.
    async fn clearance(&self) -> Result<(), Duration> {
        loop {
            self.limiter.ready().await;
            match self.paused_for() {
                None => return Ok(()),
                Some(left) if left <= WAIT_OUT_PAUSE => tokio::time::sleep(left).await,
                Some(left) => return Err(left),
            }
        }
    }

    /// Sends one request (rebuilt by `make` for each try). Transport failures are retried a few
    /// times at once; every try waits for the token bucket. Any HTTP answer is returned as is.
    pub async fn send(
        &self,
        op: &'static str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        let started = Instant::now();
        let attempt = || async {
            self.clearance().await.map_err(SendError::Paused)?;
            let resp = make().send().await.map_err(SendError::Http)?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map_err(SendError::Http)?;
            Ok::<_, SendError>(Answer {
                status,
                headers,
                body,
            })
        };
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_delay(Duration::from_secs(1))
                    .with_max_times(3)
                    .with_jitter(),
            )
            .when(|e: &SendError| {
                matches!(e, SendError::Http(e) if e.is_connect() || e.is_request() || e.is_body() || e.is_decode())
            })
            .notify(|e, d| tracing::debug!(provider = self.provider, op, error = ?e, delay = ?d, "transport retry"))
            .await;
        let elapsed = started.elapsed();
        let now = crate::domain::time::format_ts(&chrono::Utc::now());
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.calls += 1;
        let outcome = match &result {
            Ok(a) if a.status == 429 => {
                stats.throttled_429 += 1;
                if let Some(ra) = retry_after(&a.headers) {
                    self.limiter
                        .pause_until(Instant::now() + ra.min(self.max_pause));
                }
                "throttled"
            }
            Ok(a) if a.status < 400 => {
                stats.last_success = Some(now.clone());
                "success"
            }
            Ok(a) => {
                stats.last_error = Some(format!("{op}: HTTP {}", a.status));
                stats.last_error_at = Some(now.clone());
                "error"
            }
            Err(SendError::Paused(_)) => "paused",
            Err(SendError::Http(e)) => {
                stats.last_error = Some(format!("{op}: {e}"));
                stats.last_error_at = Some(now.clone());
                "transport_error"
            }
        };
        drop(stats);
        metrics::counter!("coupond_provider_calls_total", "provider" => self.provider, "operation" => op, "outcome" => outcome).increment(1);
        metrics::histogram!("coupond_provider_call_seconds", "provider" => self.provider, "operation" => op).record(elapsed.as_secs_f64());
        if outcome == "throttled" {
            metrics::counter!("coupond_provider_429_total", "provider" => self.provider)
                .increment(1);
        }
        result.map_err(|e| match e {
            SendError::Paused(left) => ProviderError::RateLimited {
                provider: self.provider,
                retry_after: Some(left),
                detail: "paused by an earlier Retry-After".into(),
            },
            SendError::Http(e) if e.is_timeout() => ProviderError::Timeout {
                provider: self.provider,
                detail: e.to_string(),
            },
            SendError::Http(e) => ProviderError::Transient {
                provider: self.provider,
                status: None,
                detail: e.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn ra(v: &str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        retry_after(&h)
    }

    #[test]
    fn retry_after_parses_seconds_and_never_panics() {
        assert_eq!(ra("2"), Some(Duration::from_secs(2)));
        assert_eq!(ra("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(ra("1e20"), None);
        assert_eq!(ra("-3"), None);
        assert_eq!(ra("NaN"), None);
        assert_eq!(ra("soon"), None);
        assert!(ra("Wed, 21 Oct 2099 07:28:00 GMT").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_releases_evenly_spaced_slots_at_the_full_rate() {
        let limiter = Arc::new(Limiter::new(50, Duration::from_secs(1)));
        let t0 = tokio::time::Instant::now();
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let l = limiter.clone();
            senders.spawn(async move {
                l.ready().await;
                tokio::time::Instant::now()
            });
        }
        let mut sent = senders.join_all().await;
        sent.sort();
        // the first at once, then one every 20 ms: 100 requests in 1.98 s, never two closer
        assert_eq!(sent[0], t0);
        for pair in sent.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(20));
        }
        // idle: the next request is not held back by slots nobody used
        tokio::time::sleep(Duration::from_secs(5)).await;
        let asked = tokio::time::Instant::now();
        limiter.ready().await;
        assert_eq!(tokio::time::Instant::now(), asked);
    }
}
