//! Spin variables, resolved as Spin resolves them.
//!
//! Application variables are declared in `[variables]`; components see only the names in their
//! own `[component.x.variables]`, whose values are [`Template`]s over application variables.
//! A [`Resolver`] answers an application variable from the first provider that has it:
//! `--variable` on the command line, then `SPIN_VARIABLE_<NAME>` in the environment, then the
//! same key in `.env` (only when the environment variable is absent), then the manifest default.
//! Values are looked up on every call; nothing is cached, exactly as Spin does.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::manifest::{AppVariable, Component, LoadError};

/// One piece of a template: literal text or a `{{ name }}` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Reference(String),
}

/// Literal text with `{{ app_var }}` references (whitespace inside the braces is trimmed; there
/// is no escaping). Parsing only checks that every `{{` is closed; whether the names exist is
/// checked against the application's variables when the manifest is loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Splits `s` into literal and reference parts. An unclosed `{{` is an error.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let Some((expr, after_close)) = after_open.split_once("}}") else {
                    return Err(format!("unclosed expression {rest:?}"));
                };
                parts.push(Part::Reference(expr.trim().to_string()));
                rest = after_close;
            } else if let Some(index) = rest.find("{{") {
                parts.push(Part::Literal(rest[..index].to_string()));
                rest = &rest[index..];
            } else {
                parts.push(Part::Literal(rest.to_string()));
                rest = "";
            }
        }
        Ok(Template {
            source: s.to_string(),
            parts,
        })
    }

    /// The names referenced by `{{ … }}` parts, in order of appearance.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Reference(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The template text as written in the manifest.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the template has no references, so its value is its text.
    pub fn is_literal(&self) -> bool {
        self.references().next().is_none()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Errors of the guest-facing `variables.get`; `Display` is the exact text Spin puts in the
/// corresponding `fermyon:spin/variables` error case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    Undefined(String),
    #[error("{0}")]
    Provider(String),
}

/// The runtime layer of name validation (`spin_expressions::Key`): a name passed to
/// `variables.get` must start with `a-z`, contain only `[a-z0-9_]`, end with a letter or digit,
/// and have no `__`. The message matches Spin's `invalid-name` text.
pub fn check_runtime_name(name: &str) -> Result<(), VariableError> {
    let reason = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {bad:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase ASCII letter".to_string())
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("must end with a lowercase ASCII letter or digit".to_string())
    } else if name.contains("__") {
        Some("must not contain multiple consecutive underscores".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(VariableError::InvalidName(format!("{name:?}: {reason}"))),
        None => Ok(()),
    }
}

/// The manifest layer of name validation (`LowerSnakeId`): words separated by single `_`, each
/// starting with a letter, only `[a-z0-9]`. Stricter than [`check_runtime_name`]: `item_2`
/// passes at runtime but fails to load.
pub fn check_manifest_name(name: &str) -> Result<(), String> {
    crate::ids::check_lower_snake(name)
}

/// The environment variable the built-in env provider reads for `name`.
pub fn env_key(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Environment lookup used by [`Resolver`]; injected so tests never touch the process env.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads the real process environment; for [`Resolver::new`] in the host (tests pass a map).
pub fn process_env() -> EnvLookup {
    Box::new(|key| std::env::var(key).ok())
}

/// Resolves application variables through Spin's provider chain.
pub struct Resolver {
    app_variables: BTreeMap<String, AppVariable>,
    cli: HashMap<String, String>,
    env: EnvLookup,
    dotenv: HashMap<String, String>,
}

impl fmt::Debug for Resolver {
    // Values may be secrets, so only the names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cli: Vec<&String> = self.cli.keys().collect();
        cli.sort();
        f.debug_struct("Resolver")
            .field(
                "app_variables",
                &self.app_variables.keys().collect::<Vec<_>>(),
            )
            .field("cli", &cli)
            .field("dotenv_entries", &self.dotenv.len())
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// `cli`: `--variable k=v` pairs in command-line order (a repeated key: the last wins).
    /// `env`: lookup of `SPIN_VARIABLE_<NAME>`. `dotenv`: the parsed `.env` of the working
    /// directory, keyed by full `SPIN_VARIABLE_…` names, consulted only when `env` has no value.
    pub fn new(
        app_variables: BTreeMap<String, AppVariable>,
        cli: Vec<(String, String)>,
        env: EnvLookup,
        dotenv: HashMap<String, String>,
    ) -> Resolver {
        Resolver {
            app_variables,
            cli: cli.into_iter().collect(),
            env,
            dotenv,
        }
    }

    /// Parses `.env` text: `KEY=VALUE` lines, blank lines and `#` comments skipped, an optional
    /// `export ` prefix, values optionally wrapped in single or double quotes (double quotes
    /// understand `\n`, `\t`, `\"` and `\\`), and ` #` starting a comment after an unquoted value.
    pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
        let mut entries = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if key.is_empty() {
                continue;
            }
            entries.insert(key.to_string(), dotenv_value(value.trim()));
        }
        entries
    }

    /// The value of application variable `name` from the first provider that has it, or `None`
    /// when no provider does (or `name` is not an application variable).
    pub fn app_value(&self, name: &str) -> Option<String> {
        let declared = self.app_variables.get(name)?;
        self.provided_value(name)
            .or_else(|| declared.default.clone())
    }

    /// Whether a provider other than the manifest default supplies `name`.
    pub fn is_provided(&self, name: &str) -> bool {
        self.provided_value(name).is_some()
    }

    fn provided_value(&self, name: &str) -> Option<String> {
        if let Some(value) = self.cli.get(name) {
            return Some(value.clone());
        }
        let key = env_key(name);
        // An environment variable set to "" still counts; `.env` is read only when it is absent.
        (self.env)(&key).or_else(|| self.dotenv.get(&key).cloned())
    }

    /// Adds or replaces a value with command-line precedence.
    pub fn set_override(&mut self, name: &str, value: String) {
        self.cli.insert(name.to_string(), value);
    }

    /// Spin's start-up check: every application variable without a default must be resolvable,
    /// whether or not a component uses it.
    pub fn check_required(&self) -> Result<(), LoadError> {
        let missing: Vec<&str> = self
            .app_variables
            .keys()
            .filter(|name| self.app_value(name).is_none())
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = missing.iter().map(|n| format!("Key({n:?})")).collect();
        let mut message = format!(
            "provider error: no provider resolved required variable(s): [{}]",
            keys.join(", ")
        );
        for name in &missing {
            let env = env_key(name);
            message.push_str(&format!(
                "\n  set {name:?} with the {env} environment variable, a {env}=... line in .env, or --variable {name}=<value>"
            ));
        }
        Err(LoadError::new(message))
    }

    /// Renders `t`, resolving each reference through the provider chain.
    pub fn render(&self, t: &Template) -> Result<String, VariableError> {
        let mut out = String::new();
        for part in &t.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Reference(name) => match self.app_value(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        return Err(VariableError::Provider(format!(
                            "no provider resolved variable {name:?}"
                        )));
                    }
                },
            }
        }
        Ok(out)
    }

    /// The guest-facing `variables.get`: validate the name, require it to be declared by this
    /// component (an application variable of the same name does not count), then render it.
    pub fn component_get(
        &self,
        component: &Component,
        name: &str,
    ) -> Result<String, VariableError> {
        check_runtime_name(name)?;
        let Some(template) = component.variables.get(name) else {
            return Err(VariableError::Undefined(format!(
                "no variable for {:?}.{:?}",
                component.id, name
            )));
        };
        self.render(template)
    }
}

fn dotenv_value(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('"')
        && let Some(end) = closing_quote(inner, '"')
    {
        let mut value = String::new();
        let mut chars = inner[..end].chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some(other) => value.push(other),
                None => value.push('\\'),
            }
        }
        return value;
    }
    if let Some(inner) = raw.strip_prefix('\'')
        && let Some(end) = inner.find('\'')
    {
        return inner[..end].to_string();
    }
    match raw.find(" #") {
        Some(index) => raw[..index].trim_end().to_string(),
        None => raw.to_string(),
    }
}

/// Index of the first unescaped `quote` in `s`.
fn closing_quote(s: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (index, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some(index);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(default: Option<&str>) -> AppVariable {
        AppVariable {
            default: default.map(str::to_string),
            required: default.is_none(),
            secret: false,
        }
    }

    fn resolver(
        vars: &[(&str, Option<&str>)],
        cli: &[(&str, &str)],
        env: &[(&str, &str)],
        dotenv: &str,
    ) -> Resolver {
        let app = vars.iter().map(|(n, d)| (n.to_string(), var(*d))).collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Resolver::new(
            app,
            cli.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            Box::new(move |k| env.get(k).cloned()),
            Resolver::parse_dotenv(dotenv),
        )
    }

    fn component(vars: &[(&str, &str)]) -> Component {
        Component {
            id: "auth".to_string(),
            source: "/app/auth.wasm".into(),
            files: vec![],
            exclude_files: vec![],
            environment: BTreeMap::new(),
            key_value_stores: vec![],
            sqlite_databases: vec![],
            allowed_outbound_hosts: vec![],
            variables: vars
                .iter()
                .map(|(k, v)| (k.to_string(), Template::parse(v).expect("valid template")))
                .collect(),
            build: None,
        }
    }

    #[test]
    fn templates_split_literals_and_trimmed_references() {
        let t = Template::parse("redis://{{ host }}:{{port}}/x").expect("parses");
        assert_eq!(t.references().collect::<Vec<_>>(), ["host", "port"]);
        assert!(!t.is_literal());
        assert_eq!(t.as_str(), "redis://{{ host }}:{{port}}/x");
        assert!(Template::parse("plain text").expect("parses").is_literal());
        assert!(Template::parse("").expect("parses").is_literal());
        assert!(Template::parse("a } b }}").expect("parses").is_literal());
    }

    #[test]
    fn an_unclosed_template_expression_is_rejected() {
        for bad in ["{{ x", "a {{ b } c", "{{"] {
            let err = Template::parse(bad).expect_err(bad);
            assert!(err.starts_with("unclosed expression"), "{err}");
        }
    }

    #[test]
    fn runtime_names_are_validated_with_spins_messages() {
        let cases = [
            ("api_key", None),
            ("item_2", None),
            ("a", None),
            (
                "BAD-NAME",
                Some(
                    "\"BAD-NAME\": invalid character 'B'. Variable names may contain only lower-case letters, numbers, and underscores.",
                ),
            ),
            ("", Some("\"\": must not be empty")),
            (
                "1abc",
                Some("\"1abc\": must start with a lowercase ASCII letter"),
            ),
            (
                "_abc",
                Some("\"_abc\": must start with a lowercase ASCII letter"),
            ),
            (
                "abc_",
                Some("\"abc_\": must end with a lowercase ASCII letter or digit"),
            ),
            (
                "a__b",
                Some("\"a__b\": must not contain multiple consecutive underscores"),
            ),
        ];
        for (name, expected) in cases {
            match (check_runtime_name(name), expected) {
                (Ok(()), None) => {}
                (Err(VariableError::InvalidName(msg)), Some(want)) => assert_eq!(msg, want),
                (other, want) => panic!("{name}: got {other:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn manifest_names_are_stricter_than_runtime_names() {
        assert!(check_manifest_name("api_v2").is_ok());
        assert!(check_manifest_name("item_2").is_err());
        assert!(check_runtime_name("item_2").is_ok());
    }

    #[test]
    fn providers_are_consulted_cli_then_env_then_dotenv_then_default() {
        let dotenv = "SPIN_VARIABLE_A=dot\nSPIN_VARIABLE_B=dot\nSPIN_VARIABLE_C=dot\n";
        let env = [("SPIN_VARIABLE_A", "env"), ("SPIN_VARIABLE_B", "env")];
        let vars = [
            ("a", Some("def")),
            ("b", Some("def")),
            ("c", Some("def")),
            ("d", Some("def")),
        ];
        let r = resolver(&vars, &[("a", "first"), ("a", "cli")], &env, dotenv);
        assert_eq!(r.app_value("a").as_deref(), Some("cli"));
        assert_eq!(r.app_value("b").as_deref(), Some("env"));
        assert_eq!(r.app_value("c").as_deref(), Some("dot"));
        assert_eq!(r.app_value("d").as_deref(), Some("def"));
        assert!(r.is_provided("c"));
        assert!(!r.is_provided("d"));
        assert_eq!(r.app_value("undeclared"), None);
    }

    #[test]
    fn an_empty_environment_variable_still_hides_dotenv() {
        let r = resolver(
            &[("a", Some("def"))],
            &[],
            &[("SPIN_VARIABLE_A", "")],
            "SPIN_VARIABLE_A=dot",
        );
        assert_eq!(r.app_value("a").as_deref(), Some(""));
    }

    #[test]
    fn set_override_takes_command_line_precedence() {
        let mut r = resolver(&[("a", Some("def"))], &[("a", "cli")], &[], "");
        r.set_override("a", "override".to_string());
        assert_eq!(r.app_value("a").as_deref(), Some("override"));
    }

    #[test]
    fn dotenv_parsing_handles_comments_quotes_and_export() {
        let parsed = Resolver::parse_dotenv(
            "# comment\n\nexport SPIN_VARIABLE_A=1\nSPIN_VARIABLE_B = \"two words\"\nSPIN_VARIABLE_C='single # kept'\nSPIN_VARIABLE_D=plain # trailing\nSPIN_VARIABLE_E=\"line\\nbreak\"\nnot a pair\n",
        );
        assert_eq!(parsed["SPIN_VARIABLE_A"], "1");
        assert_eq!(parsed["SPIN_VARIABLE_B"], "two words");
        assert_eq!(parsed["SPIN_VARIABLE_C"], "single # kept");
        assert_eq!(parsed["SPIN_VARIABLE_D"], "plain");
        assert_eq!(parsed["SPIN_VARIABLE_E"], "line\nbreak");
        assert_eq!(parsed.len(), 5);
    }

    #[test]
    fn check_required_names_every_unresolved_variable_and_how_to_set_it() {
        let r = resolver(
            &[
                ("secret_thing", None),
                ("other", None),
                ("given", None),
                ("opt", Some("x")),
            ],
            &[("given", "v")],
            &[],
            "",
        );
        let msg = r.check_required().expect_err("missing").to_string();
        assert!(
            msg.starts_with(
                "provider error: no provider resolved required variable(s): [Key(\"other\"), Key(\"secret_thing\")]"
            ),
            "{msg}"
        );
        assert!(msg.contains("SPIN_VARIABLE_SECRET_THING"), "{msg}");
        assert!(msg.contains(".env"), "{msg}");
        assert!(msg.contains("--variable secret_thing=<value>"), "{msg}");
        let ok = resolver(
            &[("secret_thing", None)],
            &[],
            &[("SPIN_VARIABLE_SECRET_THING", "s")],
            "",
        );
        assert!(ok.check_required().is_ok());
    }

    #[test]
    fn component_get_validates_then_requires_a_component_declaration() {
        let r = resolver(
            &[("host", Some("db")), ("shared", Some("app"))],
            &[],
            &[],
            "",
        );
        let c = component(&[("url", "redis://{{ host }}:6379"), ("fixed", "lit")]);
        assert_eq!(r.component_get(&c, "url").as_deref(), Ok("redis://db:6379"));
        assert_eq!(r.component_get(&c, "fixed").as_deref(), Ok("lit"));
        assert_eq!(
            r.component_get(&c, "shared"),
            Err(VariableError::Undefined(
                "no variable for \"auth\".\"shared\"".to_string()
            ))
        );
        assert!(matches!(
            r.component_get(&c, "BAD-NAME"),
            Err(VariableError::InvalidName(_))
        ));
    }

    #[test]
    fn values_are_resolved_on_every_get() {
        let mut r = resolver(&[("host", Some("one"))], &[], &[], "");
        let c = component(&[("h", "{{host}}")]);
        assert_eq!(r.component_get(&c, "h").as_deref(), Ok("one"));
        r.set_override("host", "two".to_string());
        assert_eq!(r.component_get(&c, "h").as_deref(), Ok("two"));
    }

    #[test]
    fn resolver_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Resolver>();
    }
}
