//! The field tables: every field of every kind and type, with its type,
//! where it applies, whether it is required, its default and what it means
//! (docs/concepts.md §1). The single source for input, validation, filters,
//! export, the JSON Schema, the OpenAPI document and the UI's forms.

use crate::closed::*;
use crate::kind::{f, Field, FieldType, RecordType};
use crate::template::Position;
use crate::Kind;

pub(crate) static PROVIDER_TYPES: &[RecordType] = &[
    RecordType::Provider(ProviderType::OAuth2),
    RecordType::Provider(ProviderType::OAuth1),
    RecordType::Provider(ProviderType::Generic),
];
pub(crate) static CLIENT_TYPES: &[RecordType] =
    &[RecordType::Client(ClientType::RemoteOauth), RecordType::Client(ClientType::Generic)];
pub(crate) static AUTHORIZATION_TYPES: &[RecordType] = &[
    RecordType::Authorization(AuthorizationType::OAuth2),
    RecordType::Authorization(AuthorizationType::OAuth1),
    RecordType::Authorization(AuthorizationType::Basic),
    RecordType::Authorization(AuthorizationType::ApiKey),
    RecordType::Authorization(AuthorizationType::Generic),
];

const OAUTH: &[RecordType] = &[RecordType::Provider(ProviderType::OAuth1), RecordType::Provider(ProviderType::OAuth2)];
const OAUTH2: &[RecordType] = &[RecordType::Provider(ProviderType::OAuth2)];
const OAUTH1: &[RecordType] = &[RecordType::Provider(ProviderType::OAuth1)];

pub(crate) static PROVIDER_FIELDS: &[Field] = &[
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

pub(crate) static SCOPE_FIELDS: &[Field] = &[
    f("provider", FieldType::Reference(Kind::Provider), "The oauth2 provider that defines the scope.").required(),
    f("name", FieldType::Template, "The scope as sent to the provider; may be a template.").required(),
    f("description", FieldType::Description, "What the scope grants."),
];

const REMOTE: &[RecordType] = &[RecordType::Client(ClientType::RemoteOauth)];

pub(crate) static CLIENT_FIELDS: &[Field] = &[
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

pub(crate) static AUTHORIZATION_FIELDS: &[Field] = &[
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

pub(crate) static CONNECTION_FIELDS: &[Field] = &[
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
