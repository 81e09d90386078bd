//! praxis-files: file storage for praxis accounts.
//!
//! - tus 1.0.0 resumable uploads with every extension ([`api::tus`]), a simple streamed
//!   `PUT`, and a small multipart form ([`api::files`]).
//! - Bytes stream to the platform's blob store (local disk embedded, S3 scaled) as they
//!   arrive; an upload's offset is durable, so a restart resumes it; a PATCH holds a lease
//!   on its upload, so two processes never append to one upload at once ([`workers::uploads`]).
//! - Content addressing: a file's BLAKE3 decides its blob, stored once and
//!   reference-counted ([`store`]).
//! - Downloads with ranges and validators, signed URLs and revocable public links
//!   ([`api::download`], [`domain::signed`]); quotas per account.
//! - The lifecycle (expired uploads, TTLs, a cold tier) and a scan hook ([`workers`]).
//!
//! [`FilesApp::launch`] wires it onto a [`Platform`]; the binary starts it through
//! [`FilesSystem`].

pub mod api;
pub mod domain;
pub mod error;
pub mod settings;
pub mod store;
mod system;
pub mod workers;

use std::sync::Arc;

use praxis_http::Service;
use praxis_http::client_ip::Cidr;
use praxis_http::system::{Settings, invalid_settings};
use praxis_infra::blobs::Blobs;
use praxis_infra::{InfraError, Platform};

pub use error::FilesError;
pub use settings::FilesSettings;
pub use store::migrations::MIGRATIONS;
pub use system::FilesSystem;
pub use workers::Files;

use crate::domain::signed::Signer;
use crate::store::Store;

/// The running file storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FilesApp {
    files: Files,
    trusted_proxies: Vec<Cidr>,
}

impl FilesApp {
    /// Checks the settings, opens the cold store if one is set, and starts the sweeper and
    /// (with a scanner) the scan worker. The migrations must have been applied.
    pub async fn launch(
        platform: &Platform,
        settings: FilesSettings,
        signing_key: &str,
        trusted_proxies: Vec<Cidr>,
    ) -> Result<FilesApp, InfraError> {
        Settings::validate(&settings).map_err(|e| invalid_settings("files", &e))?;
        let cold = match &settings.cold_url {
            Some(url) => Some(Blobs::open(url, &platform.tls).await?),
            None => None,
        };
        let files = Files::new(
            Store::new(platform.db.clone()),
            platform.blobs.clone(),
            cold,
            Arc::new(settings),
            Signer::new(signing_key.as_bytes()),
        );
        platform.tasks.spawn(workers::sweeper::run(
            files.clone(),
            platform.shutdown.clone(),
        ));
        platform.tasks.spawn(workers::checksums::run(
            files.clone(),
            platform.shutdown.clone(),
        ));
        if files.settings().scan_command.is_some() {
            platform.tasks.spawn(workers::scan::run(
                files.clone(),
                platform.data_dir.join("files-scan"),
                platform.shutdown.clone(),
            ));
        }
        Ok(FilesApp {
            files,
            trusted_proxies,
        })
    }

    /// The use cases (for tests and tools).
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// Its routes and their description.
    pub fn service(&self) -> Service {
        let state = api::AppState::new(self.files.clone(), self.trusted_proxies.clone());
        let (router, doc) = api::router(state);
        Service::new("files", router, doc).with_streaming(api::STREAMING)
    }
}
