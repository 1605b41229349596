//! The GraphQL API: `POST /graphql` (no GET: it would run mutations with passwords
//! and tokens in the URL), GraphiQL at `/`.
//!
//! - [`error`]: [`ApiError`], the `extensions.code` of every error a resolver returns;
//!   errors async-graphql itself raises (a parse error, an unknown field, a query
//!   too deep or too complex) are answered `VALIDATION` by [`handler`].
//! - [`account`]: `me`, `register`, `login`, `refreshToken`, `logout`.
//!
//! Every resolver that needs a user calls [`require_user`]; a refused credential is
//! `UNAUTHENTICATED` with the reason, never treated as anonymous.

pub mod account;
pub mod error;

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql::{Context, EmptySubscription, MergedObject, Schema};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse};
use coinfold_commands::users::UserService;
use coinfold_domain::user::PasswordHash;
use sqlx::PgPool;
use tokio::sync::OnceCell;

use crate::auth::refresh::RefreshTokens;
use crate::auth::tokens::AccessTokens;
use crate::auth::{Caller, Principal, authenticate};
pub use error::ApiError;

/// What the resolvers share.
pub struct Api {
    pub pool: PgPool,
    pub users: UserService,
    pub tokens: AccessTokens,
    pub refresh: RefreshTokens,
    /// A hash to check unknown users' passwords against, so a login for a name that
    /// does not exist takes as long as one with a wrong password.
    pub(crate) decoy: OnceCell<PasswordHash>,
}

impl Api {
    pub fn new(
        pool: PgPool,
        users: UserService,
        tokens: AccessTokens,
        refresh: RefreshTokens,
    ) -> Self {
        Self {
            pool,
            users,
            tokens,
            refresh,
            decoy: OnceCell::new(),
        }
    }
}

#[derive(MergedObject, Default)]
pub struct Query(account::AccountQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(account::AccountMutation);

pub type CoinfoldSchema = Schema<Query, Mutation, EmptySubscription>;

/// Limits on what one request may ask.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    /// The largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
}

pub fn schema(api: Arc<Api>, limits: Limits) -> CoinfoldSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data(api)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .finish()
}

/// The schema in SDL, as `schema/schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .finish()
        .sdl()
}

pub fn api<'a>(ctx: &Context<'a>) -> &'a Api {
    ctx.data_unchecked::<Arc<Api>>()
}

/// The calling user, or `UNAUTHENTICATED`.
pub fn require_user(ctx: &Context<'_>) -> Result<Principal, ApiError> {
    match ctx.data_opt::<Caller>() {
        Some(Caller::User(principal)) => Ok(*principal),
        Some(Caller::Refused(reason)) => Err(ApiError::Unauthenticated((*reason).to_owned())),
        Some(Caller::Anonymous) | None => Err(ApiError::Unauthenticated(
            "log in first: send `Authorization: Bearer <access token>`".to_owned(),
        )),
    }
}

/// What `/graphql` needs.
#[derive(Clone)]
pub struct GraphqlState {
    pub schema: CoinfoldSchema,
    pub api: Arc<Api>,
    pub limits: Limits,
}

/// `POST /graphql`.
pub async fn handler(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let caller = authenticate(&headers, &state.api.tokens, &state.api.refresh).await;
    let mut response = state
        .schema
        .execute(request.into_inner().data(caller))
        .await;
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "VALIDATION");
        }
    }
    response.into()
}

/// GraphiQL, pointed at `/graphql`.
pub async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}
