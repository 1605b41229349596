// How coins move together: the correlation of their log returns over the last
// `window` candles of an interval, as a heatmap table (−1 red, 0 neutral, +1 green).
import { useEffect, useMemo, useState } from 'react';
import { Link } from 'react-router-dom';
import { useQuery } from 'urql';
import { graphql } from '../gql';
import { isAbout, problemOf, type ApiProblem, describe } from '../api/errors';
import { ErrorNote } from '../components/ErrorNote';
import { useTheme, type Theme } from '../theme';
// The heatmap's styles share the coin page's sheet.
import './coin.css';

const CorrelationCoins = graphql(`
  query CorrelationCoins($first: Int!) {
    coins(first: $first) {
      nodes {
        symbol
        name
      }
    }
  }
`);

const CorrelationMatrix = graphql(`
  query CorrelationMatrix($coins: [String!]!, $interval: String!, $window: Int!) {
    correlation(coins: $coins, interval: $interval, window: $window)
  }
`);

const TOP = 20;
const DEFAULT_COINS = ['BTC', 'ETH', 'SOL', 'ADA', 'DOGE'];
const INTERVALS = ['1m', '5m', '1h', '1d'] as const;
const MIN_WINDOW = 2;
const MAX_WINDOW = 200;
const MAX_COINS = 20;

type Rgb = [number, number, number];
const SCALE: Record<Theme, { neutral: Rgb; negative: Rgb; positive: Rgb; text: string }> = {
  // Text keeps at least 4.5:1 against every colour of the scale, in both themes.
  dark: { neutral: [26, 32, 41], negative: [142, 27, 27], positive: [17, 107, 53], text: '#e6edf3' },
  light: { neutral: [246, 248, 250], negative: [232, 139, 139], positive: [127, 207, 151], text: '#1f2328' },
};

function mix(a: Rgb, b: Rgb, t: number): string {
  const c = a.map((v, i) => Math.round(v + ((b[i] ?? v) - v) * t));
  return `rgb(${c.join(', ')})`;
}

export function cellColour(value: number, theme: Theme): { background: string; color: string } {
  const s = SCALE[theme];
  const t = Math.min(1, Math.abs(value));
  return { background: mix(s.neutral, value < 0 ? s.negative : s.positive, t), color: s.text };
}

/** A value after the user stops typing for a moment. */
function useSettled<T>(value: T, ms = 300): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettled(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** Which control an API problem is about, by its `extensions.field`. */
function controlOf(problem: ApiProblem | undefined): 'coins' | 'interval' | 'window' | undefined {
  if (!problem || problem.code !== 'VALIDATION') return undefined;
  if (isAbout(problem, 'coins') || isAbout(problem, 'coin')) return 'coins';
  if (isAbout(problem, 'interval')) return 'interval';
  if (isAbout(problem, 'window')) return 'window';
  return undefined;
}

export default function Correlation() {
  const theme = useTheme();
  const [picked, setPicked] = useState<Set<string>>(() => new Set(DEFAULT_COINS));
  const [interval, setChartInterval] = useState<(typeof INTERVALS)[number]>('1h');
  const [windowText, setWindowText] = useState('30');

  const [list] = useQuery({ query: CorrelationCoins, variables: { first: TOP } });
  const choices = useMemo(() => {
    const top = list.data?.coins.nodes ?? [];
    const known = new Set(top.map((c) => c.symbol));
    const extra = [...DEFAULT_COINS, ...picked].filter((s, i, all) => !known.has(s) && all.indexOf(s) === i).map((symbol) => ({ symbol, name: '' }));
    return [...top, ...extra];
  }, [list.data, picked]);
  const coins = choices.map((c) => c.symbol).filter((s) => picked.has(s));

  const windowNumber = Number(windowText);
  const windowValid = windowText.trim() !== '' && Number.isInteger(windowNumber) && windowNumber >= MIN_WINDOW && windowNumber <= MAX_WINDOW;
  const coinsValid = coins.length >= 2 && coins.length <= MAX_COINS;
  // Typing waits for a pause; clicks ask at once.
  const settledWindow = useSettled(windowText);
  const ready = windowValid && coinsValid && settledWindow === windowText;
  const [matrix] = useQuery({ query: CorrelationMatrix, variables: { coins, interval, window: windowNumber }, pause: !ready });

  const problem = problemOf(matrix.error);
  const control = controlOf(problem);
  const coinsError = !coinsValid ? (coins.length < 2 ? 'Pick at least 2 coins.' : `Pick at most ${MAX_COINS} coins.`) : control === 'coins' && problem ? describe(problem) : undefined;
  const windowError = !windowValid ? `The window is a whole number of candles from ${MIN_WINDOW} to ${MAX_WINDOW}.` : control === 'window' && problem ? describe(problem) : undefined;
  const intervalError = control === 'interval' && problem ? describe(problem) : undefined;

  const toggle = (symbol: string, on: boolean) =>
    setPicked((current) => {
      const next = new Set(current);
      if (on) next.add(symbol);
      else next.delete(symbol);
      return next;
    });

  const shown = windowValid && coinsValid && matrix.data && matrix.operation ? { coins: matrix.operation.variables.coins, rows: matrix.data.correlation, interval: matrix.operation.variables.interval, window: matrix.operation.variables.window } : undefined;
  const asCoins = Array.isArray(shown?.coins) ? shown.coins : [];

  return (
    <div className="stack">
      <section className="card stack" aria-labelledby="corr-title">
        <h1 id="corr-title">Correlation</h1>
        <p className="muted corr-intro">How the coins’ log returns moved together over the last candles they share: +1 in step, 0 unrelated, −1 opposite.</p>
        <form className="stack" onSubmit={(e) => e.preventDefault()} aria-label="Correlation settings">
          <fieldset className="corr-coins" aria-describedby={coinsError ? 'coins-error' : undefined}>
            <legend>Coins ({coins.length} picked)</legend>
            {list.error && <ErrorNote problem={problemOf(list.error)} />}
            <div className="row">
              {choices.map((c) => (
                <label key={c.symbol} className="check">
                  <input type="checkbox" name="coins" value={c.symbol} checked={picked.has(c.symbol)} onChange={(e) => toggle(c.symbol, e.target.checked)} />
                  <span>
                    <strong>{c.symbol}</strong> {c.name && <span className="sr-only">{c.name}</span>}
                  </span>
                </label>
              ))}
            </div>
            {coinsError && (
              <p id="coins-error" className="field-error" role="alert" data-field="coins">
                {coinsError}
              </p>
            )}
          </fieldset>
          <div className="row corr-controls">
            <div className="stack corr-interval">
              <span className="label" id="interval-label">
                Interval
              </span>
              <div className="tabs" role="group" aria-labelledby="interval-label" aria-describedby={intervalError ? 'interval-error' : undefined}>
                {INTERVALS.map((i) => (
                  <button key={i} type="button" aria-pressed={interval === i} onClick={() => setChartInterval(i)}>
                    {i}
                  </button>
                ))}
              </div>
              {intervalError && (
                <p id="interval-error" className="field-error" role="alert" data-field="interval">
                  {intervalError}
                </p>
              )}
            </div>
            <label>
              Window (candles)
              <input
                type="number"
                name="window"
                min={MIN_WINDOW}
                max={MAX_WINDOW}
                step={1}
                inputMode="numeric"
                value={windowText}
                onChange={(e) => setWindowText(e.target.value)}
                aria-invalid={windowError ? true : undefined}
                aria-describedby={windowError ? 'window-error' : undefined}
              />
              {windowError && (
                <span id="window-error" className="field-error" role="alert" data-field="window">
                  {windowError}
                </span>
              )}
            </label>
          </div>
        </form>
        {problem && !control && <ErrorNote problem={problem} />}
      </section>
      <section className="card stack" aria-labelledby="heatmap-title">
        <h2 id="heatmap-title">Heatmap</h2>
        {ready && matrix.fetching && !shown && <p className="muted">Computing…</p>}
        {shown && shown.rows.length === 0 && <p className="muted">No candles yet that these coins share at {shown.interval}.</p>}
        {shown && shown.rows.length > 0 && <Heatmap coins={asCoins} rows={shown.rows} interval={shown.interval} window={shown.window} theme={theme} stale={matrix.fetching} />}
        <Legend theme={theme} />
      </section>
    </div>
  );
}

function Heatmap(props: { coins: string[]; rows: (number | null)[][]; interval: string; window: number; theme: Theme; stale: boolean }) {
  return (
    <div className="corr-scroll">
      <table className="heatmap" data-testid="correlation-heatmap" aria-busy={props.stale || undefined}>
        <caption className="muted">
          Correlation of log returns over the last {props.window} candles of {props.interval}
        </caption>
        <thead>
          <tr>
            <td />
            {props.coins.map((coin) => (
              <th key={coin} scope="col">
                <Link to={`/coin/${coin}`}>{coin}</Link>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row, r) => {
            const rowCoin = props.coins[r] ?? `#${r + 1}`;
            return (
              <tr key={rowCoin}>
                <th scope="row">
                  <Link to={`/coin/${rowCoin}`}>{rowCoin}</Link>
                </th>
                {row.map((value, c) => {
                  const colCoin = props.coins[c] ?? `#${c + 1}`;
                  if (value === null || value === undefined || !Number.isFinite(value)) {
                    return (
                      <td key={colCoin} className="heat none" data-testid={`corr-${rowCoin}-${colCoin}`} title={`${rowCoin} / ${colCoin}: undefined, a series does not vary over the window (its price stayed the same)`}>
                        —<span className="sr-only"> (undefined: a series does not vary)</span>
                      </td>
                    );
                  }
                  return (
                    <td key={colCoin} className="heat" style={cellColour(value, props.theme)} data-testid={`corr-${rowCoin}-${colCoin}`} data-value={value} title={`${rowCoin} / ${colCoin}: ${value.toFixed(4)}`}>
                      {value.toFixed(2)}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function Legend({ theme }: { theme: Theme }) {
  const steps = [-1, -0.5, 0, 0.5, 1];
  return (
    <div className="heat-legend row">
      <span className="label">Scale</span>
      {steps.map((v) => (
        <span key={v} className="heat-step" style={cellColour(v, theme)}>
          {v > 0 ? `+${v}` : v === 0 ? '0' : `−${Math.abs(v)}`}
        </span>
      ))}
      <span className="muted">red: opposite · neutral: unrelated · green: in step · “—”: a series that does not vary</span>
    </div>
  );
}
