//! Who is calling. A request carries at most one credential: an access token in
//! `Authorization: Bearer …` (people, through a login), or an API key in `X-Api-Key`
//! (programs; issued by `createApiKey`, stored as SHA-256, found through its claim in
//! `user_reservations`, refused once revoked). What it proves is a [`Caller`], which
//! the GraphQL resolvers read (see `graphql::require_user`).
//!
//! - [`tokens`]: access tokens (JWT, HS256 only, 15 minutes).
//! - [`refresh`]: rotating refresh tokens (7 days, one use each; a reuse revokes the
//!   family, as does logout) and the sessions they define.

pub mod refresh;
pub mod tokens;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use coinfold_commands::credentials::hash_api_key;
use coinfold_commands::reservations;
use coinfold_commands::users::UserService;
use uuid::Uuid;

use self::refresh::RefreshTokens;
use self::tokens::{AccessTokens, TokenError};

/// A user proven by a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub via: Via,
}

/// The credential a principal was proven by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An access token of this session (its refresh-token family).
    Session(Uuid),
    /// The API key with this id.
    ApiKey(Uuid),
}

/// The header a program sends its API key in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// What a request's credentials prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    User(Principal),
    /// A credential was presented and refused; the reason is safe to show.
    Refused(&'static str),
}

/// Reads the request's credential. A database failure while checking it refuses the
/// credential (it never lets one through).
pub async fn authenticate(
    headers: &HeaderMap,
    tokens: &AccessTokens,
    sessions: &RefreshTokens,
    users: &UserService,
) -> Caller {
    match (headers.get(AUTHORIZATION), headers.get(API_KEY_HEADER)) {
        (None, None) => Caller::Anonymous,
        (Some(_), Some(_)) => Caller::Refused("send one credential: a bearer token or an API key"),
        (None, Some(key)) => match key.to_str() {
            Ok(key) => api_key(key.trim(), users).await,
            Err(_) => Caller::Refused("the API key is not valid"),
        },
        (Some(value), None) => {
            let Some(token) = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
            else {
                return Caller::Refused("the Authorization header must be `Bearer <access token>`");
            };
            bearer(token, tokens, sessions).await
        }
    }
}

async fn bearer(token: &str, tokens: &AccessTokens, sessions: &RefreshTokens) -> Caller {
    let claims = match tokens.verify(token) {
        Ok(claims) => claims,
        Err(TokenError::Expired) => return Caller::Refused("the access token has expired"),
        Err(TokenError::Invalid) => return Caller::Refused("the access token is not valid"),
    };
    match sessions.is_revoked(claims.sid).await {
        Ok(false) => Caller::User(Principal {
            user_id: claims.sub,
            via: Via::Session(claims.sid),
        }),
        Ok(true) => Caller::Refused("the session has ended; log in again"),
        Err(error) => {
            tracing::error!(%error, "checking a session failed");
            Caller::Refused("the session could not be checked; try again")
        }
    }
}

async fn api_key(key: &str, users: &UserService) -> Caller {
    const REFUSED: &str = "the API key is not valid";
    let hash = hash_api_key(key);
    let holder = match reservations::holder(users.commands().pool(), "api_key", hash.as_str()).await
    {
        Ok(holder) => holder,
        Err(error) => {
            tracing::error!(%error, "looking up an API key failed");
            return Caller::Refused("the API key could not be checked; try again");
        }
    };
    let Some(user_id) = holder.and_then(|id| id.parse::<Uuid>().ok()) else {
        return Caller::Refused(REFUSED);
    };
    let user = match users.commands().load(&user_id.to_string()).await {
        Ok(user) => user,
        Err(error) => {
            tracing::error!(%error, "loading an API key's user failed");
            return Caller::Refused("the API key could not be checked; try again");
        }
    };
    let Some(state) = user.state() else {
        return Caller::Refused(REFUSED);
    };
    if state.deactivated {
        return Caller::Refused("the user is deactivated");
    }
    match state
        .api_keys
        .values()
        .find(|k| k.hash == hash && k.revoked_at.is_none())
    {
        Some(k) => Caller::User(Principal {
            user_id,
            via: Via::ApiKey(k.key_id),
        }),
        None => Caller::Refused(REFUSED),
    }
}
