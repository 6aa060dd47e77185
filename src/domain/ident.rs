//! Identifiers clients choose: `uuid_code` and promotion `code`.

use rand::Rng;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Why an identifier was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentError {
    Charset,
    TooLong(usize),
}

fn check(s: &str, max: usize) -> Result<(), IdentError> {
    if s.len() > max {
        return Err(IdentError::TooLong(max));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdentError::Charset);
    }
    Ok(())
}

macro_rules! ident {
    ($name:ident, $max:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: &str) -> Result<Self, IdentError> {
                check(s, Self::MAX_LEN).map(|_| Self(s.to_owned()))
            }

            /// 8 characters from `[A-Z0-9]`; the caller retries on collision.
            pub fn generate() -> Self {
                let mut rng = rand::rng();
                Self(
                    (0..8)
                        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                        .collect(),
                )
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

ident!(
    CouponCode,
    255,
    "A coupon's `uuid_code`: `[A-Za-z0-9_-]`, at most 255 characters."
);
ident!(
    PromoCode,
    100,
    "A promotion `code`: `[A-Za-z0-9_-]`, at most 100 characters."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_and_length() {
        assert!(CouponCode::parse("coupon_123-A").is_ok());
        assert_eq!(CouponCode::parse("has space"), Err(IdentError::Charset));
        assert_eq!(
            CouponCode::parse("é"),
            Err(IdentError::TooLong(255)).or(Err(IdentError::Charset))
        );
        assert_eq!(
            CouponCode::parse("'; DROP TABLE coupons;--"),
            Err(IdentError::Charset)
        );
        assert_eq!(
            PromoCode::parse(&"A".repeat(101)),
            Err(IdentError::TooLong(100))
        );
        assert!(PromoCode::parse(&"A".repeat(100)).is_ok());
        assert_eq!(PromoCode::parse(""), Err(IdentError::Charset));
    }

    #[test]
    fn generated_codes_are_valid() {
        for _ in 0..100 {
            let c = PromoCode::generate();
            assert_eq!(c.as_str().len(), 8);
            assert!(PromoCode::parse(c.as_str()).is_ok());
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            );
        }
    }
}
