//! The `Store` port on SQLite.

mod rows;

use rows::*;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use grantry_core::filter::{Condition, ListQuery};
use grantry_core::ports::{ApiToken, Notification, NotificationQuery, PendingState, Store, StoreError};
use grantry_core::{timestamp, Id, Kind, NaturalKey, NotificationLevel, Record, Sealed};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` (`sqlite://path`) and
    /// applies the embedded migrations.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Deleted and rewritten content is overwritten, not left in free
            // pages: old ciphertexts, and anything an upgrade moved into them.
            .pragma("secure_delete", "on")
            // Writers queue on SQLite's single write lock instead of failing.
            .busy_timeout(Duration::from_secs(10));
        let lock = migration_lock(url)?;
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await.map_err(backend)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Backend(format!("migrations failed: {e}")))?;
        drop(lock);
        Ok(SqliteStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction that takes SQLite's write lock at its start. A deferred
    /// one that reads before it writes cannot wait for the lock (another writer
    /// committed after its snapshot: `database is locked`); one that starts
    /// with the lock queues on the busy timeout like any single write.
    async fn write_transaction(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)
    }
}

impl SqliteStore {
    /// Fills in the references of the given records.
    async fn load_refs(&self, records: &mut [Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut by_id: BTreeMap<String, BTreeMap<String, Vec<Id>>> = BTreeMap::new();
        // SQLite limits bound parameters per statement: any number of records
        // is read in chunks.
        for chunk in records.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT from_id, field, to_id FROM record_refs WHERE from_id IN (");
            let mut sep = q.separated(", ");
            for r in chunk {
                sep.push_bind(r.id.as_str().to_owned());
            }
            q.push(") ORDER BY from_id, field, position");
            for row in q.build().fetch_all(&self.pool).await.map_err(backend)? {
                let from: String = row.try_get("from_id").map_err(backend)?;
                let field: String = row.try_get("field").map_err(backend)?;
                let to: String = row.try_get("to_id").map_err(backend)?;
                by_id.entry(from).or_default().entry(field).or_default().push(Id::from_string(to));
            }
        }
        for r in records.iter_mut() {
            if let Some(refs) = by_id.remove(r.id.as_str()) {
                r.refs = refs;
            }
        }
        Ok(())
    }

    async fn fetch(&self, mut q: QueryBuilder<'_, Sqlite>) -> Result<Vec<Record>, StoreError> {
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        let mut records = rows.iter().map(row_to_record).collect::<Result<Vec<_>, _>>()?;
        self.load_refs(&mut records).await?;
        Ok(records)
    }
}

/// The file of a `sqlite:` URL: `None` when the URL is not SQLite's,
/// `Some(None)` for an in-memory database.
pub fn database_file(url: &str) -> Option<Option<&str>> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    Some((!path.is_empty() && path != ":memory:").then_some(path))
}

/// Processes starting at the same moment on one database file open and
/// migrate it one after the other: each holds an exclusive lock on
/// `<database>.migrate.lock` meanwhile. (SQLite's migrations take no lock of
/// their own, so a second process would create tables the first just made,
/// and switching a new database to WAL cannot wait for a busy one.)
fn migration_lock(url: &str) -> Result<Option<std::fs::File>, StoreError> {
    let Some(Some(path)) = database_file(url) else {
        return Ok(None);
    };
    let lock = format!("{path}.migrate.lock");
    let fail = |e: std::io::Error| StoreError::Backend(format!("cannot lock {lock} for migrations: {e}"));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock).map_err(fail)?;
    file.lock().map_err(fail)?;
    Ok(Some(file))
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        for record in records {
            sqlx::query(&format!("INSERT INTO records ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
                .bind(record.id.as_str())
                .bind(kind_key(record.kind))
                .bind(record.rtype.as_str())
                .bind(&record.namespace)
                .bind(&record.name)
                .bind(record.key_parent().map(Id::as_str))
                .bind(data_json(record))
                .bind(secrets_json(record))
                .bind(record.origin.as_str())
                .bind(timestamp(record.created_at))
                .bind(timestamp(record.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| map_write_error(e, record.kind))?;
            write_refs(&mut tx, record, false).await?;
        }
        tx.commit().await.map_err(|e| map_write_error(e, Kind::Provider))
    }

    async fn update(&self, record: &Record) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "UPDATE records SET namespace = ?, name = ?, parent_id = ?, data = ?, secrets = ?, origin = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&record.namespace)
        .bind(&record.name)
        .bind(record.key_parent().map(Id::as_str))
        .bind(data_json(record))
        .bind(secrets_json(record))
        .bind(record.origin.as_str())
        .bind(timestamp(record.updated_at))
        .bind(record.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| map_write_error(e, record.kind))?;
        write_refs(&mut tx, record, true).await?;
        tx.commit().await.map_err(|e| map_write_error(e, record.kind))
    }

    async fn get(&self, kind: Kind, id: &Id) -> Result<Option<Record>, StoreError> {
        let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM records r0 WHERE r0.kind = "));
        q.push_bind(kind_key(kind));
        q.push(" AND r0.id = ");
        q.push_bind(id.as_str().to_owned());
        Ok(self.fetch(q).await?.pop())
    }

    async fn get_many(&self, ids: &[Id]) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        // SQLite limits bound parameters per statement; stay well under it.
        for chunk in ids.chunks(500) {
            let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM records r0 WHERE r0.id IN ("));
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.as_str().to_owned());
            }
            q.push(")");
            out.extend(self.fetch(q).await?);
        }
        Ok(out)
    }

    async fn find_by_key(&self, kind: Kind, key: &NaturalKey) -> Result<Option<Record>, StoreError> {
        let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM records r0 WHERE r0.kind = "));
        q.push_bind(kind_key(kind));
        match key {
            NaturalKey::Namespaced { namespace, name } => {
                q.push(" AND r0.parent_id IS NULL AND r0.namespace = ");
                q.push_bind(namespace.clone());
                q.push(" AND r0.name = ");
                q.push_bind(name.clone());
            }
            NaturalKey::Child { parent, name } => {
                q.push(" AND r0.parent_id = ");
                q.push_bind(parent.as_str().to_owned());
                q.push(" AND r0.name = ");
                q.push_bind(name.clone());
            }
        }
        Ok(self.fetch(q).await?.pop())
    }

    async fn list(&self, kind: Kind, query: &ListQuery) -> Result<(Vec<Record>, u64), StoreError> {
        let mut count = QueryBuilder::new("SELECT COUNT(*) AS n FROM records r0");
        push_where(&mut count, kind, &query.conditions);
        let total: i64 = count.build().fetch_one(&self.pool).await.map_err(backend)?.try_get("n").map_err(backend)?;
        let mut q = QueryBuilder::new(format!("SELECT {} FROM records r0", prefixed_columns()));
        push_where(&mut q, kind, &query.conditions);
        push_order(&mut q, &query.sorts);
        q.push(" LIMIT ");
        q.push_bind(i64::from(query.per_page));
        q.push(" OFFSET ");
        q.push_bind((i64::from(query.page) - 1) * i64::from(query.per_page));
        Ok((self.fetch(q).await?, u64::try_from(total).unwrap_or(0)))
    }

    async fn find_all(&self, kind: Kind, conditions: &[Condition]) -> Result<Vec<Record>, StoreError> {
        let mut q = QueryBuilder::new(format!("SELECT {} FROM records r0", prefixed_columns()));
        push_where(&mut q, kind, conditions);
        q.push(" ORDER BY r0.created_at ASC, r0.id ASC");
        self.fetch(q).await
    }

    async fn children(&self, kind: Kind, parents: &[Id]) -> Result<Vec<Id>, StoreError> {
        let mut out = Vec::new();
        for chunk in parents.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM records WHERE kind = ");
            q.push_bind(kind_key(kind));
            q.push(" AND parent_id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.as_str().to_owned());
            }
            q.push(")");
            for row in q.build().fetch_all(&self.pool).await.map_err(backend)? {
                out.push(Id::from_string(row.try_get::<String, _>("id").map_err(backend)?));
            }
        }
        Ok(out)
    }

    async fn delete(&self, ids: &[Id]) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        // The set goes into a temporary table so that any number of ids works
        // and the referrer check and the delete see the same set.
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY)")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM doomed").execute(&mut *tx).await.map_err(backend)?;
        for chunk in ids.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO doomed (id) ");
            q.push_values(chunk, |mut row, id| {
                row.push_bind(id.as_str().to_owned());
            });
            q.build().execute(&mut *tx).await.map_err(backend)?;
        }
        let referrers: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT from_id FROM record_refs WHERE to_id IN (SELECT id FROM doomed) AND from_id NOT IN (SELECT id FROM doomed)",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        if !referrers.is_empty() {
            sqlx::query("DELETE FROM doomed").execute(&mut *tx).await.map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            return Err(StoreError::Referenced(referrers.into_iter().map(Id::from_string).collect()));
        }
        let deleted = sqlx::query("DELETE FROM records WHERE id IN (SELECT id FROM doomed)")
            .execute(&mut *tx)
            .await
            .map_err(|e| map_write_error(e, Kind::Provider))?
            .rows_affected();
        sqlx::query("DELETE FROM doomed").execute(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn insert_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token.id.as_str())
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(&token.token_hash)
        .bind(timestamp(token.created_at))
        .bind(token.expires_at.map(timestamp))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn find_api_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(row_to_token).transpose()
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(row_to_token).collect()
    }

    async fn delete_api_token(&self, id: &Id) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn count_api_tokens(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens").fetch_one(&self.pool).await.map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn insert_state(&self, state: &PendingState) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, authorization_id, code_verifier, return_to, binding_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&state.state_hash)
        .bind(state.authorization_id.as_str())
        .bind(state.code_verifier.as_ref().map(|s| s.0.as_str()))
        .bind(state.return_to.as_deref())
        .bind(state.binding_hash.as_deref())
        .bind(timestamp(state.created_at))
        .bind(timestamp(state.expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| map_write_error(e, Kind::Authorization))?;
        Ok(())
    }

    async fn take_state(&self, state_hash: &str) -> Result<Option<PendingState>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM oauth_states WHERE state_hash = ? RETURNING state_hash, authorization_id, code_verifier, return_to, binding_hash, created_at, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|row| {
            Ok(PendingState {
                state_hash: row.try_get("state_hash").map_err(backend)?,
                authorization_id: Id::from_string(row.try_get::<String, _>("authorization_id").map_err(backend)?),
                code_verifier: row.try_get::<Option<String>, _>("code_verifier").map_err(backend)?.map(Sealed),
                return_to: row.try_get("return_to").map_err(backend)?,
                binding_hash: row.try_get("binding_hash").map_err(backend)?,
                created_at: time_column(&row, "created_at")?,
                expires_at: time_column(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    async fn insert_notification(&self, n: &Notification) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO notifications (id, level, authorization_id, message, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(n.id.as_str())
        .bind(n.level.as_str())
        .bind(n.authorization_id.as_ref().map(Id::as_str))
        .bind(&n.message)
        .bind(timestamp(n.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_notifications(&self, query: &NotificationQuery) -> Result<(Vec<Notification>, u64), StoreError> {
        fn filters<'a>(q: &mut QueryBuilder<'a, Sqlite>, query: &'a NotificationQuery) {
            q.push(" WHERE 1 = 1");
            if let Some(id) = &query.authorization_id {
                q.push(" AND authorization_id = ");
                q.push_bind(id.as_str());
            }
            if let Some(level) = &query.level {
                q.push(" AND level = ");
                q.push_bind(level.as_str());
            }
        }
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) AS n FROM notifications");
        filters(&mut count, query);
        let total: i64 = count.build().fetch_one(&self.pool).await.map_err(backend)?.try_get("n").map_err(backend)?;
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT id, level, authorization_id, message, created_at FROM notifications");
        filters(&mut q, query);
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ");
        q.push_bind(i64::from(query.per_page));
        q.push(" OFFSET ");
        q.push_bind((i64::from(query.page.max(1)) - 1) * i64::from(query.per_page));
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(Notification {
                    id: Id::from_string(row.try_get::<String, _>("id").map_err(backend)?),
                    level: {
                        let text: &str = row.try_get("level").map_err(backend)?;
                        NotificationLevel::parse(text).ok_or_else(|| {
                            StoreError::Backend(format!("unknown notification level {text} in storage"))
                        })?
                    },
                    authorization_id: row
                        .try_get::<Option<String>, _>("authorization_id")
                        .map_err(backend)?
                        .map(Id::from_string),
                    message: row.try_get("message").map_err(backend)?,
                    created_at: time_column(row, "created_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }

    async fn claim_refresh(
        &self,
        id: &Id,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // One statement: insert the lease, or take it over when it has run out.
        let result = sqlx::query(
            "INSERT INTO refresh_leases (authorization_id, holder, until) VALUES (?, ?, ?) \
             ON CONFLICT (authorization_id) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE refresh_leases.until < ?",
        )
        .bind(id.as_str())
        .bind(holder)
        .bind(timestamp(until))
        .bind(timestamp(now))
        .execute(&self.pool)
        .await
        .map_err(|e| map_write_error(e, Kind::Authorization))?;
        Ok(result.rows_affected() == 1)
    }

    async fn release_refresh(&self, id: &Id, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM refresh_leases WHERE authorization_id = ? AND holder = ?")
            .bind(id.as_str())
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}
