//! The caller's account: `me`, and `register`, `login`, `refreshToken`, `logout`.
//!
//! A login starts a session: an access token (JWT) and the first refresh token of a
//! new family. `refreshToken` trades a refresh token for a new pair; presenting one a
//! second time ends the session (see `auth::refresh`). `logout` ends it too. Login
//! reads the write side (the username/e-mail claims and the User aggregate), so a
//! user can log in the moment registration returns.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use coinfold_commands::credentials;
use coinfold_commands::service::{Actor, CommandContext};
use coinfold_domain::user::UserState;
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::{ApiError, command_error, user_refusal};
use super::{Api, api, require_user};
use crate::auth::refresh::{IssuedRefresh, RefreshError};

/// A user as they see themselves.
#[derive(SimpleObject)]
#[graphql(name = "User")]
pub struct UserView {
    pub id: ID,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    /// What portfolio values are shown in besides USD.
    pub base_currency: String,
    pub registered_at: OffsetDateTime,
}

impl From<&UserState> for UserView {
    fn from(state: &UserState) -> Self {
        Self {
            id: ID(state.user_id.to_string()),
            username: state.username.as_str().to_owned(),
            email: state.email.as_str().to_owned(),
            display_name: state
                .profile
                .display_name
                .as_ref()
                .map(|d| d.as_str().to_owned()),
            base_currency: state.preferences.base_currency.as_str().to_owned(),
            registered_at: state.registered_at,
        }
    }
}

/// A session's tokens. Keep the refresh token secret: it is shown once.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub access_token_expires_at: OffsetDateTime,
    pub refresh_token: String,
    pub refresh_token_expires_at: OffsetDateTime,
    pub user: UserView,
}

#[derive(InputObject)]
pub struct RegisterInput {
    /// 3 to 32 characters of a-z, 0-9, '.', '_' and '-' (stored in lower case).
    pub username: String,
    pub email: String,
    /// 12 to 256 characters.
    #[graphql(secret)]
    pub password: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    /// The username or the e-mail address.
    pub login: String,
    #[graphql(secret)]
    pub password: String,
}

const BAD_LOGIN: &str = "wrong username, e-mail or password";

async fn load_user(api: &Api, user_id: Uuid) -> Result<Option<UserState>, ApiError> {
    let user = api
        .users
        .commands()
        .load(&user_id.to_string())
        .await
        .map_err(|e| command_error(e, user_refusal))?;
    Ok(user.state().cloned())
}

fn session(api: &Api, refresh: IssuedRefresh, user: &UserState) -> Result<AuthPayload, ApiError> {
    let (access_token, access_token_expires_at) = api
        .tokens
        .issue(refresh.user_id, refresh.family, OffsetDateTime::now_utc())
        .map_err(ApiError::internal)?;
    Ok(AuthPayload {
        access_token,
        access_token_expires_at,
        refresh_token: secrecy::ExposeSecret::expose_secret(&refresh.token).to_owned(),
        refresh_token_expires_at: refresh.expires_at,
        user: user.into(),
    })
}

fn refresh_error(error: RefreshError) -> ApiError {
    match error {
        RefreshError::Database(e) => ApiError::internal(e),
        other => ApiError::Unauthenticated(other.to_string()),
    }
}

/// The login checks: the password against the stored hash (against a decoy when there
/// is no user, to take as long), then that the user is active.
async fn check_credentials(
    api: &Api,
    user: Option<UserState>,
    password: SecretString,
) -> Result<UserState, ApiError> {
    let Some(user) = user else {
        let decoy = api
            .decoy
            .get_or_try_init(|| {
                credentials::hash_password(SecretString::from("decoy password, never valid"))
            })
            .await
            .map_err(ApiError::internal)?;
        let _ = credentials::verify_password(password, decoy).await;
        return Err(ApiError::Unauthenticated(BAD_LOGIN.to_owned()));
    };
    let matches = credentials::verify_password(password, &user.password_hash)
        .await
        .map_err(ApiError::internal)?;
    if !matches {
        return Err(ApiError::Unauthenticated(BAD_LOGIN.to_owned()));
    }
    if user.deactivated {
        return Err(ApiError::Forbidden("the user is deactivated".to_owned()));
    }
    Ok(user)
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The calling user.
    async fn me(&self, ctx: &Context<'_>) -> Result<UserView, ApiError> {
        let principal = require_user(ctx)?;
        let user = load_user(api(ctx), principal.user_id)
            .await?
            .ok_or(ApiError::NotFound("user"))?;
        Ok((&user).into())
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates a user and logs them in. The same `idempotencyKey` with the same username
    /// and e-mail address answers the first registration again, with a new session if
    /// the password is that user's.
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
        idempotency_key: Option<String>,
    ) -> Result<AuthPayload, ApiError> {
        let api = api(ctx);
        let mut context = CommandContext::new(Actor::System("api:register".to_owned()));
        if let Some(key) = idempotency_key {
            context = context.with_idempotency_key(key);
        }
        let password = SecretString::from(input.password);
        let registration = api
            .users
            .register_outcome(&input.username, &input.email, password.clone(), &context)
            .await?;
        let user = load_user(api, registration.user_id).await?;
        let user = if registration.replayed {
            // A repeat gets a session only as a login would.
            check_credentials(api, user, password).await?
        } else {
            user.ok_or_else(|| ApiError::internal("a registered user cannot be loaded"))?
        };
        let refresh = api
            .refresh
            .start(user.user_id)
            .await
            .map_err(refresh_error)?;
        session(api, refresh, &user)
    }

    /// Starts a session for a username (or e-mail address) and password.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload, ApiError> {
        let api = api(ctx);
        let user = match api.users.find_by_login(&input.login).await? {
            Some(user_id) => load_user(api, user_id).await?,
            None => None,
        };
        let user = check_credentials(api, user, SecretString::from(input.password)).await?;
        let refresh = api
            .refresh
            .start(user.user_id)
            .await
            .map_err(refresh_error)?;
        session(api, refresh, &user)
    }

    /// Trades a refresh token for a new access token and refresh token. A refresh token
    /// works once: presenting it again ends the session everywhere.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] refresh_token: String,
    ) -> Result<AuthPayload, ApiError> {
        let api = api(ctx);
        let refresh = api
            .refresh
            .rotate(&SecretString::from(refresh_token))
            .await
            .map_err(refresh_error)?;
        let user = load_user(api, refresh.user_id)
            .await?
            .ok_or(ApiError::NotFound("user"))?;
        if user.deactivated {
            api.refresh
                .revoke_family(refresh.family)
                .await
                .map_err(refresh_error)?;
            return Err(ApiError::Forbidden("the user is deactivated".to_owned()));
        }
        session(api, refresh, &user)
    }

    /// Ends the session of `refreshToken`: its refresh tokens and its access tokens stop
    /// working. True when there was such a session.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] refresh_token: String,
    ) -> Result<bool, ApiError> {
        let revoked = api(ctx)
            .refresh
            .revoke(&SecretString::from(refresh_token))
            .await
            .map_err(refresh_error)?;
        Ok(revoked.is_some())
    }
}
