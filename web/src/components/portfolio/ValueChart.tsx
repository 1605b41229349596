// The portfolio's USD value over time (Portfolio.valueHistory), over a day, a week, a
// month or a year; the numbers are turned into floats only to be drawn.
import { useEffect, useMemo, useState } from 'react';
import { useQuery } from 'urql';
import { Area, AreaChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { graphql } from '../../gql';
import { problemOf } from '../../api/errors';
import { compact, money, parseDecimal, utc } from '../../format';
import { chartColors, useTheme } from '../../theme';
import { ErrorNote } from '../ErrorNote';
import { useRefetchOnTick, useSync } from './shared';
import { isZero } from './HoldingsTable';

const PfValue = graphql(`
  query PfValue($id: ID!, $interval: String!, $from: DateTime!, $to: DateTime!) {
    portfolio(id: $id) {
      id
      valueHistory(interval: $interval, from: $from, to: $to) {
        at
        value
      }
    }
  }
`);

const RANGES = [
  { key: '1D', words: 'Day', interval: '5m', ms: 24 * 3600_000 },
  { key: '1W', words: 'Week', interval: '1h', ms: 7 * 24 * 3600_000 },
  { key: '1M', words: 'Month', interval: '1h', ms: 30 * 24 * 3600_000 },
  { key: '1Y', words: 'Year', interval: '1d', ms: 365 * 24 * 3600_000 },
] as const;
type RangeKey = (typeof RANGES)[number]['key'];

export function ValueChart() {
  const { id, tick } = useSync();
  const [range, setRange] = useState<RangeKey>('1D');
  const spec = RANGES.find((r) => r.key === range) ?? RANGES[1];
  // Fixed per range and per write, so the query's variables stay put between renders.
  // The range ends now (a write of a second ago is in it) and moves on each minute.
  const [minute, setMinute] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setMinute((m) => m + 1), 60_000);
    return () => clearInterval(timer);
  }, []);
  const { from, to } = useMemo(() => {
    const end = Date.now();
    return { from: new Date(end - spec.ms).toISOString(), to: new Date(end).toISOString() };
    // tick and minute: a new range end after a write, and each minute.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [spec, tick, minute]);
  const [{ data, error, fetching }, refetch] = useQuery({
    query: PfValue,
    variables: { id, interval: spec.interval, from, to },
  });
  // After a write (the range's end may have moved on too: then that fetch is the new one).
  useRefetchOnTick(refetch);
  const colors = chartColors(useTheme());
  const points = data?.portfolio.valueHistory ?? [];
  const series = useMemo(
    () => points.map((p) => ({ t: new Date(p.at).getTime(), at: p.at, value: parseDecimal(p.value) ?? 0, exact: p.value })),
    [points],
  );
  const empty = points.length === 0 || points.every((p) => isZero(p.value));
  const last = points[points.length - 1];
  const short = range === '1D' ? (t: number) => new Date(t).toISOString().slice(11, 16) : (t: number) => new Date(t).toISOString().slice(5, 10);

  return (
    <section className="card">
      <div className="row between">
        <h2>Value over time</h2>
        <div className="tabs" role="group" aria-label="Chart range">
          {RANGES.map((r) => (
            <button key={r.key} type="button" aria-pressed={range === r.key} onClick={() => setRange(r.key)} title={`The last ${r.words.toLowerCase()}`}>
              {r.key}
            </button>
          ))}
        </div>
      </div>
      <ErrorNote problem={problemOf(error)} />
      {!data && fetching ? (
        <p className="muted">Loading…</p>
      ) : empty ? (
        <p className="muted pf-empty" data-testid="value-chart-empty">
          No value to chart over this {spec.words.toLowerCase()} yet: the chart fills in once the portfolio holds coins at times the market has prices for.
        </p>
      ) : (
        <div
          className="pf-chart"
          role="img"
          aria-label={`Portfolio value in USD from ${utc(from)} to ${utc(to)}; latest ${money(last?.value, 'USD')}`}
        >
          <ResponsiveContainer width="100%" height={260}>
            <AreaChart data={series} accessibilityLayer={false} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
              <defs>
                <linearGradient id="pf-value-fill" x1="0" y1="0" x2="0" y2="1">
                  <stop offset="0%" stopColor={colors.accent} stopOpacity={0.35} />
                  <stop offset="100%" stopColor={colors.accent} stopOpacity={0.02} />
                </linearGradient>
              </defs>
              <CartesianGrid stroke={colors.grid} strokeDasharray="3 3" />
              <XAxis
                dataKey="t"
                type="number"
                scale="time"
                domain={['dataMin', 'dataMax']}
                tickFormatter={short}
                stroke={colors.muted}
                tick={{ fill: colors.text, fontSize: 12 }}
              />
              <YAxis tickFormatter={(v: number) => compact(String(v))} stroke={colors.muted} tick={{ fill: colors.text, fontSize: 12 }} width={60} />
              <Tooltip
                contentStyle={{ background: colors.background, borderColor: colors.grid, color: colors.text }}
                labelStyle={{ color: colors.text }}
                labelFormatter={(_label, payload) => {
                  const item = payload[0]?.payload as { at?: string } | undefined;
                  return utc(item?.at);
                }}
                formatter={(_value, _name, item) => {
                  const exact = (item.payload as { exact?: string } | undefined)?.exact;
                  return [money(exact, 'USD'), 'Value'];
                }}
              />
              <Area type="monotone" dataKey="value" stroke={colors.accent} fill="url(#pf-value-fill)" strokeWidth={2} isAnimationActive={false} />
            </AreaChart>
          </ResponsiveContainer>
        </div>
      )}
      <p className="muted small">In USD, at the candle closes of each {spec.interval} step; times in UTC.</p>
    </section>
  );
}
