-- The read models, in schema `read`, and the per-partition offsets of Kafka-fed
-- projections. A projection writes its tables with unqualified names under
-- `SET LOCAL search_path = read` (or a rebuild schema), so the same code folds into the
-- live tables or into shadow copies made with `CREATE TABLE … (LIKE read.x INCLUDING ALL)`.
-- Nothing here has a default taken from the clock: every value comes from the events or
-- messages, so a rebuild gives the same rows, byte for byte.

-- Offsets of Kafka-fed projections, one row per partition: the next offset to apply.
-- One row per partition (not one jsonb per projection) so two `coinfold project`
-- processes holding different partitions do not wait on each other's row lock.
-- They replace the `offsets` jsonb of `projection_checkpoints`, which is dropped; that
-- table keeps, per projection, its source, state and (for the event store) position.
ALTER TABLE projection_checkpoints DROP COLUMN offsets;

CREATE TABLE projection_offsets
(
    projection  text    NOT NULL REFERENCES projection_checkpoints (projection),
    topic       text    NOT NULL,
    partition   integer NOT NULL CHECK (partition >= 0),
    next_offset bigint  NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (projection, topic, partition)
);

-- portfolios (event store) -------------------------------------------------------------

CREATE TABLE read.portfolios
(
    portfolio_id uuid PRIMARY KEY,
    owner_id     uuid        NOT NULL,
    name         text        NOT NULL,
    description  text        NOT NULL,
    method       text        NOT NULL,
    currency     text        NOT NULL,
    created_at   timestamptz NOT NULL,
    archived_at  timestamptz,
    version      bigint      NOT NULL,
    -- The global position of the last event applied: lets a reader ask "is my write in?".
    position     bigint      NOT NULL
);
CREATE INDEX portfolios_owner_idx ON read.portfolios (owner_id, created_at, portfolio_id);

-- Every trade and transfer, voided ones included (auditors see them).
CREATE TABLE read.portfolio_transactions
(
    portfolio_id uuid        NOT NULL,
    entry_id     uuid        NOT NULL,
    seq          bigint      NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('BUY', 'SELL', 'TRANSFER_IN', 'TRANSFER_OUT')),
    coin         text        NOT NULL,
    quantity     numeric     NOT NULL,
    price        numeric,
    quote        text,
    fee          numeric     NOT NULL,
    -- What an acquisition cost (buy: quantity × price + fee; transfer in: its basis).
    cost         numeric,
    executed_at  timestamptz NOT NULL,
    note         text,
    external_id  text,
    voided       boolean     NOT NULL,
    void_reason  text,
    PRIMARY KEY (portfolio_id, entry_id)
);
CREATE INDEX portfolio_transactions_time_idx
    ON read.portfolio_transactions (portfolio_id, executed_at, seq);

-- The current disposal of every sell and transfer out (replaced when re-derived).
CREATE TABLE read.portfolio_disposals
(
    portfolio_id  uuid    NOT NULL,
    entry_id      uuid    NOT NULL,
    coin          text    NOT NULL,
    quantity      numeric NOT NULL,
    cost_basis    numeric NOT NULL,
    proceeds      numeric NOT NULL,
    fee           numeric NOT NULL,
    realized_gain numeric,
    lots          jsonb   NOT NULL,
    PRIMARY KEY (portfolio_id, entry_id)
);

-- Lots still held: acquisitions minus what the current disposals consumed.
CREATE TABLE read.portfolio_lots
(
    portfolio_id uuid        NOT NULL,
    lot_id       uuid        NOT NULL,
    coin         text        NOT NULL,
    acquired_at  timestamptz NOT NULL,
    quantity     numeric     NOT NULL,
    cost         numeric     NOT NULL,
    PRIMARY KEY (portfolio_id, lot_id)
);

CREATE TABLE read.portfolio_holdings
(
    portfolio_id  uuid    NOT NULL,
    coin          text    NOT NULL,
    quantity      numeric NOT NULL,
    cost_basis    numeric NOT NULL,
    realized_gain numeric NOT NULL,
    PRIMARY KEY (portfolio_id, coin)
);

-- users (event store): profiles, watchlists, usage ---------------------------------------

CREATE TABLE read.users
(
    user_id       uuid PRIMARY KEY,
    username      text        NOT NULL,
    base_currency text        NOT NULL,
    registered_at timestamptz NOT NULL,
    deactivated   boolean     NOT NULL,
    position      bigint      NOT NULL
);

CREATE TABLE read.watchlists
(
    user_id  uuid        NOT NULL,
    coin     text        NOT NULL,
    added_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, coin)
);

-- How many events each user's commands produced, by event type.
CREATE TABLE read.usage
(
    user_id    uuid   NOT NULL,
    event_type text   NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (user_id, event_type)
);

-- alerts (event store) ----------------------------------------------------------------

CREATE TABLE read.alerts
(
    alert_id          uuid PRIMARY KEY,
    owner_id          uuid        NOT NULL,
    coin              text        NOT NULL,
    condition         jsonb       NOT NULL,
    repeat            text        NOT NULL,
    cooldown_seconds  integer     NOT NULL,
    status            text        NOT NULL,
    times_triggered   bigint      NOT NULL,
    last_triggered_at timestamptz,
    last_observation  jsonb,
    created_at        timestamptz NOT NULL,
    position          bigint      NOT NULL
);
CREATE INDEX alerts_owner_idx ON read.alerts (owner_id, created_at, alert_id);
CREATE INDEX alerts_armed_idx ON read.alerts (coin) WHERE status = 'ARMED';

-- market (coinfold.market.ticks) -----------------------------------------------------------

CREATE TABLE read.latest_prices
(
    coin          text        NOT NULL,
    quote         text        NOT NULL,
    price         numeric     NOT NULL,
    source        text        NOT NULL,
    exchange_time timestamptz NOT NULL,
    volume_24h    numeric,
    PRIMARY KEY (coin, quote)
);

-- interval: '1m', '5m', '1h', '1d'. Built from trades (price and volume) and tickers
-- (price only), whatever their source, per coin and quote.
CREATE TABLE read.candles
(
    coin      text        NOT NULL,
    quote     text        NOT NULL,
    interval  text        NOT NULL,
    open_time timestamptz NOT NULL,
    open      numeric     NOT NULL,
    high      numeric     NOT NULL,
    low       numeric     NOT NULL,
    close     numeric     NOT NULL,
    volume    numeric     NOT NULL,
    trades    bigint      NOT NULL,
    PRIMARY KEY (coin, quote, interval, open_time)
);

-- Indicator values per closed candle.
CREATE TABLE read.indicators
(
    coin            text             NOT NULL,
    quote           text             NOT NULL,
    interval        text             NOT NULL,
    open_time       timestamptz      NOT NULL,
    close           double precision NOT NULL,
    sma_20          double precision,
    ema_20          double precision,
    rsi_14          double precision,
    macd            double precision,
    macd_signal     double precision,
    macd_histogram  double precision,
    bollinger_mid   double precision,
    bollinger_upper double precision,
    bollinger_lower double precision,
    volatility_30   double precision,
    PRIMARY KEY (coin, quote, interval, open_time)
);

-- The fold's own state per series (the open candle's time, the incremental indicators),
-- written in the same transaction as the rows above so a restart continues exactly.
CREATE TABLE read.market_series
(
    coin     text  NOT NULL,
    quote    text  NOT NULL,
    interval text  NOT NULL,
    state    jsonb NOT NULL,
    PRIMARY KEY (coin, quote, interval)
);

-- Dedupe keys of the ticks applied (`Tick::dedupe_key`), so a tick delivered twice
-- counts once. Keys older than two days before a batch's newest tick are pruned: a
-- dedupe cache, not a read model (rebuild comparisons leave it out).
CREATE TABLE read.tick_seen
(
    dedupe_key    text        PRIMARY KEY,
    exchange_time timestamptz NOT NULL
);
CREATE INDEX tick_seen_time_idx ON read.tick_seen (exchange_time);

-- coins (coinfold.market.coins): metadata for the market overview ------------------------

CREATE TABLE read.coins
(
    coin             text PRIMARY KEY,
    coingecko_id     text        NOT NULL,
    name             text        NOT NULL,
    market_cap_rank  integer,
    market_cap       numeric,
    total_volume     numeric,
    circulating      numeric,
    price_usd        numeric,
    change_24h_pct   numeric,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX coins_name_idx ON read.coins (lower(name) text_pattern_ops);

-- sentiment (coinfold.news.sentiment) -----------------------------------------------------

CREATE TABLE read.scored_articles
(
    article_id   text             NOT NULL,
    coin         text             NOT NULL,
    title        text             NOT NULL,
    url          text             NOT NULL,
    source       text             NOT NULL,
    published_at timestamptz,
    scored_at    timestamptz      NOT NULL,
    score        double precision NOT NULL,
    label        text             NOT NULL,
    PRIMARY KEY (article_id, coin)
);
CREATE INDEX scored_articles_coin_idx ON read.scored_articles (coin, scored_at DESC, article_id);

-- Per coin and hour (bucket = the hour the article was published, or scored if undated).
CREATE TABLE read.sentiment_hourly
(
    coin      text             NOT NULL,
    hour      timestamptz      NOT NULL,
    articles  bigint           NOT NULL,
    positive  bigint           NOT NULL,
    negative  bigint           NOT NULL,
    neutral   bigint           NOT NULL,
    score_sum double precision NOT NULL,
    PRIMARY KEY (coin, hour)
);
