//! Records as they are stored, ids, sealed secrets, time, and the ports to the
//! clock and to the sealing keyring.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::{
    AuthMethod, AuthorizationType, GrantType, Kind, Origin, Pkce, ProviderType, RecordType, RefreshStrategy,
    SignatureMethod, Status, TokenMethod,
};

/// An opaque record id (a UUID v7, so ids sort by creation).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    pub fn generate() -> Id {
        Id(uuid::Uuid::now_v7().to_string())
    }
    pub fn from_string(s: impl Into<String>) -> Id {
        Id(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret value sealed by the keyring: text that names its key, never the plaintext.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub String);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// Reads a time written by `timestamp` (or any RFC 3339 time).
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// RFC 3339 in UTC with milliseconds and a `Z`: fixed width, so text order is
/// time order. The one text form of a time, at the edges (JSON, storage).
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// One stored record of any kind.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: Id,
    pub kind: Kind,
    pub rtype: RecordType,
    pub namespace: String,
    pub name: String,
    /// Every non-secret field other than namespace, name and references.
    pub data: Map<String, Value>,
    /// Reference fields, each a list of ids (one for a single reference).
    pub refs: BTreeMap<String, Vec<Id>>,
    /// Sealed secret fields that are set.
    pub secrets: BTreeMap<String, Sealed>,
    pub origin: Origin,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Record {
    /// The record a (parent, name) natural key hangs on: a scope's or client's provider.
    pub fn key_parent(&self) -> Option<&Id> {
        self.kind.key_parent().and_then(|field| self.reference(field))
    }
    pub fn reference(&self, field: &str) -> Option<&Id> {
        self.refs.get(field).and_then(|ids| ids.first())
    }
    /// The authorization type, for records of that kind.
    pub fn authorization_type(&self) -> Option<AuthorizationType> {
        self.rtype.authorization()
    }
    pub fn provider_type(&self) -> Option<ProviderType> {
        self.rtype.provider()
    }
    /// An authorization's status; one without a valid status has none yet.
    pub fn status(&self) -> Status {
        Status::parse(self.text("status")).unwrap_or(Status::Unauthorized)
    }
    /// A field holding a value of a closed set, or its default when unset or unknown.
    pub fn choice<T: Copy>(&self, field: &str, parse: fn(&str) -> Option<T>, default: T) -> T {
        parse(self.text(field)).unwrap_or(default)
    }
    /// When an authorization's access token expires, if known.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.data.get("expires_at").and_then(Value::as_str).and_then(parse_timestamp)
    }
    pub fn grant_type(&self) -> GrantType {
        self.choice("grant_type", GrantType::parse, GrantType::AuthorizationCode)
    }
    /// A provider's refresh strategy. A field cleared with `null` holds none,
    /// and refreshes the standard way, as it always has.
    pub fn refresh_strategy(&self) -> RefreshStrategy {
        self.choice("refresh_token_strategy", RefreshStrategy::parse, RefreshStrategy::Default)
    }
    pub fn pkce(&self) -> Pkce {
        self.choice("pkce", Pkce::parse, Pkce::Auto)
    }
    /// GET (in any case, as older records may hold it) or else POST.
    pub fn token_method(&self) -> TokenMethod {
        TokenMethod::lenient(self.text("token_method"))
    }
    pub fn auth_method(&self) -> AuthMethod {
        self.choice("token_endpoint_auth_method", AuthMethod::parse, AuthMethod::ClientSecretPost)
    }
    pub fn signature_method(&self) -> SignatureMethod {
        self.choice("signature_method", SignatureMethod::parse, SignatureMethod::HmacSha1)
    }
    pub fn text(&self, field: &str) -> &str {
        match field {
            "namespace" => &self.namespace,
            "name" => &self.name,
            _ => self.data.get(field).and_then(Value::as_str).unwrap_or(""),
        }
    }
}

/// How a record is found by people and imports (docs/concepts.md §1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NaturalKey {
    /// Providers and authorizations.
    Namespaced { namespace: String, name: String },
    /// Scopes and clients: unique per provider.
    Child { parent: Id, name: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(data: serde_json::Value) -> Record {
        Record {
            id: Id::generate(),
            kind: Kind::Provider,
            rtype: RecordType::Provider(ProviderType::OAuth2),
            namespace: "N".into(),
            name: "P".into(),
            data: data.as_object().cloned().unwrap_or_default(),
            refs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            origin: Origin::Default,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn typed_fields_read_stored_values_as_the_flows_always_have() {
        // A strategy cleared with null refreshes the standard way; "none" does not.
        assert_eq!(provider(serde_json::json!({})).refresh_strategy(), RefreshStrategy::Default);
        assert_eq!(
            provider(serde_json::json!({"refresh_token_strategy": "none"})).refresh_strategy(),
            RefreshStrategy::None
        );
        // A stored token method is GET in any case, else POST.
        assert_eq!(provider(serde_json::json!({"token_method": "get"})).token_method(), TokenMethod::Get);
        assert_eq!(provider(serde_json::json!({})).token_method(), TokenMethod::Post);
        assert_eq!(provider(serde_json::json!({})).pkce(), Pkce::Auto);
        assert_eq!(provider(serde_json::json!({})).auth_method(), AuthMethod::ClientSecretPost);
    }
}
