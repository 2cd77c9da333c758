//! Rows and SQL: records and tokens to and from rows, and list queries
//! (every filter operator, sorting, references one level deeper) as SQL.

use grantry_core::access::Role;
use grantry_core::filter::{Condition, FilterValue, Op, Sort, Target};
use grantry_core::ports::{ApiToken, StoreError};
use grantry_core::{parse_timestamp, Id, Kind, Origin, Record, Sealed};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub(super) const COLUMNS: &str =
    "id, kind, type, namespace, name, parent_id, data, secrets, origin, created_at, updated_at";

/// Times are stored as `timestamp` text (fixed width, so text order is time order).
pub(super) fn time_column(row: &SqliteRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    let text: String = row.try_get(column).map_err(backend)?;
    parse_timestamp(&text).ok_or_else(|| StoreError::Backend(format!("{column} is not a time in storage: {text}")))
}

pub(super) fn optional_time_column(row: &SqliteRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    let text: Option<String> = row.try_get(column).map_err(backend)?;
    text.map(|t| {
        parse_timestamp(&t).ok_or_else(|| StoreError::Backend(format!("{column} is not a time in storage: {t}")))
    })
    .transpose()
}

pub(super) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(super) fn kind_key(kind: Kind) -> &'static str {
    kind.singular()
}

pub(super) fn kind_from(s: &str) -> Result<Kind, StoreError> {
    Kind::ALL
        .into_iter()
        .find(|k| kind_key(*k) == s)
        .ok_or_else(|| StoreError::Backend(format!("unknown kind {s} in storage")))
}

pub(super) fn map_write_error(e: sqlx::Error, kind: Kind) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        let message = db.message();
        if message.contains("UNIQUE constraint failed") {
            return StoreError::Duplicate(kind);
        }
        if message.contains("FOREIGN KEY constraint failed") {
            return StoreError::MissingReference;
        }
    }
    backend(e)
}

pub(super) fn row_to_record(row: &SqliteRow) -> Result<Record, StoreError> {
    let kind = kind_from(row.try_get::<&str, _>("kind").map_err(backend)?)?;
    let data: Map<String, Value> = serde_json::from_str(row.try_get::<&str, _>("data").map_err(backend)?)
        .map_err(|e| StoreError::Backend(format!("damaged data document: {e}")))?;
    let secrets: BTreeMap<String, String> =
        serde_json::from_str(row.try_get::<&str, _>("secrets").map_err(backend)?)
            .map_err(|e| StoreError::Backend(format!("damaged secrets document: {e}")))?;
    Ok(Record {
        id: Id::from_string(row.try_get::<String, _>("id").map_err(backend)?),
        kind,
        rtype: {
            let text: &str = row.try_get("type").map_err(backend)?;
            kind.parse_type(text)
                .ok_or_else(|| StoreError::Backend(format!("unknown {kind} type {text} in storage")))?
        },
        namespace: row.try_get("namespace").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        data,
        refs: BTreeMap::new(),
        secrets: secrets.into_iter().map(|(k, v)| (k, Sealed(v))).collect(),
        origin: {
            let text: &str = row.try_get("origin").map_err(backend)?;
            Origin::parse(text).ok_or_else(|| StoreError::Backend(format!("unknown origin {text} in storage")))?
        },
        created_at: time_column(row, "created_at")?,
        updated_at: time_column(row, "updated_at")?,
    })
}

pub(super) const TOKEN_COLUMNS: &str = "id, name, role, token_hash, created_at, expires_at";

pub(super) fn row_to_token(row: &SqliteRow) -> Result<ApiToken, StoreError> {
    let role: String = row.try_get("role").map_err(backend)?;
    Ok(ApiToken {
        id: Id::from_string(row.try_get::<String, _>("id").map_err(backend)?),
        name: row.try_get("name").map_err(backend)?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Backend(format!("unknown role {role} in storage")))?,
        token_hash: row.try_get("token_hash").map_err(backend)?,
        created_at: time_column(row, "created_at")?,
        expires_at: optional_time_column(row, "expires_at")?,
    })
}

pub(super) fn secrets_json(record: &Record) -> String {
    let map: BTreeMap<&str, &str> = record.secrets.iter().map(|(k, v)| (k.as_str(), v.0.as_str())).collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

pub(super) fn data_json(record: &Record) -> String {
    serde_json::to_string(&record.data).unwrap_or_else(|_| "{}".into())
}

/// Writes a record's references; `replace` drops the ones it had (an update).
pub(super) async fn write_refs(
    tx: &mut Transaction<'_, Sqlite>,
    record: &Record,
    replace: bool,
) -> Result<(), StoreError> {
    if replace {
        sqlx::query("DELETE FROM record_refs WHERE from_id = ?")
            .bind(record.id.as_str())
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    for (field, ids) in &record.refs {
        for (position, to) in ids.iter().enumerate() {
            sqlx::query("INSERT INTO record_refs (from_id, field, position, to_id) VALUES (?, ?, ?, ?)")
                .bind(record.id.as_str())
                .bind(field)
                .bind(position as i64)
                .bind(to.as_str())
                .execute(&mut **tx)
                .await
                .map_err(|e| map_write_error(e, record.kind))?;
        }
    }
    Ok(())
}

/// Appends the SQL of one condition on the alias `r<depth>`; a condition on a
/// referenced record becomes a sub-select over `record_refs`, one level deeper.
pub(super) fn push_condition(q: &mut QueryBuilder<'_, Sqlite>, c: &Condition, depth: usize) {
    let alias = format!("r{depth}");
    match &c.target {
        Target::Ref { field, inner, .. } => {
            let inner_alias = format!("r{}", depth + 1);
            q.push(format!(
                "{alias}.id IN (SELECT rr.from_id FROM record_refs rr JOIN records {inner_alias} ON {inner_alias}.id = rr.to_id WHERE rr.field = "
            ));
            q.push_bind(*field);
            q.push(" AND ");
            let inner_condition = Condition { target: (**inner).clone(), op: c.op, value: c.value.clone() };
            push_condition(q, &inner_condition, depth + 1);
            q.push(")");
        }
        Target::Secret(field) => {
            let wanted = matches!(c.value, FilterValue::Bool(true));
            q.push(format!("json_extract({alias}.secrets, '$.{field}') IS {}NULL", if wanted { "NOT " } else { "" }));
        }
        // Column and field names come from the kind's field table, never from the request.
        Target::Column(col) => push_comparison(q, &format!("{alias}.{col}"), c),
        Target::Data(field) => push_comparison(q, &format!("json_extract({alias}.data, '$.{field}')"), c),
    }
}

pub(super) fn like_pattern(value: &str, prefix: bool, suffix: bool) -> String {
    let escaped = value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("{}{escaped}{}", if prefix { "%" } else { "" }, if suffix { "%" } else { "" })
}

pub(super) fn push_comparison(q: &mut QueryBuilder<'_, Sqlite>, expr: &str, c: &Condition) {
    let text = match &c.value {
        FilterValue::Text(t) => t.clone(),
        FilterValue::Bool(b) => b.to_string(),
        FilterValue::List(items) => items.join(","),
        FilterValue::Bools(items) => items.iter().map(bool::to_string).collect::<Vec<_>>().join(","),
    };
    match (c.op, &c.value) {
        (Op::Exists, FilterValue::Bool(true)) => {
            q.push(format!("({expr} IS NOT NULL AND {expr} <> '')"));
        }
        (Op::Exists, _) => {
            q.push(format!("({expr} IS NULL OR {expr} = '')"));
        }
        (Op::In, FilterValue::List(items)) => {
            q.push(format!("{expr} IN ("));
            let mut sep = q.separated(", ");
            for item in items {
                sep.push_bind(item.clone());
            }
            q.push(")");
        }
        (Op::In, FilterValue::Bools(items)) => {
            q.push(format!("{expr} IN ("));
            let mut sep = q.separated(", ");
            for item in items {
                sep.push_bind(i64::from(*item));
            }
            q.push(")");
        }
        (op, value) => {
            let sql_op = match op {
                Op::Eq | Op::In => "=",
                Op::Ne => "IS NOT",
                Op::Gt => ">",
                Op::Gte => ">=",
                Op::Lt => "<",
                Op::Lte => "<=",
                Op::Contains | Op::StartsWith | Op::EndsWith => "LIKE",
                Op::Exists => "=",
            };
            q.push(format!("{expr} {sql_op} "));
            match (op, value) {
                (Op::Contains, _) => q.push_bind(like_pattern(&text, true, true)),
                (Op::StartsWith, _) => q.push_bind(like_pattern(&text, false, true)),
                (Op::EndsWith, _) => q.push_bind(like_pattern(&text, true, false)),
                (_, FilterValue::Bool(b)) => q.push_bind(i64::from(*b)),
                _ => q.push_bind(text),
            };
            if matches!(op, Op::Contains | Op::StartsWith | Op::EndsWith) {
                q.push(" ESCAPE '\\'");
            }
        }
    }
}

pub(super) fn push_where(q: &mut QueryBuilder<'_, Sqlite>, kind: Kind, conditions: &[Condition]) {
    q.push(" WHERE r0.kind = ");
    q.push_bind(kind_key(kind));
    for c in conditions {
        q.push(" AND ");
        push_condition(q, c, 0);
    }
}

pub(super) fn push_order(q: &mut QueryBuilder<'_, Sqlite>, sorts: &[Sort]) {
    q.push(" ORDER BY ");
    for s in sorts {
        let expr = match &s.target {
            Target::Column(col) => format!("r0.{col}"),
            Target::Data(field) => format!("json_extract(r0.data, '$.{field}')"),
            _ => continue,
        };
        q.push(format!("{expr} {}, ", if s.descending { "DESC" } else { "ASC" }));
    }
    // Ids are UUID v7: a stable tie-breaker in creation order.
    q.push("r0.id ASC");
}

pub(super) fn prefixed_columns() -> String {
    COLUMNS.split(", ").map(|c| format!("r0.{c}")).collect::<Vec<_>>().join(", ")
}
