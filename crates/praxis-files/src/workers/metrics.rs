//! The file storage's metric families.

use praxis_infra::MetricDoc;

/// Bytes received into uploads (PATCH bodies, simple uploads).
pub const BYTES_IN: &str = "praxis_files_upload_bytes_total";
/// Bytes sent by downloads.
pub const BYTES_OUT: &str = "praxis_files_download_bytes_total";
/// Completed files, by whether their content was already stored (`dedup`: `true`/`false`).
pub const COMPLETED: &str = "praxis_files_completed_total";
/// Sweeper actions, by `action` (`expired_upload`, `expired_file`, `cold`).
pub const SWEPT: &str = "praxis_files_swept_total";
/// Scanner verdicts, by `verdict` (`ready`, `quarantined`, `error`).
pub const SCANNED: &str = "praxis_files_scanned_total";

/// Every family, with its help text.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(BYTES_IN, "Bytes received into uploads."),
    MetricDoc::counter(BYTES_OUT, "Bytes sent by downloads."),
    MetricDoc::counter(
        COMPLETED,
        "Completed files, by whether their content was already stored (dedup).",
    ),
    MetricDoc::counter(SWEPT, "Lifecycle actions of the sweeper, by action."),
    MetricDoc::counter(SCANNED, "Scanner verdicts, by verdict."),
];
