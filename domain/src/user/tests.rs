//! Given/when/then for every User command, each refusal included.

use super::*;
use cqrs_es::test::TestFramework;
use time::macros::datetime;

type Given = TestFramework<User>;

const USER: Uuid = Uuid::from_u128(0x11);
const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn hash(n: u8) -> PasswordHash {
    PasswordHash::parse(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${n:043}")).unwrap()
}

fn key_hash(n: u8) -> ApiKeyHash {
    ApiKeyHash::parse(format!("{n:064x}")).unwrap()
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn registered() -> UserEvent {
    UserEvent::Registered {
        user_id: USER,
        username: Username::parse("ada").unwrap(),
        email: email("ada@example.org"),
        password_hash: hash(1),
        registered_at: NOW,
    }
}

fn btc() -> CoinSymbol {
    CoinSymbol::parse("BTC").unwrap()
}

fn issued(n: u128) -> UserEvent {
    UserEvent::ApiKeyIssued {
        key: ApiKey {
            key_id: Uuid::from_u128(n),
            name: Description::parse("bot").unwrap(),
            prefix: "cf_abcd".into(),
            hash: key_hash(n as u8),
            issued_at: NOW,
            revoked_at: None,
        },
    }
}

fn issue(n: u128) -> UserCommand {
    UserCommand::IssueApiKey {
        key_id: Uuid::from_u128(n),
        name: Description::parse("bot").unwrap(),
        prefix: "cf_abcd".into(),
        hash: key_hash(n as u8),
        now: NOW,
    }
}

#[test]
fn register_creates_the_user() {
    Given::with(())
        .given_no_previous_events()
        .when(UserCommand::Register {
            user_id: USER,
            username: Username::parse("ada").unwrap(),
            email: email("ada@example.org"),
            password_hash: hash(1),
            now: NOW,
        })
        .then_expect_events(vec![registered()]);
}

#[test]
fn register_twice_is_refused() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::Register {
            user_id: USER,
            username: Username::parse("ada").unwrap(),
            email: email("ada@example.org"),
            password_hash: hash(1),
            now: NOW,
        })
        .then_expect_error(UserError::AlreadyRegistered);
}

#[test]
fn an_unregistered_user_is_not_found() {
    Given::with(())
        .given_no_previous_events()
        .when(UserCommand::AddToWatchlist { coin: btc() })
        .then_expect_error(UserError::NotFound);
}

#[test]
fn change_email_records_old_and_new() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::ChangeEmail {
            email: email("ada@lovelace.dev"),
        })
        .then_expect_events(vec![UserEvent::EmailChanged {
            old: email("ada@example.org"),
            new: email("ada@lovelace.dev"),
        }]);
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::ChangeEmail {
            email: email("ADA@example.org"),
        })
        .then_expect_events(vec![]);
}

#[test]
fn change_password_stores_only_the_new_hash() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::ChangePassword {
            password_hash: hash(2),
            now: NOW,
        })
        .then_expect_events(vec![UserEvent::PasswordChanged {
            password_hash: hash(2),
            changed_at: NOW,
        }]);
    assert!(!format!("{:?}", hash(2)).contains("argon2id"));
}

#[test]
fn profile_and_preferences_update_and_repeats_change_nothing() {
    let profile = Profile {
        display_name: Some(Description::parse("Ada L.").unwrap()),
        bio: None,
    };
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::UpdateProfile {
            profile: profile.clone(),
        })
        .then_expect_events(vec![UserEvent::ProfileUpdated {
            profile: profile.clone(),
        }]);
    Given::with(())
        .given(vec![
            registered(),
            UserEvent::ProfileUpdated {
                profile: profile.clone(),
            },
        ])
        .when(UserCommand::UpdateProfile { profile })
        .then_expect_events(vec![]);

    let preferences = Preferences {
        base_currency: QuoteCurrency::parse("EUR").unwrap(),
        theme: Theme::Dark,
        notify_by_email: false,
        notify_by_push: true,
    };
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::UpdatePreferences {
            preferences: preferences.clone(),
        })
        .then_expect_events(vec![UserEvent::PreferencesUpdated { preferences }]);
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::UpdatePreferences {
            preferences: Preferences::default(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn api_keys_are_issued_as_hashes() {
    Given::with(())
        .given(vec![registered()])
        .when(issue(1))
        .then_expect_events(vec![issued(1)]);
}

#[test]
fn api_key_refusals() {
    Given::with(())
        .given(vec![registered(), issued(1)])
        .when(issue(1))
        .then_expect_error(UserError::DuplicateApiKey(Uuid::from_u128(1)));
    let mut bad_prefix = issue(2);
    if let UserCommand::IssueApiKey { prefix, .. } = &mut bad_prefix {
        *prefix = "no spaces".into();
    }
    Given::with(())
        .given(vec![registered()])
        .when(bad_prefix)
        .then_expect_error(UserError::BadApiKeyPrefix);
    let mut full = vec![registered()];
    full.extend((1..=MAX_ACTIVE_API_KEYS as u128).map(issued));
    Given::with(())
        .given(full.clone())
        .when(issue(99))
        .then_expect_error(UserError::TooManyApiKeys);
    // A revoked key frees its place.
    full.push(UserEvent::ApiKeyRevoked {
        key_id: Uuid::from_u128(1),
        revoked_at: NOW,
    });
    Given::with(())
        .given(full)
        .when(issue(99))
        .then_expect_events(vec![issued(99)]);
}

#[test]
fn revoke_api_key_once_then_nothing_changes() {
    let revoke = UserCommand::RevokeApiKey {
        key_id: Uuid::from_u128(1),
        now: NOW,
    };
    Given::with(())
        .given(vec![registered(), issued(1)])
        .when(revoke.clone())
        .then_expect_events(vec![UserEvent::ApiKeyRevoked {
            key_id: Uuid::from_u128(1),
            revoked_at: NOW,
        }]);
    Given::with(())
        .given(vec![
            registered(),
            issued(1),
            UserEvent::ApiKeyRevoked {
                key_id: Uuid::from_u128(1),
                revoked_at: NOW,
            },
        ])
        .when(revoke)
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::RevokeApiKey {
            key_id: Uuid::from_u128(5),
            now: NOW,
        })
        .then_expect_error(UserError::ApiKeyNotFound(Uuid::from_u128(5)));
}

#[test]
fn watchlist_adds_and_removes_each_coin_once() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::AddToWatchlist { coin: btc() })
        .then_expect_events(vec![UserEvent::WatchlistCoinAdded { coin: btc() }]);
    Given::with(())
        .given(vec![
            registered(),
            UserEvent::WatchlistCoinAdded { coin: btc() },
        ])
        .when(UserCommand::AddToWatchlist { coin: btc() })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![
            registered(),
            UserEvent::WatchlistCoinAdded { coin: btc() },
        ])
        .when(UserCommand::RemoveFromWatchlist { coin: btc() })
        .then_expect_events(vec![UserEvent::WatchlistCoinRemoved { coin: btc() }]);
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::RemoveFromWatchlist { coin: btc() })
        .then_expect_events(vec![]);
}

#[test]
fn a_full_watchlist_refuses_another_coin() {
    let mut events = vec![registered()];
    events.extend((0..MAX_WATCHLIST).map(|n| UserEvent::WatchlistCoinAdded {
        coin: CoinSymbol::parse(format!("C{n}")).unwrap(),
    }));
    Given::with(())
        .given(events)
        .when(UserCommand::AddToWatchlist { coin: btc() })
        .then_expect_error(UserError::WatchlistFull);
}

#[test]
fn a_deactivated_user_refuses_everything() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::Deactivate { now: NOW })
        .then_expect_events(vec![UserEvent::Deactivated {
            deactivated_at: NOW,
        }]);
    let gone = vec![
        registered(),
        UserEvent::Deactivated {
            deactivated_at: NOW,
        },
    ];
    Given::with(())
        .given(gone.clone())
        .when(UserCommand::ChangePassword {
            password_hash: hash(3),
            now: NOW,
        })
        .then_expect_error(UserError::Deactivated);
    Given::with(())
        .given(gone)
        .when(UserCommand::Deactivate { now: NOW })
        .then_expect_error(UserError::Deactivated);
}

#[test]
fn secrets_only_parse_as_hashes() {
    assert!(PasswordHash::parse("hunter2").is_err());
    assert!(PasswordHash::parse("$argon2i$v=19$m=1,t=1,p=1$x$y").is_err());
    assert!(ApiKeyHash::parse("cf_live_secret").is_err());
    assert!(ApiKeyHash::parse("A".repeat(64)).is_err());
    let json = serde_json::to_string(&registered()).unwrap();
    assert!(serde_json::from_str::<UserEvent>(&json.replace("$argon2id$", "plain")).is_err());
}
