//! The caller's account: `me` (with its API keys), and `register`, `login`,
//! `refreshToken`, `logout`, `updateProfile`, `updatePreferences`, `changePassword`,
//! `createApiKey`, `revokeApiKey`.
//!
//! A login starts a session: an access token (JWT) and the first refresh token of a
//! new family. `refreshToken` trades a refresh token for a new pair; presenting one a
//! second time ends the session (see `auth::refresh`). `logout` ends it too. Login
//! reads the write side (the username/e-mail claims and the User aggregate), so a
//! user can log in the moment registration returns.

use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use coinfold_commands::credentials;
use coinfold_commands::service::{Actor, CommandContext};
use coinfold_domain::user::{Preferences, Profile, UserCommand, UserState};
use coinfold_domain::values::{Description, QuoteCurrency};
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::{ApiError, command_error, user_refusal};
use super::page::Page;
use super::portfolio::field;
use super::{Api, Receipt, api, require_user, user_context};
use crate::auth::Via;
use crate::auth::refresh::{IssuedRefresh, Logout, RefreshError};

/// What `logout` did.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum LogoutOutcome {
    /// The session was live and is now ended.
    Ended,
    /// The session had already ended (logged out, revoked, or expired); nothing changed.
    AlreadyEnded,
    /// No session has this refresh token.
    UnknownToken,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
#[graphql(remote = "coinfold_domain::user::Theme")]
pub enum Theme {
    System,
    Light,
    Dark,
}

/// A user as they see themselves.
#[derive(SimpleObject)]
#[graphql(name = "User", complex)]
pub struct UserView {
    pub id: ID,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    /// What portfolio values are shown in besides USD.
    pub base_currency: String,
    pub theme: Theme,
    pub notify_by_email: bool,
    pub notify_by_push: bool,
    pub registered_at: OffsetDateTime,
    #[graphql(skip)]
    api_keys: Vec<ApiKeyView>,
}

/// An API key as its owner sees it (the secret is shown once, by `createApiKey`).
#[derive(SimpleObject, Clone)]
pub struct ApiKeyView {
    pub id: ID,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub issued_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&UserState> for UserView {
    fn from(state: &UserState) -> Self {
        let text = |d: &Option<Description>| d.as_ref().map(|d| d.as_str().to_owned());
        let mut api_keys: Vec<ApiKeyView> = state
            .api_keys
            .values()
            .map(|k| ApiKeyView {
                id: ID(k.key_id.to_string()),
                name: k.name.as_str().to_owned(),
                prefix: k.prefix.clone(),
                issued_at: k.issued_at,
                revoked_at: k.revoked_at,
            })
            .collect();
        api_keys.sort_by(|a, b| a.id.cmp(&b.id));
        Self {
            id: ID(state.user_id.to_string()),
            username: state.username.as_str().to_owned(),
            email: state.email.as_str().to_owned(),
            display_name: text(&state.profile.display_name),
            bio: text(&state.profile.bio),
            base_currency: state.preferences.base_currency.as_str().to_owned(),
            theme: state.preferences.theme.into(),
            notify_by_email: state.preferences.notify_by_email,
            notify_by_push: state.preferences.notify_by_push,
            registered_at: state.registered_at,
            api_keys,
        }
    }
}

#[ComplexObject]
impl UserView {
    /// The user's API keys, revoked ones included, by id.
    async fn api_keys(
        &self,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<String>, ApiKeyView>, ApiError> {
        let page: Page<String> = Page::new(first, after)?;
        Ok(page.slice(self.api_keys.clone(), |k| k.id.to_string()))
    }
}

#[derive(InputObject, Serialize)]
pub struct ProfileInput {
    /// Up to 2,000 characters; null clears it.
    pub display_name: Option<String>,
    pub bio: Option<String>,
}

/// Preferences to change; those left out stay as they are.
#[derive(InputObject, Serialize)]
pub struct PreferencesInput {
    pub base_currency: Option<String>,
    pub theme: Option<Theme>,
    pub notify_by_email: Option<bool>,
    pub notify_by_push: Option<bool>,
}

/// A new API key. Keep the secret: it is shown this once.
#[derive(SimpleObject)]
pub struct NewApiKey {
    pub id: ID,
    pub prefix: String,
    /// Send it as `X-Api-Key`.
    pub secret: String,
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
    /// working. Answers whether it ended a live session, found it already ended, or
    /// does not know the token.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] refresh_token: String,
    ) -> Result<LogoutOutcome, ApiError> {
        let found = api(ctx)
            .refresh
            .revoke(&SecretString::from(refresh_token))
            .await
            .map_err(refresh_error)?;
        Ok(match found {
            Some(Logout::Ended) => LogoutOutcome::Ended,
            Some(Logout::AlreadyEnded) => LogoutOutcome::AlreadyEnded,
            None => LogoutOutcome::UnknownToken,
        })
    }

    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: ProfileInput,
        idempotency_key: Option<String>,
    ) -> Result<UserView, ApiError> {
        let text = |name: &str, raw: &Option<String>| {
            raw.as_deref()
                .map(|r| field(name, Description::parse(r)))
                .transpose()
        };
        let profile = Profile {
            display_name: text("displayName", &input.display_name)?,
            bio: text("bio", &input.bio)?,
        };
        own_command(ctx, "updateProfile", &input, idempotency_key, |_| {
            Ok(UserCommand::UpdateProfile { profile })
        })
        .await
    }

    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: PreferencesInput,
        idempotency_key: Option<String>,
    ) -> Result<UserView, ApiError> {
        let base_currency = input
            .base_currency
            .as_deref()
            .map(|c| field("baseCurrency", QuoteCurrency::parse(c)))
            .transpose()?;
        own_command(ctx, "updatePreferences", &input, idempotency_key, |user| {
            let now = &user.preferences;
            Ok(UserCommand::UpdatePreferences {
                preferences: Preferences {
                    base_currency: base_currency.unwrap_or_else(|| now.base_currency.clone()),
                    theme: input.theme.map_or(now.theme, Into::into),
                    notify_by_email: input.notify_by_email.unwrap_or(now.notify_by_email),
                    notify_by_push: input.notify_by_push.unwrap_or(now.notify_by_push),
                },
            })
        })
        .await
    }

    /// Changes the password (the current one is asked again) and ends every other
    /// session; this one stays. Not open to API keys.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] current_password: String,
        #[graphql(secret)] new_password: String,
    ) -> Result<bool, ApiError> {
        let principal = require_user(ctx)?;
        let Via::Session(session) = principal.via else {
            return Err(ApiError::Forbidden(
                "an API key cannot change the password; log in".to_owned(),
            ));
        };
        let api = api(ctx);
        let user = load_user(api, principal.user_id).await?;
        check_credentials(api, user, SecretString::from(current_password)).await?;
        let context = CommandContext::new(Actor::User(principal.user_id));
        api.users
            .change_password(
                principal.user_id,
                SecretString::from(new_password),
                &context,
            )
            .await?;
        api.refresh
            .revoke_other_sessions(principal.user_id, Some(session))
            .await
            .map_err(refresh_error)?;
        Ok(true)
    }

    /// Issues an API key for programs. Not open to API keys.
    async fn create_api_key(&self, ctx: &Context<'_>, name: String) -> Result<NewApiKey, ApiError> {
        let principal = require_user(ctx)?;
        if let Via::ApiKey(_) = principal.via {
            return Err(ApiError::Forbidden(
                "an API key cannot issue API keys; log in".to_owned(),
            ));
        }
        let context = CommandContext::new(Actor::User(principal.user_id));
        let issued = api(ctx)
            .users
            .issue_api_key(principal.user_id, &name, &context)
            .await
            .map_err(|e| match ApiError::from(e) {
                ApiError::Validation { message, .. } => ApiError::validation("name", message),
                other => other,
            })?;
        Ok(NewApiKey {
            id: ID(issued.key_id.to_string()),
            prefix: issued.prefix,
            secret: secrecy::ExposeSecret::expose_secret(&issued.secret).to_owned(),
        })
    }

    /// Revokes one of the caller's API keys: it stops working at once.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let principal = require_user(ctx)?;
        let key_id: Uuid = id.parse().map_err(|_| ApiError::NotFound("API key"))?;
        let context = user_context(&principal, "revokeApiKey", &id, idempotency_key);
        let outcome = api(ctx)
            .users
            .commands()
            .execute(
                &principal.user_id.to_string(),
                UserCommand::RevokeApiKey {
                    key_id,
                    now: OffsetDateTime::now_utc(),
                },
                &context,
            )
            .await
            .map_err(|e| command_error(e, user_refusal))?;
        Ok(outcome.into())
    }
}

/// Runs a command on the caller's own User aggregate; the user after it.
async fn own_command(
    ctx: &Context<'_>,
    mutation: &str,
    input: &impl Serialize,
    idempotency_key: Option<String>,
    command: impl FnOnce(&UserState) -> Result<UserCommand, ApiError>,
) -> Result<UserView, ApiError> {
    let principal = require_user(ctx)?;
    let api = api(ctx);
    let user = load_user(api, principal.user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let context = user_context(&principal, mutation, input, idempotency_key);
    api.users
        .commands()
        .execute(&principal.user_id.to_string(), command(&user)?, &context)
        .await
        .map_err(|e| command_error(e, user_refusal))?;
    let user = load_user(api, principal.user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok((&user).into())
}
