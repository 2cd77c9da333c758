//! The record kinds, their types and the description of every field.
//!
//! This table is the single source for input parsing, validation, filtering,
//! export, the JSON Schema and the OpenAPI document, so that a field added here
//! shows up everywhere with one name.

use std::fmt;

use crate::closed::*;
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

    pub fn client(self) -> Option<ClientType> {
        match self {
            RecordType::Client(t) => Some(t),
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

const fn f(name: &'static str, ty: FieldType, description: &'static str) -> Field {
    let renders = match ty {
        FieldType::UrlTemplate => Some(Position::Url),
        // Scope names go into the authorize URL.
        FieldType::Template => Some(Position::AuthorizeQuery),
        _ => None,
    };
    Field { name, ty, types: Types::All, required: Types::None, read_only: false, default: None, description, renders }
}

impl Field {
    const fn only(mut self, types: &'static [RecordType]) -> Self {
        self.types = Types::Only(types);
        self
    }
    const fn required(mut self) -> Self {
        self.required = Types::All;
        self
    }
    const fn required_for(mut self, types: &'static [RecordType]) -> Self {
        self.required = Types::Only(types);
        self
    }
    const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    const fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
    const fn renders(mut self, position: Position) -> Self {
        self.renders = Some(position);
        self
    }
}

/// The scope every oauth2 provider owns, so an authorization can pass any scope
/// string through its template parameter `scope`.
pub const TEMPLATE_SCOPE: &str = "{{scope}}";

static PROVIDER_TYPES: &[RecordType] = &[
    RecordType::Provider(ProviderType::OAuth2),
    RecordType::Provider(ProviderType::OAuth1),
    RecordType::Provider(ProviderType::Generic),
];
static CLIENT_TYPES: &[RecordType] =
    &[RecordType::Client(ClientType::RemoteOauth), RecordType::Client(ClientType::Generic)];
static AUTHORIZATION_TYPES: &[RecordType] = &[
    RecordType::Authorization(AuthorizationType::OAuth2),
    RecordType::Authorization(AuthorizationType::OAuth1),
    RecordType::Authorization(AuthorizationType::Basic),
    RecordType::Authorization(AuthorizationType::ApiKey),
    RecordType::Authorization(AuthorizationType::Generic),
];

const OAUTH: &[RecordType] = &[RecordType::Provider(ProviderType::OAuth1), RecordType::Provider(ProviderType::OAuth2)];
const OAUTH2: &[RecordType] = &[RecordType::Provider(ProviderType::OAuth2)];
const OAUTH1: &[RecordType] = &[RecordType::Provider(ProviderType::OAuth1)];

static PROVIDER_FIELDS: &[Field] = &[
    f("namespace", FieldType::Text, "Groups records; part of the natural key.").required(),
    f("name", FieldType::Text, "Unique within the namespace across all provider types.").required(),
    f("authorization_endpoint", FieldType::UrlTemplate, "Where the resource owner's browser is sent to grant access.")
        .required_for(OAUTH),
    f("response_type", FieldType::Enum(ResponseType::NAMES), "The OAuth response type.").only(OAUTH).default("code"),
    f("token_endpoint", FieldType::UrlTemplate, "Where tokens are requested.").only(OAUTH).required_for(OAUTH),
    f(
        "token_method",
        FieldType::Enum(TokenMethod::NAMES),
        "How the token request is sent: POST form body or GET query string.",
    )
    .only(OAUTH)
    .default("POST"),
    f("refresh_token_strategy", FieldType::Enum(RefreshStrategy::NAMES), "How expired tokens are renewed.")
        .only(OAUTH2)
        .default("none"),
    f("refresh_request", FieldType::RefreshRequest, "The declarative refresh request of the custom strategy.")
        .only(OAUTH2),
    f("scope_separator", FieldType::Separator, "Joins scope names; at most one character, blank means one space.")
        .only(OAUTH2)
        .default(" "),
    f(
        "token_endpoint_auth_method",
        FieldType::Enum(AuthMethod::NAMES),
        "How the client authenticates at the token endpoint.",
    )
    .only(OAUTH2)
    .default("client_secret_post"),
    f("pkce", FieldType::Enum(Pkce::NAMES), "Proof Key for Code Exchange: auto, s256 or off.")
        .only(OAUTH2)
        .default("auto"),
    f("revocation_endpoint", FieldType::UrlTemplate, "Optional RFC 7009 token revocation endpoint.").only(OAUTH2),
    f(
        "host_parameters",
        FieldType::HostParameters,
        "Variables the endpoints may put into their host, each with the pattern its value must match \
         (default: one DNS label).",
    ),
    f("request_token_endpoint", FieldType::UrlTemplate, "Where OAuth 1.0a request tokens are obtained.")
        .only(OAUTH1)
        .required_for(OAUTH1),
    f("signature_method", FieldType::Enum(SignatureMethod::NAMES), "How OAuth 1.0a requests are signed.")
        .only(OAUTH1)
        .default("HMAC-SHA1"),
];

static SCOPE_FIELDS: &[Field] = &[
    f("provider", FieldType::Reference(Kind::Provider), "The oauth2 provider that defines the scope.").required(),
    f("name", FieldType::Template, "The scope as sent to the provider; may be a template.").required(),
    f("description", FieldType::Description, "What the scope grants."),
];

const REMOTE: &[RecordType] = &[RecordType::Client(ClientType::RemoteOauth)];

static CLIENT_FIELDS: &[Field] = &[
    f("provider", FieldType::Reference(Kind::Provider), "The provider the client is registered with.").required(),
    f("namespace", FieldType::Text, "Defaults to the provider's namespace."),
    f("name", FieldType::Text, "Unique per provider.").required(),
    f("identifier", FieldType::Secret, "The client id."),
    f("secret", FieldType::Secret, "The client secret."),
    f("request_token_parameters", FieldType::KeyValues, "Added to every token request (code exchange and refresh).")
        .only(REMOTE)
        .renders(Position::Request),
    f("request_token_headers", FieldType::KeyValues, "Added as HTTP headers to every token request.")
        .only(REMOTE)
        .renders(Position::Request),
    f("template_parameters", FieldType::KeyValues, "Variables for the client's templates."),
];

const fn auth(t: AuthorizationType) -> RecordType {
    RecordType::Authorization(t)
}
const WITH_CLIENT: &[RecordType] =
    &[auth(AuthorizationType::OAuth2), auth(AuthorizationType::OAuth1), auth(AuthorizationType::Generic)];
const OAUTH_FLOW: &[RecordType] = &[auth(AuthorizationType::OAuth2), auth(AuthorizationType::OAuth1)];
const AUTH_OAUTH2: &[RecordType] = &[auth(AuthorizationType::OAuth2)];
const AUTH_OAUTH1: &[RecordType] = &[auth(AuthorizationType::OAuth1)];
const AUTH_GENERIC: &[RecordType] = &[auth(AuthorizationType::Generic)];
const AUTH_BASIC: &[RecordType] = &[auth(AuthorizationType::Basic)];
const AUTH_API_KEY: &[RecordType] = &[auth(AuthorizationType::ApiKey)];

static AUTHORIZATION_FIELDS: &[Field] = &[
    f("namespace", FieldType::Text, "Groups records; may be empty.").default(""),
    f("name", FieldType::Text, "Unique within the namespace across all authorization types.").required(),
    f("client", FieldType::Reference(Kind::Client), "The client the grant is requested with.")
        .only(WITH_CLIENT)
        .required_for(WITH_CLIENT),
    f("scopes", FieldType::References(Kind::Scope), "Scopes of the client's provider, by name or id.")
        .only(AUTH_OAUTH2),
    f("grant_type", FieldType::Enum(GrantType::NAMES), "authorization_code (browser) or client_credentials.")
        .only(AUTH_OAUTH2)
        .default("authorization_code"),
    f("parameters", FieldType::KeyValues, "Extra query parameters of the authorize URL.")
        .only(WITH_CLIENT)
        .renders(Position::AuthorizeQuery),
    f("template_parameters", FieldType::KeyValues, "Variables for templates, overriding the client's.")
        .only(WITH_CLIENT),
    f("callback_key", FieldType::Text, "The query parameter that carries the callback URL.")
        .only(AUTH_GENERIC)
        .default("redirect_uri"),
    f(
        "capture",
        FieldType::Names,
        "Callback query parameters to keep, sealed; connection templates read them as {{callback.<name>}}.",
    )
    .only(AUTH_GENERIC),
    f("username", FieldType::Secret, "The basic authentication user name.").only(AUTH_BASIC),
    f("password", FieldType::Secret, "The basic authentication password.").only(AUTH_BASIC),
    f("key_name", FieldType::Text, "The header or query parameter that carries the key.")
        .only(AUTH_API_KEY)
        .required_for(AUTH_API_KEY),
    f("key_value", FieldType::Secret, "The API key.").only(AUTH_API_KEY),
    f("placement", FieldType::Enum(Placement::NAMES), "Where the key goes: header or query.")
        .only(AUTH_API_KEY)
        .default("header"),
    f("metadata", FieldType::Object, "Free JSON kept with the authorization."),
    f("status", FieldType::Enum(Status::NAMES), "unauthorized, authorized, expired or failed.")
        .read_only()
        .default("unauthorized"),
    f("authorized", FieldType::Bool, "Whether the authorization can be used now.").read_only(),
    f("authorized_at", FieldType::Timestamp, "When the grant was obtained.").read_only(),
    f("last_error", FieldType::Object, "The last error reported by the provider.").read_only(),
    f("token_type", FieldType::Text, "The token type returned by the provider.").only(AUTH_OAUTH2).read_only(),
    f("expires_at", FieldType::Timestamp, "When the access token expires.").only(AUTH_OAUTH2).read_only(),
    f("granted_scope", FieldType::Text, "The scope string the provider returned.").only(AUTH_OAUTH2).read_only(),
    f("realm_id", FieldType::Text, "The realmId returned by OAuth 1.0a providers that have one.")
        .only(AUTH_OAUTH1)
        .read_only(),
    f("access_token", FieldType::Secret, "The access token.").only(OAUTH_FLOW).read_only(),
    f("refresh_token", FieldType::Secret, "The refresh token.").only(AUTH_OAUTH2).read_only(),
    f("id_token", FieldType::Secret, "The OpenID Connect id token.").only(AUTH_OAUTH2).read_only(),
    f("token_response", FieldType::Secret, "The provider's whole token response.").only(AUTH_OAUTH2).read_only(),
    f("access_token_secret", FieldType::Secret, "The OAuth 1.0a token secret.").only(AUTH_OAUTH1).read_only(),
    f("captured", FieldType::Secret, "The callback parameters named in capture, as the callback sent them.")
        .only(AUTH_GENERIC)
        .read_only(),
];

static CONNECTION_FIELDS: &[Field] = &[
    f("namespace", FieldType::Text, "Groups records; may be empty.").default(""),
    f("name", FieldType::Text, "Unique within the namespace.").required(),
    f("url", FieldType::UrlTemplate, "The base URL of the remote API; a template.").required(),
    f(
        "host_parameters",
        FieldType::HostParameters,
        "Variables the url may put into its host, each with the pattern its value must match \
         (default: one DNS label).",
    ),
    f("headers", FieldType::KeyValues, "Headers added to every proxied request (templates).")
        .renders(Position::Request),
    f("parameters", FieldType::KeyValues, "Query parameters added to every proxied request (templates).")
        .renders(Position::Request),
    f("template_parameters", FieldType::KeyValues, "Variables for the connection's templates."),
    f("authorization", FieldType::Reference(Kind::Authorization), "The authorization applied to proxied requests."),
    f(
        "authorization_handler",
        FieldType::Bool,
        "Off: Grantry adds the authorization's header or parameters. On: it adds nothing and the templates use \
         {{access_token}}, {{username}}, {{password}}, {{basic_auth}}, {{oauth_token}}, {{oauth_token_secret}}.",
    )
    .default("false"),
];

/// Fields of the custom refresh request (a provider's `refresh_request`).
pub struct RefreshField {
    pub name: &'static str,
    pub ty: FieldType,
    pub default: Option<&'static str>,
    pub required: bool,
    pub description: &'static str,
}

pub const REFRESH_REQUEST_FIELDS: &[RefreshField] = &[
    RefreshField {
        name: "method",
        ty: FieldType::Enum(TokenMethod::NAMES),
        default: Some("POST"),
        required: false,
        description: "HTTP method.",
    },
    RefreshField {
        name: "url",
        ty: FieldType::UrlTemplate,
        default: None,
        required: true,
        description: "The refresh URL (template).",
    },
    RefreshField {
        name: "headers",
        ty: FieldType::KeyValues,
        default: None,
        required: false,
        description: "Request headers (templates).",
    },
    RefreshField {
        name: "parameters",
        ty: FieldType::KeyValues,
        default: None,
        required: false,
        description: "Request parameters (templates).",
    },
    RefreshField {
        name: "body_format",
        ty: FieldType::Enum(BodyFormat::NAMES),
        default: Some("form"),
        required: false,
        description: "How parameters are sent in a POST body.",
    },
    RefreshField {
        name: "access_token_pointer",
        ty: FieldType::Text,
        default: Some("/access_token"),
        required: false,
        description: "JSON pointer to the access token in the answer.",
    },
    RefreshField {
        name: "expires_in_pointer",
        ty: FieldType::Text,
        default: Some("/expires_in"),
        required: false,
        description: "JSON pointer to the lifetime in seconds.",
    },
    RefreshField {
        name: "refresh_token_pointer",
        ty: FieldType::Text,
        default: Some("/refresh_token"),
        required: false,
        description: "JSON pointer to a rotated refresh token.",
    },
    RefreshField {
        name: "token_type_pointer",
        ty: FieldType::Text,
        default: Some("/token_type"),
        required: false,
        description: "JSON pointer to the token type.",
    },
];

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
