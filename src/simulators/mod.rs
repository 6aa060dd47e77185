//! In-process provider simulators for `--demo` and for tests: stateful HTTP servers that enforce
//! what the real providers enforce (see `../shared/providers/*.md`), with fault injection.

pub mod paddle_billing;
pub mod paddle_classic;
pub mod shopify;
pub mod stripe;
pub mod woocommerce;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response, StatusCode};
use rand::Rng;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Faults a simulator injects, settable while it runs.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fraction of requests answered 429.
    pub rate_429: f64,
    /// `Retry-After` seconds on injected 429s (`None`: no header, as Stripe).
    pub retry_after_secs: Option<u64>,
    /// Share of injected 429s that carry the `Retry-After` (0 is read as all of them).
    pub retry_after_share: f64,
    /// Fraction of requests answered 500 (after executing: replayed for the same idempotency key).
    pub rate_500: f64,
    /// Fraction of requests whose connection is dropped after executing.
    pub drop_rate: f64,
    /// Added to every answer.
    pub latency: Duration,
}

/// One request as the simulator received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
    pub status: u16,
}

/// What every simulator shares: faults, a request log, an enforced rate limit, a Retry-After check.
#[derive(Default)]
pub struct Common {
    pub faults: Mutex<Faults>,
    pub log: Mutex<Vec<Recorded>>,
    limit: Mutex<Option<Bucket>>,
    /// After a 429 with Retry-After: (when it was sent, until when no request is due).
    blocked_until: Mutex<Option<(Instant, Instant)>>,
    /// Requests that arrived before a Retry-After had elapsed.
    pub retry_after_violations: Mutex<u64>,
    /// 429s caused by exceeding the enforced rate (not injected).
    pub rate_violations: Mutex<u64>,
    /// Requests received, whether or not the log keeps them.
    received: std::sync::atomic::AtomicU64,
    /// Count requests without logging them (benchmarks of hundreds of thousands of requests).
    count_only: std::sync::atomic::AtomicBool,
}

struct Bucket {
    capacity: f64,
    tokens: f64,
    per_sec: f64,
    last: Instant,
}

/// Requests arriving this soon after a 429 was sent were in flight already.
const RETRY_AFTER_GRACE: Duration = Duration::from_millis(100);

/// What the fault dice decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    TooMany,
    ServerError,
    Drop,
}

impl Common {
    /// Enforces `per_sec` requests per second with a bucket of `burst`.
    pub fn enforce_rate(&self, per_sec: f64, burst: f64) {
        *self.limit.lock().unwrap() = Some(Bucket {
            capacity: burst,
            tokens: burst,
            per_sec,
            last: Instant::now(),
        });
    }

    pub fn set_faults(&self, f: Faults) {
        *self.faults.lock().unwrap() = f;
    }

    /// Rate limit and injected 429s, checked before a request executes.
    pub fn admit(&self) -> Result<(), Option<u64>> {
        let now = Instant::now();
        {
            let mut b = self.blocked_until.lock().unwrap();
            if let Some((sent, until)) = *b {
                // requests already on their way when the 429 left cannot have known (grace)
                if now < until && now.duration_since(sent) > RETRY_AFTER_GRACE {
                    *self.retry_after_violations.lock().unwrap() += 1;
                } else if now >= until {
                    *b = None;
                }
            }
        }
        if let Some(bucket) = self.limit.lock().unwrap().as_mut() {
            bucket.tokens = (bucket.tokens
                + now.duration_since(bucket.last).as_secs_f64() * bucket.per_sec)
                .min(bucket.capacity);
            bucket.last = now;
            if bucket.tokens < 1.0 {
                *self.rate_violations.lock().unwrap() += 1;
                return Err(Some(1));
            }
            bucket.tokens -= 1.0;
        }
        let f = self.faults.lock().unwrap().clone();
        if f.rate_429 > 0.0 && rand::rng().random_bool(f.rate_429.min(1.0)) {
            let share = if f.retry_after_share > 0.0 {
                f.retry_after_share.min(1.0)
            } else {
                1.0
            };
            let retry_after = f
                .retry_after_secs
                .filter(|_| rand::rng().random_bool(share));
            if let Some(s) = retry_after {
                *self.blocked_until.lock().unwrap() = Some((now, now + Duration::from_secs(s)));
            }
            return Err(retry_after);
        }
        Ok(())
    }

    /// Failures injected after a request executed.
    pub fn after_effects(&self) -> Fault {
        let f = self.faults.lock().unwrap().clone();
        let mut rng = rand::rng();
        if f.rate_500 > 0.0 && rng.random_bool(f.rate_500.min(1.0)) {
            return Fault::ServerError;
        }
        if f.drop_rate > 0.0 && rng.random_bool(f.drop_rate.min(1.0)) {
            return Fault::Drop;
        }
        Fault::None
    }

    pub async fn delay(&self) {
        let d = self.faults.lock().unwrap().latency;
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    pub fn record(&self, r: Recorded) {
        use std::sync::atomic::Ordering::Relaxed;
        self.received.fetch_add(1, Relaxed);
        if !self.count_only.load(Relaxed) {
            self.log.lock().unwrap().push(r);
        }
    }

    /// From now on, requests are counted but not logged.
    pub fn count_only(&self) {
        self.count_only
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests received since the simulator started, logged or not.
    pub fn received(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }
}

/// A response whose body fails mid-way: the client sees a dropped connection.
pub fn dropped() -> Response<Body> {
    let stream = futures_util::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from_stream(stream))
        .expect("response")
}

/// Binds a simulator router on 127.0.0.1 (port 0 unless given) and serves it in the background.
pub async fn serve(router: axum::Router, port: u16) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}
