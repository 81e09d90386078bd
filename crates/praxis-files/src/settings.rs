//! The file storage's settings: its `[files]` config section, and its secret.

use std::time::Duration;

use praxis_http::system::{Checks, Key, SecretSpec, SettingError, Settings};
use serde::{Deserialize, Serialize};

/// Scope of the uploading and managing routes for API keys (an account acts for itself
/// without it).
pub const FILES_WRITE: &str = "files:write";
/// Scope of the reading routes for API keys (`files:write` implies it).
pub const FILES_READ: &str = "files:read";

/// Everything the file storage can be tuned with: the `[files]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesSettings {
    /// Largest upload, in bytes (`Tus-Max-Size`).
    #[serde(with = "praxis_kit::text::serde_with::size")]
    pub max_size: usize,
    /// How long an incomplete upload may wait for its next bytes before it expires (the
    /// expiration extension's `Upload-Expires`); expired ones are deleted.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub upload_expiry: Duration,
    /// Bytes one account may hold (files and uploads in progress), unless an admin set its
    /// own quota.
    #[serde(with = "praxis_kit::text::serde_with::size")]
    pub quota_bytes: usize,
    /// Files one account may hold (uploads in progress included), unless an admin set its
    /// own quota.
    pub quota_files: u64,
    /// The lease a PATCH holds on its upload, renewed every third of it while bytes arrive;
    /// a process that dies holding one blocks the upload (423) for at most this long.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub lock_lease: Duration,
    /// Longest wait for the next bytes of a request body; a client silent for longer is cut
    /// off (what arrived is kept, as for any interrupted PATCH).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub idle_timeout: Duration,
    /// Longest validity of a signed URL.
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub signed_url_max_ttl: Duration,
    /// Most files in one page of a listing.
    pub page_max: u32,
    /// How often the sweeper deletes expired uploads and files (and moves blobs to the cold
    /// store).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub sweep_interval: Duration,
    /// A scanner run on each completed file, e.g. `clamdscan --no-summary`: the file's path is
    /// its last argument; exit 0 passes it, 1 quarantines it, anything else is retried. Unset:
    /// files are ready at once.
    pub scan_command: Option<String>,
    /// Longest run of the scanner on one file before it counts as failed (and is retried).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub scan_timeout: Duration,
    /// A second blob store for cold content (`file:///dir` or `s3://bucket?...`); unset: no
    /// cold tier.
    pub cold_url: Option<String>,
    /// Age after which a blob moves to the cold store (with `cold_url`).
    #[serde(with = "praxis_kit::text::serde_with::duration")]
    pub cold_after: Duration,
}

/// The documented keys of the `[files]` section.
pub const KEYS: &[Key] = &[
    Key::new(
        "max_size",
        "largest upload in bytes, advertised as Tus-Max-Size (1 to 1TiB)",
    ),
    Key::new(
        "upload_expiry",
        "how long an incomplete upload may wait for more bytes before it is deleted (1m to 30d)",
    ),
    Key::new(
        "quota_bytes",
        "bytes one account may hold, uploads in progress included, unless an admin set its quota",
    ),
    Key::new(
        "quota_files",
        "files one account may hold, uploads in progress included, unless an admin set its quota",
    ),
    Key::new(
        "lock_lease",
        "lease a PATCH holds on its upload, renewed while bytes arrive (3s to 10m)",
    ),
    Key::new(
        "idle_timeout",
        "longest wait for the next bytes of an upload body before the request is cut (1s to 10m)",
    ),
    Key::new(
        "signed_url_max_ttl",
        "longest validity of a signed URL (1m to 365d)",
    ),
    Key::new(
        "page_max",
        "most files in one page of a listing (1 to 1000)",
    ),
    Key::new(
        "sweep_interval",
        "how often expired uploads and files are deleted and old blobs go cold (1s to 1d)",
    ),
    Key::new(
        "scan_command",
        "scanner run on each completed file with its path last; exit 0 passes, 1 quarantines",
    )
    .unset("no scanner: files are ready at once"),
    Key::new("scan_timeout", "longest scanner run on one file (1s to 1h)"),
    Key::new(
        "cold_url",
        "a second blob store for cold content (file:// or s3://)",
    )
    .unset("no cold tier"),
    Key::new(
        "cold_after",
        "age after which a blob moves to cold_url (1s to 3650d)",
    ),
];

/// The file storage's secret: the key of its signed URLs.
pub const SECRETS: &[SecretSpec] = &[SecretSpec {
    name: "url_signing_key",
    file_key: "url_signing_key_file",
    doc: "HMAC-SHA256 key of signed download URLs, 32 to 128 visible characters; every process of a deployment needs the same one",
    file: "files-url-signing.key",
    generate: generate_key,
    read: read_key,
}];

/// A new signing key: 64 hex characters (32 random bytes).
pub fn generate_key() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    crate::domain::digest::hex(&[a.as_bytes().as_slice(), b.as_bytes().as_slice()].concat())
}

/// Checks a configured signing key: 32 to 128 visible ASCII characters.
pub fn read_key(text: &str) -> Result<String, String> {
    let t = text.trim();
    if (32..=128).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(t.to_owned())
    } else {
        Err("must be 32 to 128 visible ASCII characters (e.g. 64 hex digits)".to_owned())
    }
}

impl Default for FilesSettings {
    fn default() -> Self {
        Self {
            max_size: 10 << 30,
            upload_expiry: Duration::from_secs(24 * 3600),
            quota_bytes: 10 << 30,
            quota_files: 10_000,
            lock_lease: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            signed_url_max_ttl: Duration::from_secs(7 * 24 * 3600),
            page_max: 1_000,
            sweep_interval: Duration::from_secs(60),
            scan_command: None,
            scan_timeout: Duration::from_secs(300),
            cold_url: None,
            cold_after: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

fn within(d: Duration, min: Duration, max: Duration) -> bool {
    (min..=max).contains(&d)
}

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

impl Settings for FilesSettings {
    fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut c = Checks::new();
        c.require(
            (1..=1usize << 40).contains(&self.max_size),
            "max_size",
            "must be from 1 byte to 1TiB (e.g. 10GiB)",
        );
        c.require(
            within(self.upload_expiry, MIN, 30 * DAY),
            "upload_expiry",
            "must be from 1m to 30d (e.g. 24h)",
        );
        c.require(
            self.quota_bytes >= 1,
            "quota_bytes",
            "must be at least 1 byte (e.g. 10GiB)",
        );
        c.require(
            self.quota_files >= 1,
            "quota_files",
            "must be at least 1 (e.g. 10000)",
        );
        c.require(
            within(self.lock_lease, 3 * SEC, 10 * MIN),
            "lock_lease",
            "must be from 3s to 10m (e.g. 30s)",
        );
        c.require(
            within(self.idle_timeout, SEC, 10 * MIN),
            "idle_timeout",
            "must be from 1s to 10m (e.g. 30s)",
        );
        c.require(
            within(self.signed_url_max_ttl, MIN, 365 * DAY),
            "signed_url_max_ttl",
            "must be from 1m to 365d (e.g. 7d)",
        );
        c.require(
            (1..=1_000).contains(&self.page_max),
            "page_max",
            "must be from 1 to 1000 (e.g. 1000)",
        );
        c.require(
            within(self.sweep_interval, SEC, DAY),
            "sweep_interval",
            "must be from 1s to 1d (e.g. 1m)",
        );
        c.require(
            within(self.scan_timeout, SEC, 60 * MIN),
            "scan_timeout",
            "must be from 1s to 1h (e.g. 5m)",
        );
        c.require(
            within(self.cold_after, SEC, 3650 * DAY),
            "cold_after",
            "must be from 1s to 3650d (e.g. 30d)",
        );
        if let Some(cmd) = &self.scan_command {
            c.require(
                !cmd.trim().is_empty(),
                "scan_command",
                "must name a program (e.g. `clamdscan --no-summary`), or be unset",
            );
        }
        if let Some(url) = &self.cold_url {
            let t = url.trim();
            c.require(
                t.starts_with("file://") || t.starts_with("s3://") || t.starts_with('/'),
                "cold_url",
                "must be file:///dir or s3://bucket[/prefix]?endpoint=...",
            );
        }
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_keys_match_fields() {
        assert_eq!(FilesSettings::default().validate(), Ok(()));
        let fields = serde_json::to_value(FilesSettings::default()).expect("the input is valid");
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        for field in fields.as_object().expect("the input is valid").keys() {
            assert!(names.contains(&field.as_str()), "{field} has no key");
        }
        assert_eq!(
            names.len(),
            fields.as_object().expect("the input is valid").len()
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let s = FilesSettings {
            lock_lease: Duration::from_secs(1),
            cold_url: Some("ftp://x".into()),
            ..FilesSettings::default()
        };
        let keys: Vec<&str> = s
            .validate()
            .expect_err("the input is refused")
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["lock_lease", "cold_url"]);
    }

    #[test]
    fn keys_are_checked() {
        assert!(read_key(&generate_key()).is_ok());
        assert!(read_key("short").is_err());
    }
}
