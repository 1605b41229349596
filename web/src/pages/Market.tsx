// The market, for everyone: every coin's live price (flashing on change), its 24-hour
// change and volume, the day's gainers and losers, a search, and (signed in) a
// watchlist star on each row.
import { useEffect, useMemo, useRef, useState } from 'react';
import { Link } from 'react-router-dom';
import { useClient, useMutation, useQuery } from 'urql';
import { graphql } from '../gql';
import type { MarketCoinsQuery } from '../gql/graphql';
import { useSession } from '../api/session';
import { describe, problemOf } from '../api/errors';
import { compact, direction, percent, price } from '../format';
import { ErrorNote } from '../components/ErrorNote';

const MarketCoins = graphql(`
  query MarketCoins($search: String, $first: Int!, $after: String) {
    coins(search: $search, first: $first, after: $after) {
      nodes {
        symbol
        name
        marketCapRank
        marketCap
        totalVolume
        priceUsd
        change24HPct
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const Overview = graphql(`
  query MarketOverview {
    marketOverview(top: 5) {
      totalMarketCap
      totalVolume
      coins
      gainers {
        symbol
        name
        priceUsd
        change24HPct
      }
      losers {
        symbol
        name
        priceUsd
        change24HPct
      }
    }
  }
`);

const LatestPrices = graphql(`
  query LatestPrices($coins: [String!]!) {
    prices(coins: $coins) {
      coin
      price
      volume24H
      exchangeTime
    }
  }
`);

const LivePrices = graphql(`
  subscription LivePrices($coins: [String!]!) {
    prices(coins: $coins) {
      coin
      quote
      price
      at
    }
  }
`);

const Watchlist = graphql(`
  query Watchlist {
    watchlist(first: 100) {
      nodes {
        coin
      }
    }
  }
`);

const Watch = graphql(`
  mutation Watch($coin: String!) {
    addToWatchlist(coin: $coin) {
      id
      version
    }
  }
`);

const Unwatch = graphql(`
  mutation Unwatch($coin: String!) {
    removeFromWatchlist(coin: $coin) {
      id
      version
    }
  }
`);

type CoinRow = MarketCoinsQuery['coins']['nodes'][number];
interface Live {
  price: string;
  at: string;
  /** Which way the last change went, and a counter to restart the flash. */
  move: 'up' | 'down' | 'flat';
  tick: number;
}

const PAGE = 25;

export function Market() {
  const [search, setSearch] = useState('');
  const [pages, setPages] = useState<(string | null)[]>([null]);
  const [watchedOnly, setWatchedOnly] = useState(false);
  const state = useSession();
  const signedIn = state.status === 'signed-in';

  // Every page of coins asked so far, in order.
  const trimmed = search.trim();
  useEffect(() => setPages([null]), [trimmed]);

  return (
    <div className="stack">
      <OverviewCards />
      <section className="card">
        <div className="row between">
          <h1>Market</h1>
          <div className="row">
            {signedIn && (
              <label className="check">
                <input type="checkbox" checked={watchedOnly} onChange={(e) => setWatchedOnly(e.target.checked)} /> Watchlist only
              </label>
            )}
            <label className="search">
              <span className="sr-only">Search coins</span>
              <input type="search" placeholder="Search coins (BTC, ether…)" value={search} onChange={(e) => setSearch(e.target.value)} />
            </label>
          </div>
        </div>
        <PriceTable search={trimmed || undefined} pages={pages} onMore={(cursor) => setPages((p) => [...p, cursor])} watchedOnly={watchedOnly} signedIn={signedIn} />
      </section>
    </div>
  );
}

function OverviewCards() {
  const [{ data, error }] = useQuery({ query: Overview });
  if (error) return <ErrorNote problem={problemOf(error)} />;
  const overview = data?.marketOverview;
  return (
    <div className="cards">
      <div className="card stat">
        <span className="label">Market cap</span>
        <strong>{overview ? `${compact(overview.totalMarketCap)} USD` : '…'}</strong>
        <span className="muted">{overview ? `${overview.coins} coins` : ''}</span>
      </div>
      <div className="card stat">
        <span className="label">24 h volume</span>
        <strong>{overview ? `${compact(overview.totalVolume)} USD` : '…'}</strong>
      </div>
      <Movers title="Top gainers" coins={overview?.gainers} />
      <Movers title="Top losers" coins={overview?.losers} />
    </div>
  );
}

function Movers({ title, coins }: { title: string; coins?: { symbol: string; change24HPct?: string | null }[] }) {
  return (
    <div className="card movers">
      <span className="label">{title}</span>
      <ul>
        {(coins ?? []).map((coin) => (
          <li key={coin.symbol}>
            <Link to={`/coin/${coin.symbol}`}>{coin.symbol}</Link>
            <span className={direction(coin.change24HPct)}>{percent(coin.change24HPct)}</span>
          </li>
        ))}
        {coins && coins.length === 0 && <li className="muted">No 24 h figures yet</li>}
      </ul>
    </div>
  );
}

function PriceTable(props: { search?: string; pages: (string | null)[]; onMore: (cursor: string) => void; watchedOnly: boolean; signedIn: boolean }) {
  const [rows, setRows] = useState<Map<number, CoinRow[]>>(new Map());
  const [next, setNext] = useState<string | null>(null);
  const key = props.search ?? '';
  useEffect(() => {
    setRows(new Map());
  }, [key]);

  const symbols = useMemo(() => {
    const all = [...rows.entries()].sort(([a], [b]) => a - b).flatMap(([, page]) => page);
    return all;
  }, [rows]);
  const coins = useMemo(() => symbols.map((c) => c.symbol), [symbols]);

  const [watch] = useQuery({ query: Watchlist, pause: !props.signedIn });
  // What this page changed, over what the read model said (it follows a moment later).
  const [changed, setChanged] = useState(new Map<string, boolean>());
  const watched = new Set(watch.data?.watchlist.nodes.map((n) => n.coin) ?? []);
  for (const [coin, on] of changed) {
    if (on) watched.add(coin);
    else watched.delete(coin);
  }
  const [, addWatch] = useMutation(Watch);
  const [, removeWatch] = useMutation(Unwatch);
  const [watchError, setWatchError] = useState<string>();

  const toggle = async (coin: string) => {
    const on = !watched.has(coin);
    const result = on ? await addWatch({ coin }) : await removeWatch({ coin });
    const problem = problemOf(result.error);
    setWatchError(problem ? describe(problem) : undefined);
    if (!problem) setChanged((current) => new Map(current).set(coin, on));
  };

  const live = useLivePrices(coins);
  const shown = props.watchedOnly ? symbols.filter((c) => watched.has(c.symbol)) : symbols;

  return (
    <>
      {props.pages.map((after, index) => (
        <PageLoader
          key={`${key}:${index}:${after ?? ''}`}
          search={props.search}
          after={after}
          onRows={(page, cursor) => {
            setRows((current) => new Map(current).set(index, page));
            if (index === props.pages.length - 1) setNext(cursor);
          }}
        />
      ))}
      {watchError && <p className="error" role="alert">{watchError}</p>}
      <table className="prices">
        <thead>
          <tr>
            {props.signedIn && <th scope="col"><span className="sr-only">Watch</span></th>}
            <th scope="col">#</th>
            <th scope="col">Coin</th>
            <th scope="col" className="num">Price</th>
            <th scope="col" className="num">24 h</th>
            <th scope="col" className="num">24 h volume</th>
            <th scope="col" className="num">Market cap</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((coin) => {
            const now = live.get(coin.symbol);
            return (
              <tr key={coin.symbol} data-coin={coin.symbol}>
                {props.signedIn && (
                  <td>
                    <button
                      type="button"
                      className={`star ${watched.has(coin.symbol) ? 'on' : ''}`}
                      aria-pressed={watched.has(coin.symbol)}
                      aria-label={`${watched.has(coin.symbol) ? 'Remove' : 'Add'} ${coin.symbol} ${watched.has(coin.symbol) ? 'from' : 'to'} the watchlist`}
                      onClick={() => void toggle(coin.symbol)}
                    >
                      {watched.has(coin.symbol) ? '★' : '☆'}
                    </button>
                  </td>
                )}
                <td className="muted">{coin.marketCapRank ?? ''}</td>
                <td>
                  <Link to={`/coin/${coin.symbol}`}>
                    <strong>{coin.symbol}</strong> <span className="muted">{coin.name}</span>
                  </Link>
                </td>
                <td className="num">
                  <span key={now?.tick ?? 0} className={`price flash-${now?.move ?? 'flat'}`} data-testid={`price-${coin.symbol}`}>
                    {price(now?.price ?? coin.priceUsd)}
                  </span>
                </td>
                <td className={`num ${direction(coin.change24HPct)}`}>{percent(coin.change24HPct)}</td>
                <td className="num">{compact(now?.volume ?? coin.totalVolume)}</td>
                <td className="num">{compact(coin.marketCap)}</td>
              </tr>
            );
          })}
          {shown.length === 0 && (
            <tr>
              <td colSpan={7} className="muted">
                {props.watchedOnly ? 'Your watchlist is empty: star a coin to add it.' : props.search ? `No coin matches “${props.search}”.` : 'No coins yet: the market feed has not sent any.'}
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {next && (
        <button type="button" onClick={() => props.onMore(next)}>
          Show more coins
        </button>
      )}
    </>
  );
}

function PageLoader(props: { search?: string; after: string | null; onRows: (rows: CoinRow[], next: string | null) => void }) {
  const [{ data, error }] = useQuery({ query: MarketCoins, variables: { search: props.search, first: PAGE, after: props.after } });
  const onRows = useRef(props.onRows);
  onRows.current = props.onRows;
  useEffect(() => {
    if (data) onRows.current(data.coins.nodes, data.coins.pageInfo.hasNextPage ? (data.coins.pageInfo.endCursor ?? null) : null);
  }, [data]);
  return error ? <ErrorNote problem={problemOf(error)} /> : null;
}

/** The dollar price of each coin: the latest at load, then every change as it comes. */
function useLivePrices(coins: string[]): Map<string, Live & { volume?: string | null }> {
  const [prices, setPrices] = useState(new Map<string, Live & { volume?: string | null }>());
  const client = useClient();
  // The API takes at most 50 coins a request: one query and one subscription per 50.
  const key = coins.join(',');
  useEffect(() => {
    const all = key ? key.split(',') : [];
    const batches: string[][] = [];
    for (let i = 0; i < all.length; i += 50) batches.push(all.slice(i, i + 50));
    const stops = batches.map((batch) => {
      const latest = client.query(LatestPrices, { coins: batch }).subscribe((result) => {
        const list = result.data?.prices;
        if (!list) return;
        setPrices((current) => {
          const next = new Map(current);
          for (const p of list) {
            if (!next.has(p.coin)) next.set(p.coin, { price: p.price, at: p.exchangeTime, move: 'flat', tick: 0, volume: p.volume24H });
          }
          return next;
        });
      });
      // Each update on its own: several may arrive between two renders.
      const live = client.subscription(LivePrices, { coins: batch }).subscribe((result) => {
        const update = result.data?.prices;
        if (!update || update.quote !== 'USD') return;
        setPrices((current) => {
          const before = current.get(update.coin);
          if (before && Date.parse(before.at) > Date.parse(update.at)) return current;
          const move = before ? (Number(update.price) > Number(before.price) ? 'up' : Number(update.price) < Number(before.price) ? 'down' : 'flat') : 'flat';
          const next = new Map(current);
          next.set(update.coin, { price: update.price, at: update.at, move, tick: (before?.tick ?? 0) + 1, volume: before?.volume });
          return next;
        });
      });
      return () => {
        latest.unsubscribe();
        live.unsubscribe();
      };
    });
    return () => stops.forEach((stop) => stop());
  }, [client, key]);
  return prices;
}
