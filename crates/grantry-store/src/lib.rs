//! Grantry's storage. `SqliteStore` implements the domain's `Store` port on an
//! embedded SQLite file in WAL mode, with migrations embedded in the binary.

mod sqlite;
#[cfg(test)]
mod tests;

pub use sqlite::{database_file, SqliteStore};
