//! Roles and what each may do (docs/concepts.md §8.1).
//! Every route names the `Action` it performs; `Role::may` is the one table.

use std::fmt;

use time::OffsetDateTime;

use crate::{Error, Id, Kind};

/// The tenant a caller acts in. There is one, `default`, until tenancy
/// arrives; every entry point already receives it with the caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    pub fn default_tenant() -> Tenant {
        Tenant("default".to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// An API token, used by an integration or by a person signed in to the UI with it.
    ApiToken { id: Id, name: String },
    /// The operator at the command line (`grantry token …`), who holds the data folder.
    Operator,
}

/// The caller of every domain entry point: who, with which role, in which tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    pub who: Who,
    pub role: Role,
    pub tenant: Tenant,
    /// When the caller's token stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
}

impl Caller {
    /// The operator at the shell: an admin of the one tenant.
    pub fn operator() -> Caller {
        Caller { who: Who::Operator, role: Role::Admin, tenant: Tenant::default_tenant(), expires_at: None }
    }

    /// The caller holding API token `id`.
    pub fn api_token(id: Id, name: String, role: Role, expires_at: Option<OffsetDateTime>) -> Caller {
        Caller { who: Who::ApiToken { id, name }, role, tenant: Tenant::default_tenant(), expires_at }
    }

    /// The API token the caller holds, if any.
    pub fn token_id(&self) -> Option<&Id> {
        match &self.who {
            Who::ApiToken { id, .. } => Some(id),
            Who::Operator => None,
        }
    }

    /// Refuses `action` unless the caller's role allows it.
    pub fn check(&self, action: Action) -> Result<(), Error> {
        if self.role.may(action) {
            Ok(())
        } else {
            Err(forbidden(self.role, action))
        }
    }
}

/// The role of an API token (and of the UI session signed in with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Editor,
    Viewer,
    Integration,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Editor, Role::Viewer, Role::Integration];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::Integration => "integration",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The table of the issue: what a caller of this role may do.
    pub fn may(self, action: Action) -> bool {
        match (self, action) {
            (Role::Admin, _) => true,
            (Role::Editor, Action::ManageTokens | Action::UseSecret | Action::Redirect) => false,
            (Role::Editor, _) => true,
            (Role::Viewer, Action::Read(_) | Action::ReadSchema | Action::ReadNotifications | Action::Export) => true,
            (Role::Viewer, _) => false,
            (Role::Integration, Action::UseSecret | Action::ReadSchema) => true,
            (Role::Integration, Action::Read(kind)) => matches!(kind, Kind::Authorization | Kind::Connection),
            (Role::Integration, _) => false,
        }
    }

    /// The roles that may do `action`, for the message of a refusal.
    pub fn needed_for(action: Action) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.may(action)).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request does, as far as roles are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// List, show or the JSON of records of a kind.
    Read(Kind),
    /// The JSON Schema of a kind.
    ReadSchema,
    ReadNotifications,
    /// Create, change, delete and import records.
    Write,
    Export,
    /// Authorize, refresh and cancel authorizations.
    Flow,
    /// Fresh tokens, signing and the proxy: the only actions that hand out a secret.
    UseSecret,
    /// Mint, list and revoke API tokens.
    ManageTokens,
    /// Change where stored secrets are sent: a provider's token, revocation or
    /// refresh endpoints, a client's provider or token parameters, an
    /// authorization's client, a connection's destination. Otherwise an editor
    /// could point a stored client secret or refresh token at a host of their
    /// own and run a refresh.
    Redirect,
}

impl Action {
    /// What the action is, for messages ("this needs … to export records").
    pub fn describe(self) -> String {
        match self {
            Action::Read(kind) => format!("read {kind}"),
            Action::ReadSchema => "read schemas".into(),
            Action::ReadNotifications => "read notifications".into(),
            Action::Write => "create, change, delete or import records".into(),
            Action::Export => "export records".into(),
            Action::Flow => "authorize, refresh or cancel authorizations".into(),
            Action::UseSecret => "use an authorization's credentials (token, sign, proxy)".into(),
            Action::ManageTokens => "manage API tokens".into(),
            Action::Redirect => {
                "change where stored secrets are sent (endpoints, token parameters, destinations)".into()
            }
        }
    }
}

/// The refusal of `action` to a caller of `role`: names the roles needed.
pub fn forbidden(role: Role, action: Action) -> crate::Error {
    let needed: Vec<&str> = Role::needed_for(action).into_iter().map(Role::as_str).collect();
    let needed = match needed.as_slice() {
        [one] => format!("the {one} role"),
        [init @ .., last] => format!("the {} or {last} role", init.join(", ")),
        [] => "a role no token has".to_owned(),
    };
    crate::Error::Forbidden(format!("to {} you need {needed}; this token has the {role} role", action.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_table_of_the_issue() {
        use Action::*;
        let all = [
            Read(Kind::Provider),
            Read(Kind::Authorization),
            ReadSchema,
            ReadNotifications,
            Write,
            Export,
            Flow,
            UseSecret,
            ManageTokens,
            Redirect,
        ];
        let allowed = |role: Role| all.iter().filter(|a| role.may(**a)).count();
        assert_eq!(allowed(Role::Admin), all.len());
        assert!(!Role::Editor.may(UseSecret) && !Role::Editor.may(ManageTokens) && Role::Editor.may(Flow));
        assert!(Role::Viewer.may(Export) && !Role::Viewer.may(Write) && !Role::Viewer.may(Flow));
        assert!(Role::Integration.may(UseSecret) && Role::Integration.may(Read(Kind::Connection)));
        assert!(!Role::Integration.may(Read(Kind::Client)) && !Role::Integration.may(ReadNotifications));
        assert!(!Role::Viewer.may(UseSecret));
        let message = forbidden(Role::Viewer, Write).to_string();
        assert!(message.contains("the admin or editor role") && message.contains("viewer"), "{message}");
    }
}
