//! Every closed set of the product as an enum, with its one wire name per
//! value. The field tables (`fields.rs`) take their choices from `NAMES`, so
//! input checks, schemas, OpenAPI, filters and forms list the same values, and
//! a `match` on any of them is exhaustive: adding a value makes the compiler
//! list every place that must decide what it means.

/// Declares a closed set: the enum, `ALL`, `NAMES`, `as_str`, `parse`,
/// `Display` and `Serialize` as its wire name.
macro_rules! closed_set {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire names, in declaration order (the order of schemas and messages).
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

closed_set! {
    /// Where and how a remote API issues credentials (docs/concepts.md §1.3).
    pub enum ProviderType { OAuth2 = "oauth2", OAuth1 = "oauth1", Generic = "generic" }
}

closed_set! {
    pub enum ClientType { RemoteOauth = "remote_oauth", Generic = "generic" }
}

closed_set! {
    /// How an authorization obtains and applies its credentials; one module
    /// each under `flows::types`.
    pub enum AuthorizationType {
        OAuth2 = "oauth2",
        OAuth1 = "oauth1",
        Basic = "basic",
        ApiKey = "api_key",
        Generic = "generic",
    }
}

closed_set! {
    /// An authorization's status (docs/concepts.md §9.1).
    pub enum Status { Unauthorized = "unauthorized", Authorized = "authorized", Expired = "expired", Failed = "failed" }
}

closed_set! {
    /// Where a shareable record comes from: its own tenant, or shared by
    /// another (tenancy is planned; until then every record is `default`).
    pub enum Origin { Default = "default", Shared = "shared" }
}

closed_set! {
    pub enum GrantType { AuthorizationCode = "authorization_code", ClientCredentials = "client_credentials" }
}

closed_set! {
    /// How a client authenticates at the token endpoint.
    pub enum AuthMethod { ClientSecretPost = "client_secret_post", ClientSecretBasic = "client_secret_basic", None = "none" }
}

closed_set! {
    pub enum Pkce { Auto = "auto", S256 = "s256", Off = "off" }
}

closed_set! {
    pub enum RefreshStrategy { None = "none", Default = "default", Custom = "custom" }
}

closed_set! {
    /// How token requests are sent: a POST form or a GET query.
    pub enum TokenMethod { Post = "POST", Get = "GET" }
}

impl TokenMethod {
    /// A stored method: `GET` in any case, anything else POST.
    pub fn lenient(text: &str) -> TokenMethod {
        if text.eq_ignore_ascii_case("GET") {
            TokenMethod::Get
        } else {
            TokenMethod::Post
        }
    }
}

closed_set! {
    /// How a custom refresh request sends its parameters in a POST.
    pub enum BodyFormat { Form = "form", Json = "json" }
}

closed_set! {
    /// Where an API key goes.
    pub enum Placement { Header = "header", Query = "query" }
}

closed_set! {
    /// How OAuth 1.0a requests are signed.
    pub enum SignatureMethod { HmacSha1 = "HMAC-SHA1", HmacSha256 = "HMAC-SHA256", Plaintext = "PLAINTEXT" }
}

closed_set! {
    pub enum ResponseType { Code = "code" }
}

closed_set! {
    pub enum NotificationLevel { Info = "info", Warning = "warning", Error = "error" }
}

closed_set! {
    /// The stable `code` of every error answer (docs/concepts.md §10).
    pub enum ErrorCode {
        ValidationFailed = "validation_failed",
        TemplateTooExpensive = "template_too_expensive",
        NotFound = "not_found",
        Conflict = "conflict",
        Unauthorized = "unauthorized",
        Forbidden = "forbidden",
        TooManyRequests = "too_many_requests",
        BadRequest = "bad_request",
        PayloadTooLarge = "payload_too_large",
        MethodNotAllowed = "method_not_allowed",
        NotAuthorized = "not_authorized",
        AuthorizationFailed = "authorization_failed",
        TokenExpired = "token_expired",
        RefreshNotSupported = "refresh_not_supported",
        NotSupported = "not_supported",
        ClientIncomplete = "client_incomplete",
        ProviderMisconfigured = "provider_misconfigured",
        ConnectionMisconfigured = "connection_misconfigured",
        DestinationRefused = "destination_refused",
        ProviderUnavailable = "provider_unavailable",
        Internal = "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_wire_name() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(all: &[T], names: &[&str], parse: fn(&str) -> Option<T>) {
            assert_eq!(all.len(), names.len());
            for (value, name) in all.iter().zip(names) {
                assert_eq!(parse(name), Some(*value), "{name}");
            }
            assert_eq!(parse("no such value"), None);
        }
        check(AuthorizationType::ALL, AuthorizationType::NAMES, AuthorizationType::parse);
        check(ErrorCode::ALL, ErrorCode::NAMES, ErrorCode::parse);
        check(SignatureMethod::ALL, SignatureMethod::NAMES, SignatureMethod::parse);
        assert_eq!(serde_json::to_string(&Status::Authorized).ok().as_deref(), Some("\"authorized\""));
    }
}
