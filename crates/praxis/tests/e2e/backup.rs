//! `praxis backup`: an online snapshot of an embedded server, restored by starting a server on
//! the backup directory.

use crate::support::{
    ADMIN_KEY, Server, client, create_code, data_dir, describe, run, temp_dir, visit,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_is_an_online_snapshot_that_restores_with_its_secrets() {
    let dir = temp_dir();
    let data = data_dir(dir.path());
    let data_arg = data.display().to_string();
    let env = [("PRAXIS_ADMIN_KEY", ADMIN_KEY)];
    let server = Server::start(dir.path(), &["--data-dir", &data_arg], &env);
    let http = client();
    let before = create_code(&http, &server, "https://example.com/before").await;
    let file = http
        .put(server.url("/api/v1/files/upload?name=kept.txt"))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "text/plain")
        .body("bytes kept by the backup")
        .send()
        .await
        .expect("upload");
    assert_eq!(file.status(), 201);
    let file: serde_json::Value = file.json().await.expect("file json");
    let content = file["content_url"]
        .as_str()
        .expect("content_url")
        .to_owned();

    // Taken while the server runs and writes.
    let backup = dir.path().join("backup-1");
    let backup_arg = backup.display().to_string();
    let out = run(
        dir.path(),
        &["backup", "--to", &backup_arg, "--data-dir", &data_arg],
        &env,
    );
    assert!(out.status.success(), "{}", describe(&out));
    let after = create_code(&http, &server, "https://example.com/after").await;
    for file in ["praxis.db", "jwt.secret", "notify-webhook.secret"] {
        assert!(backup.join(file).exists(), "{file} is in the backup");
    }
    assert_eq!(
        std::fs::read(backup.join("jwt.secret")).expect("copy"),
        std::fs::read(data.join("jwt.secret")).expect("original"),
        "the signing secret is copied as is"
    );

    // Never over an existing directory.
    let again = run(
        dir.path(),
        &["backup", "--to", &backup_arg, "--data-dir", &data_arg],
        &env,
    );
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("must not exist"),
        "{}",
        describe(&again)
    );

    // A server on the backup has what was written before it, and nothing after.
    let restored = Server::start(dir.path(), &["--data-dir", &backup_arg], &env);
    let (status, location) = visit(&http, &restored, &before).await.expect("visit");
    assert_eq!(status, 301, "{}", restored.logs());
    assert_eq!(location.as_deref(), Some("https://example.com/before"));
    let (status, _) = visit(&http, &restored, &after).await.expect("visit");
    assert_eq!(status, 404, "written after the snapshot");
    let got = http
        .get(restored.url(&content))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("download");
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.text().await.expect("body"),
        "bytes kept by the backup",
        "the blobs are in the backup"
    );
    drop(server);

    // PostgreSQL is backed up with its own tools.
    let refused = run(
        dir.path(),
        &[
            "backup",
            "--to",
            &dir.path().join("pg").display().to_string(),
            "--database-url",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ],
        &env,
    );
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pg_dump"),
        "{}",
        describe(&refused)
    );
}
