//! The one-click unsubscribe's write: the opt-out of a [`Scope`] stored in a subscriber's
//! preferences (the tokens and scopes are in [`crate::domain::unsubscribe`]).

use praxis_infra::InfraError;

use crate::domain::model::Preferences;
use crate::domain::unsubscribe::Scope;
use crate::store::Store;

/// Rounds of the compare-and-set on the preferences before giving up.
const MAX_ROUNDS: usize = 16;

/// Writes the opt-out of `scope` into the preferences of `subscriber_id`: `Ok(None)` when
/// there is no such subscriber, else whether anything changed (a second click changes
/// nothing). A compare-and-set on the stored document, so a concurrent preferences change (or
/// another click) is never lost, on both backends.
pub async fn opt_out(
    store: &Store,
    subscriber_id: &str,
    scope: &Scope,
    now_ms: i64,
) -> Result<Option<bool>, InfraError> {
    let pool = store.db().pool();
    for _ in 0..MAX_ROUNDS {
        let stored: Option<Option<String>> =
            sqlx::query_scalar("SELECT preferences FROM notify_subscribers WHERE id = $1")
                .bind(subscriber_id)
                .fetch_optional(pool)
                .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let mut prefs: Preferences = match &stored {
            Some(text) => serde_json::from_str(text)?,
            None => Preferences::default(),
        };
        if !scope.apply(&mut prefs) {
            return Ok(Some(false));
        }
        let done = sqlx::query(
            "UPDATE notify_subscribers SET preferences = $2, updated_at = $3 \
             WHERE id = $1 AND COALESCE(preferences, '') = $4",
        )
        .bind(subscriber_id)
        .bind(serde_json::to_string(&prefs)?)
        .bind(now_ms)
        .bind(stored.as_deref().unwrap_or(""))
        .execute(pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(Some(true));
        }
        // Changed (or deleted) since it was read: read it again.
    }
    Err(InfraError::Timeout(format!(
        "the preferences of subscriber {subscriber_id:?} kept changing during an unsubscribe; retry"
    )))
}
