//! # coinfold-api
//!
//! The server and the `coinfold` binary. `main` only parses arguments; everything else
//! is here so tests can build the same app on port 0.
//!
//! A tour:
//!
//! - [`cli`]: the subcommands: `migrate` (create the database if needed, apply
//!   migrations; idempotent), `serve`, `history PORTFOLIO [--as-of T]` (its text made
//!   by [`history_view`]), `ingest`, `replay`, `project` and `projections
//!   status [--partitions]|rebuild NAME`.
//! - [`roles`]: `relay`, `ingest`, and `all` (API, projections, ingest and relay in
//!   one process, one cancellation); [`demo`]: `coinfold demo`, which brings the local
//!   services up, runs `all` on the recordings, seeds two users through the API and
//!   prints what moves.
//! - [`project`]: the `project` role (each projection a task restarted from its
//!   checkpoint, the alert evaluator beside them, its triggers through the command
//!   service) and the `projections` commands' output (status table, progress bar).
//! - [`settings`]: one validated [`settings::Settings`] from `deploy/config/base.toml`
//!   and `COINFOLD_…` / `DATABASE_URL` / `REDIS_URL` / `KAFKA_BROKERS` variables;
//!   secrets stay `SecretString`.
//! - [`startup`]: [`startup::App::build`] binds the listener and wires the state;
//!   `run_until_stopped(shutdown)` serves until the future completes.
//! - [`routes`]: `/health` (liveness) and `/ready` (PostgreSQL, Redis, broker; 503
//!   naming what is down), with the checks in [`readiness`]; `routes::web`: the
//!   dashboard's built files (`web.dir`) on every other path, `/` the app.
//! - [`telemetry`]: JSON logs through `tracing`.
//!
//! - [`graphql`]: the schema served at `/graphql` and `/graphql/ws` (GraphiQL at
//!   `/graphiql`):
//!   accounts, portfolios, alerts and the watchlist, market data, subscriptions; its
//!   error codes, cursor pages and ownership checks.
//! - [`auth`]: access tokens (HS256 JWT), rotating refresh tokens and API keys, and the
//!   [`auth::Caller`] a request's credential proves.
//! - [`hub`]: one Redis pub/sub connection per instance, shared by every subscriber of
//!   a channel.
//! - [`rate_limit`]: requests per minute per address and per user, counted in Redis.
//!
//! - [`metrics`]: `/metrics` for Prometheus: GraphQL requests and latency per
//!   operation, open subscriptions, projection lag and the outbox backlog.

pub mod auth;
pub mod cli;
pub mod demo;
pub mod graphql;
pub mod history_view;
pub mod hub;
pub mod metrics;
pub mod project;
pub mod rate_limit;
pub mod readiness;
pub mod roles;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod telemetry;
