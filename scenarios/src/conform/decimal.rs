//! Exact conversion of decimal strings (`84907.12`) to integer minor units.

/// Parses an unsigned decimal with at most `decimals` fractional digits into
/// `value * 10^decimals`. No sign, exponent, or floating point.
pub fn parse_units(text: &str, decimals: u8) -> Result<u64, String> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(format!("`{text}` is not an unsigned decimal number"));
    }
    if frac.len() > usize::from(decimals) {
        return Err(format!("`{text}` has {} decimals, the asset allows {decimals}", frac.len()));
    }
    let overflow = || format!("`{text}` is too large for 64-bit minor units");
    let scale = 10u64.checked_pow(u32::from(decimals)).ok_or_else(overflow)?;
    let int: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| overflow())? };
    let frac_units: u64 = if frac.is_empty() {
        0
    } else {
        let pad = 10u64.pow((usize::from(decimals) - frac.len()) as u32);
        frac.parse::<u64>().map_err(|_| overflow())? * pad
    };
    int.checked_mul(scale).and_then(|v| v.checked_add(frac_units)).ok_or_else(overflow)
}

/// Parses an unsigned integer field.
pub fn parse_int<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not an unsigned integer"));
    }
    text.parse().map_err(|_| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_exactly() {
        assert_eq!(parse_units("84907.12", 2), Ok(8_490_712));
        assert_eq!(parse_units("0.390483", 8), Ok(39_048_300));
        assert_eq!(parse_units("12", 2), Ok(1200));
        assert_eq!(parse_units("0.1", 1), Ok(1));
        assert_eq!(parse_units(".5", 1), Ok(5));
        assert_eq!(parse_units("18446744073709551615", 0), Ok(u64::MAX));
    }

    #[test]
    fn refuses_what_is_not_exact() {
        assert!(parse_units("1.234", 2).unwrap_err().contains("3 decimals"));
        for bad in ["", ".", "-1", "1e5", "1.2.3", "abc", " 1", "1,5", "+1"] {
            assert!(parse_units(bad, 8).is_err(), "{bad:?} must be refused");
        }
        assert!(parse_units("18446744073709551616", 0).is_err());
        assert!(parse_units("184467440737.09551616", 8).is_err());
    }
}
