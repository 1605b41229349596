//! Who is calling. A request carries at most one credential, an access token in
//! `Authorization: Bearer …`; what it proves is a [`Caller`], which the GraphQL
//! resolvers read (see `graphql::require_user`).
//!
//! - [`tokens`]: access tokens (JWT, HS256 only, 15 minutes).
//! - [`refresh`]: rotating refresh tokens (7 days, one use each; a reuse revokes the
//!   family, as does logout) and the sessions they define.

pub mod refresh;
pub mod tokens;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use uuid::Uuid;

use self::refresh::RefreshTokens;
use self::tokens::{AccessTokens, TokenError};

/// A user proven by an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    /// The refresh-token family the token was issued in.
    pub session: Uuid,
}

/// What a request's credentials prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    User(Principal),
    /// A credential was presented and refused; the reason is safe to show.
    Refused(&'static str),
}

/// Reads the request's credential. A database failure while checking the session
/// refuses the credential (it never lets one through).
pub async fn authenticate(
    headers: &HeaderMap,
    tokens: &AccessTokens,
    sessions: &RefreshTokens,
) -> Caller {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Caller::Anonymous;
    };
    let Some(token) = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return Caller::Refused("the Authorization header must be `Bearer <access token>`");
    };
    let claims = match tokens.verify(token) {
        Ok(claims) => claims,
        Err(TokenError::Expired) => return Caller::Refused("the access token has expired"),
        Err(TokenError::Invalid) => return Caller::Refused("the access token is not valid"),
    };
    match sessions.is_revoked(claims.sid).await {
        Ok(false) => Caller::User(Principal {
            user_id: claims.sub,
            session: claims.sid,
        }),
        Ok(true) => Caller::Refused("the session has ended; log in again"),
        Err(error) => {
            tracing::error!(%error, "checking a session failed");
            Caller::Refused("the session could not be checked; try again")
        }
    }
}
