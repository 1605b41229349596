//! Helpers shared by the tests that run the `coinfold` binary.

pub const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config");

pub use coinfold_api::settings::url_with_database;
