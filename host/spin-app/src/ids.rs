//! Spin's identifier rules (`spin-serde`'s `Id<DELIM, LOWER>`): words separated by one
//! delimiter, each starting with an ASCII letter, alphanumeric, and each word either all
//! lower-case or all upper-case (only lower-case when `lower_only`).

/// Checks `id` against Spin's identifier grammar; the error text explains the first violation.
pub(crate) fn check_id(id: &str, delimiter: char, lower_only: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".to_string());
    }
    for word in id.split(delimiter) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delimiter:?}-separated words must not be empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "{delimiter:?}-separated words must start with an ASCII letter; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delimiter:?}-separated words may only contain alphanumeric ASCII; got {ch:?}"
                ));
            }
            if ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delimiter:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower_only && upper {
            return Err(format!(
                "Lower-case identifiers must be all lowercase; got {id:?}"
            ));
        }
    }
    Ok(())
}

/// `[component.<id>]` keys.
pub(crate) fn check_kebab(id: &str) -> Result<(), String> {
    check_id(id, '-', false)
}

/// `[variables]` and `[component.x.variables]` keys (`LowerSnakeId`).
pub(crate) fn check_lower_snake(id: &str) -> Result<(), String> {
    check_id(id, '_', true)
}

/// `key_value_stores` / `sqlite_databases` labels accept either kebab-case or snake_case.
pub(crate) fn check_store_label(label: &str) -> Result<(), String> {
    if check_id(label, '-', false).is_ok() || check_id(label, '_', false).is_ok() {
        Ok(())
    } else {
        Err("expected kebab-case or snake_case".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_ids_follow_spin_word_rules() {
        for ok in ["auth", "my-app", "a1-b2", "HTTP-handler", "x"] {
            assert!(check_kebab(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "", "my_app", "-a", "a-", "a--b", "1a", "Auth", "a-B2c", "a.b", "a b",
        ] {
            assert!(check_kebab(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn lower_snake_names_require_each_word_to_start_with_a_letter() {
        for ok in ["api_v2", "secret_thing", "x", "a1"] {
            assert!(check_lower_snake(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["item_2", "API", "a__b", "_a", "a_", "a-b", "Api_v2"] {
            assert!(check_lower_snake(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn store_labels_may_be_kebab_or_snake_case() {
        for ok in ["default", "my-store", "my_store"] {
            assert!(check_store_label(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["my store", "9lives", "a-b_c"] {
            assert!(check_store_label(bad).is_err(), "{bad} should be invalid");
        }
    }
}
