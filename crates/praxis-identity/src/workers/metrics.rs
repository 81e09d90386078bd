//! Identity's metric families and their help text.

use praxis_infra::MetricDoc;

/// Every family identity records.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter("praxis_identity_signups_total", "Accounts created."),
    MetricDoc::counter(
        "praxis_identity_logins_total",
        "Password logins, by result (ok, failed).",
    ),
    MetricDoc::counter(
        "praxis_identity_login_limited_total",
        "Logins refused by the brute-force limits, by what was limited (account, ip).",
    ),
    MetricDoc::counter(
        "praxis_identity_refresh_reuse_total",
        "Refresh tokens used twice: their whole family was revoked.",
    ),
    MetricDoc::counter(
        "praxis_identity_api_keys_created_total",
        "API keys created.",
    ),
];
