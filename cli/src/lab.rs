//! `jetsaga dev|bench|chaos`: the lab tools start whole systems (nats-servers, databases, service
//! processes) and live in the `jetsaga-lab` binary, so the operator binary links no test harness.
//! `jetsaga` hands those commands over with its own arguments, as they were given.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// The lab binary's name.
pub const LAB: &str = "jetsaga-lab";

/// Runs `jetsaga-lab` with this process's arguments, in its place where the platform allows.
pub fn hand_over() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(lab) = find() else {
        eprintln!(
            "error: `jetsaga dev`, `bench` and `chaos` are lab tools of the {LAB} binary, which is \
             neither beside this jetsaga nor on PATH (build it with `cargo build -p jetsaga-lab`)"
        );
        return ExitCode::from(2);
    };
    let mut command = std::process::Command::new(&lab);
    command.args(&args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let error = command.exec();
        eprintln!("error: cannot run {}: {error}", lab.display());
        ExitCode::from(2)
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => ExitCode::from(status.code().unwrap_or(2).clamp(0, 255) as u8),
        Err(error) => {
            eprintln!("error: cannot run {}: {error}", lab.display());
            ExitCode::from(2)
        }
    }
}

/// `jetsaga-lab` beside the running `jetsaga` (a build's target folder, an install), else on PATH.
fn find() -> Option<PathBuf> {
    let name = format!("{LAB}{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(&name))
                .find(|p| p.is_file())
        })
    })
}
