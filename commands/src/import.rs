//! Trade imports: the CSV exports of Binance and Coinbase, and coinfold's generic format,
//! read into [`Trade`]s for one `ImportTrades` command (all or none).
//!
//! Every row is checked before anything is stored; the first bad row stops the import
//! with its line number (1 is the file's first line) and the column at fault. Rows
//! that are not trades (Coinbase's sends, receives, conversions, rewards) are skipped
//! and reported by line.
//!
//! Each trade gets an external id: the exchange's own where the export has one
//! (`coinbase:<ID>`), else a hash of the row's content and its occurrence in the file
//! (`binance:<hash>`), so importing the same file, or an overlapping export, again
//! records each trade once.
//!
//! ## The generic format
//!
//! A header line, then one trade per line; the columns may come in any order:
//!
//! | column | required | value |
//! |---|---|---|
//! | `executed_at` | yes | RFC 3339, e.g. `2026-01-31T14:05:00Z` |
//! | `side` | yes | `buy` or `sell` |
//! | `coin` | yes | the coin's symbol, e.g. `BTC` |
//! | `quantity` | yes | a positive decimal |
//! | `price` | yes | the unit price in `quote` |
//! | `quote` | no | the quote currency; the portfolio's when empty |
//! | `fee` | no | in the quote currency; 0 when empty |
//! | `external_id` | no | your id of the trade; a hash of the row when empty |
//! | `note` | no | up to 500 characters |
//!
//! ## Binance (Spot trade history)
//!
//! `Date(UTC),Pair,Side,Price,Executed,Amount,Fee`, where `Executed`, `Amount` and
//! `Fee` end in their asset (`0.00100000BTC`), or the older
//! `Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin`. The pair is split at a
//! known quote asset (USDT, USDC, FDUSD, BUSD, TUSD, USD, EUR, GBP, TRY, BRL, BTC, ETH,
//! BNB). The fee, by the asset it was paid in:
//!
//! - the quote asset: a cost added to a buy, taken from a sell's proceeds;
//! - the coin traded: Binance withheld it from the coins a buy received, or took it on
//!   top of the coins a sell gave, so the trade's quantity is the executed one less
//!   (buy) or plus (sell) the fee, and its fee is the fee's value at the trade's price:
//!   the cost (or proceeds) stays what the quote side was, exactly. The note says so;
//! - another asset (BNB): paying it disposes of that asset at a value the export does
//!   not hold (no BNB price), so it is kept in the trade's note and recorded as 0.
//!
//! ## Coinbase (transaction history, or Advanced Trade fills)
//!
//! The export's lines before its header are skipped. The fills export's header has
//! `trade id`, `product` (`BTC-USD`), `side`, `created at`, `size`, `size unit`,
//! `price`, `fee` and `price/fee/total unit`; its fee is in the quote currency. The
//! transaction history's header has `Timestamp`, `Transaction Type`, `Asset`,
//! `Quantity Transacted`, `Price Currency` (or `Spot Price Currency`), `Price at
//! Transaction` (or `Spot Price at Transaction`), `Fees and/or Spread` (in the price's
//! currency), and optionally `ID` and `Notes`. Types `Buy`, `Sell`, `Advanced Trade
//! Buy` and `Advanced Trade Sell` are trades; amounts may carry a currency sign and
//! thousands separators (`$68,000.00`) and a sell's quantity may be negative.

use std::collections::HashMap;
use std::str::FromStr;

use coinfold_domain::portfolio::{PortfolioCommand, PortfolioError, Side, Trade};
use coinfold_domain::values::{
    Amount, CoinSymbol, ExternalId, MAX_SCALE, Note, Price, Quantity, QuoteCurrency, ValueError,
};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

/// Which export a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Binance,
    Coinbase,
    Generic,
}

impl FromStr for ImportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "binance" => Ok(Self::Binance),
            "coinbase" => Ok(Self::Coinbase),
            "generic" => Ok(Self::Generic),
            other => Err(format!(
                "{other:?} is not a format: binance, coinbase or generic"
            )),
        }
    }
}

/// Most bytes an import may hold.
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// A row that could not be read, by line (from 1) and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {column}: {message}")]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub message: String,
}

/// A line that holds no trade, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: u64,
    pub reason: String,
}

/// The trades of a file, each with its line.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub trades: Vec<(u64, Trade)>,
    pub skipped: Vec<Skipped>,
}

/// Reads `text` as `format`. `portfolio_id` seeds the trades' ids (the same file gives
/// the same ids); `currency` is the portfolio's, for the generic format's empty
/// `quote`.
pub fn parse(
    format: ImportFormat,
    text: &str,
    portfolio_id: Uuid,
    currency: &QuoteCurrency,
) -> Result<Parsed, RowError> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(RowError {
            line: 0,
            column: "file".to_owned(),
            message: format!("larger than {MAX_IMPORT_BYTES} bytes"),
        });
    }
    let (text, first_line) = match format {
        ImportFormat::Coinbase => coinbase_body(text)?,
        _ => (text, 1),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| csv_error(e, first_line))?
        .clone();
    let columns = Columns::new(&header, first_line);
    let mut parsed = Parsed {
        trades: Vec::new(),
        skipped: Vec::new(),
    };
    let mut seen: HashMap<String, u32> = HashMap::new();
    let lines = Lines::new(text);
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(e, first_line))?;
        let line = lines.line_of(&record) + first_line - 1;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let row = Row {
            line,
            record: &record,
            columns: &columns,
        };
        let read = match format {
            ImportFormat::Generic => generic(&row, currency)?,
            ImportFormat::Binance => binance(&row, &columns)?,
            ImportFormat::Coinbase => coinbase(&row)?,
        };
        let mut trade = match read {
            Read::Trade(fields) => fields.trade(&row)?,
            Read::Skip(reason) => {
                parsed.skipped.push(Skipped { line, reason });
                continue;
            }
        };
        if trade.external_id.is_none() {
            // The row's content and how often it came before: an identical second trade
            // keeps its own id, and a second import of the file repeats both.
            let content = record.iter().collect::<Vec<_>>().join("\u{1f}");
            let count = seen.entry(content.clone()).or_insert(0);
            *count += 1;
            let digest = Sha256::digest(format!("{content}\u{1f}{count}"));
            let prefix = match format {
                ImportFormat::Binance => "binance",
                ImportFormat::Coinbase => "coinbase",
                ImportFormat::Generic => "row",
            };
            trade.external_id = Some(row.value(
                "external id",
                ExternalId::parse(format!("{prefix}:{}", hex(&digest[..12]))),
            )?);
        }
        trade.trade_id = trade_id(portfolio_id, trade.external_id.as_ref());
        parsed.trades.push((line, trade));
    }
    if parsed.trades.is_empty() {
        return Err(RowError {
            line: first_line,
            column: "file".to_owned(),
            message: "holds no trade".to_owned(),
        });
    }
    Ok(parsed)
}

/// Line numbers from byte offsets. The CSV reader's own line count starts a record at
/// the blank lines it skipped before it, so the record's first non-blank byte is found
/// here instead.
struct Lines<'a> {
    text: &'a str,
    newlines: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            newlines: text.match_indices('\n').map(|(i, _)| i).collect(),
        }
    }

    /// The line (from 1) where `record` starts.
    fn line_of(&self, record: &csv::StringRecord) -> u64 {
        let Some(position) = record.position() else {
            return 0;
        };
        let from = usize::try_from(position.byte())
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        let skipped = self.text[from..]
            .bytes()
            .take_while(|b| matches!(b, b'\n' | b'\r'))
            .count();
        let start = from + skipped;
        self.newlines.partition_point(|&n| n < start) as u64 + 1
    }
}

/// The trades of an import as one `ImportTrades` command, and the line of each, to
/// name the one the portfolio refuses.
pub fn command(trades: Vec<(u64, Trade)>) -> (PortfolioCommand, TradeLines) {
    let (lines, trades) = trades.into_iter().unzip();
    (PortfolioCommand::ImportTrades { trades }, TradeLines(lines))
}

/// The line of each trade of an import, in the command's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeLines(Vec<u64>);

impl TradeLines {
    /// How many trades the import holds.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// A refusal of the import as the refused trade's line and the reason; any other
    /// refusal as it is, with no line.
    pub fn refusal(&self, error: PortfolioError) -> (Option<u64>, PortfolioError) {
        match error {
            PortfolioError::Import { index, error } => (self.0.get(index).copied(), *error),
            other => (None, other),
        }
    }
}

enum Read {
    Trade(Fields),
    Skip(String),
}

/// The header's columns by lower-case name.
struct Columns {
    index: HashMap<String, usize>,
    header_line: u64,
}

impl Columns {
    fn new(header: &csv::StringRecord, header_line: u64) -> Self {
        let index = header
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    name.trim()
                        .trim_start_matches('\u{feff}')
                        .to_ascii_lowercase(),
                    i,
                )
            })
            .collect();
        Self { index, header_line }
    }

    fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

struct Row<'a> {
    line: u64,
    record: &'a csv::StringRecord,
    columns: &'a Columns,
}

impl Row<'_> {
    fn error(&self, column: &str, message: impl Into<String>) -> RowError {
        RowError {
            line: self.line,
            column: column.to_owned(),
            message: message.into(),
        }
    }

    /// The cell of the first of `names` the header has; an error naming the first when
    /// the header has none (on the header's line) or the cell is empty.
    fn required(&self, names: &[&str]) -> Result<&str, RowError> {
        let Some(index) = names.iter().find_map(|n| self.columns.index.get(*n)) else {
            return Err(RowError {
                line: self.columns.header_line,
                column: names[0].to_owned(),
                message: "the header has no such column".to_owned(),
            });
        };
        match self.record.get(*index) {
            Some(cell) if !cell.is_empty() => Ok(cell),
            _ => Err(self.error(names[0], "is empty")),
        }
    }

    fn optional(&self, name: &str) -> Option<&str> {
        self.columns
            .index
            .get(name)
            .and_then(|i| self.record.get(*i))
            .filter(|cell| !cell.is_empty())
    }

    fn value<T>(&self, column: &str, value: Result<T, ValueError>) -> Result<T, RowError> {
        value.map_err(|e| self.error(column, e.to_string()))
    }

    fn decimal(&self, column: &str, cell: &str) -> Result<Decimal, RowError> {
        // `0.5BTC` (Binance names the asset after the amount), `$68,000.00` (Coinbase).
        let cleaned: String = cell
            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .chars()
            .filter(|c| !matches!(c, '$' | '€' | '£' | ',' | ' '))
            .collect();
        Decimal::from_str(&cleaned)
            .or_else(|_| Decimal::from_scientific(&cleaned))
            .map_err(|_| self.error(column, format!("{:?} is not a number", short(cell))))
    }

    fn time(&self, column: &str, cell: &str) -> Result<OffsetDateTime, RowError> {
        parse_time(cell).ok_or_else(|| {
            self.error(
                column,
                format!(
                    "{:?} is not a time (RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC)",
                    short(cell)
                ),
            )
        })
    }

    fn side(&self, column: &str, cell: &str) -> Result<Side, RowError> {
        match cell.to_ascii_lowercase().as_str() {
            "buy" => Ok(Side::Buy),
            "sell" => Ok(Side::Sell),
            _ => Err(self.error(column, format!("{:?} is not buy or sell", short(cell)))),
        }
    }

    fn note(&self, text: Option<String>) -> Result<Option<Note>, RowError> {
        text.map(|t| self.value("note", Note::parse(t))).transpose()
    }
}

fn generic(row: &Row<'_>, currency: &QuoteCurrency) -> Result<Read, RowError> {
    let executed_at = row.time("executed_at", row.required(&["executed_at"])?)?;
    let side = row.side("side", row.required(&["side"])?)?;
    let coin = row.value("coin", CoinSymbol::parse(row.required(&["coin"])?))?;
    let quantity = row.decimal("quantity", row.required(&["quantity"])?)?;
    let price = row.decimal("price", row.required(&["price"])?)?;
    let quote = match row.optional("quote") {
        Some(q) => row.value("quote", QuoteCurrency::parse(q))?,
        None => currency.clone(),
    };
    let fee = match row.optional("fee") {
        Some(f) => row.decimal("fee", f)?,
        None => Decimal::ZERO,
    };
    let external_id = row
        .optional("external_id")
        .map(|id| row.value("external_id", ExternalId::parse(id)))
        .transpose()?;
    let note = row.note(row.optional("note").map(str::to_owned))?;
    Ok(Read::Trade(Fields {
        side,
        coin,
        quantity,
        price,
        quote,
        fee,
        executed_at,
        note,
        external_id,
    }))
}

/// Quote assets a Binance pair may end in, longest first where one ends another.
const BINANCE_QUOTES: &[&str] = &[
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "GBP", "TRY", "BRL", "BTC", "ETH", "BNB",
];

fn binance(row: &Row<'_>, columns: &Columns) -> Result<Read, RowError> {
    let executed_at = row.time("Date(UTC)", row.required(&["date(utc)", "date"])?)?;
    let pair = row.required(&["pair", "market"])?.to_ascii_uppercase();
    let Some((base, quote)) = BINANCE_QUOTES
        .iter()
        .find(|q| pair.len() > q.len() && pair.ends_with(*q))
        .map(|q| (&pair[..pair.len() - q.len()], *q))
    else {
        return Err(row.error(
            "Pair",
            format!("{:?} does not end in a known quote asset", short(&pair)),
        ));
    };
    let coin = row.value("Pair", CoinSymbol::parse(base))?;
    let quote = row.value("Pair", QuoteCurrency::parse(quote))?;
    let side = row.side("Side", row.required(&["side", "type"])?)?;
    let price = row.decimal("Price", row.required(&["price"])?)?;
    // The newer export: Executed is the quantity; the older: Amount is.
    let newer = columns.has("executed");
    let quantity_column = if newer { "Executed" } else { "Amount" };
    let (quantity_cell, quantity_asset) = split_asset(
        row.required(&[if newer { "executed" } else { "amount" }])?,
        &[base],
    );
    if !quantity_asset.is_empty() && quantity_asset != base {
        return Err(row.error(
            quantity_column,
            format!("is in {quantity_asset}, not the pair's {base}"),
        ));
    }
    let executed = row.decimal(quantity_column, quantity_cell)?;
    let (fee_cell, fee_asset) = if newer {
        split_asset(row.required(&["fee"])?, &[base, quote.as_str()])
    } else {
        (
            row.required(&["fee"])?,
            row.optional("fee coin")
                .unwrap_or_default()
                .to_ascii_uppercase(),
        )
    };
    let fee_amount = row.decimal("Fee", fee_cell)?.abs();
    let fee = if fee_asset.is_empty() || fee_asset == quote.as_str() {
        Fee::Quote(fee_amount)
    } else if fee_asset == base {
        Fee::Base(fee_amount)
    } else {
        Fee::Other(fee_amount, fee_asset)
    };
    Ok(Read::Trade(fee.apply(
        row,
        Fields {
            side,
            coin,
            quantity: executed,
            price,
            quote,
            fee: Decimal::ZERO,
            executed_at,
            note: None,
            external_id: None,
        },
    )?))
}

/// A trade's fee by the asset it was paid in.
enum Fee {
    /// In the quote currency: added to a buy's cost, taken from a sell's proceeds.
    Quote(Decimal),
    /// In the coin traded: the exchange withheld it from the coins a buy received, or
    /// took it on top of the coins a sell gave. The holding moves by the coins that
    /// actually moved; the fee's value at the trade's price stays in the quote fee so
    /// that the cost (or proceeds) is what the quote side of the trade was, exactly:
    /// buying 0.5 ETH at 3,500 with a 0.0005 ETH fee records 0.4995 ETH at 3,500 plus
    /// 1.75 USDT of fee, a cost of 1,750 (3,503.50 per ETH held).
    Base(Decimal),
    /// In a third asset (BNB): paying it is a disposal of that asset, whose proceeds
    /// need its price, which the export does not hold, so it is kept in the note and
    /// recorded as 0. A transfer out of the quantity is not used instead: it would
    /// take the asset's lots away realizing nothing, it is not a trade (an import is
    /// one all-or-none `ImportTrades` of trades), and it would refuse the whole file
    /// in a portfolio that does not hold the asset.
    Other(Decimal, String),
}

impl Fee {
    /// `fields` (quantity as executed, no fee) with this fee applied and noted.
    fn apply(self, row: &Row<'_>, mut fields: Fields) -> Result<Fields, RowError> {
        let executed = fields.quantity;
        let text = match self {
            Self::Quote(amount) => {
                fields.fee = amount;
                None
            }
            Self::Base(amount) => {
                let coin = fields.coin.as_str().to_owned();
                fields.quantity = match fields.side {
                    Side::Buy if amount >= executed => {
                        return Err(row.error(
                            "Fee",
                            format!(
                                "{} {coin} is not less than the {} {coin} bought",
                                amount.normalize(),
                                executed.normalize()
                            ),
                        ));
                    }
                    Side::Buy => executed - amount,
                    Side::Sell => executed + amount,
                };
                // Rounded once, half to even, to the places a fee may have.
                fields.fee = (amount * fields.price).round_dp(MAX_SCALE);
                let how = match fields.side {
                    Side::Buy => "withheld from",
                    Side::Sell => "given on top of",
                };
                Some(format!(
                    "fee {} {coin} {how} the {} {coin} executed, valued {} {}",
                    amount.normalize(),
                    executed.normalize(),
                    fields.fee.normalize(),
                    fields.quote
                ))
            }
            Self::Other(amount, asset) => Some(format!(
                "fee {} {asset} (not in {}, recorded as 0)",
                amount.normalize(),
                fields.quote
            )),
        };
        if let Some(text) = text {
            let text = match fields.note.take() {
                Some(note) => format!("{}; {text}", note.as_str()),
                None => text,
            };
            fields.note = row.note(Some(text))?;
        }
        Ok(fields)
    }
}

/// A cell's number and the asset it ends in (`0.5ETH`, `100.0001INCH`), upper-case,
/// empty when it names none. `known` assets are matched first: an asset may begin
/// with a digit.
fn split_asset<'c>(cell: &'c str, known: &[&str]) -> (&'c str, String) {
    let upper = cell.to_ascii_uppercase();
    for asset in known {
        if let Some(number) = upper.strip_suffix(asset)
            && number.ends_with(|c: char| c.is_ascii_digit() || c == '.')
        {
            return (cell[..number.len()].trim_end(), (*asset).to_owned());
        }
    }
    let at = cell
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | ' ')))
        .unwrap_or(cell.len());
    (cell[..at].trim_end(), upper[at..].trim().to_owned())
}

/// The part of a Coinbase export from its header on, and the header's line: the
/// transaction report's (`Timestamp`, `Transaction Type`) or the fills export's
/// (`trade id`, `size unit`).
fn coinbase_body(text: &str) -> Result<(&str, u64), RowError> {
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let lower = line.to_ascii_lowercase();
        if (lower.contains("timestamp") && lower.contains("transaction type"))
            || (lower.contains("trade id") && lower.contains("size unit"))
        {
            return Ok((&text[offset..], index as u64 + 1));
        }
        offset += line.len();
    }
    Err(RowError {
        line: 1,
        column: "header".to_owned(),
        message: "no header with Timestamp and Transaction Type (or trade id and size unit): \
                  is this a Coinbase transaction history?"
            .to_owned(),
    })
}

fn coinbase(row: &Row<'_>) -> Result<Read, RowError> {
    if row.columns.has("size unit") {
        return coinbase_fill(row);
    }
    let kind = row.required(&["transaction type"])?;
    let side = match kind.to_ascii_lowercase().as_str() {
        "buy" | "advanced trade buy" => Side::Buy,
        "sell" | "advanced trade sell" => Side::Sell,
        _ => return Ok(Read::Skip(format!("{} is not a trade", short(kind)))),
    };
    let executed_at = row.time("Timestamp", row.required(&["timestamp"])?)?;
    let coin = row.value("Asset", CoinSymbol::parse(row.required(&["asset"])?))?;
    let quantity = row
        .decimal(
            "Quantity Transacted",
            row.required(&["quantity transacted"])?,
        )?
        .abs();
    let quote = row.value(
        "Price Currency",
        QuoteCurrency::parse(row.required(&["price currency", "spot price currency"])?),
    )?;
    let price = row.decimal(
        "Price at Transaction",
        row.required(&["price at transaction", "spot price at transaction"])?,
    )?;
    let fee = match row.optional("fees and/or spread") {
        Some(cell) => row.decimal("Fees and/or Spread", cell)?.abs(),
        None => Decimal::ZERO,
    };
    let external_id = row
        .optional("id")
        .map(|id| row.value("ID", ExternalId::parse(format!("coinbase:{id}"))))
        .transpose()?;
    let note = row.note(row.optional("notes").map(str::to_owned))?;
    Ok(Read::Trade(Fields {
        side,
        coin,
        quantity,
        price,
        quote,
        fee,
        executed_at,
        note,
        external_id,
    }))
}

/// A row of Coinbase's fills export (Advanced Trade, formerly Pro): `portfolio`,
/// `trade id`, `product` (`BTC-USD`), `side`, `created at`, `size`, `size unit`,
/// `price`, `fee`, `total`, `price/fee/total unit`. The fee is in the price's unit, the
/// quote currency, so it is a cost or proceeds fee as in the transaction report.
fn coinbase_fill(row: &Row<'_>) -> Result<Read, RowError> {
    let product = row.required(&["product"])?.to_ascii_uppercase();
    let Some((base, quote)) = product.split_once('-') else {
        return Err(row.error(
            "product",
            format!("{:?} is not BASE-QUOTE", short(&product)),
        ));
    };
    let coin = row.value("product", CoinSymbol::parse(base))?;
    let unit = row.required(&["size unit"])?.to_ascii_uppercase();
    if unit != base {
        return Err(row.error("size unit", format!("is {unit}, not the product's {base}")));
    }
    let quote_unit = row
        .required(&["price/fee/total unit"])?
        .to_ascii_uppercase();
    if quote_unit != quote {
        return Err(row.error(
            "price/fee/total unit",
            format!("is {quote_unit}, not the product's {quote}"),
        ));
    }
    let quote = row.value("product", QuoteCurrency::parse(quote))?;
    let side = row.side("side", row.required(&["side"])?)?;
    let executed_at = row.time("created at", row.required(&["created at"])?)?;
    let quantity = row.decimal("size", row.required(&["size"])?)?.abs();
    let price = row.decimal("price", row.required(&["price"])?)?;
    let fee = match row.optional("fee") {
        Some(cell) => row.decimal("fee", cell)?.abs(),
        None => Decimal::ZERO,
    };
    // Trade ids count per product.
    let trade = row.required(&["trade id"])?;
    let external_id = row.value(
        "trade id",
        ExternalId::parse(format!("coinbase:{product}:{trade}")),
    )?;
    Ok(Read::Trade(Fields {
        side,
        coin,
        quantity,
        price,
        quote,
        fee,
        executed_at,
        note: None,
        external_id: Some(external_id),
    }))
}

/// A row's trade as its format reads it, before the amounts are checked.
struct Fields {
    side: Side,
    coin: CoinSymbol,
    quantity: Decimal,
    price: Decimal,
    quote: QuoteCurrency,
    fee: Decimal,
    executed_at: OffsetDateTime,
    note: Option<Note>,
    external_id: Option<ExternalId>,
}

impl Fields {
    /// The trade, its amounts checked (its id is set once its external id is known).
    fn trade(self, row: &Row<'_>) -> Result<Trade, RowError> {
        Ok(Trade {
            trade_id: Uuid::nil(),
            side: self.side,
            coin: self.coin,
            quantity: row.value("quantity", Quantity::new(self.quantity))?,
            price: row.value("price", Price::new(self.price))?,
            quote: self.quote,
            fee: row.value("fee", Amount::new(self.fee))?,
            executed_at: self.executed_at,
            note: self.note,
            external_id: self.external_id,
        })
    }
}

/// A trade's id from the portfolio and its external id: the same row gets the same id.
fn trade_id(portfolio_id: Uuid, external_id: Option<&ExternalId>) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(portfolio_id.as_bytes());
    hasher.update(external_id.map_or("", ExternalId::as_str).as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn parse_time(cell: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(cell, &Rfc3339) {
        return Some(t.to_offset(time::UtcOffset::UTC));
    }
    let plain = cell
        .trim_end_matches(" UTC")
        .trim_end_matches('Z')
        .replace('T', " ");
    let seconds = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let fraction = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
    PrimitiveDateTime::parse(&plain, &seconds)
        .or_else(|_| PrimitiveDateTime::parse(&plain, &fraction))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

fn csv_error(error: csv::Error, first_line: u64) -> RowError {
    let line = error
        .position()
        .map_or(first_line, |p| p.line() + first_line - 1);
    RowError {
        line,
        column: "file".to_owned(),
        message: match error.kind() {
            csv::ErrorKind::Utf8 { .. } => "is not UTF-8".to_owned(),
            _ => "is not valid CSV".to_owned(),
        },
    }
}

/// At most 40 characters of a cell, for messages.
fn short(cell: &str) -> String {
    cell.chars().take(40).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    const PORTFOLIO: Uuid = Uuid::from_u128(7);

    fn usd() -> QuoteCurrency {
        QuoteCurrency::usd()
    }

    #[test]
    fn generic_rows_become_trades_with_their_lines() {
        let text = "executed_at,side,coin,quantity,price,quote,fee,external_id,note\n\
                    2026-01-02T10:00:00Z,buy,btc,0.5,40000,,1.5,,first\n\
                    \n\
                    2026-01-03T10:00:00Z,SELL,BTC,0.25,41000,USD,,my-2,\n";
        let parsed = parse(ImportFormat::Generic, text, PORTFOLIO, &usd()).unwrap();
        let lines: Vec<u64> = parsed.trades.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 4]);
        let (_, first) = &parsed.trades[0];
        assert_eq!(first.side, Side::Buy);
        assert_eq!(first.coin.as_str(), "BTC");
        assert_eq!(first.quantity.value(), dec!(0.5));
        assert_eq!(first.fee.value(), dec!(1.5));
        assert_eq!(first.quote, usd());
        assert_eq!(first.note.as_ref().map(Note::as_str), Some("first"));
        assert!(
            first
                .external_id
                .as_ref()
                .unwrap()
                .as_str()
                .starts_with("row:")
        );
        let (_, second) = &parsed.trades[1];
        assert_eq!(second.external_id.as_ref().unwrap().as_str(), "my-2");
        // The same file gives the same ids.
        let again = parse(ImportFormat::Generic, text, PORTFOLIO, &usd()).unwrap();
        assert_eq!(again, parsed);
    }

    #[test]
    fn a_bad_row_is_named_by_line_and_column() {
        let cases = [
            ("2026-01-02T10:00:00Z,buy,BTC,-1,100", 3, "quantity"),
            ("2026-01-02T10:00:00Z,buy,BTC,abc,100", 3, "quantity"),
            ("2026-01-02T10:00:00Z,hold,BTC,1,100", 3, "side"),
            ("yesterday,buy,BTC,1,100", 3, "executed_at"),
            ("2026-01-02T10:00:00Z,buy,B$C,1,100", 3, "coin"),
            ("2026-01-02T10:00:00Z,buy,BTC,1,", 3, "price"),
            ("2026-01-02T10:00:00Z,buy,BTC,1,1e40", 3, "price"),
        ];
        for (bad, line, column) in cases {
            let text = format!(
                "executed_at,side,coin,quantity,price\n2026-01-01T00:00:00Z,buy,BTC,1,100\n{bad}\n"
            );
            let error = parse(ImportFormat::Generic, &text, PORTFOLIO, &usd()).unwrap_err();
            assert_eq!(
                (error.line, error.column.as_str()),
                (line, column),
                "{bad}: {error}"
            );
        }
        let missing = parse(
            ImportFormat::Generic,
            "side,coin,quantity,price\nbuy,BTC,1,1\n",
            PORTFOLIO,
            &usd(),
        )
        .unwrap_err();
        assert_eq!((missing.line, missing.column.as_str()), (1, "executed_at"));
        let empty = parse(
            ImportFormat::Generic,
            "executed_at,side\n",
            PORTFOLIO,
            &usd(),
        );
        assert_eq!(empty.unwrap_err().message, "holds no trade");
        let quoted = parse(
            ImportFormat::Generic,
            "executed_at,side,coin,quantity,price\n\"2026-01-01T00:00:00Z,buy,BTC,1,1\n",
            PORTFOLIO,
            &usd(),
        );
        assert!(quoted.is_err());
    }

    #[test]
    fn binance_exports_old_and_new() {
        let newer = "Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n\
                     2026-01-05 14:02:11,BTCUSDT,BUY,40000.00,0.50000000BTC,20000.00000000USDT,0.00050000BTC\n\
                     2026-01-05 14:03:00,ETHUSDT,SELL,2500.00,1.00000000ETH,2500.00000000USDT,2.50000000USDT\n\
                     2026-01-05 14:04:00,ETHUSDT,BUY,2500.00,1.00000000ETH,2500.00000000USDT,0.00100000BNB\n";
        let parsed = parse(ImportFormat::Binance, newer, PORTFOLIO, &usd()).unwrap();
        let trades: Vec<&Trade> = parsed.trades.iter().map(|(_, t)| t).collect();
        assert_eq!(trades[0].coin.as_str(), "BTC");
        assert_eq!(trades[0].quote.as_str(), "USDT");
        // 0.0005 BTC of the 0.5 bought withheld, valued at 40,000: the cost is 20,000.
        assert_eq!(trades[0].quantity.value(), dec!(0.4995));
        assert_eq!(trades[0].fee.value(), dec!(20));
        assert_eq!(trades[1].side, Side::Sell);
        assert_eq!(trades[1].fee.value(), dec!(2.5));
        assert_eq!(trades[2].fee.value(), Decimal::ZERO);
        assert_eq!(
            trades[2].note.as_ref().map(Note::as_str),
            Some("fee 0.001 BNB (not in USDT, recorded as 0)")
        );
        assert!(
            trades[0]
                .external_id
                .as_ref()
                .unwrap()
                .as_str()
                .starts_with("binance:")
        );

        let older = "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin\n\
                     2021-03-15 10:20:30,SOLBTC,BUY,0.0003,10,0.003,0.01,SOL\n";
        let parsed = parse(ImportFormat::Binance, older, PORTFOLIO, &usd()).unwrap();
        let (_, trade) = &parsed.trades[0];
        assert_eq!((trade.coin.as_str(), trade.quote.as_str()), ("SOL", "BTC"));
        assert_eq!(trade.quantity.value(), dec!(9.99));
        assert_eq!(trade.fee.value(), dec!(0.000003));

        let bad = "Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n\
                   2026-01-05 14:02:11,XYZ,BUY,1,1XYZ,1USDT,0USDT\n";
        let error = parse(ImportFormat::Binance, bad, PORTFOLIO, &usd()).unwrap_err();
        assert_eq!((error.line, error.column.as_str()), (2, "Pair"));
    }

    #[test]
    fn coinbase_exports_skip_their_preamble_and_non_trades() {
        let text = "\u{feff}You can use this transaction report to inform your likely tax obligations.\n\
                    \n\
                    Transactions\n\
                    User,Alice,1111\n\
                    ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n\
                    abc1,2026-01-05 14:02:11 UTC,Buy,BTC,0.01,USD,\"$68,000.00\",$680.00,$690.00,$10.00,Bought 0.01 BTC\n\
                    abc2,2026-01-06 09:00:00 UTC,Send,BTC,-0.005,USD,\"$69,000.00\",,,,To a wallet\n\
                    abc3,2026-01-07 09:00:00 UTC,Advanced Trade Sell,BTC,-0.004,USD,\"$70,000.00\",$280.00,$279.00,$1.00,\n";
        let parsed = parse(ImportFormat::Coinbase, text, PORTFOLIO, &usd()).unwrap();
        let lines: Vec<u64> = parsed.trades.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![6, 8]);
        let (_, buy) = &parsed.trades[0];
        assert_eq!(buy.price.value(), dec!(68000.00));
        assert_eq!(buy.fee.value(), dec!(10));
        assert_eq!(buy.external_id.as_ref().unwrap().as_str(), "coinbase:abc1");
        let (_, sell) = &parsed.trades[1];
        assert_eq!(
            (sell.side, sell.quantity.value()),
            (Side::Sell, dec!(0.004))
        );
        assert_eq!(
            parsed.skipped,
            vec![Skipped {
                line: 7,
                reason: "Send is not a trade".to_owned()
            }]
        );

        let bad = "Timestamp,Transaction Type,Asset,Quantity Transacted,Spot Price Currency,Spot Price at Transaction\n\
                   2026-01-05 14:02:11 UTC,Buy,BTC,lots,USD,100\n";
        let error = parse(ImportFormat::Coinbase, bad, PORTFOLIO, &usd()).unwrap_err();
        assert_eq!(
            (error.line, error.column.as_str()),
            (2, "Quantity Transacted")
        );
        let not_coinbase = parse(ImportFormat::Coinbase, "a,b\n1,2\n", PORTFOLIO, &usd());
        assert_eq!(not_coinbase.unwrap_err().column, "header");
    }
}
