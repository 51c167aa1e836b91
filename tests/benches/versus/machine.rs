//! The machine, for the tables' header: what the numbers were measured on.

use std::process::Command;

/// The machine, for the header: its CPUs, its OS, the compiler, tokio's version.
pub fn describe() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |cpus| cpus.get());
    let model = cpu_model().map_or(String::new(), |model| format!(" ({model})"));
    let os = output_of("uname", &["-srm"]).unwrap_or_else(|| std::env::consts::OS.into());
    let rustc = output_of("rustc", &["--version"]).unwrap_or_else(|| "rustc ?".into());
    format!(
        "{cpus} CPUs{model}, {os}, {rustc}, tokio {}",
        locked_version("tokio")
    )
}

fn cpu_model() -> Option<String> {
    match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(info) => info.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == "model name").then(|| value.trim().to_string())
        }),
        Err(_) => output_of("sysctl", &["-n", "machdep.cpu.brand_string"]),
    }
}

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// The version of `package` that Cargo.lock holds: the one built.
fn locked_version(package: &str) -> &'static str {
    const LOCK: &str = include_str!("../../../Cargo.lock");
    let name = format!("name = \"{package}\"");
    LOCK.split("[[package]]")
        .find_map(|entry| {
            let mut lines = entry.trim().lines();
            (lines.next()? == name).then_some(())?;
            lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"')
        })
        .unwrap_or("?")
}
