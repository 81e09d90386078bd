//! The tus 1.0.0 protocol's headers, parsed and checked (pure, no I/O).
//!
//! Every parser returns a [`HeaderError`] naming the header and what a client must send
//! instead; the routes turn it into a 400 problem whose `errors[0].field` is the header.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The protocol version this server speaks (`Tus-Resumable`, `Tus-Version`).
pub const VERSION: &str = "1.0.0";
/// The extensions `OPTIONS` advertises (`Tus-Extension`).
pub const EXTENSIONS: &str = "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination,concatenation";
/// The checksum algorithms of the checksum extension (`Tus-Checksum-Algorithm`).
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256,md5";
/// The content type of a PATCH body.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// A tus header that is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    /// The header (`Upload-Length`).
    pub header: &'static str,
    /// What is wrong and what is expected.
    pub message: String,
}

impl HeaderError {
    fn new(header: &'static str, message: impl Into<String>) -> Self {
        Self {
            header,
            message: message.into(),
        }
    }
}

/// A non-negative decimal integer header (`Upload-Length`, `Upload-Offset`): digits only.
pub fn parse_size(header: &'static str, value: &str) -> Result<u64, HeaderError> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::new(
            header,
            format!("must be a non-negative decimal integer, got {value:?}"),
        ));
    }
    value
        .parse()
        .map_err(|_| HeaderError::new(header, format!("is too large: {value}")))
}

/// One key of `Upload-Metadata`: its value is bytes (usually UTF-8), absent for a bare key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPair {
    /// The key (no spaces or commas).
    pub key: String,
    /// The decoded value; `None` for a key without one.
    pub value: Option<Vec<u8>>,
}

/// Parses `Upload-Metadata`: comma-separated `key base64value` pairs (value optional), keys
/// unique, no spaces or commas in keys.
pub fn parse_metadata(value: &str) -> Result<Vec<MetadataPair>, HeaderError> {
    const H: &str = "Upload-Metadata";
    let mut pairs: Vec<MetadataPair> = Vec::new();
    if value.trim().is_empty() {
        return Ok(pairs);
    }
    for item in value.split(',') {
        let item = item.trim();
        let mut parts = item.split(' ').filter(|p| !p.is_empty());
        let Some(key) = parts.next() else {
            return Err(HeaderError::new(
                H,
                "has an empty pair; send `key base64value` pairs separated by commas",
            ));
        };
        let encoded = parts.next();
        if parts.next().is_some() {
            return Err(HeaderError::new(
                H,
                format!(
                    "pair {key:?} has more than one value; a key and one base64 value are separated by one space"
                ),
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HeaderError::new(
                H,
                format!("key {key:?} must be visible ASCII"),
            ));
        }
        let value =
            match encoded {
                None => None,
                Some(text) => Some(STANDARD.decode(text).map_err(|_| {
                    HeaderError::new(H, format!("the value of {key:?} is not base64"))
                })?),
            };
        if pairs.iter().any(|p| p.key == key) {
            return Err(HeaderError::new(H, format!("key {key:?} appears twice")));
        }
        pairs.push(MetadataPair {
            key: key.to_owned(),
            value,
        });
    }
    Ok(pairs)
}

/// The value of `key` in parsed metadata, as UTF-8 text (lossy).
pub fn metadata_text(pairs: &[MetadataPair], key: &str) -> Option<String> {
    pairs
        .iter()
        .find(|p| p.key == key)
        .and_then(|p| p.value.as_deref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A checksum algorithm of the checksum extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// MD5.
    Md5,
}

/// `Upload-Checksum`: an algorithm and the digest the client computed of the PATCH body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The digest's bytes.
    pub digest: Vec<u8>,
}

/// Parses `Upload-Checksum: <algorithm> <base64 digest>`. An unsupported algorithm is its own
/// error (the protocol answers it with 400).
pub fn parse_checksum(value: &str) -> Result<Checksum, HeaderError> {
    const H: &str = "Upload-Checksum";
    let mut parts = value.trim().splitn(2, ' ');
    let name = parts.next().unwrap_or_default();
    let Some(encoded) = parts.next() else {
        return Err(HeaderError::new(
            H,
            "must be `<algorithm> <base64 digest>`, e.g. `sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=`",
        ));
    };
    let (algorithm, len) = match name {
        "sha1" => (ChecksumAlgorithm::Sha1, 20),
        "sha256" => (ChecksumAlgorithm::Sha256, 32),
        "md5" => (ChecksumAlgorithm::Md5, 16),
        other => {
            return Err(HeaderError::new(
                H,
                format!("algorithm {other:?} is not supported; use one of {CHECKSUM_ALGORITHMS}"),
            ));
        }
    };
    let digest = STANDARD
        .decode(encoded.trim())
        .map_err(|_| HeaderError::new(H, "the digest is not base64"))?;
    if digest.len() != len {
        return Err(HeaderError::new(
            H,
            format!(
                "a {name} digest has {len} bytes, this one has {}",
                digest.len()
            ),
        ));
    }
    Ok(Checksum { algorithm, digest })
}

/// `Upload-Concat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concat {
    /// `partial`: a part of a later concatenation.
    Partial,
    /// `final;<url> <url> ...`: the concatenation of these partial uploads, in order (their
    /// ids, taken from the last path segment of each URL).
    Final(Vec<String>),
}

/// Parses `Upload-Concat`.
pub fn parse_concat(value: &str) -> Result<Concat, HeaderError> {
    const H: &str = "Upload-Concat";
    let value = value.trim();
    if value == "partial" {
        return Ok(Concat::Partial);
    }
    let Some(list) = value.strip_prefix("final;") else {
        return Err(HeaderError::new(
            H,
            "must be `partial` or `final;<upload URL> <upload URL> ...`",
        ));
    };
    let ids: Vec<String> = list
        .split(' ')
        .filter(|u| !u.is_empty())
        .map(|url| {
            let path = url.split(['?', '#']).next().unwrap_or_default();
            path.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    if ids.is_empty() || ids.iter().any(String::is_empty) {
        return Err(HeaderError::new(
            H,
            "a final upload names at least one partial upload URL",
        ));
    }
    Ok(Concat::Final(ids))
}

/// An HTTP date (`Upload-Expires`) of a unix time in milliseconds: RFC 9110's IMF-fixdate.
pub fn http_date(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    httpdate::fmt_http_date(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_plain_digits() {
        assert_eq!(parse_size("Upload-Length", "0"), Ok(0));
        assert_eq!(parse_size("Upload-Length", "1048576"), Ok(1_048_576));
        for bad in ["", "-1", "+1", "1.0", " 1", "0x10", "99999999999999999999"] {
            let e = parse_size("Upload-Length", bad).expect_err("the input is refused");
            assert_eq!(e.header, "Upload-Length", "{bad}");
        }
    }

    #[test]
    fn metadata_pairs_decode() {
        let pairs = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential")
            .expect("the input is valid");
        assert_eq!(
            metadata_text(&pairs, "filename").as_deref(),
            Some("world_domination_plan.pdf")
        );
        assert_eq!(
            pairs[1],
            MetadataPair {
                key: "is_confidential".into(),
                value: None
            }
        );
        assert!(parse_metadata("").expect("the input is valid").is_empty());
        assert!(parse_metadata("a !!!").is_err());
        assert!(parse_metadata("a YQ==,a Yg==").is_err());
        assert!(parse_metadata("a YQ== Yg==").is_err());
    }

    #[test]
    fn checksums_name_algorithm_and_length() {
        let c = parse_checksum("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").expect("the input is valid");
        assert_eq!(c.algorithm, ChecksumAlgorithm::Sha1);
        assert_eq!(c.digest.len(), 20);
        assert!(
            parse_checksum("crc32 AAAA")
                .expect_err("the input is refused")
                .message
                .contains("not supported")
        );
        assert!(
            parse_checksum("sha256 Kq5sNclPz7QV2+lfQIuc6R7oRu0=")
                .expect_err("the input is refused")
                .message
                .contains("32 bytes")
        );
        assert!(parse_checksum("md5").is_err());
    }

    #[test]
    fn concat_takes_ids_from_urls() {
        assert_eq!(parse_concat("partial"), Ok(Concat::Partial));
        assert_eq!(
            parse_concat("final;/api/v1/files/tus/a http://h/api/v1/files/tus/b/")
                .expect("the input is valid"),
            Concat::Final(vec!["a".into(), "b".into()])
        );
        assert!(parse_concat("final;").is_err());
        assert!(parse_concat("whole").is_err());
    }

    #[test]
    fn dates_are_imf_fixdate() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
