//! What a visitor types into the search box, as a full-text query over ticket titles.

/// The most characters a search may have.
pub const MAX_SEARCH_CHARS: usize = 200;

/// The FTS5 query matching titles that hold every word of `text` (letters and digits, any
/// case, accents ignored) as a whole word. `None` when `text` holds no word. Every word is
/// quoted, so nothing typed is FTS5 syntax.
///
/// Whole words, not prefixes: FTS5 reads a word's matches newest first and stops at the page's
/// end, where a prefix (`"conc"*`) makes it gather every match first, which costs ten times as
/// much for a word in a third of 100,000 titles (`scripts/bench-client`).
pub fn search_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| format!("\"{}\"", word.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_quoted_terms_and_syntax_is_dropped() {
        assert_eq!(
            search_query("Jazz Night").as_deref(),
            Some("\"jazz\" \"night\"")
        );
        assert_eq!(
            search_query("  AC/DC  \"live\" OR NOT*").as_deref(),
            Some("\"ac\" \"dc\" \"live\" \"or\" \"not\"")
        );
        assert_eq!(
            search_query("Été 2026").as_deref(),
            Some("\"été\" \"2026\"")
        );
        for empty in ["", "   ", "\"*()^-"] {
            assert_eq!(search_query(empty), None, "{empty:?}");
        }
    }
}
