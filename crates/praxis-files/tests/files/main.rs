//! Integration suite of the file storage: the same cases on the embedded backend (SQLite,
//! local blobs) and on the scaled one (PostgreSQL, Redis, NATS, S3), driven over HTTP in
//! process, plus outside tus clients over a socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod clients;
mod files;
mod leases;
mod processes;
mod support;
mod tus;

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

praxis_testkit::backend_matrix!(crate::tus: [
    options_advertises_every_extension,
    starts_through_its_plugin,
    upload_in_chunks_then_head_and_download,
    interrupted_patch_keeps_what_arrived_and_resumes,
    checksums_are_verified_and_a_mismatch_is_460,
    expired_uploads_are_410_then_swept,
    partial_uploads_concatenate_into_a_final_one,
    deferred_length_is_set_by_a_later_patch,
    termination_deletes_the_upload,
    creation_with_upload_takes_the_first_bytes,
    protocol_errors_are_named_problems,
    two_patches_at_once_never_corrupt_an_upload,
]);

mod downloads {
    praxis_testkit::backend_matrix!(crate::files: [
        ranges_and_validators,
        signed_urls_expire_and_refuse_tampering,
        public_links_work_until_revoked,
        dedupe_counts_references_under_concurrent_uploads_and_deletes,
        quotas_are_checked_at_creation_and_while_uploading,
        simple_and_form_uploads,
        listing_pages_newest_first,
        files_with_a_ttl_expire,
        old_blobs_move_to_the_cold_store,
        the_scanner_passes_or_quarantines,
        a_pending_file_is_not_served,
    ]);
}

mod lease {
    praxis_testkit::backend_matrix!(crate::leases: [
        a_deferred_length_is_set_only_under_the_lease,
        an_abandoned_completion_is_finished_once_its_lease_expires,
        a_completion_needs_the_lease_token,
        a_concatenation_needs_no_more_quota_than_its_bytes,
        a_file_the_scanner_cannot_decide_does_not_hold_up_the_queue,
    ]);
}

mod outside {
    praxis_testkit::backend_matrix!(crate::clients: [
        tus_js_client_uploads_resumes_and_downloads,
        tuspy_uploads_resumes_and_downloads,
    ]);
}

mod shared {
    praxis_testkit::backend_matrix!(crate::processes: [
        two_processes_serve_one_upload,
    ]);
}
