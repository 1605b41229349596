//! The user commands that need more than the aggregate: hashing a password, making an
//! API key. Everything else goes through [`CommandService<User>`] directly.

use coinfold_domain::user::{User, UserCommand, UserError};
use coinfold_domain::values::{Description, Email, Username, ValueError};
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::credentials::{self, CredentialError};
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

    /// [`UserService::register`], saying whether an idempotency key matched (and the
    /// client's request in the context): then the user is the first registration's and
    /// nothing was stored. The password was not checked against that user's: a caller
    /// that hands out a session must verify it.
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
        let password_hash = credentials::hash_password(password).await?;
        let user_id = Uuid::now_v7();
        let command = UserCommand::Register {
            user_id,
            username,
            email,
            password_hash,
            now: OffsetDateTime::now_utc(),
        };
        let outcome = self
            .commands
            .execute(&user_id.to_string(), command, context)
            .await?;
        let user_id = outcome.aggregate_id.parse().map_err(|_| {
            CommandError::Store("a stored outcome names an aggregate that is not a user id".into())
        })?;
        Ok(Registration {
            user_id,
            replayed: outcome.replayed,
        })
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
