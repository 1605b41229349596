//! What guards the API, through HTTP: rate limits per address and per user (429
//! RATE_LIMITED with a retry-after), API keys (they work until revoked and cannot
//! manage credentials), and the CORS allow-list.

use coinfold_tests::{PASSWORD, TestApp, data, error_code, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

const ME: &str = "{ me { username } }";

/// Sends `query` `times` times; the answers as (status, body).
async fn burst(app: &TestApp, times: usize, headers: &[(&str, &str)]) -> Vec<(StatusCode, Value)> {
    let mut out = Vec::new();
    for _ in 0..times {
        let mut request = app
            .http
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ __typename }" }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("POST /graphql");
        let status = response.status();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.expect("a JSON body");
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
            let after = body["errors"][0]["extensions"]["retryAfter"]
                .as_u64()
                .unwrap();
            assert!((1..=60).contains(&after), "{body}");
            assert_eq!(retry.as_deref(), Some(after.to_string().as_str()));
        }
        out.push((status, body));
    }
    out
}

fn limited(answers: &[(StatusCode, Value)]) -> usize {
    answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .count()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn an_address_over_its_limit_is_answered_rate_limited(pool: PgPool) {
    let app = spawn_app_with(&pool, |s| s.graphql.ip_requests_per_minute = 5).await;
    // 12 requests within one minute, or split over two: either way one minute holds
    // at least 6, one more than the limit.
    let answers = burst(&app, 12, &[]).await;
    assert!(answers[0].0.is_success());
    let over = limited(&answers);
    assert!((1..=7).contains(&over), "{over} of 12 limited");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_user_over_its_limit_is_limited_and_others_are_not(pool: PgPool) {
    let app = spawn_app_with(&pool, |s| {
        s.graphql.user_requests_per_minute = 3;
        s.graphql.ip_requests_per_minute = 1000;
    })
    .await;
    let alice = app.sign_up("alice").await;
    let bearer = format!("Bearer {}", alice.token);
    let answers = burst(&app, 8, &[("authorization", bearer.as_str())]).await;
    assert!(limited(&answers) >= 1, "alice was never limited");
    // Anonymous requests from the same address count only against the address.
    assert_eq!(limited(&burst(&app, 5, &[]).await), 0);
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn an_api_key_works_until_revoked_and_cannot_manage_credentials(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let alice = app.sign_up("alice").await;
    let created = app
        .graphql(
            "mutation { createApiKey(name: \"ci\") { id prefix secret } }",
            json!({}),
            Some(&alice.token),
        )
        .await;
    let key = data(&created, "createApiKey").clone();
    let secret = key["secret"].as_str().unwrap();
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));

    let with_key = |query: &'static str| {
        app.http
            .post(app.url("/graphql"))
            .header("x-api-key", secret)
            .json(&json!({ "query": query }))
            .send()
    };
    let me: Value = with_key(ME).await.unwrap().json().await.unwrap();
    assert_eq!(data(&me, "me")["username"], "alice");
    // The key is listed (no secret), and cannot issue keys or change the password.
    let listed = app
        .graphql(
            "{ me { apiKeys { edges { node { id name prefix revokedAt } } } } }",
            json!({}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(
        data(&listed, "me")["apiKeys"]["edges"][0]["node"]["id"],
        key["id"]
    );
    let issue: Value = with_key("mutation { createApiKey(name: \"x\") { id } }")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&issue), "FORBIDDEN");
    let change = format!(
        "mutation {{ changePassword(currentPassword: \"{PASSWORD}\", newPassword: \"another long password\") }}"
    );
    let change: Value = app
        .http
        .post(app.url("/graphql"))
        .header("x-api-key", secret)
        .json(&json!({ "query": change }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&change), "FORBIDDEN");

    // Two credentials at once, or a made-up key, are refused.
    let both: Value = app
        .http
        .post(app.url("/graphql"))
        .header("x-api-key", secret)
        .bearer_auth(&alice.token)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&both), "UNAUTHENTICATED");
    let forged: Value = app
        .http
        .post(app.url("/graphql"))
        .header("x-api-key", "cfk_0000000000000000")
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&forged), "UNAUTHENTICATED");

    let revoked = app
        .graphql(
            "mutation($id: ID!) { revokeApiKey(id: $id) { events } }",
            json!({ "id": key["id"] }),
            Some(&alice.token),
        )
        .await;
    assert_eq!(data(&revoked, "revokeApiKey")["events"], 1);
    let after: Value = with_key(ME).await.unwrap().json().await.unwrap();
    assert_eq!(error_code(&after), "UNAUTHENTICATED", "{after}");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn only_allowed_origins_pass_cors(pool: PgPool) {
    let app = spawn_app_with(&pool, |s| {
        s.graphql.cors_origins = vec!["https://app.example.com".to_owned()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// graphql-js 16's `getIntrospectionQuery({ descriptions: true, specifiedByUrl: true,
/// directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true })`,
/// what GraphiQL 4, Apollo and GraphQL Code Generator send: 13 fields deep.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}
fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}
fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType { kind name }
              }
            }
          }
        }
      }
    }
  }
}
"#;

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn standard_introspection_passes_while_deep_queries_are_refused(pool: PgPool) {
    let app = spawn_app_with(&pool, |s| s.graphql.max_depth = 4).await;
    let schema = app.graphql(INTROSPECTION, json!({}), None).await;
    assert!(schema.get("errors").is_none(), "{schema}");
    let types = schema["data"]["__schema"]["types"].as_array().unwrap();
    assert!(
        types.iter().any(|t| t["name"] == "PriceUpdate"),
        "{} types, no PriceUpdate",
        types.len()
    );
    // Four levels pass; a fifth, even through a fragment, is refused.
    let alice = app.sign_up("alice").await;
    let four_deep = app
        .graphql(
            "{ me { apiKeys { pageInfo { hasNextPage } } } }",
            json!({}),
            Some(&alice.token),
        )
        .await;
    assert!(four_deep.get("errors").is_none(), "{four_deep}");
    let five = app
        .graphql(
            "{ me { ...K } } fragment K on User { apiKeys { edges { node { id } } } }",
            json!({}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(error_code(&five), "VALIDATION", "{five}");
    assert!(
        five["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{five}"
    );
}
