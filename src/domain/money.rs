//! Discounts: exact decimals held as integer hundredths, never `f64`.

use rust_decimal::Decimal;
use serde_json::Value;

/// `percent` or `static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountKind {
    Percent,
    Static,
}

impl DiscountKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "percent" => Some(Self::Percent),
            "static" => Some(Self::Static),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Percent => "percent",
            Self::Static => "static",
        }
    }
}

/// Largest `static` amount, in major units (Stripe's `amount_off` fits 8 digits of minor units).
pub const MAX_STATIC_HUNDREDTHS: i64 = 9_999_999_999;

/// A discount: percent in hundredths of a percent (basis points), or a fixed amount in
/// hundredths of the program currency's major unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discount {
    kind: DiscountKind,
    hundredths: i64,
}

/// Why a discount amount was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscountError {
    NotPositive,
    TooManyDecimals,
    PercentOver100,
    TooLarge,
}

impl Discount {
    pub fn new(kind: DiscountKind, amount: Decimal) -> Result<Self, DiscountError> {
        if amount <= Decimal::ZERO {
            return Err(DiscountError::NotPositive);
        }
        let normalized = amount.normalize();
        if normalized.scale() > 2 {
            return Err(DiscountError::TooManyDecimals);
        }
        let hundredths = (normalized * Decimal::ONE_HUNDRED).trunc();
        let hundredths: i64 = i64::try_from(hundredths).map_err(|_| DiscountError::TooLarge)?;
        match kind {
            DiscountKind::Percent if hundredths > 10_000 => Err(DiscountError::PercentOver100),
            DiscountKind::Static if hundredths > MAX_STATIC_HUNDREDTHS => {
                Err(DiscountError::TooLarge)
            }
            _ => Ok(Self { kind, hundredths }),
        }
    }

    /// From the stored representation.
    pub fn from_parts(kind: DiscountKind, hundredths: i64) -> Self {
        Self { kind, hundredths }
    }

    pub fn kind(&self) -> DiscountKind {
        self.kind
    }

    pub fn hundredths(&self) -> i64 {
        self.hundredths
    }

    pub fn amount(&self) -> Decimal {
        Decimal::new(self.hundredths, 2).normalize()
    }

    /// The amount as JSON: an integer when integral (`25`), else the shortest decimal (`12.5`).
    pub fn amount_json(&self) -> Value {
        decimal_json(self.amount())
    }

    /// A fixed amount in the minor units of a currency with `exponent` decimals,
    /// or `None` when the amount has more precision than the currency (e.g. 0.5 JPY).
    pub fn minor_units(&self, exponent: u32) -> Option<i64> {
        match exponent {
            2 => Some(self.hundredths),
            e if e > 2 => self.hundredths.checked_mul(10i64.checked_pow(e - 2)?),
            e => {
                let div = 10i64.pow(2 - e);
                (self.hundredths % div == 0).then(|| self.hundredths / div)
            }
        }
    }
}

/// A decimal as a JSON number: integral values as integers, others as the shortest float form.
pub fn decimal_json(d: Decimal) -> Value {
    let d = d.normalize();
    if d.scale() == 0
        && let Ok(i) = i64::try_from(d)
    {
        return Value::from(i);
    }
    d.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// ISO 4217 minor-unit exponent of the currencies a program may use.
pub fn currency_exponent(code: &str) -> Option<u32> {
    const ZERO: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
        "XAF", "XOF", "XPF",
    ];
    const THREE: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(if ZERO.contains(&code) {
        0
    } else if THREE.contains(&code) {
        3
    } else {
        2
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn percent_bounds() {
        assert!(Discount::new(DiscountKind::Percent, d("100")).is_ok());
        assert_eq!(
            Discount::new(DiscountKind::Percent, d("100.01")),
            Err(DiscountError::PercentOver100)
        );
        assert_eq!(
            Discount::new(DiscountKind::Percent, d("0")),
            Err(DiscountError::NotPositive)
        );
        assert_eq!(
            Discount::new(DiscountKind::Percent, d("-5")),
            Err(DiscountError::NotPositive)
        );
        assert_eq!(
            Discount::new(DiscountKind::Percent, d("12.345")),
            Err(DiscountError::TooManyDecimals)
        );
        assert_eq!(
            Discount::new(DiscountKind::Percent, d("12.50"))
                .unwrap()
                .hundredths(),
            1250
        );
    }

    #[test]
    fn static_bounds_and_minor_units() {
        let x = Discount::new(DiscountKind::Static, d("19.99")).unwrap();
        assert_eq!(x.minor_units(2), Some(1999));
        assert_eq!(x.minor_units(0), None);
        assert_eq!(x.minor_units(3), Some(19990));
        let y = Discount::new(DiscountKind::Static, d("500")).unwrap();
        assert_eq!(y.minor_units(0), Some(500));
        assert_eq!(
            Discount::new(DiscountKind::Static, d("1e20")),
            Err(DiscountError::TooLarge)
        );
        assert_eq!(
            Discount::new(DiscountKind::Static, d("100000000")),
            Err(DiscountError::TooLarge)
        );
    }

    #[test]
    fn json_amounts_are_integers_when_integral() {
        let x = Discount::new(DiscountKind::Percent, d("25.00")).unwrap();
        assert_eq!(x.amount_json().to_string(), "25");
        let y = Discount::new(DiscountKind::Percent, d("12.5")).unwrap();
        assert_eq!(y.amount_json().to_string(), "12.5");
    }

    #[test]
    fn currency_exponents() {
        assert_eq!(currency_exponent("USD"), Some(2));
        assert_eq!(currency_exponent("JPY"), Some(0));
        assert_eq!(currency_exponent("KWD"), Some(3));
        assert_eq!(currency_exponent("usd"), None);
    }
}
