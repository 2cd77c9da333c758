//! The store conformance suite of `grantry-core`, on SQLite: each case on a
//! fresh database in its own temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Deref;

use crate::SqliteStore;

/// A store and the directory of its database, which goes when the test ends.
struct Fresh {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl Deref for Fresh {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("grantry.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    Fresh { store, _dir: dir }
}

grantry_core::store_conformance!(fresh());
