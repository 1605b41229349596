//! Helpers shared by the tests that run the `coinfold` binary.

pub const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config");

/// `DATABASE_URL` with its database name replaced.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = without_query
        .rsplit_once('/')
        .map(|(server, _)| server)
        .unwrap_or(without_query);
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}
