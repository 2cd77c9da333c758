//! Notifications (docs/concepts.md §9.2): what a person should know about an
//! authorization, raised by the flows, listed newest first.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::access::{Action, Caller};
use crate::ports::{Clock, Notification, NotificationQuery, Store};
use crate::service::Page;
use crate::{timestamp, Error, Id, NotificationLevel, Record};

/// A notification as listed, naming its authorization (`{"id"}` alone once it is deleted).
#[derive(Clone, Debug, Serialize)]
pub struct NotificationView {
    pub id: String,
    pub level: NotificationLevel,
    pub authorization: Option<AuthorizationRef>,
    pub message: String,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuthorizationRef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

pub struct Notifications {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Notifications {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Notifications {
        Notifications { store, clock }
    }

    /// Raises a notification about authorization `id`. Storing it may fail;
    /// that is logged and never fails the flow that raised it.
    pub async fn notify(&self, id: &Id, level: NotificationLevel, message: String) {
        let notification = Notification {
            id: Id::generate(),
            level,
            authorization_id: Some(id.clone()),
            message,
            created_at: self.clock.now(),
        };
        if let Err(e) = self.store.insert_notification(&notification).await {
            tracing::error!("a notification could not be stored: {e}");
        }
    }

    /// One page, newest first, each naming its authorization when it still exists.
    pub async fn list(&self, caller: &Caller, query: &NotificationQuery) -> Result<Page<NotificationView>, Error> {
        caller.check(Action::ReadNotifications)?;
        let (items, total) = self.store.list_notifications(query).await?;
        let ids: Vec<Id> = items.iter().filter_map(|n| n.authorization_id.clone()).collect();
        let auths: HashMap<Id, Record> =
            self.store.get_many(&ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let items = items
            .into_iter()
            .map(|n| NotificationView {
                authorization: n.authorization_id.as_ref().map(|id| AuthorizationRef {
                    id: id.to_string(),
                    namespace: auths.get(id).map(|a| a.namespace.clone()),
                    name: auths.get(id).map(|a| a.name.clone()),
                }),
                id: n.id.to_string(),
                level: n.level,
                message: n.message,
                created_at: timestamp(n.created_at),
            })
            .collect();
        Ok(Page { items, total, page: query.page, per_page: query.per_page })
    }
}
