//! Numbers for reading: money with its currency and thousands separators,
//! counts, percentages. Display only: amounts stay integer micros until
//! they are formatted here.

use crate::money::{Micros, ONE};

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    group(&n.to_string())
}

fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An amount, thousands grouped: from one unit up, rounded to two
/// decimals for reading (`1,234.50`; the ledger keeps every micro); below
/// one unit, as many decimals as it has, up to six (a CPM of `0.0035`
/// stays readable).
pub fn amount(micros: Micros) -> String {
    let sign = if micros.0 < 0 { "-" } else { "" };
    let abs = micros.0.unsigned_abs();
    if abs >= ONE as u64 {
        let cents = (abs + 5_000) / 10_000;
        return format!("{sign}{}.{:02}", count(cents / 100), cents % 100);
    }
    let mut decimals = format!("{abs:06}");
    while decimals.len() > 2 && decimals.ends_with('0') {
        decimals.pop();
    }
    format!("{sign}0.{decimals}")
}

/// Money in `currency`: `$1,234.50`, `€12.00`, `£3.10`, `¥1,200.00`, or
/// `1,234.50 CHF` for a currency without a well-known sign.
pub fn money(micros: Micros, currency: &str) -> String {
    let symbol = match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" | "CNY" => "¥",
        "INR" => "₹",
        _ => return format!("{} {currency}", amount(micros)),
    };
    let text = amount(micros);
    match text.strip_prefix('-') {
        Some(positive) => format!("-{symbol}{positive}"),
        None => format!("{symbol}{text}"),
    }
}

/// `part / whole` as a percentage with two decimals, or `—` without a
/// whole.
pub fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 || !part.is_finite() {
        return "—".into();
    }
    format!("{:.2}%", 100.0 * part / whole)
}

/// `micros / n` as money, or `—` when `n` is 0 (an eCPC without clicks).
pub fn per(micros: Micros, n: u64, currency: &str) -> String {
    if n == 0 {
        return "—".into();
    }
    money(Micros(micros.0 / n as i64), currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_money_has_its_sign() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(money(Micros(1_234_500_000), "USD"), "$1,234.50");
        assert_eq!(money(Micros(3_500), "USD"), "$0.0035");
        assert_eq!(money(Micros(-2_000_000), "EUR"), "-€2.00");
        assert_eq!(
            money(Micros(88_712_076), "USD"),
            "$88.71",
            "rounded to cents from one unit up"
        );
        assert_eq!(money(Micros(1_999_995_000), "USD"), "$2,000.00");
        assert_eq!(money(Micros(7_500), "USD"), "$0.0075");
        assert_eq!(money(Micros(12_000_000), "CHF"), "12.00 CHF");
        assert_eq!(percent(1.0, 3.0), "33.33%");
        assert_eq!(percent(1.0, 0.0), "—");
        assert_eq!(per(Micros(10_000_000), 4, "USD"), "$2.50");
        assert_eq!(per(Micros(10_000_000), 0, "USD"), "—");
    }
}
