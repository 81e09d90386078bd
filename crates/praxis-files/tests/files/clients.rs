//! Outside clients: tuspy (PyPI) and tus-js-client (npm, on node) upload a file in chunks
//! through a real socket, are interrupted after the first chunk, resume with a new client
//! from the server's offset, and download the file byte-identical (scripts in `clients/`,
//! installed by scripts/install-tus-clients).

use std::path::PathBuf;

use praxis_testkit::Kind;

use crate::support::{Harness, pattern};

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/files/clients")
}

async fn run_client(program: &str, script: &str, kind: Kind) {
    let h = Harness::start(kind).await;
    let base = h.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.bin");
    let data = pattern(3_000_000, 30);
    std::fs::write(&file, &data).unwrap();
    let out = tokio::process::Command::new(program)
        .arg(clients_dir().join(script))
        .args(["--endpoint", &format!("{base}/api/v1/files/tus/")])
        .args(["--file", file.to_str().unwrap()])
        .args(["--chunk-size", "1048576"])
        .args(["--auth", "Bearer u:ann"])
        .args(["--filetype", "application/octet-stream"])
        .current_dir(clients_dir())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("{program} must be installed (scripts/install-tus-clients): {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed ({}); run scripts/install-tus-clients if its packages are missing.\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(report["identical"], true, "{report}");
    assert_eq!(report["bytes"], 3_000_000);
    let resumed = report["resumed_from"].as_u64().unwrap();
    assert!(
        resumed > 0 && resumed < 3_000_000,
        "the client was interrupted and resumed: {report}"
    );
    // The server holds the same bytes under the client's upload.
    let url = report["upload_url"].as_str().unwrap();
    let id = url.trim_end_matches('/').rsplit('/').next().unwrap();
    let meta = h.files.file_of("ann", id).await.unwrap();
    assert_eq!(meta.blake3, blake3::hash(&data).to_hex().to_string());
}

pub async fn tus_js_client_uploads_resumes_and_downloads(kind: Kind) {
    run_client("node", "tus_js_client.mjs", kind).await;
}

pub async fn tuspy_uploads_resumes_and_downloads(kind: Kind) {
    run_client("python3", "tuspy_client.py", kind).await;
}
