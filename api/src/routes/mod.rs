//! HTTP routes beside the GraphQL endpoint: the probes and the dashboard's files.

mod health;
pub mod web;

pub use health::{health, ready};
