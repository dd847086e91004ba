//! A minimal `application/x-www-form-urlencoded` query parser, enough for the probe's parameters
//! (`?store=other`, `?url=http%3A%2F%2F...`). Malformed escapes are kept as written.

pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query: &str) -> Self {
        let pairs = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (decode(name), decode(value)),
                None => (decode(pair), String::new()),
            })
            .collect();
        Self { pairs }
    }

    /// The value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }
}

fn decode(text: &str) -> String {
    let input = text.as_bytes();
    let mut output = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => output.push(b' '),
            b'%' => {
                let escaped = input
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(byte) = escaped {
                    output.push(byte);
                    i += 2;
                } else {
                    output.push(b'%');
                }
            }
            byte => output.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&output).into_owned()
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn decodes_escapes_and_plus_signs() {
        let query = Query::parse("url=http%3A%2F%2F127.0.0.1%3A8080%2Fx&body=two+words&flag");
        assert_eq!(query.get("url"), Some("http://127.0.0.1:8080/x"));
        assert_eq!(query.get("body"), Some("two words"));
        assert_eq!(query.get("flag"), Some(""));
        assert_eq!(query.get("missing"), None);
    }

    #[test]
    fn keeps_malformed_escapes_as_written() {
        let query = Query::parse("a=100%&b=%zz&c=%4");
        assert_eq!(query.get("a"), Some("100%"));
        assert_eq!(query.get("b"), Some("%zz"));
        assert_eq!(query.get("c"), Some("%4"));
    }
}
