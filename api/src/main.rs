//! The `coinfold` binary: parse the arguments, hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coinfold_api::cli::run(coinfold_api::cli::Cli::parse()).await
}
