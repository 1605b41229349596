//! The security and resilience probes of issue 20, one test per behaviour, through
//! HTTP against the real services. (More items of the issue join this file as they
//! are closed.)

use std::time::Duration;

use coinfold_tests::ws::WsClient;
use coinfold_tests::{PASSWORD, TestApp, data, error_code, spawn_app, spawn_app_with};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The market knows BTC (alerts and trades need a coin with a price).
async fn btc_is_known(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO read.latest_prices (coin, quote, price, source, exchange_time) \
         VALUES ('BTC', 'USD', 68000, 'test', now())",
    )
    .execute(pool)
    .await
    .unwrap();
}

fn field(response: &Value) -> &str {
    response["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("an error naming a field: {response}"))
}

async fn create_alert(app: &TestApp, token: &str, alert_id: &str) -> Value {
    app.graphql(
        "mutation($i: CreateAlertInput!) { createAlert(input: $i) { id } }",
        json!({ "i": {
            "alertId": alert_id,
            "coin": "BTC",
            "condition": { "priceAbove": "1000000" },
        } }),
        Some(token),
    )
    .await
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn an_idempotency_key_with_a_nul_byte_is_refused_as_validation(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let alice = app.sign_up("alice").await;
    let answer = app
        .graphql(
            "mutation($k: String) { createPortfolio(input: { name: \"Main\" }, idempotencyKey: $k) { id } }",
            json!({ "k": "retry-\u{0}-1" }),
            Some(&alice.token),
        )
        .await;
    assert_eq!(error_code(&answer), "VALIDATION", "{answer}");
    assert_eq!(field(&answer), "idempotencyKey", "{answer}");
    // Nothing was stored, and the same request with a clean key works.
    let answer = app
        .graphql(
            "mutation($k: String) { createPortfolio(input: { name: \"Main\" }, idempotencyKey: $k) { id } }",
            json!({ "k": "retry-1" }),
            Some(&alice.token),
        )
        .await;
    assert!(data(&answer, "createPortfolio")["id"].is_string());
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_bad_value_history_interval_is_named_never_echoed(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    let alice = app.sign_up("alice").await;
    let portfolio = app.create_portfolio(&alice.token, "Main").await;
    // The read side has it a moment later.
    app.eventually(
        "query($id: ID!) { portfolio(id: $id) { id } }",
        json!({ "id": portfolio }),
        Some(&alice.token),
        |r| r["data"]["portfolio"]["id"].is_string(),
    )
    .await;
    let interval = format!("1m{}", "x".repeat(200_000));
    let answer = app
        .graphql(
            "query($id: ID!, $i: String!) { portfolio(id: $id) { valueHistory(interval: $i, \
               from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\") { at value } } }",
            json!({ "id": portfolio, "i": interval }),
            Some(&alice.token),
        )
        .await;
    assert_eq!(error_code(&answer), "VALIDATION", "{answer}");
    assert_eq!(field(&answer), "interval", "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("xxxx"), "the value is echoed: {message}");
    assert!(message.len() < 200, "{} bytes: {message}", message.len());
    assert!(message.contains("1m, 5m, 1h"), "{message}");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn another_users_alert_id_answers_not_found_on_create(pool: PgPool) {
    btc_is_known(&pool).await;
    let app = spawn_app(&pool).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let id = "0195b3d2-6f7a-7c3e-9a51-3f0d2b7c8e11";
    let created = create_alert(&app, &alice.token, id).await;
    assert_eq!(data(&created, "createAlert")["id"], id);

    // Bob choosing alice's id learns nothing: NOT_FOUND, word for word what his
    // disabling an id he does not know answers.
    let taken = create_alert(&app, &bob.token, id).await;
    assert_eq!(error_code(&taken), "NOT_FOUND", "{taken}");
    let unknown = app
        .graphql(
            "mutation($id: ID!) { disableAlert(id: $id) { id } }",
            json!({ "id": "0195b3d2-6f7a-7c3e-9a51-3f0d2b7c8e99" }),
            Some(&bob.token),
        )
        .await;
    assert_eq!(
        taken["errors"][0]["message"], unknown["errors"][0]["message"],
        "{taken} vs {unknown}"
    );
    // Alice reusing her own id is told it exists.
    let again = create_alert(&app, &alice.token, id).await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn anonymous_corrections_and_voids_are_unauthenticated_first(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let portfolio = "0195b3d2-6f7a-7c3e-9a51-3f0d2b7c8e12";
    let correct = app
        .graphql(
            "mutation($p: ID!, $t: TradeInput!) { correctTrade(portfolioId: $p, trade: $t) { id } }",
            json!({ "p": portfolio, "t": {
                "side": "BUY", "coin": "NOPE", "quantity": "1", "price": "1",
                "executedAt": "2026-01-01T00:00:00Z",
            } }),
            None,
        )
        .await;
    assert_eq!(error_code(&correct), "UNAUTHENTICATED", "{correct}");
    let void = app
        .graphql(
            "mutation($p: ID!) { voidTrade(portfolioId: $p, tradeId: \"not-an-id\", reason: \"typo\") { id } }",
            json!({ "p": portfolio }),
            None,
        )
        .await;
    assert_eq!(error_code(&void), "UNAUTHENTICATED", "{void}");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn an_out_of_range_cursor_is_refused_as_validation(pool: PgPool) {
    let app = spawn_app(&pool).await;
    // The cursors of offsets i64::MAX and -5 (base64url of their JSON), which no page
    // of `coins` hands out: the first overflowed and dropped the connection.
    for cursor in ["OTIyMzM3MjAzNjg1NDc3NTgwNw", "LTU"] {
        let answer = app
            .graphql(
                "query($a: String) { coins(first: 5, after: $a) { nodes { symbol } } }",
                json!({ "a": cursor }),
                None,
            )
            .await;
        assert_eq!(error_code(&answer), "VALIDATION", "{cursor}: {answer}");
        assert_eq!(field(&answer), "after", "{answer}");
    }
    // The server still answers.
    let answer = app
        .graphql("{ coins(first: 5) { nodes { symbol } } }", json!({}), None)
        .await;
    assert!(data(&answer, "coins")["nodes"].is_array());
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_tiny_cost_basis_answers_a_summary_without_panicking(pool: PgPool) {
    btc_is_known(&pool).await;
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    let alice = app.sign_up("alice").await;
    let portfolio = app.create_portfolio(&alice.token, "Main").await;
    let moved = app
        .graphql(
            "mutation($p: ID!, $t: TransferInInput!) { transferIn(portfolioId: $p, transfer: $t) { id } }",
            json!({ "p": portfolio, "t": {
                "coin": "BTC", "quantity": "1000000",
                "costBasis": "0.000000000000000001",
                "executedAt": "2026-01-01T00:00:00Z",
            } }),
            Some(&alice.token),
        )
        .await;
    assert!(data(&moved, "transferIn")["id"].is_string(), "{moved}");
    // Its gain over a cost of 1e-18 is no percentage a decimal holds: the summary
    // answers with the ROI left out, and the connection stays up.
    let answer = app
        .eventually(
            "query($id: ID!) { portfolio(id: $id) { summary { usd { value costBasis roiPct } \
               holdings { coin unrealizedPct } } } }",
            json!({ "id": portfolio }),
            Some(&alice.token),
            |r| r["data"]["portfolio"]["summary"]["holdings"][0]["coin"] == "BTC",
        )
        .await;
    let usd = &answer["data"]["portfolio"]["summary"]["usd"];
    assert_eq!(usd["value"], "68000000000", "{answer}");
    assert!(usd["roiPct"].is_null(), "{answer}");
    assert!(
        answer["data"]["portfolio"]["summary"]["holdings"][0]["unrealizedPct"].is_null(),
        "{answer}"
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn introspection_and_graphiql_are_settings_off_in_deployments(pool: PgPool) {
    const INTROSPECT: &str = "{ __schema { queryType { name } } }";
    // Local runs and the demo (base.toml): both on.
    let open = spawn_app(&pool).await;
    let answer = open.graphql(INTROSPECT, json!({}), None).await;
    assert_eq!(data(&answer, "__schema")["queryType"]["name"], "Query");
    let page = open.get("/graphiql").await.text().await.unwrap();
    assert!(page.contains("GraphiQL IDE"), "{page}");

    // deploy/ sets both off.
    let closed = spawn_app_with(&pool, |settings| {
        settings.graphql.introspection = false;
        settings.graphql.graphiql = false;
    })
    .await;
    let answer = closed.graphql(INTROSPECT, json!({}), None).await;
    // async-graphql answers a disabled introspection with nothing: no type is named.
    assert!(answer["data"]["__schema"].is_null(), "{answer}");
    assert!(!answer.to_string().contains("\"Query\""), "{answer}");
    let page = closed.get("/graphiql").await.text().await.unwrap();
    assert!(!page.contains("GraphiQL IDE"), "{page}");
    // The API itself still answers.
    let answer = closed
        .graphql("{ coins(first: 1) { nodes { symbol } } }", json!({}), None)
        .await;
    assert!(data(&answer, "coins")["nodes"].is_array());
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_socket_without_connection_init_is_closed_with_4408(pool: PgPool) {
    let app = spawn_app_with(&pool, |settings| settings.graphql.ws_init_timeout_ms = 300).await;
    let mut request = format!("ws://{}/graphql/ws", app.address)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // It says nothing: closed by the server, with graphql-ws's code.
    let closed = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the server closes within 5 s");
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4408, "{frame:?}");
        }
        other => panic!("expected a close frame with 4408, got {other:?}"),
    }

    // A connection that does initialise stays open past the deadline: after it, a
    // subscription still answers (the user's own events from the log's start).
    let alice = app.sign_up("alice").await;
    let mut client = WsClient::connect(
        app.address,
        json!({ "authorization": format!("Bearer {}", alice.token) }),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    client
        .subscribe("subscription { events(after: 0) { eventType } }", json!({}))
        .await;
    let event = client.receive(Duration::from_secs(5)).await;
    assert_eq!(
        event.as_ref().map(|e| e["type"].clone()),
        Some(json!("next")),
        "{event:?}"
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn subscriptions_per_connection_and_coins_per_subscription_are_capped(pool: PgPool) {
    let app = spawn_app_with(&pool, |settings| {
        settings.graphql.max_subscriptions_per_connection = 2;
        settings.graphql.max_coins_per_subscription = 3;
    })
    .await;
    let mut client = WsClient::connect(app.address, json!({})).await.unwrap();
    let prices = "subscription($c: [String!]!) { prices(coins: $c) { coin } }";

    // Four coins where three are allowed.
    let id = client
        .subscribe(prices, json!({ "c": ["BTC", "ETH", "SOL", "ADA"] }))
        .await;
    // (A resolver's refusal comes as a `next` with errors, then `complete`.)
    let refused = client.receive(Duration::from_secs(5)).await.unwrap();
    assert_eq!(refused["id"], id.as_str(), "{refused}");
    let error = &refused["payload"]["errors"][0];
    assert_eq!(error["extensions"]["code"], "VALIDATION", "{refused}");
    assert_eq!(error["extensions"]["field"], "coins", "{refused}");
    let done = client.receive(Duration::from_secs(5)).await.unwrap();
    assert_eq!(done["type"], "complete", "{done}");

    // Two open; a third is refused, naming the limit.
    // (Subscriptions start concurrently: one at a time, so the third is the one over.)
    let first = client.subscribe(prices, json!({ "c": ["BTC"] })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.subscribe(prices, json!({ "c": ["ETH"] })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = client.subscribe(prices, json!({ "c": ["SOL"] })).await;
    let refused = client.receive(Duration::from_secs(5)).await.unwrap();
    assert_eq!(refused["id"], third.as_str(), "{refused}");
    let message = refused["payload"]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("at most 2 subscriptions"), "{refused}");

    let done = client.receive(Duration::from_secs(5)).await.unwrap();
    assert_eq!(done["type"], "complete", "{done}");

    // Completing one frees its place: the next subscription is not refused.
    client.complete(&first).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fourth = client.subscribe(prices, json!({ "c": ["SOL"] })).await;
    while let Some(message) = client.receive(Duration::from_millis(500)).await {
        // (The server confirms the complete of `first`.)
        assert_ne!(message["id"], fourth.as_str(), "{message}");
    }
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn subscriptions_end_when_their_credential_does(pool: PgPool) {
    let app = spawn_app_with(&pool, |settings| {
        settings.graphql.ws_credential_check_ms = 200
    })
    .await;
    let alice = app.sign_up("alice").await;
    let events = "subscription { events(after: 0) { eventType } }";

    // A session that logs out.
    let login = app
        .graphql(
            "mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken } }",
            json!({ "i": { "login": "alice", "password": PASSWORD } }),
            None,
        )
        .await;
    let session = data(&login, "login");
    let bearer = format!("Bearer {}", session["accessToken"].as_str().unwrap());
    let mut client = WsClient::connect(app.address, json!({ "authorization": bearer }))
        .await
        .unwrap();
    client.subscribe(events, json!({})).await;
    assert_eq!(
        client.closed(Duration::from_millis(600)).await,
        None,
        "open while signed in"
    );
    let out = app
        .graphql(
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": session["refreshToken"] }),
            None,
        )
        .await;
    assert_eq!(data(&out, "logout"), "ENDED", "{out}");
    assert_eq!(
        client.closed(Duration::from_secs(3)).await,
        Some(4403),
        "closed after logout"
    );

    // An API key that is revoked.
    let key = app
        .graphql(
            "mutation { createApiKey(name: \"bot\") { id secret } }",
            json!({}),
            Some(&alice.token),
        )
        .await;
    let key = data(&key, "createApiKey").clone();
    let mut client = WsClient::connect(app.address, json!({ "apiKey": key["secret"] }))
        .await
        .unwrap();
    client.subscribe(events, json!({})).await;
    assert_eq!(
        client.closed(Duration::from_millis(600)).await,
        None,
        "open while the key holds"
    );
    let revoked = app
        .graphql(
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": key["id"] }),
            Some(&alice.token),
        )
        .await;
    assert!(
        data(&revoked, "revokeApiKey")["id"].is_string(),
        "{revoked}"
    );
    assert_eq!(
        client.closed(Duration::from_secs(3)).await,
        Some(4403),
        "closed after revocation"
    );

    // An anonymous connection has nothing to lose: it stays.
    let mut client = WsClient::connect(app.address, json!({})).await.unwrap();
    client
        .subscribe(
            "subscription { prices(coins: [\"BTC\"]) { coin } }",
            json!({}),
        )
        .await;
    assert_eq!(client.closed(Duration::from_millis(800)).await, None);
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn slow_statements_and_requests_answer_timeout(pool: PgPool) {
    // Another session holds the coin list: a read of it waits until it lets go.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE read.coins IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let coins = "{ coins(first: 5) { nodes { symbol } } }";

    // PostgreSQL's statement_timeout on the API's connections.
    let statements = spawn_app_with(&pool, |settings| {
        settings.graphql.statement_timeout_ms = 300;
    })
    .await;
    let started = std::time::Instant::now();
    let answer = statements.graphql(coins, json!({}), None).await;
    assert_eq!(error_code(&answer), "TIMEOUT", "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("statement"), "no SQL detail: {message}");

    // The whole request's limit, statements unlimited.
    let requests = spawn_app_with(&pool, |settings| {
        settings.graphql.statement_timeout_ms = 0;
        settings.graphql.request_timeout_ms = 300;
    })
    .await;
    let response = requests
        .http
        .post(requests.url("/graphql"))
        .json(&json!({ "query": coins }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 504);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(error_code(&answer), "TIMEOUT", "{answer}");

    // Once the list is free, both answer.
    holder.rollback().await.unwrap();
    for app in [&statements, &requests] {
        let answer = app.graphql(coins, json!({}), None).await;
        assert!(data(&answer, "coins")["nodes"].is_array(), "{answer}");
    }
}
