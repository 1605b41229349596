//! HTTP routes. The GraphQL endpoint joins them with the API work (issue 6).

mod health;

pub use health::{health, ready};
