//! `praxis --help`, `praxis config`: precedence of the layers and errors that name the key.

use crate::support::{ADMIN_KEY, describe, run, temp_dir};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The line `key = ...` of `praxis config` output.
fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} line in\n{out}"))
}

#[test]
fn help_explains_every_subcommand() {
    let dir = temp_dir();
    let out = run(dir.path(), &["--help"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    for word in ["serve", "migrate", "config", "embedded", "PRAXIS_"] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }

    let out = run(dir.path(), &["serve", "--help"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    for word in [
        "--listen",
        "PRAXIS_LISTEN",
        "--only",
        "--data-dir",
        "SIGTERM",
    ] {
        assert!(text.contains(word), "serve --help lacks {word}:\n{text}");
    }

    let out = run(dir.path(), &["migrate", "--help"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout(&out).contains("migrations"));

    let out = run(dir.path(), &["config", "--help"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("PRAXIS_SHUTDOWN_GRACE"), "{text}");
    assert!(text.contains("masked"), "{text}");
}

#[test]
fn file_then_env_then_flag() {
    let dir = temp_dir();
    std::fs::write(
        dir.path().join("praxis.toml"),
        "listen = \"10.0.0.1:1001\"\nprefix = \"fromfile\"\nlog_level = \"warn\"\nbody_limit = 4096\n",
    )
    .expect("write praxis.toml");
    let out = run(
        dir.path(),
        &["config", "--listen", "10.0.0.3:1003"],
        &[
            ("PRAXIS_LISTEN", "10.0.0.2:1002"),
            ("PRAXIS_PREFIX", "fromenv"),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        line(&text, "listen").contains("\"10.0.0.3:1003\""),
        "{text}"
    );
    assert!(line(&text, "listen").ends_with("# flag --listen"), "{text}");
    assert!(line(&text, "prefix").contains("\"fromenv\""), "{text}");
    assert!(
        line(&text, "prefix").ends_with("# env PRAXIS_PREFIX"),
        "{text}"
    );
    assert!(line(&text, "log_level").contains("\"warn\""), "{text}");
    assert!(line(&text, "log_level").contains("# file "), "{text}");
    assert!(line(&text, "body_limit").contains("\"4KiB\""), "{text}");
    assert!(
        line(&text, "request_timeout").ends_with("# default"),
        "{text}"
    );
    assert!(text.contains("# mode: embedded"), "{text}");

    // The effective config is itself valid TOML.
    let _: toml::Table = toml::from_str(&text).expect("praxis config prints TOML");
}

#[test]
fn config_file_from_flag_or_env_must_exist() {
    let dir = temp_dir();
    let file = dir.path().join("elsewhere.toml");
    std::fs::write(&file, "prefix = \"named\"\n").expect("write");
    let path = file.display().to_string();

    let out = run(dir.path(), &["config", "--config", &path], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(line(&stdout(&out), "prefix").contains("\"named\""));

    let out = run(dir.path(), &["config"], &[("PRAXIS_CONFIG", &path)]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(line(&stdout(&out), "prefix").contains("\"named\""));

    let out = run(dir.path(), &["config", "--config", "missing.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("--config: config file missing.toml does not exist"),
        "{}",
        describe(&out)
    );
}

#[test]
fn bad_values_stop_with_key_source_and_expectation() {
    let dir = temp_dir();
    let out = run(dir.path(), &["config"], &[("PRAXIS_LISTEN", "abc")]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains(
            "PRAXIS_LISTEN: \"abc\" is not a socket address (expected HOST:PORT, e.g. 0.0.0.0:8080)"
        ),
        "{}",
        describe(&out)
    );
    assert!(stdout(&out).is_empty());

    let out = run(dir.path(), &["config", "--request-timeout", "soon"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("--request-timeout: \"soon\" is not a duration"),
        "{}",
        describe(&out)
    );

    std::fs::write(dir.path().join("praxis.toml"), "default_redirect = 303\n").expect("write");
    let out = run(dir.path(), &["config"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("default_redirect in "), "{err}");
    assert!(
        err.contains("praxis.toml: \"303\" is not a redirect status (expected 301, 302 or 307)"),
        "{err}"
    );

    // serve refuses to start the same way, before binding anything.
    let out = run(dir.path(), &["serve"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("default_redirect in "),
        "{}",
        describe(&out)
    );
}

#[test]
fn every_problem_is_listed() {
    let dir = temp_dir();
    let out = run(
        dir.path(),
        &["config", "--body-limit", "lots"],
        &[("PRAXIS_METRICS", "maybe"), ("PRAXIS_LOG_FORMAT", "xml")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--body-limit: \"lots\" is not a size"),
        "{err}"
    );
    assert!(
        err.contains("PRAXIS_METRICS: \"maybe\" is not a boolean"),
        "{err}"
    );
    assert!(
        err.contains(
            "PRAXIS_LOG_FORMAT: \"xml\" is not a log format (expected auto, json or pretty)"
        ),
        "{err}"
    );
}

#[test]
fn unknown_file_keys_and_unknown_systems_are_errors() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("praxis.toml"), "lissten = \"0.0.0.0:1\"\n").expect("write");
    let out = run(dir.path(), &["config"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("unknown key \"lissten\""),
        "{}",
        describe(&out)
    );

    let dir = temp_dir();
    let out = run(dir.path(), &["serve", "--only", "shortener,nosuch"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let known: Vec<&str> = crate::systems::systems().iter().map(|s| s.name()).collect();
    let expected = format!(
        "--only: \"nosuch\" is not a system (known systems: {}, or all)",
        known.join(", ")
    );
    assert!(stderr(&out).contains(&expected), "{}", describe(&out));
}

#[test]
fn secrets_are_masked_and_refused_where_they_would_leak() {
    let dir = temp_dir();
    let out = run(
        dir.path(),
        &["config"],
        &[
            ("PRAXIS_ADMIN_KEY", ADMIN_KEY),
            (
                "PRAXIS_DATABASE_URL",
                "postgres://praxis:pg-password-42@127.0.0.1:5432/p",
            ),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        line(&text, "admin_key").starts_with("admin_key = \"****\""),
        "{text}"
    );
    assert!(!text.contains(ADMIN_KEY), "{text}");
    assert!(!text.contains("pg-password-42"), "{text}");
    assert!(text.contains("# mode: scaled"), "{text}");

    // Not in the file (it may be world-readable or committed)...
    std::fs::write(
        dir.path().join("praxis.toml"),
        format!("admin_key = \"{ADMIN_KEY}\"\n"),
    )
    .expect("write");
    let out = run(dir.path(), &["config"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("PRAXIS_ADMIN_KEY"),
        "{}",
        describe(&out)
    );
    assert!(!stderr(&out).contains(ADMIN_KEY), "{}", describe(&out));

    // ...nor on the command line (visible in the process list).
    let out = run(dir.path(), &["config", "--admin-key", ADMIN_KEY], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

#[test]
fn admin_key_file_is_read() {
    let dir = temp_dir();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{ADMIN_KEY}\n")).expect("write");
    let path = key_file.display().to_string();
    let out = run(dir.path(), &["config", "--admin-key-file", &path], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        line(&text, "admin_key").contains("read from admin_key_file"),
        "{text}"
    );
    assert!(!text.contains(ADMIN_KEY), "{text}");

    let out = run(
        dir.path(),
        &["config", "--admin-key-file", &path],
        &[("PRAXIS_ADMIN_KEY", ADMIN_KEY)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr(&out).contains("set only one of them"),
        "{}",
        describe(&out)
    );
}
