//! Fees in imported exports, by the asset they were paid in (issue 18): a fee in the
//! coin traded moves the holding, a fee in the quote currency is a cost or proceeds
//! fee, a fee in a third coin is noted and recorded as 0. Each file is parsed and
//! folded through the Portfolio aggregate, as an import stores it.

use coinfold_commands::import::{self, ImportFormat, Parsed};
use coinfold_domain::portfolio::{CostBasisMethod, Portfolio, PortfolioCommand, Position, Side};
use coinfold_domain::values::{CoinSymbol, Description, Note, PortfolioName, QuoteCurrency};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use time::macros::datetime;
use uuid::Uuid;

const PORTFOLIO: Uuid = Uuid::from_u128(18);
const HEADER: &str = "Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n";

fn usdt() -> QuoteCurrency {
    QuoteCurrency::parse("USDT").unwrap()
}

fn parse(format: ImportFormat, text: &str, currency: &QuoteCurrency) -> Parsed {
    import::parse(format, text, PORTFOLIO, currency).unwrap_or_else(|e| panic!("{e}"))
}

/// The portfolio after importing `parsed`, as the command service would store it.
fn imported(parsed: Parsed, currency: QuoteCurrency) -> (Portfolio, Vec<Position>) {
    let mut portfolio = Portfolio::default();
    let create = PortfolioCommand::Create {
        portfolio_id: PORTFOLIO,
        owner_id: Uuid::from_u128(1),
        name: PortfolioName::parse("Binance").unwrap(),
        description: Description::parse("").unwrap(),
        method: CostBasisMethod::Fifo,
        currency,
        now: datetime!(2026-01-01 00:00 UTC),
    };
    let (command, _) = import::command(parsed.trades);
    for command in [create, command] {
        for event in portfolio.decide(command).unwrap() {
            portfolio.evolve(&event);
        }
    }
    let (positions, _) = portfolio.positions().unwrap();
    (portfolio, positions)
}

fn position<'a>(positions: &'a [Position], coin: &str) -> &'a Position {
    let coin = CoinSymbol::parse(coin).unwrap();
    positions.iter().find(|p| p.coin == coin).unwrap()
}

fn note(trade: &coinfold_domain::portfolio::Trade) -> Option<&str> {
    trade.note.as_ref().map(Note::as_str)
}

#[test]
fn a_binance_buy_with_its_fee_in_the_coin_holds_what_the_exchange_holds() {
    let text = format!(
        "{HEADER}2026-01-05 14:02:11,ETHUSDT,BUY,3500.00,0.50000000ETH,1750.00000000USDT,0.00050000ETH\n"
    );
    let parsed = parse(ImportFormat::Binance, &text, &usdt());
    let (_, trade) = &parsed.trades[0];
    assert_eq!(trade.quantity.value(), dec!(0.4995));
    assert_eq!(trade.price.value(), dec!(3500));
    // The fee's value is in the cost, not in the quantity too: 0.4995 × 3500 + 1.75.
    assert_eq!(trade.fee.value(), dec!(1.75));
    assert_eq!(
        note(trade),
        Some("fee 0.0005 ETH withheld from the 0.5 ETH executed, valued 1.75 USDT")
    );

    let (_, positions) = imported(parsed, usdt());
    let eth = position(&positions, "ETH");
    assert_eq!(eth.quantity, dec!(0.4995));
    assert_eq!(eth.cost_basis, dec!(1750));
}

#[test]
fn a_binance_sell_with_its_fee_in_the_coin_gives_the_fee_on_top() {
    let text = format!(
        "{HEADER}2026-01-05 14:00:00,ETHUSDT,BUY,3000,1ETH,3000USDT,3USDT\n\
         2026-01-05 15:00:00,ETHUSDT,SELL,3500,0.5ETH,1750USDT,0.0005ETH\n"
    );
    let parsed = parse(ImportFormat::Binance, &text, &usdt());
    let (_, sell) = &parsed.trades[1];
    assert_eq!(sell.side, Side::Sell);
    assert_eq!(sell.quantity.value(), dec!(0.5005));
    assert_eq!(sell.fee.value(), dec!(1.75));
    assert_eq!(
        note(sell),
        Some("fee 0.0005 ETH given on top of the 0.5 ETH executed, valued 1.75 USDT")
    );

    let sell_id = sell.trade_id;
    let (portfolio, positions) = imported(parsed, usdt());
    let eth = position(&positions, "ETH");
    assert_eq!(eth.quantity, dec!(0.4995));
    // FIFO: 0.5005 of the lot of 1 for 3003 (3.003 each) cost 1503.0015; what the sell
    // brought in is the 1750 USDT the exchange paid out.
    let disposal = portfolio.state().unwrap().disposals.get(&sell_id).unwrap();
    assert_eq!(disposal.proceeds, dec!(1750));
    assert_eq!(disposal.cost_basis, dec!(1503.0015));
    assert_eq!(eth.realized_gain, dec!(246.9985));
    assert_eq!(eth.cost_basis, dec!(1499.9985));
}

#[test]
fn a_fee_in_the_quote_currency_stays_a_cost_fee() {
    let text = format!(
        "{HEADER}2026-01-05 14:02:11,ETHUSDT,BUY,3500.00,0.50000000ETH,1750.00000000USDT,1.75000000USDT\n"
    );
    let parsed = parse(ImportFormat::Binance, &text, &usdt());
    let (_, trade) = &parsed.trades[0];
    assert_eq!(trade.quantity.value(), dec!(0.5));
    assert_eq!(trade.fee.value(), dec!(1.75));
    assert_eq!(note(trade), None);

    let (_, positions) = imported(parsed, usdt());
    let eth = position(&positions, "ETH");
    assert_eq!(eth.quantity, dec!(0.5));
    assert_eq!(eth.cost_basis, dec!(1751.75));
}

#[test]
fn a_fee_in_a_third_coin_is_noted_and_recorded_as_zero() {
    // Paying it is a disposal of BNB, whose value needs a BNB price the export does
    // not hold; the holding of ETH is what was executed.
    let text = format!(
        "{HEADER}2026-01-05 14:02:11,ETHUSDT,BUY,3500.00,0.50000000ETH,1750.00000000USDT,0.00120000BNB\n"
    );
    let parsed = parse(ImportFormat::Binance, &text, &usdt());
    let (_, trade) = &parsed.trades[0];
    assert_eq!(trade.quantity.value(), dec!(0.5));
    assert_eq!(trade.fee.value(), Decimal::ZERO);
    assert_eq!(
        note(trade),
        Some("fee 0.0012 BNB (not in USDT, recorded as 0)")
    );

    let (_, positions) = imported(parsed, usdt());
    assert_eq!(positions.len(), 1, "no BNB position: {positions:?}");
    let eth = position(&positions, "ETH");
    assert_eq!((eth.quantity, eth.cost_basis), (dec!(0.5), dec!(1750)));
}

#[test]
fn the_older_binance_export_reads_its_fee_coin() {
    let text = "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin\n\
                2021-03-15 10:20:30,ETHUSDT,BUY,3500,0.5,1750,0.0005,ETH\n\
                2021-03-15 10:21:30,ETHUSDT,BUY,3500,0.5,1750,0.875,USDT\n";
    let parsed = parse(ImportFormat::Binance, text, &usdt());
    let amounts: Vec<(Decimal, Decimal)> = parsed
        .trades
        .iter()
        .map(|(_, t)| (t.quantity.value(), t.fee.value()))
        .collect();
    assert_eq!(
        amounts,
        vec![(dec!(0.4995), dec!(1.75)), (dec!(0.5), dec!(0.875))]
    );
}

#[test]
fn assets_that_begin_with_a_digit_are_split_from_their_amounts() {
    let text =
        format!("{HEADER}2024-03-01 13:00:00,1INCHUSDT,BUY,0.51,100.0001INCH,51USDT,0.1001INCH\n");
    let parsed = parse(ImportFormat::Binance, &text, &usdt());
    let (_, trade) = &parsed.trades[0];
    assert_eq!(trade.coin.as_str(), "1INCH");
    assert_eq!(trade.quantity.value(), dec!(99.9));
    assert_eq!(trade.fee.value(), dec!(0.051));
}

#[test]
fn a_coin_fee_as_large_as_the_buy_is_refused_by_line_and_column() {
    let text = format!(
        "{HEADER}2026-01-05 14:02:11,ETHUSDT,BUY,3500,0.5ETH,1750USDT,0.0005ETH\n\
         2026-01-05 14:03:11,ETHUSDT,BUY,3500,0.5ETH,1750USDT,0.5ETH\n"
    );
    let error = import::parse(ImportFormat::Binance, &text, PORTFOLIO, &usdt()).unwrap_err();
    assert_eq!((error.line, error.column.as_str()), (3, "Fee"), "{error}");
    let wrong_asset =
        format!("{HEADER}2026-01-05 14:02:11,ETHUSDT,BUY,3500,0.5BTC,1750USDT,0USDT\n");
    let error = import::parse(ImportFormat::Binance, &wrong_asset, PORTFOLIO, &usdt()).unwrap_err();
    assert_eq!(
        (error.line, error.column.as_str()),
        (2, "Executed"),
        "{error}"
    );
}

#[test]
fn coinbase_fees_are_in_the_quote_currency_and_stay_cost_fees() {
    // The transaction report: `Fees and/or Spread` in the price's currency.
    let report = "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n\
                  cb1,2026-01-05 14:02:11 UTC,Buy,ETH,0.5,USD,\"$3,500.00\",\"$1,750.00\",\"$1,760.00\",$10.00,\n";
    let usd = QuoteCurrency::usd();
    let parsed = parse(ImportFormat::Coinbase, report, &usd);
    let (_, trade) = &parsed.trades[0];
    assert_eq!(
        (trade.quantity.value(), trade.fee.value()),
        (dec!(0.5), dec!(10))
    );
    let (_, positions) = imported(parsed, usd.clone());
    let eth = position(&positions, "ETH");
    assert_eq!((eth.quantity, eth.cost_basis), (dec!(0.5), dec!(1760)));

    // The fills export of Advanced Trade: `fee` in `price/fee/total unit`, the size in
    // `size unit`.
    let fills = "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit\n\
                 default,901,ETH-USD,BUY,2026-01-05T14:02:11.123Z,0.5,ETH,3500.00,8.75,-1758.75,USD\n\
                 default,902,ETH-USD,SELL,2026-01-06T09:00:00.000Z,0.2,ETH,3600.00,3.60,716.40,USD\n";
    let parsed = parse(ImportFormat::Coinbase, fills, &usd);
    let trades: Vec<_> = parsed
        .trades
        .iter()
        .map(|(line, t)| {
            (
                *line,
                t.side,
                t.quantity.value(),
                t.fee.value(),
                t.external_id.as_ref().unwrap().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        trades,
        vec![
            (
                2,
                Side::Buy,
                dec!(0.5),
                dec!(8.75),
                "coinbase:ETH-USD:901".to_owned()
            ),
            (
                3,
                Side::Sell,
                dec!(0.2),
                dec!(3.6),
                "coinbase:ETH-USD:902".to_owned()
            ),
        ]
    );
    let (_, positions) = imported(parsed, usd);
    let eth = position(&positions, "ETH");
    // 0.3 of the lot of 0.5 for 1758.75; the sell realized 720 − 3.60 − 703.50.
    assert_eq!(eth.quantity, dec!(0.3));
    assert_eq!(eth.cost_basis, dec!(1055.25));
    assert_eq!(eth.realized_gain, dec!(12.9));
}
