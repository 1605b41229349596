//! `coinfold migrate`, run as the real binary against the real PostgreSQL.

mod common;

use std::process::Command;

use common::url_with_database;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

fn migrate(database_url: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_coinfold"))
        .arg("migrate")
        .arg("--config-dir")
        .arg(common::CONFIG_DIR)
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the coinfold binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn migrate_creates_the_database_then_changes_nothing_the_second_time() {
    let server_url = std::env::var("DATABASE_URL").expect("DATABASE_URL (run deploy/local/up.sh)");
    let database = format!("coinfold_migrate_{}", uuid::Uuid::new_v4().simple());
    let url = url_with_database(&server_url, &database);

    let all = coinfold_commands::store::MIGRATOR.iter().count();
    let (ok, first) = migrate(&url);
    assert!(ok, "first run failed:\n{first}");
    assert!(
        first.contains(&format!("created database {database}")),
        "{first}"
    );
    assert!(
        first.contains(&format!("{all} migration(s) applied now, {all} in all")),
        "{first}"
    );

    let (ok, second) = migrate(&url);
    assert!(ok, "second run failed:\n{second}");
    assert!(!second.contains("created database"), "{second}");
    assert!(
        second.contains(&format!("0 migration(s) applied now, {all} in all")),
        "{second}"
    );

    let mut connection = PgConnection::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "auth_refresh_tokens",
            "events",
            "idempotency_keys",
            "outbox",
            "projection_checkpoints",
            "projection_offsets",
            "snapshots",
            "user_reservations"
        ]
    );
    connection.close().await.unwrap();

    let mut admin = PgConnection::connect(&server_url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE \"{database}\""))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[test]
fn migrate_without_a_database_url_says_how_to_get_one() {
    let output = Command::new(env!("CARGO_BIN_EXE_coinfold"))
        .arg("migrate")
        .arg("--config-dir")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config"))
        .env_remove("DATABASE_URL")
        .env_remove("COINFOLD_DATABASE__URL")
        .output()
        .expect("the coinfold binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("export DATABASE_URL"), "{stderr}");
}
