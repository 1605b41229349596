//! The user commands that need more than the aggregate: hashing a password, making an
//! API key. Everything else goes through [`CommandService<User>`] directly.

use coinfold_domain::user::{User, UserCommand, UserError};
use coinfold_domain::values::{Description, Email, Username, ValueError};
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::credentials::{self, CredentialError};
use crate::reservations;
use crate::service::{CommandContext, CommandError, CommandOutcome, CommandService};

#[derive(Debug, thiserror::Error)]
pub enum UserServiceError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Command(#[from] CommandError<UserError>),
}

/// An API key as its owner sees it, once.
pub struct IssuedApiKey {
    pub key_id: Uuid,
    pub secret: SecretString,
    pub prefix: String,
}

/// Who a registration made, and whether it was a repeat answered from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub user_id: Uuid,
    pub replayed: bool,
}

pub struct UserService {
    commands: CommandService<User>,
}

impl UserService {
    pub fn new(commands: CommandService<User>) -> Self {
        Self { commands }
    }

    pub fn commands(&self) -> &CommandService<User> {
        &self.commands
    }

    /// Registers a user; answers `Taken("username")` or `Taken("email")` when another
    /// user holds either.
    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: SecretString,
        context: &CommandContext,
    ) -> Result<Uuid, UserServiceError> {
        Ok(self
            .register_outcome(username, email, password, context)
            .await?
            .user_id)
    }

    /// [`UserService::register`], saying whether an idempotency key answered it: then
    /// the user is the first registration's and nothing was stored or hashed. A key is
    /// checked against the username and e-mail address as normalized; the password
    /// stays out of what is stored (a hash of it there would be a fast verifier beside
    /// the argon2id one), so a caller that hands out a session on a repeat must verify
    /// the password.
    #[tracing::instrument(skip_all)]
    pub async fn register_outcome(
        &self,
        username: &str,
        email: &str,
        password: SecretString,
        context: &CommandContext,
    ) -> Result<Registration, UserServiceError> {
        let username = Username::parse(username)?;
        let email = Email::parse(email)?;
        let context = context.clone().with_request(format!(
            "register\u{0}{}\u{0}{}",
            username.as_str(),
            email.as_str()
        ));
        let user_id = |outcome: CommandOutcome| -> Result<Registration, UserServiceError> {
            let user_id = outcome.aggregate_id.parse().map_err(|_| {
                CommandError::Store(
                    "a stored outcome names an aggregate that is not a user id".into(),
                )
            })?;
            Ok(Registration {
                user_id,
                replayed: outcome.replayed,
            })
        };
        if let Some(first) = self.commands.replayed(&context).await? {
            return user_id(first);
        }
        let password_hash = credentials::hash_password(password).await?;
        let new_id = Uuid::now_v7();
        let command = UserCommand::Register {
            user_id: new_id,
            username,
            email,
            password_hash,
            now: OffsetDateTime::now_utc(),
        };
        let outcome = self
            .commands
            .execute(&new_id.to_string(), command, &context)
            .await?;
        user_id(outcome)
    }

    /// The user holding a username or e-mail address (`login` is either), if any.
    pub async fn find_by_login(&self, login: &str) -> Result<Option<Uuid>, UserServiceError> {
        let claim = if login.contains('@') {
            Email::parse(login)
                .ok()
                .map(|e| ("email", e.as_str().to_owned()))
        } else {
            Username::parse(login)
                .ok()
                .map(|u| ("username", u.as_str().to_owned()))
        };
        let Some((kind, value)) = claim else {
            return Ok(None);
        };
        let holder = reservations::holder(self.commands.pool(), kind, &value)
            .await
            .map_err(|e| CommandError::Store(Box::new(e)))?;
        Ok(holder.and_then(|id| id.parse().ok()))
    }

    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn change_password(
        &self,
        user_id: Uuid,
        password: SecretString,
        context: &CommandContext,
    ) -> Result<CommandOutcome, UserServiceError> {
        let password_hash = credentials::hash_password(password).await?;
        let command = UserCommand::ChangePassword {
            password_hash,
            now: OffsetDateTime::now_utc(),
        };
        Ok(self
            .commands
            .execute(&user_id.to_string(), command, context)
            .await?)
    }

    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn issue_api_key(
        &self,
        user_id: Uuid,
        name: &str,
        context: &CommandContext,
    ) -> Result<IssuedApiKey, UserServiceError> {
        let name = Description::parse(name)?;
        let key = credentials::new_api_key();
        let key_id = Uuid::now_v7();
        let command = UserCommand::IssueApiKey {
            key_id,
            name,
            prefix: key.prefix.clone(),
            hash: key.hash,
            now: OffsetDateTime::now_utc(),
        };
        self.commands
            .execute(&user_id.to_string(), command, context)
            .await?;
        Ok(IssuedApiKey {
            key_id,
            secret: key.secret,
            prefix: key.prefix,
        })
    }
}
