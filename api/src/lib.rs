//! # coinfold-api
//!
//! The server and the `coinfold` binary. `main` only parses arguments; everything else
//! is here so tests can build the same app on port 0.
//!
//! A tour:
//!
//! - [`cli`]: the subcommands. Today `migrate` (create the database if needed, apply
//!   migrations; idempotent), `serve`, and `history PORTFOLIO [--as-of T]`, whose
//!   text is made by [`history_view`].
//! - [`settings`]: one validated [`settings::Settings`] from `deploy/config/base.toml`
//!   and `COINFOLD_…` / `DATABASE_URL` / `REDIS_URL` / `KAFKA_BROKERS` variables;
//!   secrets stay `SecretString`.
//! - [`startup`]: [`startup::App::build`] binds the listener and wires the state;
//!   `run_until_stopped(shutdown)` serves until the future completes.
//! - [`routes`]: `/health` (liveness) and `/ready` (PostgreSQL, Redis, broker; 503
//!   naming what is down), with the checks in [`readiness`].
//! - [`telemetry`]: JSON logs through `tracing`.
//!
//! GraphQL, auth, rate limits and the other roles (`project`, `ingest`, `relay`,
//! `all`, `demo`) arrive with issues 3 to 7.

pub mod cli;
pub mod history_view;
pub mod project;
pub mod readiness;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod telemetry;
