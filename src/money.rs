//! Money as integer micro-units.
//!
//! Every price, floor, budget and spend in Bullseye is a [`Micros`]: an `i64`
//! count of millionths of a currency unit. Floats appear only at the OpenRTB
//! wire boundary (`bidfloor`, `price`), where they are converted once, here.
//! Currency conversion goes through [`FxTable`], whose rates are micro-units
//! too, with explicit rounding direction.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// Millionths of a currency unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub i64);

/// One currency unit in micros.
pub const ONE: i64 = 1_000_000;

/// Why a money amount could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    /// Not a decimal number.
    #[error("not a decimal amount: {0:?}")]
    Syntax(String),
    /// More digits after the point than micro-units hold.
    #[error("more than 6 decimal places: {0:?}")]
    TooPrecise(String),
    /// Too large for an `i64` of micros.
    #[error("amount out of range: {0:?}")]
    Range(String),
    /// Negative where only amounts of zero or more make sense.
    #[error("amount must not be negative: {0:?}")]
    Negative(String),
}

impl Micros {
    /// No money.
    pub const ZERO: Micros = Micros(0);

    /// Parses a decimal string such as `"2.50"` exactly (no float involved).
    pub fn parse_decimal(text: &str) -> Result<Micros, MoneyError> {
        let err = || MoneyError::Syntax(text.to_string());
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(err());
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if frac.len() > 6 {
            return Err(MoneyError::TooPrecise(text.to_string()));
        }
        let range = || MoneyError::Range(text.to_string());
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| range())?
        };
        let frac_micros: i64 = format!("{frac:0<6}").parse().map_err(|_| err())?;
        let value = whole
            .checked_mul(ONE)
            .and_then(|w| w.checked_add(frac_micros))
            .ok_or_else(range)?;
        Ok(Micros(if negative { -value } else { value }))
    }

    /// Parses a non-negative decimal amount.
    pub fn parse_amount(text: &str) -> Result<Micros, MoneyError> {
        let value = Micros::parse_decimal(text)?;
        if value.0 < 0 {
            return Err(MoneyError::Negative(text.to_string()));
        }
        Ok(value)
    }

    /// Converts an OpenRTB wire price (a JSON float, CPM) to micros, rounding
    /// to the nearest micro. `None` for NaN, infinities and negative values.
    pub fn from_wire(price: f64) -> Option<Micros> {
        if !price.is_finite() || !(0.0..=1e12).contains(&price) {
            return None;
        }
        Some(Micros((price * ONE as f64).round() as i64))
    }

    /// The wire form of this amount (a JSON number). Exact: `i / 1e6` is
    /// correctly rounded, and the shortest round-trip print of it is the
    /// decimal we meant.
    pub fn to_wire(self) -> f64 {
        self.0 as f64 / ONE as f64
    }

    /// Sum, held at `i64::MAX` micros instead of overflowing.
    pub fn saturating_add(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }

    /// Difference, held at the `i64` bounds instead of overflowing (it may be negative).
    pub fn saturating_sub(self, other: Micros) -> Micros {
        Micros(self.0.saturating_sub(other.0))
    }

    /// `self × numerator / denominator`, rounded down, in 128-bit arithmetic.
    pub fn mul_div_floor(self, numerator: i64, denominator: i64) -> Micros {
        debug_assert!(denominator > 0);
        let product = self.0 as i128 * numerator as i128;
        Micros(
            product
                .div_euclid(denominator as i128)
                .clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        )
    }

    /// `self × numerator / denominator`, rounded up, in 128-bit arithmetic.
    pub fn mul_div_ceil(self, numerator: i64, denominator: i64) -> Micros {
        debug_assert!(denominator > 0);
        let product = self.0 as i128 * numerator as i128;
        let d = denominator as i128;
        let q = product.div_euclid(d) + i128::from(product.rem_euclid(d) != 0);
        Micros(q.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

impl fmt::Display for Micros {
    /// Prints as a decimal with the trailing zeros of the fraction removed
    /// (`2500000` → `2.5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, frac) = (abs / ONE as u64, abs % ONE as u64);
        if frac == 0 {
            return write!(f, "{sign}{whole}");
        }
        let frac = format!("{frac:06}");
        write!(f, "{sign}{whole}.{}", frac.trim_end_matches('0'))
    }
}

/// Accepts `"2.50"` (preferred) or a TOML/JSON number such as `2.5`.
impl<'de> Deserialize<'de> for Micros {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Int(i) => i.to_string(),
            // Shortest round-trip print of the float: `2.5`, `0.1`.
            Raw::Float(x) => x.to_string(),
        };
        Micros::parse_amount(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Micros {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A three-letter ISO-4217 currency code, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollar, the OpenRTB default currency.
    pub const USD: Currency = Currency(*b"USD");

    /// Upper-cases and checks the code's shape (three ASCII letters).
    pub fn parse(code: &str) -> Option<Currency> {
        let bytes = code.trim().as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        Some(Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// The three upper-case letters.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exchange rates into the bidder's base currency: `rate[c]` is the value of
/// one unit of `c` in base-currency micros.
#[derive(Clone, Debug)]
pub struct FxTable {
    base: Currency,
    rates: Vec<(Currency, Micros)>,
}

impl FxTable {
    /// A table over `base` with `rates`: the value of one unit of each currency in base micros.
    pub fn new(base: Currency, rates: Vec<(Currency, Micros)>) -> FxTable {
        FxTable { base, rates }
    }

    /// The bidder's base currency, in which budgets, bids and spend are kept.
    pub fn base(&self) -> Currency {
        self.base
    }

    fn rate(&self, currency: Currency) -> Option<i64> {
        if currency == self.base {
            return Some(ONE);
        }
        self.rates.iter().find(|(c, _)| *c == currency).map(|(_, r)| r.0)
    }

    /// True when amounts in `currency` can be converted (the base or a listed rate).
    pub fn knows(&self, currency: Currency) -> bool {
        self.rate(currency).is_some()
    }

    /// Converts a floor into base currency, rounding up so that a converted
    /// floor is never under-estimated.
    pub fn floor_to_base(&self, amount: Micros, from: Currency) -> Option<Micros> {
        let rate = self.rate(from)?;
        Some(amount.mul_div_ceil(rate, ONE))
    }

    /// Converts a base-currency bid into `to`, rounding down so that a bid
    /// never exceeds the value it was priced at.
    pub fn bid_from_base(&self, amount: Micros, to: Currency) -> Option<Micros> {
        let rate = self.rate(to)?;
        (rate > 0).then(|| amount.mul_div_floor(ONE, rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!(Micros::parse_decimal("2.50"), Ok(Micros(2_500_000)));
        assert_eq!(Micros::parse_decimal("0.000001"), Ok(Micros(1)));
        assert_eq!(Micros::parse_decimal("12"), Ok(Micros(12_000_000)));
        assert_eq!(Micros::parse_decimal(".5"), Ok(Micros(500_000)));
        assert_eq!(Micros::parse_decimal("-1.5"), Ok(Micros(-1_500_000)));
        assert!(matches!(
            Micros::parse_decimal("1.0000001"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(Micros::parse_decimal("1e3"), Err(MoneyError::Syntax(_))));
        assert!(matches!(Micros::parse_decimal(""), Err(MoneyError::Syntax(_))));
        assert!(matches!(Micros::parse_decimal("."), Err(MoneyError::Syntax(_))));
        assert!(matches!(
            Micros::parse_decimal("99999999999999999"),
            Err(MoneyError::Range(_))
        ));
        assert!(matches!(Micros::parse_amount("-1"), Err(MoneyError::Negative(_))));
    }

    #[test]
    fn displays_without_trailing_zeros() {
        assert_eq!(Micros(2_500_000).to_string(), "2.5");
        assert_eq!(Micros(3_000_000).to_string(), "3");
        assert_eq!(Micros(1).to_string(), "0.000001");
        assert_eq!(Micros(-1_250_000).to_string(), "-1.25");
    }

    #[test]
    fn wire_round_trip_is_exact() {
        for micros in [1, 30_000, 2_345_678, 1_000_000_000, 999_999] {
            let wire = Micros(micros).to_wire();
            assert_eq!(Micros::from_wire(wire), Some(Micros(micros)));
        }
        assert_eq!(Micros::from_wire(0.03), Some(Micros(30_000)));
        assert_eq!(Micros::from_wire(f64::NAN), None);
        assert_eq!(Micros::from_wire(-0.5), None);
        assert_eq!(Micros(2_345_678).to_wire().to_string(), "2.345678");
    }

    #[test]
    fn fx_rounds_floors_up_and_bids_down() {
        let eur = Currency::parse("eur").unwrap();
        let fx = FxTable::new(Currency::USD, vec![(eur, Micros(1_080_000))]);
        assert_eq!(fx.floor_to_base(Micros(1_000_001), eur), Some(Micros(1_080_002)));
        assert_eq!(fx.bid_from_base(Micros(1_080_002), eur), Some(Micros(1_000_001)));
        assert_eq!(fx.floor_to_base(Micros(5), Currency::parse("JPY").unwrap()), None);
    }
}
