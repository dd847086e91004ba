//! `spin-host build`: runs each component's `[component.x.build]` commands through the shell in
//! their `workdir`, in manifest order, stopping at the first failure, as `spin build` does.
//! `watch` runs the same commands with their output captured ([`build_captured`]).

use std::io::IsTerminal;
use std::process::Command;

use anyhow::{Result, bail};
use spin_app::{App, Component};

pub fn build(app: &App, only: &[String]) -> Result<()> {
    for id in only {
        if !app.components.contains_key(id) {
            bail!("Unknown component '{id}'");
        }
    }
    let selected: Vec<_> = app
        .components
        .values()
        .filter(|c| only.is_empty() || only.contains(&c.id))
        .filter(|c| c.build.is_some())
        .collect();
    if selected.is_empty() {
        println!("None of the components have a build command.");
        return Ok(());
    }
    for component in selected {
        for mut command in commands(app, component) {
            let status = command.status()?;
            if !status.success() {
                bail!(
                    "Build command for component {} failed with status {status}",
                    component.id
                );
            }
        }
    }
    println!("Finished building all Spin components");
    Ok(())
}

/// A failed build under `watch`: what failed, and everything the commands printed.
pub struct BuildFailure {
    pub message: String,
    pub output: String,
}

/// Runs one component's build commands as `build` does, but keeps their output: nothing on
/// success, all of it on failure. Cargo keeps its colours when our own stderr is a terminal.
pub fn build_captured(app: &App, component: &Component) -> Result<(), BuildFailure> {
    for mut command in commands(app, component) {
        if std::io::stderr().is_terminal() {
            command.env("CARGO_TERM_COLOR", "always");
        }
        let output = command.output().map_err(|error| BuildFailure {
            message: format!(
                "Build command for component {} could not run: {error}",
                component.id
            ),
            output: String::new(),
        })?;
        if !output.status.success() {
            return Err(BuildFailure {
                message: format!(
                    "Build command for component {} failed with status {}",
                    component.id, output.status
                ),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
    }
    Ok(())
}

/// The component's build commands, each to run through the shell in the build's `workdir`.
fn commands<'a>(app: &'a App, component: &'a Component) -> impl Iterator<Item = Command> + 'a {
    let build = component.build.iter().next();
    let workdir = build
        .and_then(|build| build.workdir.clone())
        .unwrap_or_else(|| app.dir.clone());
    build
        .into_iter()
        .flat_map(|build| build.command.iter())
        .map(move |text| {
            println!("Building component {} with `{text}`", component.id);
            let mut command = Command::new("sh");
            command.arg("-c").arg(text).current_dir(&workdir);
            command
        })
}
