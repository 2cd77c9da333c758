//! The one integration-test binary: every test starts the real `grantry`
//! binary on a free loopback port with its own data folder, and talks HTTP to it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fake_provider;
mod harness;

mod access;
mod bad_input;
mod lists;
mod oauth1_flow;
mod oauth1_oracle;
mod oauth_fake;
mod oidc;
mod records;
mod secrets;
mod security;
mod signing;
mod snapshots;
mod transfer;
mod ui;
