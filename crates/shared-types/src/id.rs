//! Ids from callers (paths, queries, bodies): HighLevel's ids and ours are short and alphanumeric; anything
//! else is refused before it can reach a URL, the database or a log line.

/// Whether `id` is 1-64 letters, digits, `-` or `_`.
pub fn is_id(id: &str) -> bool {
    // Every byte is looked at (no early exit), so the check runs on many bytes at once: ids are checked on
    // every token read.
    let id = id.as_bytes();
    !id.is_empty() && id.len() <= 64 && id.iter().fold(true, |ok, &c| ok & is_id_byte(c))
}

/// A letter, a digit, `-` or `_`, by comparisons that vectorise (a table lookup does not).
const fn is_id_byte(c: u8) -> bool {
    ((c | 0x20).wrapping_sub(b'a') < 26) | (c.wrapping_sub(b'0') < 10) | (c == b'-') | (c == b'_')
}

/// `Ok` for 1-64 letters, digits, `-` or `_`; otherwise a sentence naming `what` for a 4xx problem.
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    if !is_id(id) {
        return Err(format!(
            "{what} `{}` is not an id (1-64 letters, digits, `-` or `_`)",
            id.chars().take(70).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_they_reach_a_path() {
        assert!(check_id("product id", "64aBc_12-3").is_ok());
        for bad in ["", "../x", "..", "a b", "x?y", "a.b", &"a".repeat(65)] {
            assert!(check_id("product id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_id_byte_is_exactly_a_letter_digit_dash_or_underscore() {
        for c in 0..=255u8 {
            let allowed = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
            assert_eq!(is_id_byte(c), allowed, "byte {c}");
            // In every position of an id, including past the first 16 or 32 bytes.
            for at in [0, 15, 31, 40] {
                let mut id = vec![b'a'; 41];
                id[at] = c;
                if let Ok(id) = std::str::from_utf8(&id) {
                    assert_eq!(is_id(id), allowed, "byte {c} at {at}");
                }
            }
        }
        assert!(!is_id("é"));
    }
}
