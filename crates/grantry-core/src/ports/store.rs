//! The storage port. Shaped around what the domain needs, so that SQLite and
//! PostgreSQL implementations can sit behind it without the domain changing.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::access::Role;
use crate::filter::{Condition, ListQuery};
use crate::{Id, Kind, NaturalKey, NotificationLevel, Record, Sealed};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A natural key is taken (the unique index said so, whatever the race).
    #[error("a {0} with that natural key exists")]
    Duplicate(Kind),
    /// Records outside the deleted set still reference it.
    #[error("the records are still referenced")]
    Referenced(Vec<Id>),
    /// A referenced record vanished between the check and the write.
    #[error("a referenced record does not exist")]
    MissingReference,
    #[error("storage failed: {0}")]
    Backend(String),
}

/// An API token as stored: only the hash of its value.
#[derive(Clone)]
pub struct ApiToken {
    pub id: Id,
    pub name: String,
    pub role: Role,
    pub token_hash: String,
    pub created_at: OffsetDateTime,
    /// When it stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A pending authorize request, found again by the hash of its state.
#[derive(Clone)]
pub struct PendingState {
    pub state_hash: String,
    pub authorization_id: Id,
    pub code_verifier: Option<Sealed>,
    pub return_to: Option<String>,
    /// The hash of the flow cookie of the browser session that started the
    /// request (the UI's); its callback must come with the same cookie.
    pub binding_hash: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for PendingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingState")
            .field("authorization_id", &self.authorization_id)
            .field("return_to", &self.return_to)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Something a person should know about an authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: Id,
    pub level: NotificationLevel,
    pub authorization_id: Option<Id>,
    pub message: String,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, Default)]
pub struct NotificationQuery {
    pub authorization_id: Option<Id>,
    pub level: Option<NotificationLevel>,
    pub page: u32,
    pub per_page: u32,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts records in one transaction: all or none.
    async fn insert(&self, records: &[Record]) -> Result<(), StoreError>;
    /// Replaces a record's fields, references and secrets.
    async fn update(&self, record: &Record) -> Result<(), StoreError>;
    async fn get(&self, kind: Kind, id: &Id) -> Result<Option<Record>, StoreError>;
    /// Records of any kind by id, in no particular order; missing ids are skipped.
    async fn get_many(&self, ids: &[Id]) -> Result<Vec<Record>, StoreError>;
    async fn find_by_key(&self, kind: Kind, key: &NaturalKey) -> Result<Option<Record>, StoreError>;
    /// One page and the total count of records matching the query.
    async fn list(&self, kind: Kind, query: &ListQuery) -> Result<(Vec<Record>, u64), StoreError>;
    /// Every record matching the conditions, in creation order.
    async fn find_all(&self, kind: Kind, conditions: &[Condition]) -> Result<Vec<Record>, StoreError>;
    /// Ids of the records of `kind` whose key parent is one of `parents` (a provider's scopes).
    async fn children(&self, kind: Kind, parents: &[Id]) -> Result<Vec<Id>, StoreError>;
    /// Deletes the records in one transaction, refusing with `Referenced` (and
    /// deleting nothing) when a record outside the set references one inside it.
    async fn delete(&self, ids: &[Id]) -> Result<u64, StoreError>;

    async fn insert_api_token(&self, token: &ApiToken) -> Result<(), StoreError>;
    async fn find_api_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError>;
    async fn count_api_tokens(&self) -> Result<u64, StoreError>;
    /// Every token, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Removes a token; says whether it existed.
    async fn delete_api_token(&self, id: &Id) -> Result<bool, StoreError>;

    /// Stores a pending authorize request.
    async fn insert_state(&self, state: &PendingState) -> Result<(), StoreError>;
    /// Removes and returns a pending request: a state works once.
    async fn take_state(&self, state_hash: &str) -> Result<Option<PendingState>, StoreError>;

    async fn insert_notification(&self, notification: &Notification) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_notifications(&self, query: &NotificationQuery) -> Result<(Vec<Notification>, u64), StoreError>;

    /// Takes the refresh lease of an authorization when it is free or has
    /// expired at `now`, holding it until `until`; says whether it was taken.
    async fn claim_refresh(
        &self,
        id: &Id,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    async fn release_refresh(&self, id: &Id, holder: &str) -> Result<(), StoreError>;

    /// Instance settings (the master key id).
    async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn meta_set(&self, key: &str, value: &str) -> Result<(), StoreError>;
}
