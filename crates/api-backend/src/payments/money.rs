//! Money in one place. Amounts are held as integers in the currency's minor unit, with ISO 4217's exponent
//! for each currency (JPY 500 is 500, KWD 1.250 is 1250, USD 49.99 is 4999); HighLevel's props, queryUrl
//! bodies and records carry decimal major units, and every conversion between the two happens here.

use crate::error::ApiError;
use iso_currency::Currency;

/// The largest amount accepted in major units (a guard against nonsense, not a business rule).
const MAX_MAJOR: f64 = 100_000_000.0;

/// An ISO 4217 currency that has a minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cur {
    pub currency: Currency,
    pub exponent: u32,
}

impl Cur {
    /// The upper-case ISO code (`USD`).
    pub fn code(&self) -> &'static str {
        self.currency.code()
    }
}

/// A currency from its ISO 4217 code (any letter case); a 422 problem for anything else.
pub fn currency(code: &str) -> Result<Cur, ApiError> {
    let upper = code.trim().to_ascii_uppercase();
    let currency = Currency::from_code(&upper).ok_or_else(|| {
        ApiError::Validation(format!(
            "`currency` `{}` is not an ISO 4217 currency code",
            code.chars().take(10).collect::<String>()
        ))
    })?;
    let exponent = currency.exponent().ok_or_else(|| {
        ApiError::Validation(format!("`{upper}` has no minor unit and cannot be charged"))
    })?;
    Ok(Cur {
        currency,
        exponent: u32::from(exponent),
    })
}

/// A decimal amount in major units (`49.99`) in minor units of `cur`. Refuses non-positive amounts and more
/// decimals than the currency has (`1.5` JPY).
pub fn to_minor(major: f64, cur: Cur) -> Result<i64, ApiError> {
    if !major.is_finite() || major <= 0.0 || major > MAX_MAJOR {
        return Err(ApiError::Validation(format!(
            "`amount` must be a positive number in major units of {} (at most {MAX_MAJOR})",
            cur.code()
        )));
    }
    let scaled = major * 10f64.powi(cur.exponent as i32);
    let minor = scaled.round();
    // Binary floating point: 49.99 × 100 is 4998.999…; anything further off has more decimals than allowed.
    if (scaled - minor).abs() > 1e-6 * scaled.max(1.0) {
        return Err(ApiError::Validation(format!(
            "`amount` {major} has more decimals than {} allows ({})",
            cur.code(),
            cur.exponent
        )));
    }
    Ok(minor as i64)
}

/// Minor units as the decimal major-unit number HighLevel's JSON carries.
pub fn to_major(minor: i64, cur: Cur) -> f64 {
    minor as f64 / 10f64.powi(cur.exponent as i32)
}

/// Minor units of the currency with this code as a major-unit number; a stored code is always valid, an
/// unknown one (never written by this service) falls back to two decimals.
pub fn major_of(minor: i64, code: &str) -> f64 {
    match currency(code) {
        Ok(c) => to_major(minor, c),
        Err(_) => minor as f64 / 100.0,
    }
}

/// Minor units as a fixed-point text in major units (`49.99`, `500`, `1.250`), for gateways that want text.
pub fn major_text(minor: i64, cur: Cur) -> String {
    format!("{:.*}", cur.exponent as usize, to_major(minor, cur))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_4217_exponents() {
        let (usd, jpy, kwd) = (
            currency("usd").unwrap(),
            currency("JPY").unwrap(),
            currency("KWD").unwrap(),
        );
        assert_eq!(to_minor(49.99, usd).unwrap(), 4999);
        assert_eq!(to_minor(500.0, jpy).unwrap(), 500);
        assert_eq!(to_minor(1.25, kwd).unwrap(), 1250);
        assert_eq!(to_minor(0.1 + 0.2, usd).unwrap(), 30);
        assert_eq!(to_major(4999, usd), 49.99);
        assert_eq!(major_text(1250, kwd), "1.250");
        assert_eq!(major_text(500, jpy), "500");
        assert_eq!(major_text(4999, usd), "49.99");
    }

    #[test]
    fn bad_amounts_and_codes_are_refused() {
        let (usd, jpy) = (currency("USD").unwrap(), currency("JPY").unwrap());
        assert!(to_minor(1.5, jpy).is_err(), "JPY has no decimals");
        assert!(to_minor(1.001, usd).is_err());
        assert!(to_minor(0.0, usd).is_err());
        assert!(to_minor(-1.0, usd).is_err());
        assert!(to_minor(f64::NAN, usd).is_err());
        assert!(currency("XYZ").is_err());
        assert!(currency("US").is_err());
        assert!(currency("").is_err());
        assert!(currency("XAU").is_err(), "gold has no minor unit");
    }
}
