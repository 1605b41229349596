//! The account operations through `/graphql`, as a client calls them: register, login,
//! `me`, rotating refresh tokens (a reuse ends the session), logout, forged and expired
//! access tokens, bad input, idempotent registration and the depth limit.

use std::time::Duration;

use coinfold_api::auth::tokens::AccessTokens;
use coinfold_tests::{TestApp, data, error_code, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

const REGISTER: &str = "mutation($input: RegisterInput!, $key: String) { \
    register(input: $input, idempotencyKey: $key) { \
      accessToken refreshToken accessTokenExpiresAt user { id username email } } }";
const LOGIN: &str = "mutation($input: LoginInput!) { \
    login(input: $input) { accessToken refreshToken user { id } } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";
const LOGOUT: &str = "mutation($t: String!) { logout(refreshToken: $t) }";
const ME: &str = "{ me { id username email baseCurrency } }";

fn input(username: &str, password: &str) -> Value {
    json!({ "username": username, "email": format!("{username}@example.com"), "password": password })
}

async fn register(app: &TestApp, username: &str) -> Value {
    let response = app
        .graphql(
            REGISTER,
            json!({ "input": input(username, "correct horse battery") }),
            None,
        )
        .await;
    data(&response, "register").clone()
}

async fn me(app: &TestApp, token: &str) -> Value {
    app.graphql(ME, json!({}), Some(token)).await
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn register_login_me_and_a_wrong_password(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let registered = register(&app, "alice").await;
    let user_id = registered["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(registered["user"]["username"], "alice");

    let mine = me(&app, registered["accessToken"].as_str().unwrap()).await;
    assert_eq!(data(&mine, "me")["id"], user_id.as_str());
    assert_eq!(data(&mine, "me")["baseCurrency"], "USD");

    let anonymous = app.graphql(ME, json!({}), None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    for login in ["alice", "ALICE", "alice@example.com"] {
        let response = app
            .graphql(
                LOGIN,
                json!({ "input": { "login": login, "password": "correct horse battery" } }),
                None,
            )
            .await;
        assert_eq!(data(&response, "login")["user"]["id"], user_id.as_str());
    }
    for (login, password) in [
        ("alice", "wrong horse battery"),
        ("nobody", "correct horse battery"),
    ] {
        let response = app
            .graphql(
                LOGIN,
                json!({ "input": { "login": login, "password": password } }),
                None,
            )
            .await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{response}");
        // The same answer for a wrong password and an unknown user.
        assert_eq!(
            response["errors"][0]["message"],
            "wrong username, e-mail or password"
        );
    }
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_reused_refresh_token_ends_the_session_and_logout_ends_another(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let first = register(&app, "bob").await;
    let first_refresh = first["refreshToken"].as_str().unwrap().to_owned();

    let rotated = app
        .graphql(REFRESH, json!({ "t": first_refresh }), None)
        .await;
    let rotated = data(&rotated, "refreshToken").clone();
    let second_refresh = rotated["refreshToken"].as_str().unwrap().to_owned();
    let access = rotated["accessToken"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    assert!(me(&app, &access).await.get("errors").is_none());

    // The first token again: refused, and the whole session with it.
    let reused = app
        .graphql(REFRESH, json!({ "t": first_refresh }), None)
        .await;
    assert_eq!(error_code(&reused), "UNAUTHENTICATED");
    assert!(
        reused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{reused}"
    );
    let after = app
        .graphql(REFRESH, json!({ "t": second_refresh }), None)
        .await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED", "{after}");
    for token in [first["accessToken"].as_str().unwrap(), access.as_str()] {
        let refused = me(&app, token).await;
        assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    }

    // Another session of the same user is untouched; logout ends it.
    let login = app
        .graphql(
            LOGIN,
            json!({ "input": { "login": "bob", "password": "correct horse battery" } }),
            None,
        )
        .await;
    let login = data(&login, "login").clone();
    let access = login["accessToken"].as_str().unwrap();
    let refresh = login["refreshToken"].as_str().unwrap();
    assert!(me(&app, access).await.get("errors").is_none());
    let out = app.graphql(LOGOUT, json!({ "t": refresh }), None).await;
    assert_eq!(data(&out, "logout"), &json!("ENDED"));
    assert_eq!(error_code(&me(&app, access).await), "UNAUTHENTICATED");
    let again = app.graphql(REFRESH, json!({ "t": refresh }), None).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
    // Logging out again, or with a token of the session the reuse ended, says so.
    for ended in [refresh, second_refresh.as_str()] {
        let out = app.graphql(LOGOUT, json!({ "t": ended }), None).await;
        assert_eq!(data(&out, "logout"), &json!("ALREADY_ENDED"), "{out}");
    }
    let out = app
        .graphql(LOGOUT, json!({ "t": "never-issued" }), None)
        .await;
    assert_eq!(data(&out, "logout"), &json!("UNKNOWN_TOKEN"), "{out}");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn forged_foreign_and_expired_access_tokens_are_refused(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let registered = register(&app, "carol").await;
    let user: Uuid = registered["user"]["id"].as_str().unwrap().parse().unwrap();
    let good = registered["accessToken"].as_str().unwrap();
    let payload = good.split('.').nth(1).unwrap();
    // {"alg":"none","typ":"JWT"}
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let ours = app.settings.auth.jwt_secret.clone().unwrap();
    let session = Uuid::now_v7();
    let (expired, _) = AccessTokens::new(&ours, Duration::from_secs(900))
        .issue(
            user,
            session,
            OffsetDateTime::now_utc() - time::Duration::hours(1),
        )
        .unwrap();
    let (foreign, _) = AccessTokens::new(
        &"another-secret-of-at-least-32-bytes!".to_owned().into(),
        Duration::from_secs(900),
    )
    .issue(user, session, OffsetDateTime::now_utc())
    .unwrap();
    let forge = |algorithm: jsonwebtoken::Algorithm, claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(algorithm),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(
                secrecy::ExposeSecret::expose_secret(&ours).as_bytes(),
            ),
        )
        .unwrap()
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = |iss: &str, sid: Option<Uuid>| {
        let mut c = json!({ "sub": user, "iat": now, "exp": now + 600, "iss": iss,
                            "jti": Uuid::new_v4() });
        if let Some(sid) = sid {
            c["sid"] = json!(sid);
        }
        c
    };
    let hs512 = forge(
        jsonwebtoken::Algorithm::HS512,
        claims("coinfold", Some(session)),
    );
    let wrong_issuer = forge(
        jsonwebtoken::Algorithm::HS256,
        claims("elsewhere", Some(session)),
    );
    let no_session = forge(jsonwebtoken::Algorithm::HS256, claims("coinfold", None));
    let unknown_session = forge(
        jsonwebtoken::Algorithm::HS256,
        claims("coinfold", Some(session)),
    );
    for (what, token, reason) in [
        ("HS512 with our key", hs512, "the access token is not valid"),
        (
            "another issuer",
            wrong_issuer,
            "the access token is not valid",
        ),
        ("no session", no_session, "the access token is not valid"),
        (
            "a session never started",
            unknown_session,
            "the session has ended; log in again",
        ),
        (
            "alg none",
            format!("{none}.{payload}."),
            "the access token is not valid",
        ),
        (
            "alg none, no signature",
            format!("{none}.{payload}"),
            "the access token is not valid",
        ),
        ("another key", foreign, "the access token is not valid"),
        ("expired", expired, "the access token has expired"),
    ] {
        let response = me(&app, &token).await;
        assert_eq!(
            error_code(&response),
            "UNAUTHENTICATED",
            "{what}: {response}"
        );
        assert_eq!(response["errors"][0]["message"], reason, "{what}");
        assert_eq!(response["data"], Value::Null, "{what}");
    }
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn bad_registrations_name_the_field_and_store_nothing(pool: PgPool) {
    let app = spawn_app(&pool).await;
    for (input, field) in [
        (input("x", "correct horse battery"), "username"),
        (input("dave", "short"), "password"),
        (
            json!({ "username": "dave", "email": "not an address", "password": "correct horse battery" }),
            "email",
        ),
    ] {
        let response = app.graphql(REGISTER, json!({ "input": input }), None).await;
        assert_eq!(error_code(&response), "VALIDATION", "{response}");
        assert_eq!(
            response["errors"][0]["extensions"]["field"], field,
            "{response}"
        );
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 0);

    // A taken name, and a malformed request, are client errors too.
    register(&app, "dave").await;
    let taken = app
        .graphql(
            REGISTER,
            json!({ "input": { "username": "Dave", "email": "other@example.com", "password": "correct horse battery" } }),
            None,
        )
        .await;
    assert_eq!(error_code(&taken), "VALIDATION");
    assert_eq!(taken["errors"][0]["extensions"]["field"], "username");
    // The taken name reached the store and left nothing: dave's registration only.
    let (events, claims): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM user_reservations)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((events, claims), (1, 2));
    let unknown = app.graphql("{ me { shoeSize } }", json!({}), None).await;
    assert_eq!(error_code(&unknown), "VALIDATION", "{unknown}");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_repeated_registration_key_answers_the_first_user_only_with_its_password(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let key = Uuid::now_v7().to_string();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = app
            .graphql(
                REGISTER,
                json!({ "input": input("erin", "correct horse battery"), "key": key }),
                None,
            )
            .await;
        let payload = data(&response, "register");
        // The repeat's session works like the first's.
        let mine = me(&app, payload["accessToken"].as_str().unwrap()).await;
        assert_eq!(data(&mine, "me")["username"], "erin");
        ids.push(payload["user"]["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    // The same key and name with another password: no session for it.
    let guess = app
        .graphql(
            REGISTER,
            json!({ "input": input("erin", "another horse battery"), "key": key }),
            None,
        )
        .await;
    assert_eq!(error_code(&guess), "UNAUTHENTICATED", "{guess}");
    // The same key for another user.
    let other = app
        .graphql(
            REGISTER,
            json!({ "input": input("frank", "correct horse battery"), "key": key }),
            None,
        )
        .await;
    assert_eq!(error_code(&other), "CONFLICT", "{other}");
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserRegistered'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(users, 1);
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn two_concurrent_refreshes_of_one_token_end_the_session(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let registered = register(&app, "gina").await;
    let token = registered["refreshToken"].as_str().unwrap();
    let (a, b) = tokio::join!(
        app.graphql(REFRESH, json!({ "t": token }), None),
        app.graphql(REFRESH, json!({ "t": token }), None),
    );
    let winners: Vec<&Value> = [&a, &b]
        .into_iter()
        .filter(|r| r.get("errors").is_none())
        .collect();
    assert!(winners.len() <= 1, "both rotations succeeded: {a} {b}");
    // The row lock serializes them: one wins, the other finds the token used.
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {a} {b}");
    let loser = if a.get("errors").is_some() { &a } else { &b };
    assert_eq!(error_code(loser), "UNAUTHENTICATED", "{loser}");
    assert!(
        loser["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already used")),
        "{loser}"
    );
    // The loser saw a used token: the family is revoked, the winner's token with it.
    for winner in winners {
        let next = winner["data"]["refreshToken"]["refreshToken"]
            .as_str()
            .unwrap();
        let again = app.graphql(REFRESH, json!({ "t": next }), None).await;
        assert_eq!(error_code(&again), "UNAUTHENTICATED", "{again}");
    }
    let access = registered["accessToken"].as_str().unwrap();
    assert_eq!(error_code(&me(&app, access).await), "UNAUTHENTICATED");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_query_nested_too_deep_is_refused(pool: PgPool) {
    let app = spawn_app_with(&pool, |s| s.graphql.max_depth = 3).await;
    // 4 levels, refused before anything runs (so before the missing credential is
    // noticed). Introspection is not counted: see graphql_limits.
    let deep = "{ me { apiKeys { nodes { id } } } }";
    let response = app.graphql(deep, json!({}), None).await;
    assert_eq!(error_code(&response), "VALIDATION", "{response}");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too deep"),
        "{response}"
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_body_over_the_limit_is_refused(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let limit = app.settings.graphql.max_body_bytes;
    let padding = " ".repeat(limit);
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(format!("{{\"query\": \"{{ me {{ id }} }}{padding}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    // Just under the limit is a normal request.
    let fits = " ".repeat(limit - 64);
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(format!("{{\"query\": \"{{ me {{ id }} }}{fits}\"}}"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}
