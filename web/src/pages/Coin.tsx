// One coin: its live dollar price and 24-hour change, its candles with indicators
// (growing live), its news sentiment and its latest scored articles.
import { useEffect, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { useQuery, useSubscription } from 'urql';
import { graphql } from '../gql';
import { problemOf } from '../api/errors';
import { direction, percent, price, utc } from '../format';
import { ErrorNote } from '../components/ErrorNote';
import { CandleChart } from '../components/charts/CandleChart';
import { SentimentCard, signed } from '../components/charts/Sentiment';
import './coin.css';

const CoinHeader = graphql(`
  query CoinHeader($symbol: String!) {
    coin(symbol: $symbol) {
      symbol
      name
      marketCapRank
      priceUsd
      change24HPct
    }
    price(coin: $symbol) {
      coin
      quote
      price
      exchangeTime
    }
  }
`);

const CoinLivePrice = graphql(`
  subscription CoinLivePrice($coins: [String!]!) {
    prices(coins: $coins) {
      coin
      quote
      price
      at
    }
  }
`);

const CoinNews = graphql(`
  query CoinNews($coin: String!, $first: Int!) {
    news(coin: $coin, first: $first) {
      nodes {
        id
        title
        url
        source
        publishedAt
        scoredAt
        score
        label
      }
    }
  }
`);

export default function Coin() {
  const params = useParams();
  const symbol = (params.symbol ?? '').trim().toUpperCase();
  if (!symbol) return <p>Which coin? <Link to="/">Pick one on the market</Link>.</p>;
  return <CoinPage key={symbol} symbol={symbol} />;
}

function CoinPage({ symbol }: { symbol: string }) {
  const [{ data, error, fetching }] = useQuery({ query: CoinHeader, variables: { symbol } });
  const quote = data?.price?.quote;
  return (
    <div className="stack coin-page">
      <section className="card coin-head" aria-labelledby="coin-title">
        <div className="row between">
          <h1 id="coin-title" data-testid="coin-title">
            {symbol} {data?.coin && <span className="muted">{data.coin.name}</span>}
            {data?.coin?.marketCapRank != null && <span className="rank muted">#{data.coin.marketCapRank}</span>}
          </h1>
          <Link to="/correlation">Compare with other coins</Link>
        </div>
        <ErrorNote problem={problemOf(error)} />
        {data && !data.coin && <p className="muted">CoinGecko does not list {symbol}: only the prices coinfold records are shown.</p>}
        <LivePrice symbol={symbol} quote={quote ?? 'USD'} initial={data?.price?.price ?? data?.coin?.priceUsd} at={data?.price?.exchangeTime} change={data?.coin?.change24HPct} loading={fetching && !data} />
      </section>
      <CandleChart coin={symbol} quote={quote} />
      <div className="coin-columns">
        <SentimentCard coin={symbol} />
        <News coin={symbol} />
      </div>
    </div>
  );
}

function LivePrice(props: { symbol: string; quote: string; initial?: string | null; at?: string | null; change?: string | null; loading: boolean }) {
  const [live, setLive] = useState<{ price: string; at: string; move: 'up' | 'down' | 'flat'; tick: number }>();
  const [{ data }] = useSubscription({ query: CoinLivePrice, variables: { coins: [props.symbol] } });
  useEffect(() => {
    const update = data?.prices;
    if (!update || update.coin !== props.symbol || update.quote !== props.quote) return;
    setLive((before) => {
      if (before && Date.parse(before.at) > Date.parse(update.at)) return before;
      const was = Number(before?.price ?? props.initial);
      const now = Number(update.price);
      const move = now > was ? 'up' : now < was ? 'down' : 'flat';
      return { price: update.price, at: update.at, move, tick: (before?.tick ?? 0) + 1 };
    });
  }, [data, props.symbol, props.quote, props.initial]);
  const shown = live?.price ?? props.initial;
  const at = live?.at ?? props.at;
  return (
    <div className="cards">
      <div className="stat">
        <span className="label">Price ({props.quote})</span>
        <strong>
          <span key={live?.tick ?? 0} className={`price flash-${live?.move ?? 'flat'}`} data-testid="coin-price" data-live={live ? 'true' : 'false'}>
            {props.loading ? '…' : price(shown, props.quote)}
          </span>
        </strong>
        <span className="muted">{at ? `at ${utc(at)}` : live ? '' : 'no price yet'}</span>
      </div>
      <div className="stat">
        <span className="label">24 h change</span>
        <strong className={direction(props.change)} data-testid="coin-change">
          {props.loading ? '…' : percent(props.change)}
        </strong>
      </div>
    </div>
  );
}

const NEWS = 10;

function News({ coin }: { coin: string }) {
  const [{ data, error, fetching }] = useQuery({ query: CoinNews, variables: { coin, first: NEWS } });
  const articles = data?.news.nodes ?? [];
  return (
    <section className="card stack" aria-labelledby="news-title">
      <h2 id="news-title">Latest news</h2>
      <ErrorNote problem={problemOf(error)} />
      {!data && fetching && <p className="muted">Loading articles…</p>}
      {data && articles.length === 0 && (
        <p className="muted" data-testid="no-news">
          No articles yet about {coin}: scored news appears here as it comes in.
        </p>
      )}
      {articles.length > 0 && (
        <ul className="news" data-testid="news">
          {articles.map((article) => {
            const label = article.label.toUpperCase();
            const tone = label === 'POSITIVE' ? 'up' : label === 'NEGATIVE' ? 'down' : 'flat';
            return (
              <li key={article.id}>
                <a href={article.url} target="_blank" rel="noopener noreferrer">
                  {article.title}
                  <span className="sr-only"> (opens in a new tab)</span>
                </a>
                <div className="news-meta">
                  <span>{article.source}</span>
                  <span className="muted">{utc(article.publishedAt ?? article.scoredAt)}</span>
                  <span className={`news-label ${tone}`}>
                    {label.toLowerCase()} {signed(article.score)}
                  </span>
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
