//! `coinfold history`, run as the real binary on a portfolio with a buy, a sell and a
//! correction.

mod common;

use std::process::Command;

use coinfold_commands::event_store::PgEventRepository;
use coinfold_commands::service::{Actor, CommandContext, CommandOptions, CommandService};
use coinfold_domain::portfolio::{CostBasisMethod, Portfolio, PortfolioCommand, Side, Trade};
use coinfold_domain::values::{
    Amount, CoinSymbol, Description, PortfolioName, Price, Quantity, QuoteCurrency,
};
use rust_decimal::Decimal;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

fn trade(
    n: u128,
    side: Side,
    quantity: &str,
    price: &str,
    fee: &str,
    executed_at: OffsetDateTime,
) -> Trade {
    Trade {
        trade_id: Uuid::from_u128(n),
        side,
        coin: CoinSymbol::parse("BTC").unwrap(),
        quantity: Quantity::new(quantity.parse::<Decimal>().unwrap()).unwrap(),
        price: Price::new(price.parse::<Decimal>().unwrap()).unwrap(),
        quote: QuoteCurrency::usd(),
        fee: Amount::new(fee.parse::<Decimal>().unwrap()).unwrap(),
        executed_at,
        note: None,
        external_id: None,
    }
}

fn history(url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_coinfold"))
        .arg("history")
        .args(args)
        .arg("--config-dir")
        .arg(common::CONFIG_DIR)
        .env("DATABASE_URL", url)
        .output()
        .expect("the coinfold binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn history_prints_events_and_the_state_as_of_a_time(pool: PgPool) {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = common::url_with_database(&std::env::var("DATABASE_URL").unwrap(), &database);
    let service: CommandService<Portfolio> = CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions::default(),
    );
    let id = Uuid::now_v7();
    let context = CommandContext::new(Actor::User(Uuid::from_u128(0xADA)));
    let commands = [
        PortfolioCommand::Create {
            portfolio_id: id,
            owner_id: Uuid::from_u128(0xADA),
            name: PortfolioName::parse("Long term").unwrap(),
            description: Description::parse("").unwrap(),
            method: CostBasisMethod::Fifo,
            currency: QuoteCurrency::usd(),
            now: datetime!(2026-01-01 09:00 UTC),
        },
        PortfolioCommand::RecordTrade {
            trade: trade(
                1,
                Side::Buy,
                "0.5",
                "40000",
                "10",
                datetime!(2026-01-02 10:00 UTC),
            ),
        },
        PortfolioCommand::RecordTrade {
            trade: trade(
                2,
                Side::Sell,
                "0.2",
                "45000",
                "5",
                datetime!(2026-01-05 15:30 UTC),
            ),
        },
        PortfolioCommand::CorrectTrade {
            trade: trade(
                1,
                Side::Buy,
                "0.5",
                "38000",
                "10",
                datetime!(2026-01-02 10:00 UTC),
            ),
        },
    ];
    for command in commands {
        service
            .execute(&id.to_string(), command, &context)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let after_sell: String =
        sqlx::query_scalar("SELECT metadata->>'recorded_at' FROM events WHERE sequence = 3")
            .fetch_one(&pool)
            .await
            .unwrap();

    let all = history(&url, &[&id.to_string()]);
    println!("$ coinfold history {id}\n{all}");
    assert!(all.contains("PortfolioCreated"), "{all}");
    assert!(
        all.contains("BUY 0.5 BTC @ 40000 USD, fee 10, executed 2026-01-02T10:00:00Z"),
        "{all}"
    );
    // Sell 0.2 of a lot costing 20010 for 0.5: cost 8004, proceeds 9000 - 5 = 8995.
    assert!(all.contains("cost 8004 from lots"), "{all}");
    assert!(all.contains("realized 991"), "{all}");
    // The correction re-derives the sell: cost 0.2/0.5 × 19010 = 7604, gain 1391.
    assert!(
        all.contains("corrected to BUY 0.5 BTC @ 38000 USD"),
        "{all}"
    );
    assert!(all.contains("now 1391"), "{all}");
    assert!(
        all.contains(&format!("by user:{}", Uuid::from_u128(0xADA))),
        "{all}"
    );
    assert!(all.contains("effective 2026-01-05T15:30:00Z"), "{all}");

    let then = history(&url, &[&id.to_string(), "--as-of", &after_sell]);
    println!("$ coinfold history {id} --as-of {after_sell}\n{then}");
    assert!(then.contains("version 3"), "{then}");
    assert!(
        then.contains("BTC    0.3 held, cost 12006 USD in 1 lot(s)"),
        "{then}"
    );
    assert!(then.contains("realized gain 991 USD"), "{then}");

    let now = history(&url, &[&id.to_string(), "--version", "4"]);
    assert!(now.contains("BTC    0.3 held, cost 11406 USD"), "{now}");
    assert!(now.contains("realized gain 1391 USD"), "{now}");

    let early = history(
        &url,
        &[&id.to_string(), "--effective-at", "2026-01-03T00:00:00Z"],
    );
    assert!(early.contains("BTC    0.5 held, cost 19010 USD"), "{early}");
    assert!(early.contains("realized gain 0 USD"), "{early}");
}
