//! Ids from callers (paths, queries, bodies): HighLevel's ids and ours are short and alphanumeric; anything
//! else is refused before it can reach a URL, the database or a log line.

/// Whether `id` is 1-64 letters, digits, `-` or `_`.
pub fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|c| ID_BYTE[usize::from(c)])
}

/// The bytes an id may hold, as a table: a lookup a byte instead of four comparisons (ids are checked several
/// times on every token read).
const ID_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        c += 1;
    }
    table
};

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
    fn the_table_holds_exactly_letters_digits_dash_and_underscore() {
        for c in 0..=255u8 {
            let allowed = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
            assert_eq!(ID_BYTE[usize::from(c)], allowed, "byte {c}");
        }
        assert!(!is_id("é"));
    }
}
