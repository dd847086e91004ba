//! `spin-host build`: runs each component's `[component.x.build]` commands through the shell in
//! their `workdir`, in manifest order, stopping at the first failure (spin-fidelity §11).

use anyhow::{Result, bail};
use spin_app::App;

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
        .filter_map(|c| c.build.as_ref().map(|b| (c, b)))
        .collect();
    if selected.is_empty() {
        println!("None of the components have a build command.");
        return Ok(());
    }
    for (component, build) in selected {
        let workdir = build.workdir.clone().unwrap_or_else(|| app.dir.clone());
        for command in &build.command {
            println!("Building component {} with `{command}`", component.id);
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&workdir)
                .status()?;
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
