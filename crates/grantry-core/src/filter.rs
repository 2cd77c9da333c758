//! List queries: filter conditions, sorting and paging (docs/concepts.md §2), parsed from
//! the query string or from a JSON filter object, checked against the kind's fields.

use serde_json::Value;

use crate::{Error, FieldType, Kind};

pub const MAX_PER_PAGE: u32 = 100;
pub const DEFAULT_PER_PAGE: u32 = 25;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Contains,
    StartsWith,
    EndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Exists,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Eq,
        Op::Ne,
        Op::Contains,
        Op::StartsWith,
        Op::EndsWith,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::In,
        Op::Exists,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::In => "in",
            Op::Exists => "exists",
        }
    }
    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == s)
    }
}

/// What a condition or a sort looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A column every record has: id, type, namespace, name, origin, created_at, updated_at.
    Column(&'static str),
    /// A scalar field of the record's data document.
    Data(&'static str),
    /// Whether a secret field is set (only `exists`).
    Secret(&'static str),
    /// A field of a referenced record: `provider.namespace`.
    Ref { field: &'static str, kind: Kind, inner: Box<Target> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum FilterValue {
    Text(String),
    Bool(bool),
    List(Vec<String>),
    /// `in` on a boolean field.
    Bools(Vec<bool>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub target: Target,
    pub op: Op,
    pub value: FilterValue,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sort {
    pub target: Target,
    pub descending: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    pub conditions: Vec<Condition>,
    pub sorts: Vec<Sort>,
    pub page: u32,
    pub per_page: u32,
}

const COLUMNS: &[&str] = &["id", "type", "namespace", "name", "origin", "created_at", "updated_at"];

/// Whether a data field holds booleans, so that "true" compares as a boolean.
fn is_bool_field(kind: Kind, name: &str) -> bool {
    kind.field(name).is_some_and(|f| f.ty == FieldType::Bool)
}

fn resolve(kind: Kind, path: &str, for_sort: bool) -> Result<Target, Error> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if let Some(col) = COLUMNS.iter().find(|c| **c == head) {
        if rest.is_none() && (kind.has_origin() || *col != "origin") {
            return Ok(Target::Column(col));
        }
    }
    let field = kind.field(head).filter(|f| !f.is_column());
    match (field.map(|f| (f.name, f.ty)), rest) {
        (Some((name, FieldType::Reference(target) | FieldType::References(target))), Some(rest)) if !for_sort => {
            Ok(Target::Ref { field: name, kind: target, inner: Box::new(resolve(target, rest, false)?) })
        }
        (Some((name, FieldType::Secret)), None) if !for_sort => Ok(Target::Secret(name)),
        (Some((name, ty)), None) if ty.is_scalar() => Ok(Target::Data(name)),
        _ => Err(Error::BadRequest(format!(
            "{kind} cannot be {} by `{path}`; use one of: {}",
            if for_sort { "sorted" } else { "filtered" },
            usable_paths(kind, for_sort).join(", ")
        ))),
    }
}

fn usable_paths(kind: Kind, for_sort: bool) -> Vec<String> {
    let mut out: Vec<String> =
        COLUMNS.iter().filter(|c| kind.has_origin() || **c != "origin").map(|c| (*c).to_owned()).collect();
    for field in kind.fields() {
        match field.ty {
            _ if field.is_column() => {}
            FieldType::Reference(k) | FieldType::References(k) if !for_sort => {
                out.push(format!("{}.<field of {k}>", field.name));
            }
            FieldType::Secret if !for_sort => out.push(format!("{} (exists only)", field.name)),
            ty if ty.is_scalar() => out.push(field.name.to_owned()),
            _ => {}
        }
    }
    out
}

fn innermost(target: &Target) -> &Target {
    match target {
        Target::Ref { inner, .. } => innermost(inner),
        other => other,
    }
}

fn innermost_kind(kind: Kind, target: &Target) -> Kind {
    match target {
        Target::Ref { kind, inner, .. } => innermost_kind(*kind, inner),
        _ => kind,
    }
}

/// Parses one `field[op]` key and its value.
pub fn parse_condition(kind: Kind, key: &str, value: &str) -> Result<Condition, Error> {
    let (path, op) = match key.strip_suffix(']').and_then(|k| k.split_once('[')) {
        Some((path, op)) => {
            let op = Op::parse(op).ok_or_else(|| {
                Error::BadRequest(format!(
                    "unknown filter operator `{op}` in `{key}`; use one of: {}",
                    Op::ALL.map(Op::as_str).join(", ")
                ))
            })?;
            (path, op)
        }
        None => (key, Op::Eq),
    };
    let target = resolve(kind, path, false)?;
    if matches!(innermost(&target), Target::Secret(_)) && op != Op::Exists {
        return Err(Error::BadRequest(format!("`{path}` is a secret field: only `{path}[exists]` can filter on it")));
    }
    let value = match op {
        Op::Exists => FilterValue::Bool(parse_bool(key, value)?),
        Op::In => {
            let values: Vec<String> = value.split(',').map(|v| v.trim().to_owned()).collect();
            if values.len() > MAX_IN_VALUES {
                return Err(Error::BadRequest(format!(
                    "`{key}` lists {} values; `in` takes at most {MAX_IN_VALUES}",
                    values.len()
                )));
            }
            match innermost(&target) {
                Target::Data(name) if is_bool_field(innermost_kind(kind, &target), name) => {
                    FilterValue::Bools(values.iter().map(|v| parse_bool(key, v)).collect::<Result<Vec<_>, _>>()?)
                }
                _ => FilterValue::List(values),
            }
        }
        _ => match innermost(&target) {
            Target::Data(name) if is_bool_field(innermost_kind(kind, &target), name) => {
                FilterValue::Bool(parse_bool(key, value)?)
            }
            _ => FilterValue::Text(value.to_owned()),
        },
    };
    Ok(Condition { target, op, value })
}

/// The most values an `in` condition takes, and all conditions of one query
/// together (a database bounds a statement's parameters).
pub const MAX_IN_VALUES: usize = 1000;
/// The most conditions of one query.
pub const MAX_CONDITIONS: usize = 50;

fn check_size(conditions: &[Condition]) -> Result<(), Error> {
    if conditions.len() > MAX_CONDITIONS {
        return Err(Error::BadRequest(format!(
            "a query takes at most {MAX_CONDITIONS} conditions, not {}",
            conditions.len()
        )));
    }
    let values: usize = conditions
        .iter()
        .map(|c| match &c.value {
            FilterValue::List(v) => v.len(),
            FilterValue::Bools(v) => v.len(),
            _ => 1,
        })
        .sum();
    if values > MAX_IN_VALUES {
        return Err(Error::BadRequest(format!(
            "a query's conditions take at most {MAX_IN_VALUES} values together, not {values}"
        )));
    }
    Ok(())
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::BadRequest(format!("`{key}` takes true or false, not `{other}`"))),
    }
}

/// Parses the query string of a list request.
pub fn parse_list_query(kind: Kind, pairs: &[(String, String)]) -> Result<ListQuery, Error> {
    let mut query = ListQuery { conditions: Vec::new(), sorts: Vec::new(), page: 1, per_page: DEFAULT_PER_PAGE };
    for (key, value) in pairs {
        match key.as_str() {
            "page" => query.page = parse_number(key, value, 1, u32::MAX)?,
            "per_page" => query.per_page = parse_number(key, value, 1, MAX_PER_PAGE)?,
            "sort" => query.sorts = parse_sort(kind, value)?,
            _ => query.conditions.push(parse_condition(kind, key, value)?),
        }
    }
    check_size(&query.conditions)?;
    if query.sorts.is_empty() {
        query.sorts.push(Sort { target: Target::Column("created_at"), descending: true });
    }
    Ok(query)
}

fn parse_number(key: &str, value: &str, min: u32, max: u32) -> Result<u32, Error> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| Error::BadRequest(format!("`{key}` must be a whole number from {min} to {max}, not `{value}`")))
}

/// The most fields a list may be sorted by.
pub const MAX_SORTS: usize = 10;

/// `sort=-updated_at,name`: comma-separated fields, `-` for descending.
pub fn parse_sort(kind: Kind, value: &str) -> Result<Vec<Sort>, Error> {
    if value.split(',').filter(|s| !s.trim().is_empty()).count() > MAX_SORTS {
        return Err(Error::BadRequest(format!("`sort` takes at most {MAX_SORTS} fields")));
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (descending, path) = match s.strip_prefix('-') {
                Some(p) => (true, p),
                None => (false, s),
            };
            Ok(Sort { target: resolve(kind, path, true)?, descending })
        })
        .collect()
}

/// Parses the `{"filter": {...}}` object of bulk delete and export: the same keys
/// as the query string; values may be strings, numbers, booleans or arrays (for `in`).
pub fn parse_filter_object(kind: Kind, filter: &Value) -> Result<Vec<Condition>, Error> {
    let object = filter
        .as_object()
        .ok_or_else(|| Error::BadRequest("`filter` must be an object such as {\"namespace\": \"Slack\"}".into()))?;
    object
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                _ => {
                    return Err(Error::BadRequest(format!("filter `{key}` must be a string, number, boolean or array")))
                }
            };
            parse_condition(kind, key, &text)
        })
        .collect::<Result<Vec<_>, Error>>()
        .and_then(|conditions| check_size(&conditions).map(|()| conditions))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn in_on_a_boolean_field_takes_booleans() {
        let c = parse_condition(Kind::Connection, "authorization_handler[in]", "true, false").unwrap();
        assert_eq!(c.value, FilterValue::Bools(vec![true, false]));
        let c = parse_condition(Kind::Connection, "name[in]", "a,b").unwrap();
        assert_eq!(c.value, FilterValue::List(vec!["a".into(), "b".into()]));
        assert!(parse_condition(Kind::Connection, "authorization_handler[in]", "true,maybe").is_err());
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_documented_list_query_parses() {
        let q = parse_list_query(
            Kind::Client,
            &pairs(&[
                ("page", "2"),
                ("per_page", "10"),
                ("sort", "-updated_at"),
                ("namespace", "Slack"),
                ("name[contains]", "bot"),
                ("provider.namespace", "Slack"),
            ]),
        )
        .unwrap();
        assert_eq!((q.page, q.per_page), (2, 10));
        assert_eq!(q.sorts, vec![Sort { target: Target::Column("updated_at"), descending: true }]);
        assert_eq!(q.conditions.len(), 3);
        assert_eq!(q.conditions[1].op, Op::Contains);
        assert!(matches!(&q.conditions[2].target, Target::Ref { field: "provider", kind: Kind::Provider, .. }));
    }

    #[test]
    fn bad_queries_say_what_is_allowed() {
        let e = parse_list_query(Kind::Provider, &pairs(&[("per_page", "101")])).unwrap_err();
        assert!(e.to_string().contains("1 to 100"));
        let e = parse_list_query(Kind::Provider, &pairs(&[("colour", "red")])).unwrap_err();
        assert!(e.to_string().contains("token_endpoint"), "{e}");
        let e = parse_list_query(Kind::Provider, &pairs(&[("name[like]", "x")])).unwrap_err();
        assert!(e.to_string().contains("starts_with"));
        let e = parse_list_query(Kind::Client, &pairs(&[("secret", "x")])).unwrap_err();
        assert!(e.to_string().contains("secret[exists]"));
        assert!(parse_list_query(Kind::Client, &pairs(&[("secret[exists]", "true")])).is_ok());
    }
}
