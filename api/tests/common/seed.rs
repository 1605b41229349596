//! Many events, fast: users, portfolios and alerts decided by the real aggregates
//! (`decide`/`evolve`, so sells carry their real disposals), written to the event store
//! in bulk with the metadata the command service writes. Also tick series, and row
//! checksums of read-model tables.

use std::collections::BTreeMap;

use coinfold_domain::alert::{Alert, AlertCommand, AlertCondition, Repeat};
use coinfold_domain::portfolio::{CostBasisMethod, Portfolio, PortfolioCommand, Side, Trade};
use coinfold_domain::user::{User, UserCommand};
use coinfold_domain::values::{
    Amount, CoinSymbol, Description, PortfolioName, Price, Quantity, QuoteCurrency,
};
use coinfold_projections::global_log::GlobalLog;
use coinfold_projections::ingest::{Source, TICK_SCHEMA, TakerSide, Tick, TickKind};
use coinfold_projections::projection::log_runner::{Step, fold_batch};
use coinfold_projections::projection::{LogProjection, Output};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub const COINS: [&str; 5] = ["BTC", "ETH", "SOL", "ADA", "DOGE"];

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Row {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
}

fn row<E: DomainEvent>(
    aggregate_type: &'static str,
    id: Uuid,
    sequence: usize,
    event: &E,
    actor: Uuid,
    at: OffsetDateTime,
) -> Row {
    Row {
        aggregate_type,
        aggregate_id: id.to_string(),
        sequence: sequence as i64,
        event_type: event.event_type(),
        event_version: event.event_version(),
        payload: serde_json::to_value(event).expect("events serialize"),
        metadata: json!({
            "event_id": Uuid::now_v7(),
            "correlation_id": Uuid::now_v7(),
            "actor": format!("user:{actor}"),
            "recorded_at": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
        }),
    }
}

async fn insert(pool: &PgPool, rows: &[Row]) {
    for chunk in rows.chunks(2000) {
        let mut q = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut r = (Vec::new(), Vec::new(), Vec::new());
        for row in chunk {
            q.0.push(row.aggregate_type);
            q.1.push(row.aggregate_id.as_str());
            q.2.push(row.sequence);
            q.3.push(row.event_type.as_str());
            r.0.push(row.event_version.as_str());
            r.1.push(row.payload.clone());
            r.2.push(row.metadata.clone());
        }
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])",
        )
        .bind(&q.0)
        .bind(&q.1)
        .bind(&q.2)
        .bind(&q.3)
        .bind(&r.0)
        .bind(&r.1)
        .bind(&r.2)
        .execute(pool)
        .await
        .expect("events inserted");
    }
}

fn decimal(units: u64, scale: u32) -> Decimal {
    Decimal::new(units as i64, scale)
}

/// Writes at least `events` events: users (with watchlists), their portfolios (buys,
/// sells within the holding, some backdated) and alerts. Returns how many it wrote.
pub async fn seed_events(pool: &PgPool, events: usize, seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let start = time::macros::datetime!(2026-01-01 00:00 UTC);
    let mut rows = Vec::new();
    let mut n = 0u64;
    while rows.len() < events {
        n += 1;
        let user_id = Uuid::from_u128(u128::from(seed) << 64 | u128::from(n));
        let at = start + Duration::minutes(n as i64);
        let mut user = User::default();
        let mut user_commands = vec![UserCommand::Register {
            user_id,
            username: coinfold_domain::values::Username::parse(format!("user{seed}x{n}")).unwrap(),
            email: coinfold_domain::values::Email::parse(format!("u{seed}x{n}@example.com")).unwrap(),
            password_hash: coinfold_domain::user::PasswordHash::parse(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            )
            .unwrap(),
            now: at,
        }];
        for coin in COINS.iter().take(1 + rng.below(3) as usize) {
            user_commands.push(UserCommand::AddToWatchlist {
                coin: CoinSymbol::parse(coin).unwrap(),
            });
        }
        let mut sequence = 0;
        for command in user_commands {
            for event in user.decide(command).expect("user command accepted") {
                user.evolve(&event);
                sequence += 1;
                rows.push(row("User", user_id, sequence, &event, user_id, at));
            }
        }
        // A portfolio with trades.
        let portfolio_id = Uuid::from_u128(u128::from(seed) << 64 | 1 << 63 | u128::from(n));
        let mut portfolio = Portfolio::default();
        let methods = [
            CostBasisMethod::Fifo,
            CostBasisMethod::Lifo,
            CostBasisMethod::Hifo,
            CostBasisMethod::Average,
        ];
        let mut commands = vec![PortfolioCommand::Create {
            portfolio_id,
            owner_id: user_id,
            name: PortfolioName::parse(format!("Portfolio {n}")).unwrap(),
            description: Description::parse("").unwrap(),
            method: methods[rng.below(4) as usize],
            currency: QuoteCurrency::usd(),
            now: at,
        }];
        let mut held: BTreeMap<&str, Decimal> = BTreeMap::new();
        for k in 0..(8 + rng.below(12)) {
            let coin = COINS[rng.below(COINS.len() as u64) as usize];
            let holding = held.get(coin).copied().unwrap_or_default();
            let sell = holding > Decimal::ZERO && rng.below(3) == 0;
            let quantity = if sell {
                (holding * decimal(1 + rng.below(100), 2))
                    .round_dp(8)
                    .max(decimal(1, 8))
                    .min(holding)
            } else {
                decimal(1 + rng.below(100_000), 4)
            };
            // Every fifth buy is backdated before the others.
            let minutes = if !sell && k % 5 == 4 {
                -(k as i64)
            } else {
                k as i64 * 60
            };
            let trade = Trade {
                trade_id: Uuid::from_u128(u128::from(n) << 32 | u128::from(k) | 1 << 100),
                side: if sell { Side::Sell } else { Side::Buy },
                coin: CoinSymbol::parse(coin).unwrap(),
                quantity: Quantity::new(quantity).unwrap(),
                price: Price::new(decimal(1 + rng.below(7_000_000), 2)).unwrap(),
                quote: QuoteCurrency::usd(),
                fee: Amount::new(decimal(rng.below(500), 2)).unwrap(),
                executed_at: at + Duration::minutes(minutes + 1000),
                note: None,
                external_id: None,
            };
            commands.push(PortfolioCommand::RecordTrade { trade });
            *held.entry(coin).or_default() += if sell { -quantity } else { quantity };
        }
        let mut sequence = 0;
        for command in commands {
            // Sells stay within the holding: a backdated buy only adds earlier coins.
            let events = portfolio
                .decide(command)
                .expect("a seeded command is accepted");
            for event in events {
                portfolio.evolve(&event);
                sequence += 1;
                rows.push(row(
                    "Portfolio",
                    portfolio_id,
                    sequence,
                    &event,
                    user_id,
                    at,
                ));
            }
        }
        // An alert.
        let alert_id = Uuid::from_u128(u128::from(seed) << 64 | 1 << 62 | u128::from(n));
        let mut alert = Alert::default();
        let create = AlertCommand::Create {
            alert_id,
            owner_id: user_id,
            coin: CoinSymbol::parse(COINS[rng.below(5) as usize]).unwrap(),
            condition: AlertCondition::PriceAbove {
                threshold: Price::new(decimal(1 + rng.below(10_000_000), 2)).unwrap(),
            },
            repeat: Repeat::OneShot,
            cooldown_seconds: 60,
            now: at,
        };
        let mut sequence = 0;
        for event in alert.decide(create).expect("alert created") {
            alert.evolve(&event);
            sequence += 1;
            rows.push(row("Alert", alert_id, sequence, &event, user_id, at));
        }
    }
    insert(pool, &rows).await;
    rows.len()
}

/// `count` trade ticks over the five coins, one a second per coin, from `start`, with
/// prices on a random walk; every `duplicate_every`-th tick appears twice.
pub fn tick_series(count: usize, seed: u64, duplicate_every: usize) -> Vec<Tick> {
    let mut rng = Rng::new(seed);
    let start = time::macros::datetime!(2026-03-01 00:00 UTC);
    let mut prices: Vec<Decimal> = vec![
        Decimal::new(6_000_000, 2),
        Decimal::new(300_000, 2),
        Decimal::new(15_000, 2),
        Decimal::new(4_500, 4),
        Decimal::new(700, 4),
    ];
    let mut ticks = Vec::with_capacity(count + count / duplicate_every.max(1));
    let mut i = 0usize;
    while ticks.len() < count {
        let c = i % COINS.len();
        let step = Decimal::new(rng.below(2001) as i64 - 1000, 6); // ±0.1 %
        prices[c] = (prices[c] * (Decimal::ONE + step)).round_dp(8);
        let at = start
            + Duration::seconds((i / COINS.len()) as i64)
            + Duration::milliseconds((c * 100) as i64);
        let tick = Tick {
            schema: TICK_SCHEMA,
            source: Source::Binance,
            kind: TickKind::Trade,
            coin: CoinSymbol::parse(COINS[c]).unwrap(),
            quote: QuoteCurrency::parse("USDT").unwrap(),
            price: Price::new(prices[c]).unwrap(),
            size: Some(Quantity::new(decimal(1 + rng.below(10_000), 3)).unwrap()),
            side: Some(if rng.below(2) == 0 {
                TakerSide::Buy
            } else {
                TakerSide::Sell
            }),
            trade_id: Some(i.to_string()),
            volume_24h: None,
            exchange_time: at,
            received_time: at,
        };
        if duplicate_every > 0 && i.is_multiple_of(duplicate_every) {
            ticks.push(tick.clone());
        }
        ticks.push(tick);
        i += 1;
    }
    ticks
}

/// Row count and an md5 of every row (in a fixed order) per table of `schema`.
pub async fn checksums(
    pool: &PgPool,
    schema: &str,
    tables: &[&str],
) -> BTreeMap<String, (i64, String)> {
    let mut sums = BTreeMap::new();
    for table in tables {
        let (count, md5): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM \"{schema}\".\"{table}\" t"
        ))
        .fetch_one(pool)
        .await
        .expect("checksum");
        sums.insert((*table).to_owned(), (count, md5.unwrap_or_default()));
    }
    sums
}

/// Folds `projection` in this process until it has applied every event written so far.
pub async fn catch_up<P: LogProjection>(pool: &PgPool, projection: &P) -> usize {
    let mut log = GlobalLog::new(pool.clone());
    {
        let mut conn = pool.acquire().await.unwrap();
        coinfold_projections::projection::checkpoint::ensure(
            &mut conn,
            projection.name(),
            coinfold_projections::projection::checkpoint::EVENT_STORE,
        )
        .await
        .unwrap();
    }
    // Every event written so far. (The log's high-water mark can lag while another
    // test's transaction is open: transaction ids are cluster-wide. So "caught up" is
    // the position, not the first empty read.)
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut applied = 0;
    loop {
        match fold_batch(pool, &mut log, projection, 500, &mut Output::default())
            .await
            .expect("batch applied")
        {
            Step::Applied { events, position } => {
                applied += events;
                if position >= head {
                    return applied;
                }
            }
            Step::Moved => {}
            Step::CaughtUp if head == 0 => return applied,
            Step::CaughtUp => {
                let mut conn = pool.acquire().await.unwrap();
                let at = coinfold_projections::projection::checkpoint::position(
                    &mut conn,
                    projection.name(),
                )
                .await
                .unwrap();
                if at >= head {
                    return applied;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
