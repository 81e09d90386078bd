//! One TLS crypto provider for the whole process: rustls with ring.
//!
//! sqlx, async-nats and lettre are built with ring; reqwest is built without a provider of its
//! own (`rustls-no-provider`), so no second crypto stack (aws-lc-rs) is linked, and rustls
//! never has two providers to choose from. Every HTTP client is built after
//! [`install_crypto_provider`].

use std::sync::Once;

/// Installs ring as the process's default rustls provider (once; later calls do nothing).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_provider_is_ring_and_installing_twice_is_harmless() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        assert!(
            provider
                .cipher_suites
                .iter()
                .any(|s| format!("{:?}", s.suite()).contains("TLS13_AES_128_GCM_SHA256"))
        );
    }
}
