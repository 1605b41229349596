// A coin's news sentiment: a gauge of the last 24 hours' mean score (−1 to 1) with its
// article counts, and the hourly mean over the last 48 hours as bars.
import { useMemo } from 'react';
import { useQuery } from 'urql';
import { Bar, BarChart, CartesianGrid, Cell, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { graphql } from '../../gql';
import { problemOf } from '../../api/errors';
import { chartColors, useTheme } from '../../theme';
import { utc } from '../../format';
import { ErrorNote } from '../ErrorNote';

const CoinSentiment = graphql(`
  query CoinSentiment($coin: String!, $hours: Int!) {
    sentiment(coin: $coin, hours: $hours) {
      coin
      score
      articles
      positive
      negative
      neutral
    }
  }
`);

const CoinSentimentTrend = graphql(`
  query CoinSentimentTrend($coin: String!, $hours: Int!) {
    sentimentTrend(coin: $coin, hours: $hours) {
      hour
      score
      articles
    }
  }
`);

/** Below this a score reads negative, above its opposite positive (VADER's cut-offs). */
const NEUTRAL_BAND = 0.05;

export function sentimentWord(score: number | null | undefined): 'positive' | 'negative' | 'neutral' | 'no articles' {
  if (score === null || score === undefined) return 'no articles';
  return score >= NEUTRAL_BAND ? 'positive' : score <= -NEUTRAL_BAND ? 'negative' : 'neutral';
}

export function signed(score: number): string {
  return `${score > 0 ? '+' : ''}${score.toFixed(2)}`;
}

export function SentimentCard({ coin }: { coin: string }) {
  const [{ data, error, fetching }] = useQuery({ query: CoinSentiment, variables: { coin, hours: 24 } });
  const s = data?.sentiment;
  return (
    <section className="card stack" aria-labelledby="sentiment-title">
      <h2 id="sentiment-title">News sentiment</h2>
      <ErrorNote problem={problemOf(error)} />
      {!s && fetching && <p className="muted">Loading sentiment…</p>}
      {s && (
        <div className="sentiment" data-testid="sentiment">
          <Gauge score={s.score ?? null} articles={s.articles} />
          <div className="stack sentiment-figures">
            <span className="label">Last 24 h</span>
            <strong className={`sentiment-score ${s.score === null || s.score === undefined ? 'flat' : s.score >= NEUTRAL_BAND ? 'up' : s.score <= -NEUTRAL_BAND ? 'down' : 'flat'}`} data-testid="sentiment-score">
              {s.score === null || s.score === undefined ? '—' : signed(s.score)} <span className="sentiment-word">{sentimentWord(s.score)}</span>
            </strong>
            {s.articles === 0 ? (
              <span className="muted">No articles yet about {coin} in the last 24 hours.</span>
            ) : (
              <ul className="sentiment-counts" aria-label="Articles by label">
                <li>
                  <span className="up">{s.positive}</span> positive
                </li>
                <li>
                  <span className="down">{s.negative}</span> negative
                </li>
                <li>
                  <span className="muted">{s.neutral}</span> neutral
                </li>
                <li className="muted">{s.articles} articles in all</li>
              </ul>
            )}
          </div>
        </div>
      )}
      <SentimentTrend coin={coin} />
    </section>
  );
}

/** Where on the half circle a score lies. */
function point(score: number, radius: number): [number, number] {
  const angle = Math.PI * (1 - (Math.max(-1, Math.min(1, score)) + 1) / 2);
  return [100 + radius * Math.cos(angle), 100 - radius * Math.sin(angle)];
}

function arc(from: number, to: number, radius: number): string {
  const [x1, y1] = point(from, radius);
  const [x2, y2] = point(to, radius);
  return `M ${x1.toFixed(2)} ${y1.toFixed(2)} A ${radius} ${radius} 0 0 1 ${x2.toFixed(2)} ${y2.toFixed(2)}`;
}

function Gauge({ score, articles }: { score: number | null; articles: number }) {
  const label =
    score === null
      ? 'Sentiment gauge: no articles in the last 24 hours'
      : `Sentiment gauge: ${signed(score)} on a scale from −1 to +1 (${sentimentWord(score)}), from ${articles} article${articles === 1 ? '' : 's'}`;
  const needle = score === null ? undefined : point(score, 64);
  return (
    <svg className="gauge" viewBox="0 0 200 116" role="img" aria-label={label} data-testid="sentiment-gauge" data-score={score ?? ''}>
      <title>{label}</title>
      <path d={arc(-1, -NEUTRAL_BAND, 80)} className="gauge-neg" />
      <path d={arc(-NEUTRAL_BAND, NEUTRAL_BAND, 80)} className="gauge-mid" />
      <path d={arc(NEUTRAL_BAND, 1, 80)} className="gauge-pos" />
      {needle && <line x1={100} y1={100} x2={needle[0]} y2={needle[1]} className="gauge-needle" />}
      <circle cx={100} cy={100} r={5} className="gauge-hub" />
      <text x={14} y={114} className="gauge-tick">
        −1
      </text>
      <text x={100} y={14} textAnchor="middle" className="gauge-tick">
        0
      </text>
      <text x={186} y={114} textAnchor="end" className="gauge-tick">
        +1
      </text>
    </svg>
  );
}

interface TrendPoint {
  hour: string;
  label: string;
  score: number;
  articles: number;
}

function SentimentTrend({ coin }: { coin: string }) {
  const theme = useTheme();
  const colors = chartColors(theme);
  const [{ data, error, fetching }] = useQuery({ query: CoinSentimentTrend, variables: { coin, hours: 48 } });
  const points = useMemo<TrendPoint[]>(
    () => (data?.sentimentTrend ?? []).map((p) => ({ hour: p.hour, label: utc(p.hour).slice(5, 13) + 'h', score: p.score, articles: p.articles })),
    [data],
  );
  const summary = points.length
    ? `Hourly mean sentiment of ${coin} over the last 48 hours: ${points.length} hours with articles, from ${signed(Math.min(...points.map((p) => p.score)))} to ${signed(Math.max(...points.map((p) => p.score)))}.`
    : '';
  return (
    <figure className="trend" data-testid="sentiment-trend" data-points={points.length}>
      <figcaption>
        <h3>Hourly sentiment, last 48 h (UTC)</h3>
      </figcaption>
      <ErrorNote problem={problemOf(error)} />
      {!data && fetching && <p className="muted">Loading the trend…</p>}
      {data && points.length === 0 && <p className="muted">No articles yet about {coin} in the last 48 hours.</p>}
      {points.length > 0 && (
        <>
          <p className="sr-only">{summary}</p>
          <ResponsiveContainer width="100%" height={200}>
            <BarChart data={points} margin={{ top: 8, right: 8, bottom: 0, left: -16 }} title={summary}>
              <CartesianGrid stroke={colors.grid} vertical={false} />
              <XAxis dataKey="label" tick={{ fill: colors.text, fontSize: 11 }} stroke={colors.grid} minTickGap={24} />
              <YAxis domain={[-1, 1]} ticks={[-1, -0.5, 0, 0.5, 1]} tick={{ fill: colors.text, fontSize: 11 }} stroke={colors.grid} />
              <ReferenceLine y={0} stroke={colors.muted} />
              <Tooltip content={(props) => <TrendTip active={props.active} payload={props.payload} />} cursor={{ fill: colors.grid }} />
              <Bar dataKey="score" isAnimationActive={false}>
                {points.map((p) => (
                  <Cell key={p.hour} fill={p.score >= NEUTRAL_BAND ? colors.up : p.score <= -NEUTRAL_BAND ? colors.down : colors.muted} />
                ))}
              </Bar>
            </BarChart>
          </ResponsiveContainer>
        </>
      )}
    </figure>
  );
}

function TrendTip({ active, payload }: { active?: boolean; payload?: ReadonlyArray<{ payload?: unknown }> }) {
  const first = payload?.[0];
  const datum = first?.payload as TrendPoint | undefined;
  if (!active || !datum) return null;
  return (
    <div className="chart-tip">
      <div>{utc(datum.hour)}</div>
      <div>
        Mean {signed(datum.score)} ({sentimentWord(datum.score)}), {datum.articles} article{datum.articles === 1 ? '' : 's'}
      </div>
    </div>
  );
}
