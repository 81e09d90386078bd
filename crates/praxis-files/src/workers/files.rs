//! Files: read, list, delete (with the blob's reference count), open for download, public
//! links and signed URLs.

use std::net::IpAddr;
use std::ops::Range;

use praxis_infra::blobs::ByteStream;
use praxis_infra::sql::now_ms;

use super::Files;
use crate::domain::model::{FileMeta, FileStatus};
use crate::domain::signed::{Grant, Refusal};
use crate::error::FilesError;
use crate::store::Link;

/// How a download is authorised.
#[derive(Debug, Clone)]
pub enum Access<'a> {
    /// The owner (an authenticated caller).
    Owner(&'a str),
    /// A signed URL: its grant and signature, checked against the request.
    Signed {
        /// The grant the query states.
        grant: Grant,
        /// Its signature.
        sig: &'a str,
        /// The request's method.
        method: &'a str,
        /// The client's address.
        client: Option<IpAddr>,
    },
    /// A public link's token.
    Link(&'a str),
}

impl Files {
    /// File `id` of `owner` (404 otherwise).
    pub async fn file_of(&self, owner: &str, id: &str) -> Result<FileMeta, FilesError> {
        self.store
            .file(id)
            .await?
            .filter(|f| f.owner == owner)
            .ok_or_else(|| FilesError::NotFound(format!("no file {id} among yours")))
    }

    /// A page of `owner`'s files, newest first.
    pub async fn list(
        &self,
        owner: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<FileMeta>, FilesError> {
        Ok(self.store.list_files(owner, after, limit).await?)
    }

    /// Deletes file `id` of `owner`; its content goes when no other file uses it.
    pub async fn delete_file(&self, owner: &str, id: &str) -> Result<(), FilesError> {
        let deleted = self
            .store
            .delete_file(id, Some(owner))
            .await?
            .ok_or_else(|| FilesError::NotFound(format!("no file {id} among yours")))?;
        self.drop_orphan(deleted.orphan).await;
        Ok(())
    }

    /// Deletes the object of a content no file refers to anymore (its row is gone).
    pub(crate) async fn drop_orphan(&self, orphan: Option<(String, String)>) {
        let Some((key, tier)) = orphan else { return };
        let store = match (tier.as_str(), &self.cold) {
            ("cold", Some(cold)) => cold,
            _ => &self.blobs,
        };
        if let Err(e) = store.delete(&key).await {
            tracing::warn!(key = %key, error = %e, "an unreferenced blob was not deleted; it stays in the store");
        }
    }

    /// The file a download names, if `access` allows it: the owner, a valid signed URL, or a
    /// live public link. A file that is not `ready` (pending its scan, quarantined) is not
    /// served.
    pub async fn authorise(
        &self,
        id: Option<&str>,
        access: Access<'_>,
    ) -> Result<FileMeta, FilesError> {
        let file = match access {
            Access::Owner(owner) => {
                let id = id.unwrap_or_default();
                self.file_of(owner, id).await?
            }
            Access::Signed {
                grant,
                sig,
                method,
                client,
            } => {
                self.signer
                    .check(&grant, sig, method, client, now_ms() / 1000)
                    .map_err(|r| match r {
                        Refusal::Expired(_) => FilesError::Forbidden(r.to_string()),
                        _ => FilesError::Forbidden(r.to_string()),
                    })?;
                self.store.file(&grant.file_id).await?.ok_or_else(|| {
                    FilesError::NotFound(format!("file {} was deleted", grant.file_id))
                })?
            }
            Access::Link(token) => {
                let link = self
                    .store
                    .link(token)
                    .await?
                    .ok_or_else(|| FilesError::NotFound("no such link".to_owned()))?;
                if link.revoked_at.is_some() {
                    return Err(FilesError::Gone(
                        "this link was revoked by the file's owner".to_owned(),
                    ));
                }
                if link.expires_at.is_some_and(|at| at < now_ms()) {
                    return Err(FilesError::Gone("this link expired".to_owned()));
                }
                self.store
                    .file(&link.file_id)
                    .await?
                    .ok_or_else(|| FilesError::NotFound("the linked file was deleted".to_owned()))?
            }
        };
        match file.status {
            FileStatus::Ready => Ok(file),
            FileStatus::Pending => Err(FilesError::Conflict(
                "file-pending",
                format!("file {} is waiting for its scan; retry shortly", file.id),
            )),
            FileStatus::Quarantined => Err(FilesError::Forbidden(format!(
                "file {} was quarantined by the scanner and cannot be downloaded",
                file.id
            ))),
        }
    }

    /// Streams bytes `range` of `file`'s content, from whichever tier holds it.
    pub async fn read_content(
        &self,
        file: &FileMeta,
        range: Range<u64>,
    ) -> Result<ByteStream, FilesError> {
        if range.is_empty() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let blob = self.store.blob(&file.blake3).await?.ok_or_else(|| {
            FilesError::NotFound(format!("the content of file {} is gone", file.id))
        })?;
        let store = match (blob.tier.as_str(), &self.cold) {
            ("cold", Some(cold)) => cold,
            _ => &self.blobs,
        };
        Ok(store.read(&blob.blob_key, range).await?)
    }

    /// [`Files::read_content`] for a download: counted in the bytes sent.
    pub async fn open(&self, file: &FileMeta, range: Range<u64>) -> Result<ByteStream, FilesError> {
        let len = range.end.saturating_sub(range.start);
        let body = self.read_content(file, range).await?;
        metrics::counter!(super::metrics::BYTES_OUT).increment(len);
        Ok(body)
    }

    /// A signed URL's query for `file` of `owner`, valid for `ttl_s` seconds (at most the
    /// setting), bound to a method and address when given.
    pub async fn sign(
        &self,
        owner: &str,
        id: &str,
        ttl_s: u64,
        method: Option<String>,
        ip: Option<IpAddr>,
    ) -> Result<(String, i64), FilesError> {
        let file = self.file_of(owner, id).await?;
        let max = self.settings.signed_url_max_ttl.as_secs();
        if ttl_s == 0 || ttl_s > max {
            return Err(FilesError::field(
                "expires_in",
                format!("must be from 1 to {max} seconds (signed_url_max_ttl)"),
            ));
        }
        let expires = now_ms() / 1000 + i64::try_from(ttl_s).unwrap_or(0);
        let grant = Grant {
            file_id: file.id,
            expires,
            method,
            ip,
        };
        Ok((self.signer.query(&grant), expires))
    }

    /// Creates a public link to `file` of `owner`, valid until `expires_at` (unix ms) or
    /// revoked.
    pub async fn create_link(
        &self,
        owner: &str,
        id: &str,
        expires_at: Option<i64>,
    ) -> Result<Link, FilesError> {
        let file = self.file_of(owner, id).await?;
        let token = {
            let a = uuid::Uuid::new_v4();
            let b = uuid::Uuid::new_v4();
            crate::domain::digest::hex(&[a.as_bytes().as_slice(), b.as_bytes().as_slice()].concat())
        };
        let link = Link {
            token,
            file_id: file.id,
            owner: owner.to_owned(),
            created_at: now_ms(),
            expires_at,
            revoked_at: None,
        };
        self.store.create_link(&link).await?;
        Ok(link)
    }

    /// Revokes public link `token` of `owner`.
    pub async fn revoke_link(&self, owner: &str, token: &str) -> Result<(), FilesError> {
        if self.store.revoke_link(token, owner, now_ms()).await? {
            Ok(())
        } else {
            Err(FilesError::NotFound("no such link among yours".to_owned()))
        }
    }
}
