//! The workspace binaries (`onboard-producer`, `onboard-worker`, `onboard-sandbox`), found
//! next to the running executable and, under cargo, built fresh once per process with the
//! same profile, so a test, a benchmark or the demo never runs a stale binary.

use super::HarnessError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The binaries built together.
const PACKAGES: [&str; 3] = ["onboard-worker", "onboard-sandbox", "onboard-producer"];

static NO_BUILD: AtomicBool = AtomicBool::new(false);
static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// Skips the cargo build: use the binaries already next to this executable.
pub fn set_no_build(no_build: bool) {
    NO_BUILD.store(no_build, Ordering::Relaxed);
}

/// The directory cargo puts the workspace's binaries in (`target/debug` or
/// `target/release`), found from this executable's own path (a test executable sits one
/// level deeper, in `deps/`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// The cargo target directory (`target/`).
pub fn target_dir() -> PathBuf {
    let dir = bin_dir();
    dir.parent().map(Path::to_path_buf).unwrap_or(dir)
}

/// The path of workspace binary `name`, built first when running under cargo.
pub fn binary(name: &str) -> Result<PathBuf, HarnessError> {
    if !NO_BUILD.load(Ordering::Relaxed) {
        if let Ok(cargo) = std::env::var("CARGO") {
            BUILT
                .get_or_init(|| build(&cargo))
                .clone()
                .map_err(HarnessError)?;
        }
    }
    let path = bin_dir().join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(HarnessError(format!(
            "{} is missing: build it with `cargo build --release --workspace`",
            path.display()
        )))
    }
}

fn build(cargo: &str) -> Result<(), String> {
    let release = bin_dir().ends_with("release");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "--bins"]);
    // What `cargo run`/`cargo test` set for the running package must not reach this build:
    // build scripts that watch such a variable (ring's watches CARGO_MANIFEST_DIR) would
    // otherwise run again, and everything above them be rebuilt, each time the binaries are
    // built from another package or by hand.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key == "CARGO_MANIFEST_DIR"
            || key == "CARGO_MANIFEST_PATH"
            || key == "CARGO_CRATE_NAME"
            || key == "CARGO_BIN_NAME"
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "CARGO_TARGET_TMPDIR"
            || key == "OUT_DIR"
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
        {
            cmd.env_remove(&*key);
        }
    }
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    // The producer's binary is behind its `cli` feature (its library, which apps embed,
    // leaves it off).
    cmd.args(["--features", "onboard-producer/cli"]);
    if release {
        cmd.arg("--release");
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("building the onboard binaries failed ({s})")),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    }
}

/// The workspace root (where the root `Cargo.toml` is).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
