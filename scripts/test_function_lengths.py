"""The function-length check's Rust reader over crafted sources."""

import os
import tempfile
import unittest

from function_lengths import rust_functions

SOURCE = '''\
/// A doc comment with a brace { that is not code.
fn first(
    a: u8,
) -> u8 {
    let text = "a } in a string";
    let raw = r#"and { in a raw one"#;
    let c = '}';
    /* a block comment { */
    fn inner() {}
    a
}

pub trait Port {
    fn declared(&self);
}

impl Port for () {
    fn declared(&self) {
        if true {
        }
    }
}

#[cfg(test)]
mod tests {
    fn helper() {
        let _ = 1;
    }
}
'''


class RustFunctions(unittest.TestCase):
    def test_functions_are_measured_from_their_name_to_their_closing_brace(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "lib.rs")
            with open(path, "w") as source:
                source.write(SOURCE)
            found = sorted((name, start, lines) for lines, start, name in rust_functions(path))
        # `inner` is part of `first`; `declared` in the trait has no body; `helper` is test code.
        self.assertEqual(found, [("declared", 18, 4), ("first", 2, 10)])


if __name__ == "__main__":
    unittest.main()
