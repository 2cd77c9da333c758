//! The record kinds, their types, and what a field is (`Field`, `FieldType`).
//! The field tables themselves are in `fields.rs`: the single source for input
//! parsing, validation, filtering, export, the JSON Schema and the OpenAPI
//! document, so that a field added there shows up everywhere with one name.

use std::fmt;

use crate::closed::*;
use crate::fields::*;
use crate::template::Position;

/// A record kind. Its `as_str` is the plural used in URLs and the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Provider,
    Scope,
    Client,
    Authorization,
    Connection,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Provider, Kind::Scope, Kind::Client, Kind::Authorization, Kind::Connection];

    /// The plural path segment: `providers`, `scopes`, `clients`, `authorizations`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Provider => "providers",
            Kind::Scope => "scopes",
            Kind::Client => "clients",
            Kind::Authorization => "authorizations",
            Kind::Connection => "connections",
        }
    }

    /// The singular word used in messages ("provider Slack | Slack").
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Provider => "provider",
            Kind::Scope => "scope",
            Kind::Client => "client",
            Kind::Authorization => "authorization",
            Kind::Connection => "connection",
        }
    }

    /// The title shown in menus and schemas.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Provider => "Authorization Provider",
            Kind::Scope => "OAuth 2.0 Scope",
            Kind::Client => "Authorization Client",
            Kind::Authorization => "Authorization",
            Kind::Connection => "Connection",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The concrete types of this kind. A kind with a single type (scopes) does
    /// not ask for `"type"` in requests.
    pub fn types(self) -> &'static [RecordType] {
        match self {
            Kind::Provider => PROVIDER_TYPES,
            Kind::Scope => &[RecordType::Scope],
            Kind::Client => CLIENT_TYPES,
            Kind::Authorization => AUTHORIZATION_TYPES,
            Kind::Connection => &[RecordType::Connection],
        }
    }

    pub fn has_single_type(self) -> bool {
        self.types().len() == 1
    }

    /// The type of this kind with wire name `name`.
    pub fn parse_type(self, name: &str) -> Option<RecordType> {
        self.types().iter().copied().find(|t| t.as_str() == name)
    }

    /// Providers, scopes and clients can be shared between tenants and so carry an origin.
    pub fn has_origin(self) -> bool {
        !matches!(self, Kind::Authorization | Kind::Connection)
    }

    /// The reference field that is part of the natural key, when the key is
    /// (parent, name) rather than (namespace, name).
    pub fn key_parent(self) -> Option<&'static str> {
        match self {
            Kind::Scope | Kind::Client => Some("provider"),
            Kind::Provider | Kind::Authorization | Kind::Connection => None,
        }
    }

    pub fn fields(self) -> &'static [Field] {
        match self {
            Kind::Provider => PROVIDER_FIELDS,
            Kind::Scope => SCOPE_FIELDS,
            Kind::Client => CLIENT_FIELDS,
            Kind::Authorization => AUTHORIZATION_FIELDS,
            Kind::Connection => CONNECTION_FIELDS,
        }
    }

    pub fn field(self, name: &str) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.name == name)
    }

    /// Fields that exist for the given type, in table order.
    pub fn fields_of(self, rtype: RecordType) -> impl Iterator<Item = &'static Field> {
        self.fields().iter().filter(move |f| f.applies_to(rtype))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A concrete record type: the kind and, for kinds with several, which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    Provider(ProviderType),
    Scope,
    Client(ClientType),
    Authorization(AuthorizationType),
    Connection,
}

impl RecordType {
    pub fn kind(self) -> Kind {
        match self {
            RecordType::Provider(_) => Kind::Provider,
            RecordType::Scope => Kind::Scope,
            RecordType::Client(_) => Kind::Client,
            RecordType::Authorization(_) => Kind::Authorization,
            RecordType::Connection => Kind::Connection,
        }
    }

    /// The wire name (`"type"` in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Provider(t) => t.as_str(),
            RecordType::Scope => "scope",
            RecordType::Client(t) => t.as_str(),
            RecordType::Authorization(t) => t.as_str(),
            RecordType::Connection => "connection",
        }
    }

    /// The label of the type picker and of schemas.
    pub fn label(self) -> &'static str {
        match self {
            RecordType::Provider(ProviderType::OAuth2) => "OAuth 2.0 Provider",
            RecordType::Provider(ProviderType::OAuth1) => "OAuth 1.0a Provider",
            RecordType::Provider(ProviderType::Generic) => "Generic Provider",
            RecordType::Scope => "OAuth 2.0 Scope",
            RecordType::Client(ClientType::RemoteOauth) => "Remote OAuth Client",
            RecordType::Client(ClientType::Generic) => "Generic Client",
            RecordType::Authorization(AuthorizationType::OAuth2) => "OAuth 2.0 Authorization",
            RecordType::Authorization(AuthorizationType::OAuth1) => "OAuth 1.0a Authorization",
            RecordType::Authorization(AuthorizationType::Basic) => "Basic Authorization",
            RecordType::Authorization(AuthorizationType::ApiKey) => "API Key Authorization",
            RecordType::Authorization(AuthorizationType::Generic) => "Generic Callback Authorization",
            RecordType::Connection => "Connection",
        }
    }

    pub fn provider(self) -> Option<ProviderType> {
        match self {
            RecordType::Provider(t) => Some(t),
            _ => None,
        }
    }

    pub fn authorization(self) -> Option<AuthorizationType> {
        match self {
            RecordType::Authorization(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a field holds, which decides how input is checked and how it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A plain string, trimmed.
    Text,
    /// A free text kept as typed (descriptions).
    Description,
    /// A Liquid template (§3), parsed on save.
    Template,
    /// A Liquid template that must render to an http(s) URL.
    UrlTemplate,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// The scope separator: kept untrimmed, at most one character.
    Separator,
    /// `[{"key", "value", "description"}]`, values are templates, keys unique.
    KeyValues,
    /// A free JSON object.
    Object,
    /// A list of strings.
    Names,
    /// A reference to one record of the kind.
    Reference(Kind),
    /// An ordered list of references (an authorization's scopes).
    References(Kind),
    /// The declarative refresh request of a custom refresh strategy.
    RefreshRequest,
    /// `[{"key", "pattern"}]`: the variables a URL template may put into its host.
    HostParameters,
    /// A secret string (§6): write-only, sealed at rest.
    Secret,
    /// An RFC 3339 time, set by Grantry.
    Timestamp,
    /// A boolean.
    Bool,
}

impl FieldType {
    /// Whether list filters and sorting can use the field directly.
    pub fn is_scalar(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::Description
                | FieldType::Template
                | FieldType::UrlTemplate
                | FieldType::Enum(_)
                | FieldType::Separator
                | FieldType::Timestamp
                | FieldType::Bool
        )
    }
}

/// For which types a field applies or is required.
#[derive(Clone, Copy, Debug)]
pub enum Types {
    All,
    None,
    Only(&'static [RecordType]),
}

impl Types {
    pub fn contains(self, rtype: RecordType) -> bool {
        match self {
            Types::All => true,
            Types::None => false,
            Types::Only(list) => list.contains(&rtype),
        }
    }
}

/// One field of a record kind.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub types: Types,
    pub required: Types,
    /// Set by Grantry, ignored in input.
    pub read_only: bool,
    /// The value stored when a create leaves the field out.
    pub default: Option<&'static str>,
    pub description: &'static str,
    /// Where the field's rendered templates go, which decides the variables
    /// they may use; `None` for fields that are not rendered.
    pub renders: Option<Position>,
}

impl Field {
    pub fn applies_to(&self, rtype: RecordType) -> bool {
        self.types.contains(rtype)
    }
    pub fn is_secret(&self) -> bool {
        self.ty == FieldType::Secret
    }
    pub fn is_required_for(&self, rtype: RecordType) -> bool {
        self.required.contains(rtype)
    }
    /// Stored in the record's own columns rather than its data document.
    pub fn is_column(&self) -> bool {
        matches!(self.name, "namespace" | "name")
    }
}

pub(crate) const fn f(name: &'static str, ty: FieldType, description: &'static str) -> Field {
    let renders = match ty {
        FieldType::UrlTemplate => Some(Position::Url),
        // Scope names go into the authorize URL.
        FieldType::Template => Some(Position::AuthorizeQuery),
        _ => None,
    };
    Field { name, ty, types: Types::All, required: Types::None, read_only: false, default: None, description, renders }
}

impl Field {
    pub(crate) const fn only(mut self, types: &'static [RecordType]) -> Self {
        self.types = Types::Only(types);
        self
    }
    pub(crate) const fn required(mut self) -> Self {
        self.required = Types::All;
        self
    }
    pub(crate) const fn required_for(mut self, types: &'static [RecordType]) -> Self {
        self.required = Types::Only(types);
        self
    }
    pub(crate) const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    pub(crate) const fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
    pub(crate) const fn renders(mut self, position: Position) -> Self {
        self.renders = Some(position);
        self
    }
}

/// The scope every oauth2 provider owns, so an authorization can pass any scope
/// string through its template parameter `scope`.
pub const TEMPLATE_SCOPE: &str = "{{scope}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_required_field_applies_to_the_types_that_require_it() {
        for kind in Kind::ALL {
            for t in kind.types() {
                for field in kind.fields() {
                    if field.is_required_for(*t) {
                        assert!(field.applies_to(*t), "{kind}.{} required for {t} but absent", field.name);
                    }
                }
            }
        }
    }

    #[test]
    fn kinds_round_trip_through_their_path_segment() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
    }
}
