//! Grantry's domain: the record kinds and their rules, templates, list
//! queries and the record service. It knows no HTTP and no SQL; storage, time
//! and sealing are ports (`Store`, `Clock`, `Sealer`).

pub mod access;
mod closed;
mod error;
mod fields;
pub mod filter;
pub mod flows;
mod input;
mod kind;
pub mod notifications;
pub mod oauth1;
pub mod oauth2;
pub mod ports;
mod record;
pub mod schema;
pub mod scrub;
pub mod service;
pub mod template;
pub mod tokens;

pub use closed::*;
pub use error::{Error, FieldErrors, Referrer};
pub use fields::{RefreshField, REFRESH_REQUEST_FIELDS};
pub use kind::*;
pub use record::*;

#[cfg(test)]
mod redaction_tests;
