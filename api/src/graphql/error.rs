//! The errors a client sees, each with `extensions.code` (the codes of DESIGN.md).
//! An internal error is logged with its cause and answered `INTERNAL` with no detail:
//! no SQL, no stack trace, no secret reaches a client.
//!
//! [`ApiError`] deliberately does not implement `Display`: async-graphql turns any
//! `Display` error into an error without extensions, so a resolver returning one would
//! lose its code. Resolvers return `Result<_, ApiError>`, converted by our `From`.

use coinfold_commands::credentials::CredentialError;
use coinfold_commands::service::CommandError;
use coinfold_commands::users::UserServiceError;
use coinfold_domain::user::UserError;
use coinfold_domain::values::ValueError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Unauthenticated(String),
    Forbidden(String),
    /// Also what another user's id answers: a caller cannot tell it exists.
    NotFound(&'static str),
    Validation {
        field: String,
        message: String,
    },
    Conflict(String),
    RateLimited {
        retry_after_seconds: u64,
    },
    /// The request, or one of its statements, ran past its time limit
    /// (`graphql.request_timeout_ms`, `graphql.statement_timeout_ms`).
    Timeout,
    /// The message is for the log, never for the client.
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Validation { .. } => "VALIDATION",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::Timeout => "TIMEOUT",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    /// What the client reads.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated(m) | ApiError::Forbidden(m) | ApiError::Conflict(m) => {
                m.clone()
            }
            ApiError::NotFound(what) => format!("{what} not found"),
            ApiError::Validation { field, message } => format!("{field}: {message}"),
            ApiError::RateLimited {
                retry_after_seconds,
            } => format!("too many requests; retry after {retry_after_seconds} s"),
            ApiError::Timeout => "the request took longer than its time limit: ask for less (a \
                                  smaller page, a shorter range) or try again"
                .to_owned(),
            ApiError::Internal(_) => "internal error".to_owned(),
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        let cause = error.to_string();
        // PostgreSQL's statement_timeout (SQLSTATE 57014) is the request's limit, not a
        // failure of the server.
        if cause.contains("canceling statement due to statement timeout") {
            return ApiError::Timeout;
        }
        ApiError::Internal(cause)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        if let ApiError::Internal(cause) = &error {
            tracing::error!(error = %cause, "internal error");
        }
        let mut out = async_graphql::Error::new(error.message());
        let extensions = out.extensions.get_or_insert_with(Default::default);
        extensions.set("code", error.code());
        match &error {
            ApiError::Validation { field, .. } => extensions.set("field", field.as_str()),
            ApiError::RateLimited {
                retry_after_seconds,
            } => extensions.set("retryAfter", *retry_after_seconds),
            _ => {}
        }
        out
    }
}

/// The input field a value error is about.
fn value_field(error: &ValueError) -> &'static str {
    match error {
        ValueError::Username => "username",
        ValueError::Email => "email",
        ValueError::CoinSymbol(_) | ValueError::CoinId(_) => "coin",
        ValueError::QuoteCurrency(_) => "quote",
        ValueError::Negative { what }
        | ValueError::TooPrecise { what, .. }
        | ValueError::TooLarge { what, .. }
        | ValueError::Text { what, .. } => what,
        ValueError::Condition(_) => "condition",
    }
}

impl From<ValueError> for ApiError {
    fn from(error: ValueError) -> Self {
        ApiError::validation(value_field(&error), error.to_string())
    }
}

/// A command's failure, for any aggregate whose refusals are `E`.
pub fn command_error<E: std::error::Error>(
    error: CommandError<E>,
    refusal: impl FnOnce(E) -> ApiError,
) -> ApiError {
    match error {
        CommandError::Rejected(e) => refusal(e),
        CommandError::Conflict => ApiError::Conflict(error.to_string()),
        CommandError::IdempotencyKeyReused => ApiError::Conflict(error.to_string()),
        CommandError::InvalidIdempotencyKey => {
            ApiError::validation("idempotencyKey", error.to_string())
        }
        CommandError::Taken(kind) => ApiError::validation(kind, error.to_string()),
        CommandError::Store(_) => ApiError::internal(error),
    }
}

pub fn user_refusal(error: UserError) -> ApiError {
    match error {
        UserError::NotFound => ApiError::NotFound("user"),
        UserError::ApiKeyNotFound(_) => ApiError::NotFound("API key"),
        UserError::Deactivated => ApiError::Forbidden(error.to_string()),
        UserError::BadApiKeyPrefix => ApiError::validation("prefix", error.to_string()),
        UserError::AlreadyRegistered
        | UserError::DuplicateApiKey(_)
        | UserError::TooManyApiKeys
        | UserError::WatchlistFull => ApiError::Conflict(error.to_string()),
    }
}

impl From<UserServiceError> for ApiError {
    fn from(error: UserServiceError) -> Self {
        match error {
            UserServiceError::Invalid(e) => e.into(),
            UserServiceError::Credential(e @ CredentialError::WeakPassword) => {
                ApiError::validation("password", e.to_string())
            }
            UserServiceError::Credential(e) => ApiError::internal(e),
            UserServiceError::Command(e) => command_error(e, user_refusal),
        }
    }
}
