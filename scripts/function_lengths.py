"""Lists the longest functions outside tests and fails when one is longer than the limit.

Rust functions are measured from the line that names them to their closing brace, read with a
small lexer that skips comments, strings and character literals; code under `#[cfg(test)]` or
`#[test]`, in `tests/` directories and in `testing.rs` modules is left out. Python functions of
scripts/ (not its test_*.py) are measured with the ast module.

    python3 scripts/function_lengths.py [--limit 80] [--show 10]
"""

import argparse
import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FN = re.compile(r"\bfn\s+(\w+)")
RAW_STRING = re.compile(r'r(#*)"')
CHAR = re.compile(r"'(\\.|[^\\'])'")


class Lexer:
    """Removes comments and literals from Rust source, line by line, keeping the braces."""

    def __init__(self):
        self.block_comment = 0
        self.string = False
        self.raw_end = None

    def code(self, line):
        out, i = [], 0
        while i < len(line):
            if self.raw_end is not None:
                end = line.find(self.raw_end, i)
                if end < 0:
                    return "".join(out)
                i, self.raw_end = end + len(self.raw_end), None
            elif self.block_comment:
                if line.startswith("*/", i):
                    self.block_comment -= 1
                    i += 2
                elif line.startswith("/*", i):
                    self.block_comment += 1
                    i += 2
                else:
                    i += 1
            elif self.string:
                if line[i] == "\\":
                    i += 2
                    continue
                self.string = line[i] != '"'
                i += 1
            elif line.startswith("//", i):
                break
            elif line.startswith("/*", i):
                self.block_comment, i = 1, i + 2
            elif (raw := RAW_STRING.match(line, i)) and (i == 0 or not line[i - 1].isalnum()):
                self.raw_end, i = '"' + raw.group(1), raw.end()
            elif line[i] == '"':
                self.string, i = True, i + 1
            elif char := CHAR.match(line, i):
                i = char.end()
            else:
                out.append(line[i])
                i += 1
        return "".join(out)


def rust_functions(path):
    """(lines, first line, name) of every outermost function outside test code."""
    lexer, found = Lexer(), []
    depth, open_blocks, pending_fn, test_depth, test_next = 0, [], None, None, False
    with open(path, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            code = lexer.code(line)
            if "#[cfg(test)]" in code or "#[test]" in code:
                test_next = True
            for i, ch in enumerate(code):
                named = FN.match(code, i) if i == 0 or not (code[i - 1].isalnum() or code[i - 1] == "_") else None
                if named:
                    pending_fn = (named.group(1), number)
                if ch == ";":
                    pending_fn = None
                elif ch == "{":
                    depth += 1
                    if test_next and test_depth is None:
                        test_depth, test_next = depth, False
                    inside_fn = any(block[2] for block in open_blocks)
                    name, start = pending_fn if pending_fn else (None, number)
                    open_blocks.append((depth, start, None if inside_fn else name, pending_fn is not None))
                    pending_fn = None
                elif ch == "}":
                    if open_blocks and open_blocks[-1][0] == depth:
                        _, start, name, _ = open_blocks.pop()
                        if name and test_depth is None:
                            found.append((number - start + 1, start, name))
                    if test_depth == depth:
                        test_depth = None
                    depth -= 1
    return found


def python_functions(path):
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    return [(node.end_lineno - node.lineno + 1, node.lineno, node.name) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def measured_files():
    tracked = subprocess.run(["git", "ls-files", "*.rs", "scripts/*.py"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    for path in tracked:
        parts = path.split("/")
        if "tests" in parts[:-1] or parts[-1] in ("testing.rs",) or parts[-1].startswith("test_"):
            continue
        yield path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("--show", type=int, default=10)
    args = parser.parse_args()
    functions = []
    for path in measured_files():
        measure = python_functions if path.endswith(".py") else rust_functions
        functions += [(lines, path, start, name) for lines, start, name in measure(os.path.join(ROOT, path))]
    functions.sort(reverse=True)
    print(f"the longest of {len(functions)} functions outside tests:")
    for lines, path, start, name in functions[:args.show]:
        print(f"  {lines:4d}  {path}:{start} {name}")
    over = [f for f in functions if f[0] > args.limit]
    for lines, path, start, name in over:
        print(f"FAIL {path}:{start} {name} is {lines} lines, over {args.limit}")
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
