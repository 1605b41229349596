//! Users against the real PostgreSQL: secrets stored only as hashes, usernames and
//! e-mail addresses unique across users.

use std::sync::Arc;

use coinfold_commands::credentials::{hash_api_key, verify_password};
use coinfold_commands::event_store::PgEventRepository;
use coinfold_commands::service::{
    Actor, CommandContext, CommandError, CommandOptions, CommandService,
};
use coinfold_commands::users::{UserService, UserServiceError};
use coinfold_domain::user::{User, UserCommand};
use coinfold_domain::values::Email;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, EventStore};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

fn users(pool: &PgPool) -> UserService {
    UserService::new(CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions::default(),
    ))
}

fn anonymous() -> CommandContext {
    CommandContext::new(Actor::System("signup".into()))
}

fn secret(s: &str) -> SecretString {
    s.to_owned().into()
}

async fn load(pool: &PgPool, id: Uuid) -> User {
    let store =
        PersistedEventStore::<_, User>::new_event_store(PgEventRepository::new(pool.clone(), ""));
    let mut context = store.load_aggregate(&id.to_string()).await.unwrap();
    context.aggregate().clone()
}

async fn stored_text(pool: &PgPool) -> String {
    sqlx::query_scalar::<_, String>(
        "SELECT string_agg(payload::text || metadata::text, ' ') FROM events",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

fn taken(result: Result<Uuid, UserServiceError>) -> &'static str {
    match result {
        Err(UserServiceError::Command(CommandError::Taken(kind))) => kind,
        other => panic!("expected Taken, got {other:?}"),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_password_is_stored_only_as_an_argon2id_hash(pool: PgPool) {
    let users = users(&pool);
    let id = users
        .register("ada", "Ada@Example.org", secret(PASSWORD), &anonymous())
        .await
        .unwrap();
    let user = load(&pool, id).await;
    let state = user.state().unwrap();
    assert_eq!(state.email, Email::parse("ada@example.org").unwrap());
    assert!(
        state
            .password_hash
            .as_str()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert!(
        verify_password(secret(PASSWORD), &state.password_hash)
            .await
            .unwrap()
    );
    assert!(
        !verify_password(
            secret("correct horse battery stapler"),
            &state.password_hash
        )
        .await
        .unwrap()
    );
    assert!(!stored_text(&pool).await.contains(PASSWORD));

    let weak = users
        .register("bob", "bob@example.org", secret("short"), &anonymous())
        .await;
    assert!(
        matches!(weak, Err(UserServiceError::Credential(_))),
        "{weak:?}"
    );

    users
        .change_password(
            id,
            secret("another long passphrase"),
            &CommandContext::new(Actor::User(id)),
        )
        .await
        .unwrap();
    let state = load(&pool, id).await.state().unwrap().clone();
    assert!(
        verify_password(secret("another long passphrase"), &state.password_hash)
            .await
            .unwrap()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn usernames_and_emails_are_unique_across_users(pool: PgPool) {
    let users = users(&pool);
    users
        .register("ada", "ada@example.org", secret(PASSWORD), &anonymous())
        .await
        .unwrap();
    assert_eq!(
        taken(
            users
                .register("ADA", "other@example.org", secret(PASSWORD), &anonymous())
                .await
        ),
        "username"
    );
    assert_eq!(
        taken(
            users
                .register("bob", "ADA@example.org", secret(PASSWORD), &anonymous())
                .await
        ),
        "email"
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 1, "a refused registration stores nothing");
    let invalid = users
        .register("a b", "x@example.org", secret(PASSWORD), &anonymous())
        .await;
    assert!(
        matches!(invalid, Err(UserServiceError::Invalid(_))),
        "{invalid:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn two_concurrent_registrations_of_one_name_let_one_through(pool: PgPool) {
    let users = Arc::new(users(&pool));
    let tasks: Vec<_> = (0..2)
        .map(|n| {
            let users = users.clone();
            tokio::spawn(async move {
                users
                    .register(
                        "grace",
                        &format!("grace{n}@example.org"),
                        secret(PASSWORD),
                        &anonymous(),
                    )
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let owners: i64 =
        sqlx::query_scalar("SELECT count(*) FROM user_reservations WHERE kind = 'username'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(owners, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn changing_an_email_moves_the_claim(pool: PgPool) {
    let users = users(&pool);
    let ada = users
        .register("ada", "ada@example.org", secret(PASSWORD), &anonymous())
        .await
        .unwrap();
    users
        .register("bob", "bob@example.org", secret(PASSWORD), &anonymous())
        .await
        .unwrap();
    let as_ada = CommandContext::new(Actor::User(ada));

    let clash = users
        .commands()
        .execute(
            &ada.to_string(),
            UserCommand::ChangeEmail {
                email: Email::parse("bob@example.org").unwrap(),
            },
            &as_ada,
        )
        .await;
    assert!(
        matches!(clash, Err(CommandError::Taken("email"))),
        "{clash:?}"
    );

    users
        .commands()
        .execute(
            &ada.to_string(),
            UserCommand::ChangeEmail {
                email: Email::parse("ada@lovelace.dev").unwrap(),
            },
            &as_ada,
        )
        .await
        .unwrap();
    // The old address is free again.
    users
        .register("carol", "ada@example.org", secret(PASSWORD), &anonymous())
        .await
        .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn an_api_key_is_shown_once_and_stored_as_its_hash(pool: PgPool) {
    let users = users(&pool);
    let id = users
        .register("ada", "ada@example.org", secret(PASSWORD), &anonymous())
        .await
        .unwrap();
    let issued = users
        .issue_api_key(id, "trading bot", &CommandContext::new(Actor::User(id)))
        .await
        .unwrap();
    let key = issued.secret.expose_secret();
    assert!(key.starts_with("cf_") && key.len() == 67, "{}", key.len());
    assert!(key.starts_with(&issued.prefix));

    let state = load(&pool, id).await.state().unwrap().clone();
    let stored = &state.api_keys[&issued.key_id];
    assert_eq!(stored.hash, hash_api_key(key));
    assert!(!stored_text(&pool).await.contains(key));

    let another = users
        .issue_api_key(id, "second", &CommandContext::new(Actor::User(id)))
        .await
        .unwrap();
    assert_ne!(another.secret.expose_secret(), key);
}
