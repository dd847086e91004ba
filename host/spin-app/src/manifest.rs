//! `spin.toml` (manifest version 2) loading and validation.
//!
//! Loading happens in two passes. The text is first deserialized into private `Raw*` structs
//! that mirror Spin's schema with `deny_unknown_fields`, so unknown keys and wrong types fail
//! with the TOML error's line and column. The raw structs are then validated into the public
//! [`App`]: identifier and variable-name rules, `{{ var }}` references, trigger/component
//! cross-references, and the shapes Spin accepts but this host does not run (URL/registry
//! sources, inline components, component dependencies, AI models, the WAGI executor), which
//! fail loudly rather than being ignored. Every error starts with the manifest path.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component as PathComponent, Path, PathBuf};

use serde::Deserialize;

use crate::allowed_hosts::AllowedHosts;
use crate::ids;
use crate::variables::{Template, check_manifest_name};

/// A load or start-up error; `Display` names the file, the field and the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(String);

impl LoadError {
    pub fn new(message: impl Into<String>) -> LoadError {
        LoadError(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

/// A validated application.
#[derive(Clone, Debug)]
pub struct App {
    /// Directory of `spin.toml`, absolute and canonical.
    pub dir: PathBuf,
    /// `dir` joined with the manifest's file name.
    pub manifest_path: PathBuf,
    pub name: String,
    /// `None` when the manifest has no (or an empty) `version`.
    pub version: Option<String>,
    pub variables: BTreeMap<String, AppVariable>,
    /// `[application.trigger.redis] address`, the default for every `[[trigger.redis]]`.
    pub redis_address: Option<Template>,
    pub http_triggers: Vec<HttpTrigger>,
    pub redis_triggers: Vec<RedisTrigger>,
    pub components: BTreeMap<String, Component>,
}

/// An entry of `[variables]`. Exactly one of `required` and `default` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppVariable {
    pub default: Option<String>,
    pub required: bool,
    /// No runtime effect in the Spin CLI.
    pub secret: bool,
}

/// One `[[trigger.http]]`. Exactly one of `component` and `static_response` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTrigger {
    pub id: Option<String>,
    pub route: RouteSpec,
    pub component: Option<String>,
    pub static_response: Option<StaticResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteSpec {
    /// The route exactly as written.
    Path(String),
    /// `route = { private = true }`: reachable only through service chaining.
    Private,
}

/// `static_response = { status_code, headers, body }`: served without running a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticResponse {
    /// Defaults to 200.
    pub status_code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// One `[[trigger.redis]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisTrigger {
    /// Overrides [`App::redis_address`]; at least one of the two is present.
    pub address: Option<Template>,
    /// Subscribed literally (`SUBSCRIBE`, not a pattern).
    pub channel: Template,
    pub component: String,
}

/// A validated `[component.<id>]`.
#[derive(Clone, Debug)]
pub struct Component {
    pub id: String,
    /// Absolute path of the Wasm file (it need not exist until `spin build` has run).
    pub source: PathBuf,
    pub files: Vec<FileMount>,
    pub exclude_files: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
    /// Templates over application variables, rendered per instance.
    pub allowed_outbound_hosts: Vec<Template>,
    pub variables: BTreeMap<String, Template>,
    pub build: Option<BuildConfig>,
}

/// An entry of `files`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileMount {
    /// A glob, a directory or a file, relative to the manifest directory.
    Pattern(String),
    /// `{ source = "assets", destination = "/static" }`.
    Mapping { source: String, destination: String },
}

/// `[component.<id>.build]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildConfig {
    /// Each command runs through the shell, in order.
    pub command: Vec<String>,
    /// Absolute (the manifest gives it relative to the manifest directory).
    pub workdir: Option<PathBuf>,
    pub watch: Vec<String>,
}

const BASE_ERROR: &str = "This application is using the deprecated trigger 'base' field. The base must be prepended to each [[trigger.http]]'s 'route'.";
const PRIVATE_ROUTE_ERROR: &str = "route must be a string pattern or '{ private = true }'";

// ---- Raw schema -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(rename = "spin_manifest_version")]
    _spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "description")]
    _description: String,
    #[serde(default, rename = "authors")]
    _authors: Vec<String>,
    #[serde(default)]
    trigger: RawAppTriggers,
    #[serde(default, rename = "tool")]
    _tool: BTreeMap<String, toml::Table>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppTriggers {
    http: Option<RawHttpGlobal>,
    redis: Option<RawRedisGlobal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpGlobal {
    base: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisGlobal {
    address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    required: bool,
    default: Option<String>,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
    #[serde(default)]
    redis: Vec<RawRedisTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    id: Option<String>,
    component: Option<toml::Value>,
    route: toml::Value,
    static_response: Option<RawStaticResponse>,
    executor: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticResponse {
    status_code: Option<u16>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisTrigger {
    id: Option<String>,
    component: toml::Value,
    channel: String,
    address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: toml::Value,
    #[serde(default, rename = "description")]
    _description: String,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<RawFileMount>,
    #[serde(default)]
    exclude_files: Vec<String>,
    #[serde(default)]
    allowed_http_hosts: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    ai_models: Vec<String>,
    build: Option<RawBuild>,
    #[serde(default, rename = "tool")]
    _tool: BTreeMap<String, toml::Table>,
    #[serde(default, rename = "dependencies_inherit_configuration")]
    _dependencies_inherit_configuration: bool,
    #[serde(default)]
    dependencies: toml::Table,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawFileMount {
    Pattern(String),
    Mapping(RawMapping),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    source: String,
    destination: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: RawCommands,
    workdir: Option<String>,
    #[serde(default)]
    watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCommands {
    One(String),
    Many(Vec<String>),
}

// ---- Loading ----------------------------------------------------------------------------

impl App {
    /// Reads and validates the manifest at `manifest_path`.
    pub fn load(manifest_path: &Path) -> Result<App, LoadError> {
        let shown = manifest_path.display();
        let fail = |message: String| LoadError::new(format!("{shown}: {message}"));
        let text = fs::read_to_string(manifest_path)
            .map_err(|e| fail(format!("cannot read manifest: {e}")))?;
        let parent = match manifest_path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let dir = parent
            .canonicalize()
            .map_err(|e| fail(format!("cannot resolve the manifest directory: {e}")))?;
        let file_name = manifest_path
            .file_name()
            .ok_or_else(|| fail("not a file path".to_string()))?;
        let raw = parse_raw(&text).map_err(&fail)?;
        let manifest_path = dir.join(file_name);
        validate(raw, dir, manifest_path).map_err(fail)
    }
}

fn parse_raw(text: &str) -> Result<RawManifest, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let version_one = "manifest version 1 is not supported by this host; use spin_manifest_version = 2 (`spin doctor` can upgrade it)";
    match table.get("spin_manifest_version") {
        Some(toml::Value::Integer(2)) => {}
        Some(toml::Value::String(s)) if s == "1" => return Err(version_one.to_string()),
        Some(other) => {
            return Err(format!("spin_manifest_version: expected 2, found {other}"));
        }
        None if table.contains_key("spin_version") => return Err(version_one.to_string()),
        None => return Err("missing field `spin_manifest_version` (expected 2)".to_string()),
    }
    toml::from_str(text).map_err(|e| e.to_string())
}

fn validate(raw: RawManifest, dir: PathBuf, manifest_path: PathBuf) -> Result<App, String> {
    let application = raw.application;
    if let Some(base) = application
        .trigger
        .http
        .as_ref()
        .and_then(|h| h.base.as_deref())
        && base != "/"
    {
        return Err(BASE_ERROR.to_string());
    }
    let variables = app_variables(raw.variables)?;
    let scope = Scope {
        variables: &variables,
    };
    let redis_address = application
        .trigger
        .redis
        .and_then(|r| r.address)
        .map(|address| scope.template("[application.trigger.redis] address", &address))
        .transpose()?;
    let mut components = BTreeMap::new();
    for (id, raw_component) in raw.component {
        let component = validate_component(&id, raw_component, &dir, &scope)?;
        components.insert(id, component);
    }
    let http_triggers = http_triggers(raw.trigger.http, &components)?;
    let redis_triggers = redis_triggers(
        raw.trigger.redis,
        &components,
        &scope,
        redis_address.is_some(),
    )?;
    Ok(App {
        dir,
        manifest_path,
        name: application.name,
        version: Some(application.version).filter(|v| !v.is_empty()),
        variables,
        redis_address,
        http_triggers,
        redis_triggers,
        components,
    })
}

fn app_variables(
    raw: BTreeMap<String, RawVariable>,
) -> Result<BTreeMap<String, AppVariable>, String> {
    let mut variables = BTreeMap::new();
    for (name, variable) in raw {
        check_manifest_name(&name)
            .map_err(|e| format!("variables: invalid variable name {name:?}: {e}"))?;
        if variable.required == variable.default.is_some() {
            return Err(format!(
                "variable {name:?}: must be `required` OR have a `default`"
            ));
        }
        variables.insert(
            name,
            AppVariable {
                default: variable.default,
                required: variable.required,
                secret: variable.secret,
            },
        );
    }
    Ok(variables)
}

/// The application variables a template of the manifest may refer to.
struct Scope<'a> {
    variables: &'a BTreeMap<String, AppVariable>,
}

impl Scope<'_> {
    /// Parses `text`, found at `context`, as a template of known variables only.
    fn template(&self, context: &str, text: &str) -> Result<Template, String> {
        let parsed = Template::parse(text)
            .map_err(|e| format!("{context}: invalid template {text:?}: {e}"))?;
        if let Some(unknown) = parsed
            .references()
            .find(|r| !self.variables.contains_key(*r))
        {
            return Err(format!(
                "{context} refers to unknown application variable {unknown:?}"
            ));
        }
        Ok(parsed)
    }
}

/// The id of the component a trigger names at `context`, which must be declared.
fn component_ref(
    components: &BTreeMap<String, Component>,
    context: &str,
    value: &toml::Value,
) -> Result<String, String> {
    match value {
        toml::Value::String(id) if components.contains_key(id) => Ok(id.clone()),
        toml::Value::String(id) => Err(format!(
            "{context}: component {id:?} does not exist (no [component.{id}])"
        )),
        toml::Value::Table(_) => Err(format!(
            "{context}: inline components are not supported by this host; declare it as [component.<id>] and refer to it by id"
        )),
        other => Err(format!(
            "{context}: component must be a component id string, found {other}"
        )),
    }
}

fn http_triggers(
    raw: Vec<RawHttpTrigger>,
    components: &BTreeMap<String, Component>,
) -> Result<Vec<HttpTrigger>, String> {
    let mut triggers = Vec::new();
    for (index, trigger) in raw.into_iter().enumerate() {
        let context = trigger_context("http", index, trigger.id.as_deref());
        let component = trigger
            .component
            .as_ref()
            .map(|c| component_ref(components, &context, c))
            .transpose()?;
        let static_response = trigger.static_response.map(|r| StaticResponse {
            status_code: r.status_code.unwrap_or(200),
            headers: r.headers.into_iter().collect(),
            body: r.body,
        });
        if component.is_some() == static_response.is_some() {
            return Err(format!(
                "{context}: must have exactly one of 'component' or 'static_response'"
            ));
        }
        let owner = component
            .clone()
            .or_else(|| trigger.id.clone())
            .unwrap_or_else(|| context.clone());
        let route = parse_route(&context, &owner, &trigger.route)?;
        if let Some(executor) = &trigger.executor {
            check_executor(&context, executor)?;
        }
        triggers.push(HttpTrigger {
            id: trigger.id,
            route,
            component,
            static_response,
        });
    }
    Ok(triggers)
}

/// The Redis triggers; each needs an address of its own unless the application has one
/// (`app_address`).
fn redis_triggers(
    raw: Vec<RawRedisTrigger>,
    components: &BTreeMap<String, Component>,
    scope: &Scope<'_>,
    app_address: bool,
) -> Result<Vec<RedisTrigger>, String> {
    let mut triggers = Vec::new();
    for (index, trigger) in raw.into_iter().enumerate() {
        let context = trigger_context("redis", index, trigger.id.as_deref());
        let component = component_ref(components, &context, &trigger.component)?;
        let channel = scope.template(&format!("{context}: channel"), &trigger.channel)?;
        let address = trigger
            .address
            .map(|a| scope.template(&format!("{context}: address"), &a))
            .transpose()?;
        if address.is_none() && !app_address {
            return Err(format!(
                "{context}: no Redis address: set `address` on the trigger or in [application.trigger.redis]"
            ));
        }
        triggers.push(RedisTrigger {
            address,
            channel,
            component,
        });
    }
    Ok(triggers)
}

fn trigger_context(kind: &str, index: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("trigger.{kind} {id:?}"),
        None => format!("trigger.{kind}[{index}]"),
    }
}

fn parse_route(context: &str, owner: &str, route: &toml::Value) -> Result<RouteSpec, String> {
    match route {
        toml::Value::String(path) => Ok(RouteSpec::Path(path.clone())),
        toml::Value::Table(table) if table.len() == 1 => match table.get("private") {
            Some(toml::Value::Boolean(true)) => Ok(RouteSpec::Private),
            Some(toml::Value::Boolean(false)) => Err(format!(
                "{PRIVATE_ROUTE_ERROR}: '{owner}' has {{ private = false }}"
            )),
            _ => Err(format!("{context}: {PRIVATE_ROUTE_ERROR}")),
        },
        _ => Err(format!("{context}: {PRIVATE_ROUTE_ERROR}")),
    }
}

fn check_executor(context: &str, executor: &toml::Table) -> Result<(), String> {
    match executor.get("type").and_then(toml::Value::as_str) {
        Some("spin") if executor.len() == 1 => Ok(()),
        Some("spin") => Err(format!(
            "{context}: executor: the spin executor takes no options besides `type`"
        )),
        Some("wagi") => Err(format!(
            "{context}: executor: the WAGI executor is not supported by this host"
        )),
        Some(other) => Err(format!("{context}: executor: unknown type {other:?}")),
        None => Err(format!("{context}: executor: missing `type`")),
    }
}

fn validate_component(
    id: &str,
    raw: RawComponent,
    dir: &Path,
    scope: &Scope<'_>,
) -> Result<Component, String> {
    let context = format!("component {id:?}");
    ids::check_kebab(id).map_err(|e| format!("{context}: invalid component id: {e}"))?;
    let source = match &raw.source {
        toml::Value::String(path) => dir.join(path),
        toml::Value::Table(_) => {
            return Err(format!(
                "{context}: source: only local file paths are supported by this host (not URL or registry sources)"
            ));
        }
        other => return Err(format!("{context}: source: expected a path, found {other}")),
    };
    let mut variables = BTreeMap::new();
    for (name, text) in &raw.variables {
        check_manifest_name(name)
            .map_err(|e| format!("{context}: invalid variable name {name:?}: {e}"))?;
        let parsed = scope.template(&format!("{context}: variable {name:?}"), text)?;
        variables.insert(name.clone(), parsed);
    }
    let allowed_outbound_hosts = allowed_outbound_hosts(&context, &raw, scope)?;
    check_stores_and_unsupported(&context, &raw)?;
    let files = raw
        .files
        .into_iter()
        .map(|mount| match mount {
            RawFileMount::Pattern(pattern) => FileMount::Pattern(pattern),
            RawFileMount::Mapping(m) => FileMount::Mapping {
                source: m.source,
                destination: m.destination,
            },
        })
        .collect();
    let build = raw
        .build
        .map(|build| build_config(&context, build, dir))
        .transpose()?;
    Ok(Component {
        id: id.to_string(),
        source,
        files,
        exclude_files: raw.exclude_files,
        environment: raw.environment,
        key_value_stores: raw.key_value_stores,
        sqlite_databases: raw.sqlite_databases,
        allowed_outbound_hosts,
        variables,
        build,
    })
}

/// The component's `allowed_outbound_hosts` as templates; the literal ones are checked now,
/// those with templates only once rendered, at run time.
fn allowed_outbound_hosts(
    context: &str,
    raw: &RawComponent,
    scope: &Scope<'_>,
) -> Result<Vec<Template>, String> {
    if !raw.allowed_http_hosts.is_empty() {
        return Err(format!(
            "{context}: allowed_http_hosts is deprecated and not supported by this host; use allowed_outbound_hosts (e.g. \"https://example.com\")"
        ));
    }
    let mut allowed = Vec::new();
    for entry in &raw.allowed_outbound_hosts {
        let parsed = scope.template(
            &format!("{context}: allowed_outbound_hosts entry {entry:?}"),
            entry,
        )?;
        if parsed.is_literal() {
            AllowedHosts::parse(std::slice::from_ref(entry))
                .map_err(|e| format!("{context}: allowed_outbound_hosts: {e}"))?;
        }
        allowed.push(parsed);
    }
    Ok(allowed)
}

/// Store labels must be valid; AI models and component dependencies are not supported.
fn check_stores_and_unsupported(context: &str, raw: &RawComponent) -> Result<(), String> {
    for (field, labels) in [
        ("key_value_stores", &raw.key_value_stores),
        ("sqlite_databases", &raw.sqlite_databases),
    ] {
        for label in labels {
            ids::check_store_label(label)
                .map_err(|e| format!("{context}: {field}: invalid label {label:?}: {e}"))?;
        }
    }
    if !raw.ai_models.is_empty() {
        return Err(format!(
            "{context}: ai_models is not supported by this host"
        ));
    }
    if !raw.dependencies.is_empty() {
        return Err(format!(
            "{context}: component dependencies are not supported by this host"
        ));
    }
    Ok(())
}

fn build_config(context: &str, build: RawBuild, dir: &Path) -> Result<BuildConfig, String> {
    let workdir = match build.workdir {
        None => None,
        Some(workdir) if Path::new(&workdir).is_absolute() => {
            return Err(format!(
                "{context}: build.workdir {workdir:?} must be relative to the manifest directory"
            ));
        }
        Some(workdir) => Some(dir.join(workdir)),
    };
    let command = match build.command {
        RawCommands::One(command) => vec![command],
        RawCommands::Many(commands) => commands,
    };
    Ok(BuildConfig {
        command,
        workdir,
        watch: build.watch,
    })
}

// ---- Files ------------------------------------------------------------------------------

impl Component {
    /// Resolves `files` into `(host file, guest path)` pairs; the guest path is relative to the
    /// guest's `/`. Per Spin: a directory or file pattern keeps its app-relative path (a
    /// directory is taken recursively), a glob maps each matching file to its app-relative path,
    /// and `{ source, destination }` puts a directory's contents under `destination` (a file
    /// source becomes exactly `destination`). `exclude_files` globs are matched against the
    /// app-relative path of each file. Patterns outside the app directory, patterns ending in
    /// `.` or `..`, and non-glob patterns that match nothing are errors.
    pub fn resolve_files(&self, app_dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, LoadError> {
        let resolver = FileResolver::new(self, app_dir)?;
        let mut resolved = Vec::new();
        for mount in &self.files {
            match mount {
                FileMount::Pattern(pattern) => resolver.pattern(pattern, &mut resolved)?,
                FileMount::Mapping {
                    source,
                    destination,
                } => resolver.mapping(source, destination, &mut resolved)?,
            }
        }
        Ok(resolved)
    }
}

/// Resolves one component's `files` against the app directory (`root`), leaving out what its
/// `exclude_files` match.
struct FileResolver<'a> {
    id: &'a str,
    root: PathBuf,
    excludes: Vec<glob::Pattern>,
}

impl<'a> FileResolver<'a> {
    fn new(component: &'a Component, app_dir: &Path) -> Result<Self, LoadError> {
        let id = component.id.as_str();
        let root = app_dir.canonicalize().map_err(|e| {
            LoadError::new(format!(
                "component {id:?}: files: cannot resolve {}: {e}",
                app_dir.display()
            ))
        })?;
        let mut excludes = Vec::new();
        for pattern in &component.exclude_files {
            excludes.push(glob::Pattern::new(pattern).map_err(|e| {
                LoadError::new(format!(
                    "component {id:?}: exclude_files: invalid pattern {pattern:?}: {e}"
                ))
            })?);
        }
        Ok(Self { id, root, excludes })
    }

    fn fail(&self, message: String) -> LoadError {
        LoadError::new(format!("component {:?}: files: {message}", self.id))
    }

    fn included(&self, app_relative: &Path) -> bool {
        !self.excludes.iter().any(|p| p.matches_path(app_relative))
    }

    /// `file`'s path relative to the app directory, which it must be inside.
    fn relative(&self, file: &Path) -> Result<PathBuf, LoadError> {
        file.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .map_err(|_| {
                self.fail(format!(
                    "{} is outside the application directory",
                    file.display()
                ))
            })
    }

    /// Adds `file` at its app-relative path unless it is excluded.
    fn add_as_is(
        &self,
        file: PathBuf,
        resolved: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<(), LoadError> {
        let rel = self.relative(&file)?;
        if self.included(&rel) {
            resolved.push((file, rel));
        }
        Ok(())
    }

    /// A directory (recursively), a file, or a glob, each file at its app-relative path.
    fn pattern(
        &self,
        pattern: &str,
        resolved: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<(), LoadError> {
        let path = contained_path(&self.root, pattern).map_err(|e| self.fail(e))?;
        if path.is_dir() {
            for file in files_under(&path).map_err(|e| self.fail(e))? {
                self.add_as_is(file, resolved)?;
            }
        } else if path.exists() {
            self.add_as_is(path, resolved)?;
        } else if looks_like_glob(pattern) {
            for file in self.glob(pattern)? {
                self.add_as_is(file, resolved)?;
            }
        } else {
            return Err(self.fail(format!(
                "{pattern:?} does not exist and doesn't appear to be a glob pattern"
            )));
        }
        Ok(())
    }

    /// The files (not directories) `pattern` matches under the app directory, sorted.
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, LoadError> {
        let root_text = self
            .root
            .to_str()
            .ok_or_else(|| self.fail(format!("{} is not valid UTF-8", self.root.display())))?;
        let full = format!("{}/{pattern}", glob::Pattern::escape(root_text));
        let matches = glob::glob(&full)
            .map_err(|e| self.fail(format!("invalid pattern {pattern:?}: {e}")))?;
        let mut files = Vec::new();
        for entry in matches {
            let file = entry.map_err(|e| self.fail(format!("{pattern:?}: {e}")))?;
            if file.is_file() {
                files.push(file);
            }
        }
        files.sort();
        Ok(files)
    }

    /// `{ source, destination }`: a directory's contents under `destination`, or a file as
    /// exactly `destination`.
    fn mapping(
        &self,
        source: &str,
        destination: &str,
        resolved: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<(), LoadError> {
        let path = contained_path(&self.root, source).map_err(|e| self.fail(e))?;
        let guest_root = PathBuf::from(destination.trim_start_matches('/'));
        if path.is_dir() {
            for file in files_under(&path).map_err(|e| self.fail(e))? {
                let rel = self.relative(&file)?;
                if !self.included(&rel) {
                    continue;
                }
                let inside = file.strip_prefix(&path).map_err(|_| {
                    self.fail(format!("{} escaped {}", file.display(), path.display()))
                })?;
                let guest = guest_root.join(inside);
                resolved.push((file, guest));
            }
        } else if path.exists() {
            let rel = self.relative(&path)?;
            if self.included(&rel) {
                resolved.push((path, guest_root));
            }
        } else {
            return Err(self.fail(format!("source {source:?} does not exist")));
        }
        Ok(())
    }
}

/// What a change to a file means for the component, as `spin watch` reads the manifest: a change
/// matching a `[component.x.build] watch` glob calls for a rebuild, and a change under one of
/// its `files` for a fresh copy of them.
impl Component {
    /// Whether a change to `path` (absolute, under `app_dir`) matches one of the build's watch
    /// globs, which are relative to the build's working directory.
    pub fn build_watches(&self, app_dir: &Path, path: &Path) -> bool {
        let Some(build) = &self.build else {
            return false;
        };
        let base = build.workdir.as_deref().unwrap_or(app_dir);
        let Ok(relative) = path.strip_prefix(base) else {
            return false;
        };
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        build.watch.iter().any(|pattern| {
            glob::Pattern::new(pattern)
                .is_ok_and(|pattern| pattern.matches_path_with(relative, options))
        })
    }

    /// Whether `path` (absolute, under `app_dir`) is one of the component's `files` or lies under
    /// one of its mounted directories.
    pub fn mounts(&self, app_dir: &Path, path: &Path) -> bool {
        let Ok(relative) = path.strip_prefix(app_dir) else {
            return false;
        };
        self.files.iter().any(|mount| match mount {
            FileMount::Pattern(pattern) if looks_like_glob(pattern) => {
                glob::Pattern::new(pattern).is_ok_and(|pattern| pattern.matches_path(relative))
            }
            FileMount::Pattern(source) | FileMount::Mapping { source, .. } => {
                relative.starts_with(source.trim_end_matches('/'))
            }
        })
    }

    /// The directories to watch for the changes above, each with whether to watch it
    /// recursively: the literal part of every watch glob and every mounted path.
    pub fn watched_dirs(&self, app_dir: &Path) -> Vec<(PathBuf, bool)> {
        let mut dirs = Vec::new();
        let mut add = |base: &Path, pattern: &str| {
            let literal: PathBuf = Path::new(pattern)
                .components()
                .take_while(|part| !looks_like_glob(&part.as_os_str().to_string_lossy()))
                .collect();
            let path = base.join(&literal);
            if looks_like_glob(pattern) || path.is_dir() {
                dirs.push((path, true));
            } else if let Some(parent) = path.parent() {
                // A single file: watch its directory, so that an editor's save by renaming a new
                // file over it is seen too.
                dirs.push((parent.to_path_buf(), false));
            }
        };
        if let Some(build) = &self.build {
            let base = build.workdir.as_deref().unwrap_or(app_dir);
            for pattern in &build.watch {
                add(base, pattern);
            }
        }
        for mount in &self.files {
            match mount {
                FileMount::Pattern(source) | FileMount::Mapping { source, .. } => {
                    add(app_dir, source);
                }
            }
        }
        dirs
    }
}

fn looks_like_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// `root.join(pattern)` normalised lexically; errors if it leaves `root` or ends in `.`/`..`.
fn contained_path(root: &Path, pattern: &str) -> Result<PathBuf, String> {
    let trimmed = pattern.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    if last == "." || last == ".." {
        return Err(format!("{pattern:?} must not end in '.' or '..'"));
    }
    let mut normal = PathBuf::new();
    for part in root.join(pattern).components() {
        match part {
            PathComponent::ParentDir => {
                if !normal.pop() {
                    return Err(format!("{pattern:?} is outside the application directory"));
                }
            }
            PathComponent::CurDir => {}
            other => normal.push(other),
        }
    }
    if !normal.starts_with(root) {
        return Err(format!("{pattern:?} is outside the application directory"));
    }
    Ok(normal)
}

/// Every file below `dir`, recursively, in sorted order (symlinks followed).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = fs::read_dir(&current)
            .map_err(|e| format!("cannot read {}: {e}", current.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot read {}: {e}", current.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
