//! `schema/schema.graphql` is the API's contract, generated from the code. This test
//! fails when the two drift; `UPDATE_SCHEMA=1 cargo test -p coinfold-api --test
//! schema_contract` rewrites the file (review the diff: a removed or renamed field
//! breaks clients).

use std::path::Path;

#[test]
fn schema_graphql_is_what_the_code_serves() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schema/schema.graphql"
    ));
    let generated = coinfold_api::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &generated).unwrap();
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == generated,
        "schema/schema.graphql differs from the code's schema; run \
         UPDATE_SCHEMA=1 cargo test -p coinfold-api --test schema_contract and review the diff"
    );
}
