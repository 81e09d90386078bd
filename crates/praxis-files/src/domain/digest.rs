//! Digests: a whole file's BLAKE3 and SHA-256 (computed as its bytes stream in), and the
//! per-PATCH checksum of the tus checksum extension.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::tus::{Checksum, ChecksumAlgorithm};

/// A file's BLAKE3 (its content address), fed in order as its bytes stream in. (Its SHA-256
/// is computed after completion, off the upload path: see `workers::checksums`.)
#[derive(Clone)]
pub struct FileDigests {
    blake3: blake3::Hasher,
}

impl std::fmt::Debug for FileDigests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileDigests(..)")
    }
}

impl Default for FileDigests {
    fn default() -> Self {
        Self {
            blake3: blake3::Hasher::new(),
        }
    }
}

impl FileDigests {
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.blake3.update(bytes);
    }

    /// The BLAKE3 of everything fed, in lowercase hex.
    pub fn finish(self) -> String {
        self.blake3.finalize().to_hex().to_string()
    }
}

/// The digest of one PATCH body, to compare with its `Upload-Checksum`.
#[derive(Clone)]
pub enum ChunkDigest {
    /// SHA-1.
    Sha1(Sha1),
    /// SHA-256.
    Sha256(Sha256),
    /// MD5.
    Md5(Md5),
}

impl std::fmt::Debug for ChunkDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkDigest(..)")
    }
}

impl ChunkDigest {
    /// A digest of the algorithm `checksum` names.
    pub fn for_checksum(checksum: &Checksum) -> Self {
        match checksum.algorithm {
            ChecksumAlgorithm::Sha1 => ChunkDigest::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChunkDigest::Sha256(Sha256::new()),
            ChecksumAlgorithm::Md5 => ChunkDigest::Md5(Md5::new()),
        }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            ChunkDigest::Sha1(d) => d.update(bytes),
            ChunkDigest::Sha256(d) => d.update(bytes),
            ChunkDigest::Md5(d) => d.update(bytes),
        }
    }

    /// Whether everything fed has the digest `expected`.
    pub fn matches(self, expected: &[u8]) -> bool {
        let got: Vec<u8> = match self {
            ChunkDigest::Sha1(d) => d.finalize().to_vec(),
            ChunkDigest::Sha256(d) => d.finalize().to_vec(),
            ChunkDigest::Md5(d) => d.finalize().to_vec(),
        };
        got == expected
    }
}

/// SHA-256 of a content, fed in order.
#[derive(Clone, Default)]
pub struct Sha256Digest(Sha256);

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256Digest(..)")
    }
}

impl Sha256Digest {
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The SHA-256 of everything fed, in lowercase hex.
    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tus::parse_checksum;

    #[test]
    fn file_digests_of_known_input() {
        let mut d = FileDigests::default();
        d.update(b"ab");
        d.update(b"c");
        assert_eq!(d.finish(), blake3::hash(b"abc").to_hex().to_string());
    }

    #[test]
    fn sha256_of_known_input() {
        let mut d = Sha256Digest::default();
        d.update(b"ab");
        d.update(b"c");
        assert_eq!(
            d.finish(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn chunk_checksums_match_their_algorithm() {
        // sha1("hello") and md5("hello"), base64.
        for header in [
            "sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00=",
            "md5 XUFAKrxLKna5cZ2REBfFkg==",
        ] {
            let c = parse_checksum(header).expect("the input is valid");
            let mut d = ChunkDigest::for_checksum(&c);
            d.update(b"hel");
            d.update(b"lo");
            assert!(d.clone().matches(&c.digest), "{header}");
            d.update(b"!");
            assert!(!d.matches(&c.digest), "{header}");
        }
    }
}
