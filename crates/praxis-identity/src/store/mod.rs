//! All SQL of the identity system, written once for SQLite and PostgreSQL through sqlx's `Any`
//! driver (`$n` placeholders, `ON CONFLICT`, `RETURNING`; times are unix ms).

pub mod migrations;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use praxis_infra::{Db, InfraError};

use crate::domain::Role;

/// An account row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// UUIDv7 text.
    pub id: String,
    /// Normalized email.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Plan tier.
    pub plan: String,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// Last password change, unix ms.
    pub password_changed_at: i64,
}

/// A refresh token row (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRow {
    /// Row id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Login the token descends from; reuse of a rotated token revokes the whole family.
    pub family_id: String,
    /// Issue time, unix ms.
    pub created_at: i64,
    /// Expiry, unix ms (the family's: rotation does not extend it).
    pub expires_at: i64,
    /// When it was exchanged for a new one.
    pub used_at: Option<i64>,
    /// When it was revoked (logout, password change, reuse detected).
    pub revoked_at: Option<i64>,
}

/// An API key row with its owner's role and plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiKeyRow {
    /// Key id (the part after `prx_`).
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Name given by the owner.
    pub name: String,
    /// BLAKE3 hex of the secret.
    pub secret_hash: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Last use, unix ms (written at most once a minute).
    pub last_used_at: Option<i64>,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// The owner's role.
    pub owner_admin: bool,
    /// The owner's plan.
    pub owner_plan: String,
}

/// A key of the newest-first order of listings: `(created_at, id)`.
pub type ListKey = (i64, String);

const ACCOUNT_COLUMNS: &str =
    "id, email, password_hash, role, plan, created_at, updated_at, password_changed_at";
const REFRESH_COLUMNS: &str =
    "id, account_id, family_id, created_at, expires_at, used_at, revoked_at";
const KEY_COLUMNS: &str = "k.id, k.account_id, k.name, k.secret_hash, k.scopes, k.created_at, \
     k.last_used_at, k.revoked_at, a.role, a.plan";

/// The identity system's SQL. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// A store on a migrated database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Inserts an account unless its email is taken; returns whether it was inserted.
    pub async fn insert_account(&self, a: &Account) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "INSERT INTO identity_accounts (id, email, password_hash, role, plan, created_at, \
             updated_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(&a.id)
        .bind(&a.email)
        .bind(&a.password_hash)
        .bind(a.role.as_str())
        .bind(&a.plan)
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(a.password_changed_at)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The account with this normalized email.
    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, InfraError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM identity_accounts WHERE email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// The account with this id.
    pub async fn account_by_id(&self, id: &str) -> Result<Option<Account>, InfraError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM identity_accounts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Accounts, newest first, strictly after `after`; `limit` rows at most.
    pub async fn list_accounts(
        &self,
        after: Option<&ListKey>,
        limit: u32,
    ) -> Result<Vec<Account>, InfraError> {
        let rows = match after {
            Some((at, id)) => {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM identity_accounts \
                     WHERE created_at < $1 OR (created_at = $1 AND id < $2) \
                     ORDER BY created_at DESC, id DESC LIMIT $3"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(*at)
                    .bind(id)
                    .bind(i64::from(limit))
                    .fetch_all(self.db.pool())
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM identity_accounts \
                     ORDER BY created_at DESC, id DESC LIMIT $1"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(i64::from(limit))
                    .fetch_all(self.db.pool())
                    .await?
            }
        };
        rows.iter().map(account_from_row).collect()
    }

    /// Sets the role and/or plan of an account; returns the changed account.
    pub async fn set_role_plan(
        &self,
        id: &str,
        role: Option<Role>,
        plan: Option<&str>,
        now: i64,
    ) -> Result<Option<Account>, InfraError> {
        let sql = format!(
            "UPDATE identity_accounts SET role = COALESCE($2, role), plan = COALESCE($3, plan), \
             updated_at = $4 WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(role.map(Role::as_str))
            .bind(plan)
            .bind(now)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Replaces the password hash and revokes every refresh token of the account, in one
    /// transaction; returns how many tokens were revoked.
    pub async fn change_password(&self, id: &str, hash: &str, now: i64) -> Result<u64, InfraError> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE identity_accounts SET password_hash = $2, password_changed_at = $3, \
             updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let revoked = sqlx::query(
            "UPDATE identity_refresh_tokens SET revoked_at = $2 \
             WHERE account_id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(revoked)
    }

    /// Upgrades a password hash to current parameters (after a successful login).
    pub async fn rehash_password(&self, id: &str, hash: &str) -> Result<(), InfraError> {
        sqlx::query("UPDATE identity_accounts SET password_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(hash)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Stores a new refresh token (by hash).
    pub async fn insert_refresh(
        conn: &mut AnyConnection,
        row: &RefreshRow,
        token_hash: &str,
    ) -> Result<(), InfraError> {
        sqlx::query(
            "INSERT INTO identity_refresh_tokens (id, account_id, family_id, token_hash, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.id)
        .bind(&row.account_id)
        .bind(&row.family_id)
        .bind(token_hash)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The refresh token with this hash.
    pub async fn refresh_by_hash(
        conn: &mut AnyConnection,
        token_hash: &str,
    ) -> Result<Option<RefreshRow>, InfraError> {
        let sql =
            format!("SELECT {REFRESH_COLUMNS} FROM identity_refresh_tokens WHERE token_hash = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(refresh_from_row).transpose()
    }

    /// Marks a refresh token used unless it already is (or is revoked); returns whether this
    /// call marked it. The conditional update is what makes two concurrent uses of one token
    /// detectable: only one of them can win.
    pub async fn mark_used(
        conn: &mut AnyConnection,
        id: &str,
        now: i64,
    ) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE identity_refresh_tokens SET used_at = $2 \
             WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes every live token of a family; returns how many.
    pub async fn revoke_family(
        conn: &mut AnyConnection,
        family_id: &str,
        now: i64,
    ) -> Result<u64, InfraError> {
        let done = sqlx::query(
            "UPDATE identity_refresh_tokens SET revoked_at = $2 \
             WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// Stores a new API key.
    pub async fn insert_api_key(&self, k: &ApiKeyRow) -> Result<(), InfraError> {
        sqlx::query(
            "INSERT INTO identity_api_keys (id, account_id, name, secret_hash, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.id)
        .bind(&k.account_id)
        .bind(&k.name)
        .bind(&k.secret_hash)
        .bind(k.scopes.join(" "))
        .bind(k.created_at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The API key with this id, with its owner's role and plan.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, InfraError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM identity_api_keys k \
             JOIN identity_accounts a ON a.id = k.account_id WHERE k.id = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// API keys of an account (revoked ones included), newest first, after `after`.
    pub async fn list_api_keys(
        &self,
        account_id: &str,
        after: Option<&ListKey>,
        limit: u32,
    ) -> Result<Vec<ApiKeyRow>, InfraError> {
        let base = format!(
            "SELECT {KEY_COLUMNS} FROM identity_api_keys k \
             JOIN identity_accounts a ON a.id = k.account_id WHERE k.account_id = $1"
        );
        let rows = match after {
            Some((at, id)) => {
                let sql = format!(
                    "{base} AND (k.created_at < $2 OR (k.created_at = $2 AND k.id < $3)) \
                     ORDER BY k.created_at DESC, k.id DESC LIMIT $4"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(account_id)
                    .bind(*at)
                    .bind(id)
                    .bind(i64::from(limit))
                    .fetch_all(self.db.pool())
                    .await?
            }
            None => {
                let sql = format!("{base} ORDER BY k.created_at DESC, k.id DESC LIMIT $2");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(account_id)
                    .bind(i64::from(limit))
                    .fetch_all(self.db.pool())
                    .await?
            }
        };
        rows.iter().map(key_from_row).collect()
    }

    /// Ids of every API key of an account (for cache invalidation after a role change).
    pub async fn api_key_ids(&self, account_id: &str) -> Result<Vec<String>, InfraError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM identity_api_keys WHERE account_id = $1")
                .bind(account_id)
                .fetch_all(self.db.pool())
                .await?,
        )
    }

    /// Revokes a key (idempotent: an already revoked key keeps its first revocation time).
    /// Returns whether a key with this id exists.
    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE identity_api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a use of a key unless one was recorded less than `interval_ms` ago (so a busy
    /// key costs one write a minute, not one per request); returns whether it wrote.
    pub async fn touch_api_key(
        &self,
        id: &str,
        now: i64,
        interval_ms: i64,
    ) -> Result<bool, InfraError> {
        let done = sqlx::query(
            "UPDATE identity_api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - interval_ms)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn account_from_row(row: &AnyRow) -> Result<Account, InfraError> {
    let role: String = row.try_get("role")?;
    Ok(Account {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(&role)
            .ok_or_else(|| InfraError::Codec(format!("identity_accounts.role {role:?}")))?,
        plan: row.try_get("plan")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        password_changed_at: row.try_get("password_changed_at")?,
    })
}

fn refresh_from_row(row: &AnyRow) -> Result<RefreshRow, InfraError> {
    Ok(RefreshRow {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        family_id: row.try_get("family_id")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<ApiKeyRow, InfraError> {
    let scopes: String = row.try_get("scopes")?;
    let role: String = row.try_get("role")?;
    Ok(ApiKeyRow {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        scopes: crate::domain::scopes::split(&scopes),
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
        owner_admin: role == Role::Admin.as_str(),
        owner_plan: row.try_get("plan")?,
    })
}
