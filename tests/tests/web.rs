//! The dashboard's files: `coinfold serve` answers every path no API route takes from
//! `web.dir`, `/` is the app, GraphiQL is at `/graphiql`, and without a build `/` says
//! how to make one.

use std::path::PathBuf;

use coinfold_tests::spawn_app_with;
use sqlx::PgPool;

/// A build of the dashboard in a directory of this test's own, beside a file that
/// must never be served.
fn built(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("coinfold-web-{name}-{}", std::process::id()));
    let dist = base.join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><title>coinfold</title><div id=root></div>",
    )
    .unwrap();
    std::fs::write(dist.join("assets/index-abc123.js"), "console.log('app')").unwrap();
    std::fs::write(base.join("secret.txt"), "not for the web").unwrap();
    dist
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn the_root_and_every_app_route_answer_the_app(pool: PgPool) {
    let dist = built("routes");
    let app = spawn_app_with(&pool, |settings| settings.web.dir = dist.clone()).await;
    for path in [
        "/",
        "/portfolios/0b0e7c3e-1d9a-4c55-9a57-6f1f2a0f8a11",
        "/coin/BTC",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("<div id=root>"), "{path}: {body}");
    }
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn hashed_assets_are_cached_and_a_missing_one_is_not_found(pool: PgPool) {
    let dist = built("assets");
    let app = spawn_app_with(&pool, |settings| settings.web.dir = dist.clone()).await;
    let response = app.get("/assets/index-abc123.js").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(response.text().await.unwrap(), "console.log('app')");
    let missing = app.get("/assets/index-old999.js").await;
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(missing.headers()["cache-control"], "no-cache");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn nothing_outside_the_build_is_served(pool: PgPool) {
    let dist = built("outside");
    let app = spawn_app_with(&pool, |settings| settings.web.dir = dist.clone()).await;
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
    ] {
        let response = app.get(path).await;
        let body = response.text().await.unwrap();
        assert!(!body.contains("not for the web"), "{path} served {body}");
    }
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn without_a_build_the_root_says_how_to_make_one(pool: PgPool) {
    let missing = std::env::temp_dir().join(format!("coinfold-web-none-{}", std::process::id()));
    let app = spawn_app_with(&pool, |settings| settings.web.dir = missing.clone()).await;
    let response = app.get("/").await;
    assert_eq!(response.status().as_u16(), 404);
    let body = response.text().await.unwrap();
    assert!(body.contains("npm ci &amp;&amp; npm run build"), "{body}");
    assert!(body.contains("href=\"/graphiql\""), "{body}");
    // Built while the server runs: served at once.
    let dist = built("later");
    std::fs::rename(&dist, &missing).unwrap();
    let response = app.get("/").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().await.unwrap().contains("<div id=root>"));
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn graphiql_moved_to_its_own_path(pool: PgPool) {
    let dist = built("graphiql");
    let app = spawn_app_with(&pool, |settings| settings.web.dir = dist.clone()).await;
    let response = app.get("/graphiql").await;
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.unwrap();
    assert!(body.to_lowercase().contains("graphiql"), "{body}");
    assert!(body.contains("/graphql"), "{body}");
}
