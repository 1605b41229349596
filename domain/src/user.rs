//! The User aggregate: identity, credentials (as hashes only), profile, preferences,
//! API keys and watchlist.
//!
//! Secrets never reach this module in the clear: the command service hashes a
//! password with argon2id and an API key with SHA-256 before the command is built, so
//! `decide` only ever sees [`PasswordHash`] and [`ApiKeyHash`] values, whose `Debug`
//! is redacted. Uniqueness of usernames and e-mail addresses spans users, so it is
//! enforced where all users meet: the write transaction (see coinfold-commands).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::values::{CoinSymbol, Description, Email, QuoteCurrency, Username, ValueError};

/// Most API keys a user may have active at once.
pub const MAX_ACTIVE_API_KEYS: usize = 20;
/// Most coins on a watchlist.
pub const MAX_WATCHLIST: usize = 200;

/// An argon2id hash in PHC string form (`$argon2id$v=19$m=…`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn parse(phc: impl Into<String>) -> Result<Self, ValueError> {
        let phc = phc.into();
        if phc.starts_with("$argon2id$") && phc.len() <= 512 {
            Ok(Self(phc))
        } else {
            Err(ValueError::Text {
                what: "password hash (argon2id PHC string)",
                min: 10,
                max: 512,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<PasswordHash> for String {
    fn from(value: PasswordHash) -> Self {
        value.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// The SHA-256 of an API key, as 64 lower-case hex digits. Keys are 256 random bits,
/// so a fast hash is enough; the key itself is shown once and never stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    pub fn parse(hex: impl Into<String>) -> Result<Self, ValueError> {
        let hex = hex.into();
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(hex))
        } else {
            Err(ValueError::Text {
                what: "API key hash (64 hex digits)",
                min: 64,
                max: 64,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ApiKeyHash {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<ApiKeyHash> for String {
    fn from(value: ApiKeyHash) -> Self {
        value.0
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyHash(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// What portfolio values are shown in besides USD.
    pub base_currency: QuoteCurrency,
    pub theme: Theme,
    pub notify_by_email: bool,
    pub notify_by_push: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            base_currency: QuoteCurrency::usd(),
            theme: Theme::System,
            notify_by_email: true,
            notify_by_push: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    pub display_name: Option<Description>,
    pub bio: Option<Description>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub key_id: Uuid,
    pub name: Description,
    /// The first characters of the key, so a user can tell keys apart.
    pub prefix: String,
    pub hash: ApiKeyHash,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserCommand {
    Register {
        user_id: Uuid,
        username: Username,
        email: Email,
        password_hash: PasswordHash,
        now: OffsetDateTime,
    },
    ChangeEmail {
        email: Email,
    },
    ChangePassword {
        password_hash: PasswordHash,
        now: OffsetDateTime,
    },
    UpdateProfile {
        profile: Profile,
    },
    UpdatePreferences {
        preferences: Preferences,
    },
    IssueApiKey {
        key_id: Uuid,
        name: Description,
        prefix: String,
        hash: ApiKeyHash,
        now: OffsetDateTime,
    },
    RevokeApiKey {
        key_id: Uuid,
        now: OffsetDateTime,
    },
    AddToWatchlist {
        coin: CoinSymbol,
    },
    RemoveFromWatchlist {
        coin: CoinSymbol,
    },
    Deactivate {
        now: OffsetDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserEvent {
    Registered {
        user_id: Uuid,
        username: Username,
        email: Email,
        password_hash: PasswordHash,
        #[serde(with = "time::serde::rfc3339")]
        registered_at: OffsetDateTime,
    },
    EmailChanged {
        old: Email,
        new: Email,
    },
    PasswordChanged {
        password_hash: PasswordHash,
        #[serde(with = "time::serde::rfc3339")]
        changed_at: OffsetDateTime,
    },
    ProfileUpdated {
        profile: Profile,
    },
    PreferencesUpdated {
        preferences: Preferences,
    },
    ApiKeyIssued {
        key: ApiKey,
    },
    ApiKeyRevoked {
        key_id: Uuid,
        #[serde(with = "time::serde::rfc3339")]
        revoked_at: OffsetDateTime,
    },
    WatchlistCoinAdded {
        coin: CoinSymbol,
    },
    WatchlistCoinRemoved {
        coin: CoinSymbol,
    },
    Deactivated {
        #[serde(with = "time::serde::rfc3339")]
        deactivated_at: OffsetDateTime,
    },
}

impl cqrs_es::DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Registered { .. } => "UserRegistered",
            Self::EmailChanged { .. } => "EmailChanged",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::ProfileUpdated { .. } => "ProfileUpdated",
            Self::PreferencesUpdated { .. } => "PreferencesUpdated",
            Self::ApiKeyIssued { .. } => "ApiKeyIssued",
            Self::ApiKeyRevoked { .. } => "ApiKeyRevoked",
            Self::WatchlistCoinAdded { .. } => "WatchlistCoinAdded",
            Self::WatchlistCoinRemoved { .. } => "WatchlistCoinRemoved",
            Self::Deactivated { .. } => "UserDeactivated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("the user is already registered")]
    AlreadyRegistered,
    #[error("the user does not exist")]
    NotFound,
    #[error("the user is deactivated")]
    Deactivated,
    #[error("an API key with id {0} already exists")]
    DuplicateApiKey(Uuid),
    #[error("at most {MAX_ACTIVE_API_KEYS} API keys may be active; revoke one first")]
    TooManyApiKeys,
    #[error("no API key with id {0}")]
    ApiKeyNotFound(Uuid),
    #[error("the API key prefix must be 4 to 16 characters of a-z, A-Z, 0-9 and '_'")]
    BadApiKeyPrefix,
    #[error("a watchlist holds at most {MAX_WATCHLIST} coins")]
    WatchlistFull,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    pub user_id: Uuid,
    pub username: Username,
    pub email: Email,
    pub password_hash: PasswordHash,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    pub profile: Profile,
    pub preferences: Preferences,
    pub api_keys: BTreeMap<Uuid, ApiKey>,
    pub watchlist: BTreeSet<CoinSymbol>,
    pub deactivated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    state: Option<UserState>,
}

fn utc(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(UtcOffset::UTC)
}

impl User {
    pub fn state(&self) -> Option<&UserState> {
        self.state.as_ref()
    }

    pub fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        let Some(state) = &self.state else {
            return match command {
                UserCommand::Register {
                    user_id,
                    username,
                    email,
                    password_hash,
                    now,
                } => Ok(vec![UserEvent::Registered {
                    user_id,
                    username,
                    email,
                    password_hash,
                    registered_at: utc(now),
                }]),
                _ => Err(UserError::NotFound),
            };
        };
        if matches!(command, UserCommand::Register { .. }) {
            return Err(UserError::AlreadyRegistered);
        }
        if state.deactivated {
            return Err(UserError::Deactivated);
        }
        let unchanged = |same: bool, event: UserEvent| if same { vec![] } else { vec![event] };
        Ok(match command {
            UserCommand::Register { .. } => return Err(UserError::AlreadyRegistered),
            UserCommand::ChangeEmail { email } => unchanged(
                email == state.email,
                UserEvent::EmailChanged {
                    old: state.email.clone(),
                    new: email,
                },
            ),
            UserCommand::ChangePassword { password_hash, now } => {
                vec![UserEvent::PasswordChanged {
                    password_hash,
                    changed_at: utc(now),
                }]
            }
            UserCommand::UpdateProfile { profile } => unchanged(
                profile == state.profile,
                UserEvent::ProfileUpdated { profile },
            ),
            UserCommand::UpdatePreferences { preferences } => unchanged(
                preferences == state.preferences,
                UserEvent::PreferencesUpdated { preferences },
            ),
            UserCommand::IssueApiKey {
                key_id,
                name,
                prefix,
                hash,
                now,
            } => {
                if state.api_keys.contains_key(&key_id) {
                    return Err(UserError::DuplicateApiKey(key_id));
                }
                let prefix_ok = (4..=16).contains(&prefix.len())
                    && prefix
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !prefix_ok {
                    return Err(UserError::BadApiKeyPrefix);
                }
                let active = state
                    .api_keys
                    .values()
                    .filter(|k| k.revoked_at.is_none())
                    .count();
                if active >= MAX_ACTIVE_API_KEYS {
                    return Err(UserError::TooManyApiKeys);
                }
                vec![UserEvent::ApiKeyIssued {
                    key: ApiKey {
                        key_id,
                        name,
                        prefix,
                        hash,
                        issued_at: utc(now),
                        revoked_at: None,
                    },
                }]
            }
            UserCommand::RevokeApiKey { key_id, now } => {
                let key = state
                    .api_keys
                    .get(&key_id)
                    .ok_or(UserError::ApiKeyNotFound(key_id))?;
                // Revoking twice changes nothing.
                unchanged(
                    key.revoked_at.is_some(),
                    UserEvent::ApiKeyRevoked {
                        key_id,
                        revoked_at: utc(now),
                    },
                )
            }
            UserCommand::AddToWatchlist { coin } => {
                if state.watchlist.contains(&coin) {
                    vec![]
                } else if state.watchlist.len() >= MAX_WATCHLIST {
                    return Err(UserError::WatchlistFull);
                } else {
                    vec![UserEvent::WatchlistCoinAdded { coin }]
                }
            }
            UserCommand::RemoveFromWatchlist { coin } => unchanged(
                !state.watchlist.contains(&coin),
                UserEvent::WatchlistCoinRemoved { coin },
            ),
            UserCommand::Deactivate { now } => vec![UserEvent::Deactivated {
                deactivated_at: utc(now),
            }],
        })
    }

    pub fn evolve(&mut self, event: &UserEvent) {
        if let UserEvent::Registered {
            user_id,
            username,
            email,
            password_hash,
            registered_at,
        } = event
        {
            self.state = Some(UserState {
                user_id: *user_id,
                username: username.clone(),
                email: email.clone(),
                password_hash: password_hash.clone(),
                registered_at: *registered_at,
                profile: Profile::default(),
                preferences: Preferences::default(),
                api_keys: BTreeMap::new(),
                watchlist: BTreeSet::new(),
                deactivated: false,
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            UserEvent::Registered { .. } => {}
            UserEvent::EmailChanged { new, .. } => state.email = new.clone(),
            UserEvent::PasswordChanged { password_hash, .. } => {
                state.password_hash = password_hash.clone();
            }
            UserEvent::ProfileUpdated { profile } => state.profile = profile.clone(),
            UserEvent::PreferencesUpdated { preferences } => {
                state.preferences = preferences.clone();
            }
            UserEvent::ApiKeyIssued { key } => {
                state.api_keys.insert(key.key_id, key.clone());
            }
            UserEvent::ApiKeyRevoked { key_id, revoked_at } => {
                if let Some(key) = state.api_keys.get_mut(key_id) {
                    key.revoked_at = Some(*revoked_at);
                }
            }
            UserEvent::WatchlistCoinAdded { coin } => {
                state.watchlist.insert(coin.clone());
            }
            UserEvent::WatchlistCoinRemoved { coin } => {
                state.watchlist.remove(coin);
            }
            UserEvent::Deactivated { .. } => state.deactivated = true,
        }
    }
}

cqrs_aggregate!(User, "User", UserCommand, UserEvent, UserError);

#[cfg(test)]
mod tests;
