//! Provider adapters: one error type that decides retry / permanent / credentials, the shared
//! HTTP transport, and one adapter per provider (pure mapping + HTTP client).

pub mod http;
pub mod paddle_billing;
pub mod paddle_classic;
pub mod shopify;
pub mod stripe;
pub mod terms;
pub mod woocommerce;

use crate::domain::ProviderKind;
use crate::store::outbox::{DesiredState, Link, LinkJournal};
use std::time::Duration;

/// How the sync engine must treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later (429, 408, 409, 5xx, transport, timeouts).
    Retryable,
    /// Will not succeed as it is (validation, a refusal).
    Permanent,
    /// The provider rejected our credentials (401/403): the connection is unhealthy.
    Credentials,
}

/// A provider call that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// 429 (or a provider-specific throttle answer).
    #[error("{provider} answered 429 ({detail})")]
    RateLimited {
        provider: &'static str,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// No answer in time.
    #[error("{provider} did not answer in time ({detail})")]
    Timeout {
        provider: &'static str,
        detail: String,
    },
    /// A failure worth retrying: 5xx, 408, 409, a dropped connection.
    #[error("{provider} answered {} ({detail})", status.map(|s| s.to_string()).unwrap_or_else(|| "with a transport error".into()))]
    Transient {
        provider: &'static str,
        status: Option<u16>,
        detail: String,
    },
    /// 401/403.
    #[error("{provider} rejected the credentials ({status}: {detail})")]
    Credentials {
        provider: &'static str,
        status: u16,
        detail: String,
    },
    /// A 4xx that will not change on retry. `code` is the provider's machine-readable code and
    /// `param` the parameter it names, when it gave them.
    #[error("{provider} refused the request ({status} {}: {detail})", code.as_deref().unwrap_or("error"))]
    Rejected {
        provider: &'static str,
        status: u16,
        code: Option<String>,
        param: Option<String>,
        detail: String,
    },
    /// The provider cannot hold a field of the coupon: names the field, the value and the limit.
    #[error("{0}")]
    Refused(String),
}

impl ProviderError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::RateLimited { .. } | Self::Timeout { .. } | Self::Transient { .. } => {
                ErrorClass::Retryable
            }
            Self::Credentials { .. } => ErrorClass::Credentials,
            Self::Rejected { .. } | Self::Refused(_) => ErrorClass::Permanent,
        }
    }

    /// 429s and timeouts wait at least the configured minimum.
    pub fn is_throttle(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Timeout { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The provider's machine-readable error code, when it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Rejected { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The parameter a rejection names.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::Rejected { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } | Self::Credentials { status, .. } => Some(*status),
            Self::Transient { status, .. } => *status,
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Short form for retry messages: `Stripe answered 429`.
    pub fn short(&self) -> String {
        match self {
            Self::RateLimited { provider, .. } => format!("{provider} answered 429"),
            Self::Timeout { provider, .. } => format!("{provider} did not answer in time"),
            // a frozen or locked shop: say so, the merchant has to act
            Self::Transient {
                provider,
                status: Some(s @ (402 | 423)),
                detail,
            } => format!("{provider} answered {s}: {detail}"),
            Self::Transient {
                provider,
                status: Some(s),
                ..
            } => format!("{provider} answered {s}"),
            Self::Transient {
                provider,
                status: None,
                detail,
            } => format!("{provider} could not be reached ({detail})"),
            other => other.to_string(),
        }
    }
}

/// What a successful push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushNote {
    /// The provider object of the coupon was created by this push.
    pub created: bool,
    /// Why objects were replaced instead of edited in place.
    pub replaced: Option<String>,
    /// The coupon was retired at the provider (deleted coupon).
    pub retired: bool,
}

/// Everything an adapter needs to push one coupon.
pub struct PushInput<'a> {
    pub program: &'a str,
    pub currency: &'a str,
    pub desired: &'a DesiredState,
    /// Attempt number at this revision (1-based).
    pub attempt: i64,
    /// The claim this attempt holds: unique per attempt, stable within it (idempotency keys).
    pub claim_token: &'a str,
    pub now: chrono::DateTime<chrono::Utc>,
    /// Where the adapter records its links before and after side effects.
    pub journal: &'a LinkJournal,
}

impl PushInput<'_> {
    /// Records the links now; a lost claim or a store failure stops the push (retried later).
    pub async fn record(
        &self,
        links: &[Link],
        provider: &'static str,
    ) -> Result<(), ProviderError> {
        match self.journal.save(links).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ProviderError::Transient {
                provider,
                status: None,
                detail: "the claim on this sync was lost".into(),
            }),
            Err(e) => Err(ProviderError::Transient {
                provider,
                status: None,
                detail: format!("recording progress failed: {e}"),
            }),
        }
    }
}

/// The adapters, dispatched by provider.
pub enum Adapter {
    Stripe(Box<stripe::StripeClient>),
    Shopify(Box<shopify::ShopifyClient>),
    WooCommerce(Box<woocommerce::WooClient>),
    PaddleBilling(Box<paddle_billing::PaddleBillingClient>),
    PaddleClassic(Box<paddle_classic::PaddleClassicClient>),
    /// A provider whose adapter this build does not have yet.
    Unsupported(ProviderKind),
}

impl Adapter {
    pub fn transport(&self) -> Option<&http::Transport> {
        match self {
            Adapter::Stripe(c) => Some(c.transport()),
            Adapter::Shopify(c) => Some(c.transport()),
            Adapter::WooCommerce(c) => Some(c.transport()),
            Adapter::PaddleBilling(c) => Some(c.transport()),
            Adapter::PaddleClassic(c) => Some(c.transport()),
            Adapter::Unsupported(_) => None,
        }
    }

    /// Makes the provider hold `input.desired`. `links` are the objects we know of; they are
    /// updated as calls succeed, so a failure part-way keeps what was done.
    pub async fn push(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<PushNote, ProviderError> {
        match self {
            Adapter::Stripe(c) => c.push(input, links).await,
            Adapter::Shopify(c) => c.push(input, links).await,
            Adapter::WooCommerce(c) => c.push(input, links).await,
            Adapter::PaddleBilling(c) => c.push(input, links).await,
            Adapter::PaddleClassic(c) => c.push(input, links).await,
            Adapter::Unsupported(p) => Err(ProviderError::Refused(format!(
                "coupond cannot sync to {} yet: this build has no {} adapter",
                p.display(),
                p.display()
            ))),
        }
    }
}
