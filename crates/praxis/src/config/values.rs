//! Typed parsers for single configuration values. Each returns the value or a message that
//! says what was found and what was expected; the caller prefixes the key and its source.

use std::fmt;
use std::net::SocketAddr;

/// Reads a `HOST:PORT` socket address (an IP, not a name).
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("{text:?} is not a socket address (expected HOST:PORT, e.g. 0.0.0.0:8080)")
    })
}

/// The database engine a `database_url` points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Checks a database URL: a SQLite file or a PostgreSQL server.
pub fn database_url(text: &str) -> Result<DatabaseKind, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        if path.is_empty() {
            return Err(format!(
                "{text:?} names no SQLite file (expected sqlite:///ABS/PATH.db or sqlite://REL/PATH.db)"
            ));
        }
        if path.starts_with(":memory:") || rest.contains("mode=memory") {
            return Err(format!(
                "{text:?} is an in-memory SQLite database, which each pooled connection would see empty (expected a file, e.g. sqlite:///var/lib/praxis/praxis.db)"
            ));
        }
        return Ok(DatabaseKind::Sqlite);
    }
    let url = url::Url::parse(text).map_err(|_| bad_database_url(text))?;
    match url.scheme() {
        "postgres" | "postgresql" if url.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(DatabaseKind::Postgres)
        }
        _ => Err(bad_database_url(text)),
    }
}

fn bad_database_url(text: &str) -> String {
    format!(
        "{:?} is not a database URL (expected sqlite:///ABS/PATH.db, sqlite://REL/PATH.db or postgres://USER@HOST:PORT/DB)",
        mask_url(text)
    )
}

/// Checks a URL whose scheme must be one of `schemes` and that names a host.
pub fn server_url(text: &str, schemes: &[&str], example: &str) -> Result<String, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "{:?} is not a {} URL (expected e.g. {example})",
            mask_url(text),
            schemes.join(" or ")
        )
    };
    let url = url::Url::parse(text).map_err(|_| bad())?;
    if !schemes.contains(&url.scheme()) || url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(text.to_owned())
}

/// Checks a blob store URL: `s3://BUCKET[/PREFIX]?endpoint=..&region=..&part_size=..` (no
/// credentials in it), `file:///ABS/DIR` or a folder path.
pub fn blobs_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    praxis_infra::blobs::check_url(text).map_err(|e| match e {
        praxis_infra::InfraError::Blob(message) => message,
        other => other.to_string(),
    })?;
    Ok(text.to_owned())
}

/// Checks a CA file: readable, and PEM certificates that can be trust anchors (the file is
/// read again when the server starts).
pub fn ca_file(text: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(text.trim());
    if path.as_os_str().is_empty() {
        return Err(
            "is empty (expected a PEM file of CA certificates, e.g. /etc/praxis/ca.pem)".to_owned(),
        );
    }
    praxis_infra::tls::read_ca_file(&path)?;
    Ok(path)
}

/// Checks the public base URL of short links: absolute http(s), no query or fragment.
pub fn base_url(text: &str) -> Result<url::Url, String> {
    http_base_url(text, "a usable base URL", "https://sho.rt")
}

/// Checks the base URL of an OTLP/HTTP collector: absolute http(s), no query or fragment
/// (spans go to its `/v1/traces`).
pub fn otel_endpoint(text: &str) -> Result<url::Url, String> {
    http_base_url(text, "an OTLP/HTTP endpoint", "http://otel-collector:4318")
}

/// An absolute http(s) URL with a host and no query or fragment; errors name `what` it should
/// be and an `example`.
fn http_base_url(text: &str, what: &str, example: &str) -> Result<url::Url, String> {
    let bad = |why: &str| format!("{text:?} is not {what}: {why} (expected e.g. {example})");
    let url = url::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    Ok(url)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty when stdout is a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Auto => "auto",
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        })
    }
}

/// Reads a log format: auto, json or pretty.
pub fn log_format(text: &str) -> Result<LogFormat, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(LogFormat::Auto),
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        _ => Err(format!(
            "{text:?} is not a log format (expected auto, json or pretty)"
        )),
    }
}

/// Checks a tracing filter (`info`, `warn,praxis_shortener=debug`).
pub fn log_level(text: &str) -> Result<String, String> {
    let text = text.trim();
    tracing_subscriber::EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_owned())
        .map_err(|e| {
            format!("{text:?} is not a log filter: {e} (expected a level such as info, or directives such as info,praxis_shortener=debug)")
        })
}

/// Checks a Redis/NATS prefix: 1..=64 of `A-Z a-z 0-9 _ -` (safe in keys and NATS subjects).
pub fn prefix(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a valid prefix (expected 1 to 64 letters, digits, '_' or '-')"
        ))
    }
}

/// Reads a comma-separated list of systems; `all` means every one of `known`.
pub fn systems(text: &str, known: &[&str]) -> Result<Vec<String>, String> {
    let mut chosen: Vec<String> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            for name in known {
                if !chosen.iter().any(|c| c == name) {
                    chosen.push((*name).to_owned());
                }
            }
        } else if known.contains(&part) {
            if !chosen.iter().any(|c| c == part) {
                chosen.push(part.to_owned());
            }
        } else {
            return Err(format!(
                "{part:?} is not a system (known systems: {}, or all)",
                known.join(", ")
            ));
        }
    }
    if chosen.is_empty() {
        return Err(format!(
            "{text:?} selects no system (known systems: {}, or all)",
            known.join(", ")
        ));
    }
    Ok(chosen)
}

/// Replaces the password of a URL with `****` (for printing and error messages).
pub fn mask_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            if url.set_password(Some("****")).is_ok() {
                url.to_string()
            } else {
                text.to_owned()
            }
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses() {
        assert_eq!(socket_addr("0.0.0.0:8080").map(|a| a.port()), Ok(8080));
        assert!(socket_addr("[::1]:80").is_ok());
        let err = socket_addr("abc").expect_err("bad");
        assert_eq!(
            err,
            "\"abc\" is not a socket address (expected HOST:PORT, e.g. 0.0.0.0:8080)"
        );
        assert!(socket_addr("localhost:80").is_err());
        assert!(socket_addr("1.2.3.4").is_err());
    }

    #[test]
    fn database_urls() {
        assert_eq!(database_url("sqlite:///tmp/x.db"), Ok(DatabaseKind::Sqlite));
        assert_eq!(database_url("sqlite://data/x.db"), Ok(DatabaseKind::Sqlite));
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/p"),
            Ok(DatabaseKind::Postgres)
        );
        assert_eq!(
            database_url("postgresql://u:pw@db/p"),
            Ok(DatabaseKind::Postgres)
        );
        assert!(
            database_url("sqlite::memory:")
                .expect_err("memory")
                .contains("in-memory")
        );
        assert!(database_url("sqlite://").is_err());
        let err = database_url("mysql://u:secret@h/db").expect_err("mysql");
        assert!(!err.contains("secret"), "{err}");
        assert!(err.contains("expected sqlite:///"), "{err}");
    }

    #[test]
    fn server_urls() {
        assert!(
            server_url(
                "redis://127.0.0.1:6379",
                &["redis", "rediss"],
                "redis://h:6379"
            )
            .is_ok()
        );
        let err =
            server_url("http://x", &["nats", "tls"], "nats://127.0.0.1:4222").expect_err("scheme");
        assert_eq!(
            err,
            "\"http://x\" is not a nats or tls URL (expected e.g. nats://127.0.0.1:4222)"
        );
        assert!(server_url("nats://", &["nats"], "x").is_err());
    }

    #[test]
    fn blobs_urls() {
        assert!(blobs_url("s3://files/praxis?endpoint=http://127.0.0.1:8333").is_ok());
        assert!(blobs_url("file:///var/lib/praxis/blobs").is_ok());
        let err = blobs_url("s3://key:secret@files").expect_err("credentials");
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
        let err = blobs_url("s3://files?part_size=1MiB").expect_err("size");
        assert!(err.contains("part_size"), "{err}");
    }

    #[test]
    fn base_urls() {
        assert!(base_url("https://sho.rt").is_ok());
        assert!(base_url("http://127.0.0.1:8080/s/").is_ok());
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("sho.rt").is_err());
        assert!(base_url("https://x/?a=1").is_err());
        assert!(otel_endpoint("http://otel-collector:4318").is_ok());
        let err = otel_endpoint("grpc://c:4317").expect_err("not http");
        assert!(err.contains("OTLP/HTTP endpoint"), "{err}");
    }

    #[test]
    fn small_enums() {
        assert_eq!(log_format("Pretty"), Ok(LogFormat::Pretty));
        assert!(log_format("xml").is_err());
        assert!(log_level("info,praxis=debug").is_ok());
        assert!(log_level("info,=[").is_err());
    }

    #[test]
    fn prefixes() {
        assert!(prefix("praxis_t-1").is_ok());
        assert!(prefix("").is_err());
        assert!(prefix("a.b").is_err());
        assert!(prefix("a b").is_err());
    }

    #[test]
    fn system_lists() {
        let known = ["shortener", "feed"];
        assert_eq!(
            systems("all", &known),
            Ok(vec!["shortener".to_owned(), "feed".to_owned()])
        );
        assert_eq!(systems(" feed ,feed", &known), Ok(vec!["feed".to_owned()]));
        let err = systems("shortener,chat", &known).expect_err("unknown");
        assert_eq!(
            err,
            "\"chat\" is not a system (known systems: shortener, feed, or all)"
        );
        assert!(systems(",", &known).is_err());
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://u:secret@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(mask_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(mask_url("not a url"), "not a url");
    }
}
