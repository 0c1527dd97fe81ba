//! Ids from callers (paths, queries, bodies): HighLevel's ids and ours are short and alphanumeric; anything
//! else is refused before it can reach a URL, the database or a log line.

/// Whether `id` is 1-64 letters, digits, `-` or `_`.
pub fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
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
}
