//! Query strings: reading a parameter (percent-decoded, `+` as a space) and writing one.

/// The value of parameter `name` in `query` (without its `?`), decoded; the first one when it is
/// repeated. A value that does not decode to UTF-8 counts as absent.
pub fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| decode(value))
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None; // `from_str_radix` alone would take `%+5`
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `value` percent-encoded for a query string: everything but unreserved characters.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_and_the_first_one_counts() {
        let query = "q=rock+%26+roll&limit=5&q=second&e=%C3%A9t%C3%A9&bad=%ZZ&sign=%+5&flag";
        assert_eq!(param(query, "q").as_deref(), Some("rock & roll"));
        assert_eq!(param(query, "limit").as_deref(), Some("5"));
        assert_eq!(param(query, "e").as_deref(), Some("été"));
        assert_eq!(param(query, "bad"), None);
        assert_eq!(param(query, "sign"), None);
        assert_eq!(param(query, "flag").as_deref(), Some(""));
        assert_eq!(param(query, "missing"), None);
    }

    #[test]
    fn encoding_round_trips() {
        for value in ["rock & roll", "été", "a+b=c/d?", "plain-text_1.0~"] {
            let query = format!("q={}", encode(value));
            assert_eq!(param(&query, "q").as_deref(), Some(value), "{query}");
        }
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
