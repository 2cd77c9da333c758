//! Template variables with their secrets kept wrapped until a render.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::*;

/// A map of opened secrets that is cleared when dropped.
pub(super) struct Zeroizing(Map<String, Value>);

impl std::ops::Deref for Zeroizing {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl Drop for Zeroizing {
    fn drop(&mut self) {
        for value in self.0.values_mut() {
            if let Value::String(s) = value {
                zeroize::Zeroize::zeroize(s);
            }
        }
    }
}

/// Template variables (docs/concepts.md §3.2), built in order so later ones override earlier ones.
/// A template sees only the variables its `Position` allows (docs/concepts.md §3.3), and all
/// renders with one `Vars` (and its clones: one flow step, one proxied
/// request) share one `RequestBudget`.
#[derive(Default, Clone)]
pub struct Vars {
    plain: Map<String, Value>,
    /// Secret values (credentials, tokens) stay wrapped until a render
    /// needs them, so no copy of them outlives the render.
    secrets: std::collections::BTreeMap<String, SecretString>,
    budget: std::sync::Arc<template::RequestBudget>,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vars")
            .field("plain", &self.plain.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Vars {
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.secrets.remove(key);
        self.plain.insert(key.to_owned(), Value::String(value.into()));
        self
    }
    /// Sets a variable whose value is a secret.
    pub fn set_secret(&mut self, key: &str, value: SecretString) -> &mut Self {
        self.plain.remove(key);
        self.secrets.insert(key.to_owned(), value);
        self
    }
    /// Sets a variable that is an object (`callback`).
    pub fn set_value(&mut self, key: &str, value: Value) -> &mut Self {
        self.secrets.remove(key);
        self.plain.insert(key.to_owned(), value);
        self
    }
    /// Adds a key/value list (`template_parameters`).
    pub fn extend_pairs(&mut self, pairs: &Value) -> &mut Self {
        for entry in pairs.as_array().into_iter().flatten() {
            if let (Some(k), Some(v)) = (entry["key"].as_str(), entry["value"].as_str()) {
                self.set(k, v);
            }
        }
        self
    }
    pub fn set_time(&mut self, now: OffsetDateTime) -> &mut Self {
        let ms = (now.unix_timestamp_nanos() / 1_000_000).to_string();
        self.set("timestamp", ms.clone()).set("utc_timestamp", ms)
    }
    /// The variables a template at `position` sees, secrets opened for this render only.
    fn for_render(&self, position: Position) -> Zeroizing {
        let mut all = template::visible(&self.plain, position);
        for (k, v) in &self.secrets {
            if position.allows(k) {
                all.insert(k.clone(), Value::String(v.expose_secret().to_owned()));
            }
        }
        Zeroizing(all)
    }
    /// Renders a template whose result goes to `position`.
    pub fn render(&self, position: Position, field: &str, text: &str) -> Result<String, FlowError> {
        template::render_budgeted(text, &self.for_render(position), &self.budget)
            .map_err(|e| FlowError::from_render(field, e))
    }
    /// Renders a URL template: its host stays, its values are encoded (`template::url`).
    pub fn render_url(&self, field: &str, text: &str, hosts: &[HostParameter]) -> Result<String, FlowError> {
        template::url::render(text, &self.for_render(Position::Url), hosts, &self.budget)
            .map_err(|e| FlowError::from_render(field, e))
    }
}
