//! The providers a coupon can sync to.

/// `sync.provider` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    Stripe,
    Shopify,
    WooCommerce,
    Paddle,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] =
        [Self::Stripe, Self::Shopify, Self::WooCommerce, Self::Paddle];

    /// Exact, lowercase (B21).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Shopify => "shopify",
            Self::WooCommerce => "woocommerce",
            Self::Paddle => "paddle",
        }
    }

    /// The name used in sync messages.
    pub fn display(self) -> &'static str {
        match self {
            Self::Stripe => "Stripe",
            Self::Shopify => "Shopify",
            Self::WooCommerce => "WooCommerce",
            Self::Paddle => "Paddle",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact() {
        assert_eq!(
            ProviderKind::parse("woocommerce"),
            Some(ProviderKind::WooCommerce)
        );
        assert_eq!(ProviderKind::parse("Stripe"), None);
        assert_eq!(ProviderKind::parse("paypal"), None);
        for p in ProviderKind::ALL {
            assert_eq!(ProviderKind::parse(p.as_str()), Some(p));
        }
    }
}
