// Time travel: a slider over the moments of the portfolio's events (when each was
// recorded, or when what it records happened), and the holdings and P&L as of the
// chosen one (portfolio(id, asOf, basis)). The right end is now.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useClient, useQuery } from 'urql';
import { graphql } from '../../gql';
import type { AsOfBasis } from '../../gql/graphql';
import { problemOf, type ApiProblem } from '../../api/errors';
import { direction, money, percent, utc } from '../../format';
import { ErrorNote } from '../ErrorNote';
import { HoldingsTable } from './HoldingsTable';
import { useRefetchOnTick, useSync } from './shared';

const PfMoments = graphql(`
  query PfMoments($id: ID!, $first: Int!, $after: String) {
    portfolioHistory(id: $id, first: $first, after: $after) {
      nodes {
        sequence
        eventType
        recordedAt
        effectiveAt
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const PfAsOf = graphql(`
  query PfAsOf($id: ID!, $asOf: DateTime, $basis: AsOfBasis) {
    portfolio(id: $id, asOf: $asOf, basis: $basis) {
      id
      version
      asOf
      summary {
        ...PfSummaryFields
      }
    }
  }
`);

export interface Moment {
  sequence: number;
  eventType: string;
  recordedAt: string | null | undefined;
  effectiveAt: string | null | undefined;
}

/** Every event's moments, oldest first: loaded 100 at a time, then only what is new. */
function useMoments(): { moments: Moment[]; loaded: boolean; problem?: ApiProblem } {
  const { id, tick } = useSync();
  const client = useClient();
  const seen = useRef(new Map<number, Moment>());
  const cursor = useRef<string | null>(null);
  const [state, setState] = useState<{ moments: Moment[]; loaded: boolean; problem?: ApiProblem }>({ moments: [], loaded: false });
  useEffect(() => {
    let cancelled = false;
    const load = async () => {
      for (let page = 0; page < 100; page += 1) {
        const result = await client.query(PfMoments, { id, first: 100, after: cursor.current }, { requestPolicy: 'network-only' }).toPromise();
        const connection = result.data?.portfolioHistory;
        if (!connection) {
          if (!cancelled) setState((s) => ({ ...s, loaded: true, problem: problemOf(result.error) }));
          return;
        }
        for (const node of connection.nodes) seen.current.set(node.sequence, node);
        if (connection.pageInfo.endCursor) cursor.current = connection.pageInfo.endCursor;
        if (!connection.pageInfo.hasNextPage) break;
      }
      if (!cancelled) setState({ moments: [...seen.current.values()].sort((a, b) => a.sequence - b.sequence), loaded: true });
    };
    void load();
    return () => {
      cancelled = true;
    };
  }, [client, id, tick]);
  return state;
}

/** The moment an entry stands for, under a basis. */
export function momentOf(m: Moment, basis: AsOfBasis): string | undefined {
  return (basis === 'EFFECTIVE' ? (m.effectiveAt ?? m.recordedAt) : m.recordedAt) ?? undefined;
}

function millis(value: string | undefined): number {
  const t = value ? Date.parse(value) : Number.NaN;
  return Number.isNaN(t) ? 0 : t;
}

export function TimeTravel(props: { selected: number | null; onSelect: (sequence: number | null) => void; sliderRef?: React.Ref<HTMLInputElement> }) {
  const { id } = useSync();
  const [basis, setBasis] = useState<AsOfBasis>('RECORDED');
  const { moments, loaded, problem } = useMoments();
  const ordered = useMemo(() => {
    if (basis === 'RECORDED') return moments;
    return [...moments].sort((a, b) => millis(momentOf(a, basis)) - millis(momentOf(b, basis)) || a.sequence - b.sequence);
  }, [moments, basis]);
  const last = ordered.length - 1;
  const found = props.selected === null ? -1 : ordered.findIndex((m) => m.sequence === props.selected);
  const index = found >= 0 ? found : last;
  const atEnd = index === last;
  const moment = ordered[index];
  const first = ordered[0];
  const time = moment ? momentOf(moment, basis) : undefined;

  const [{ data, error, fetching }, refetch] = useQuery({
    query: PfAsOf,
    variables: { id, asOf: atEnd || !time ? null : time, basis: atEnd ? null : basis },
    pause: !loaded || ordered.length === 0,
  });
  useRefetchOnTick(refetch);
  const summary = data?.portfolio.summary;

  const words = !moment
    ? ''
    : atEnd
      ? `now (the latest event, #${moment.sequence} ${moment.eventType}, ${basis === 'RECORDED' ? 'recorded' : 'effective'} ${utc(time)})`
      : `${utc(time)}, right after event #${moment.sequence} ${moment.eventType} (${basis === 'RECORDED' ? 'as recorded by then' : 'as known now'})`;

  return (
    <section className="card" id="pf-time-travel">
      <h2>Time travel</h2>
      <p className="muted">
        Move through the portfolio's events to see what it held and its P&amp;L at each moment. <strong>Recorded</strong>: what had been recorded by then, later corrections left out (an audit).{' '}
        <strong>Effective</strong>: what we know now about that moment, every correction and void since included.
      </p>
      <div className="row">
        <div className="tabs" role="group" aria-label="Which past">
          {(['RECORDED', 'EFFECTIVE'] as const).map((b) => (
            <button key={b} type="button" aria-pressed={basis === b} onClick={() => setBasis(b)}>
              {b === 'RECORDED' ? 'Recorded' : 'Effective'}
            </button>
          ))}
        </div>
      </div>
      <ErrorNote problem={problem} />
      {!loaded ? (
        <p className="muted">Loading the history…</p>
      ) : ordered.length === 0 ? (
        <p className="muted">No events yet.</p>
      ) : (
        <div className="stack">
          <div className="pf-slider">
            <span className="muted small">{utc(first ? momentOf(first, basis) : undefined)}</span>
            <input
              ref={props.sliderRef}
              type="range"
              aria-label="Time travel"
              min={0}
              max={Math.max(last, 0)}
              step={1}
              value={index}
              aria-valuetext={words}
              onChange={(e) => {
                const i = Number(e.target.value);
                const chosen = ordered[i];
                props.onSelect(i >= last || !chosen ? null : chosen.sequence);
              }}
            />
            <span className="muted small">now</span>
          </div>
          <p>
            Showing <span data-testid="asof-time">{words}</span>
            <span className="muted small">
              {' '}
              — moment {index + 1} of {ordered.length}
            </span>
          </p>
          <ErrorNote problem={problemOf(error)} />
          <div data-testid="asof-holdings" aria-busy={fetching || undefined}>
            {summary && (
              <div className="pf-stats pf-stats-small">
                <div className="stat">
                  <span className="label">Value then</span>
                  <strong data-testid="asof-value">{money(summary.usd.value, summary.usd.currency)}</strong>
                </div>
                <div className="stat">
                  <span className="label">Cost basis</span>
                  <strong>{money(summary.usd.costBasis, summary.usd.currency)}</strong>
                </div>
                <div className="stat">
                  <span className="label">Unrealized P&amp;L</span>
                  <strong className={direction(summary.usd.unrealizedGain)}>{money(summary.usd.unrealizedGain, summary.usd.currency)}</strong>
                </div>
                <div className="stat">
                  <span className="label">Realized P&amp;L</span>
                  <strong data-testid="asof-realized-pnl" className={direction(summary.usd.realizedGain)}>
                    {money(summary.usd.realizedGain, summary.usd.currency)}
                  </strong>
                </div>
                <div className="stat">
                  <span className="label">ROI</span>
                  <strong className={direction(summary.usd.roiPct)}>{percent(summary.usd.roiPct)}</strong>
                </div>
              </div>
            )}
            <HoldingsTable
              holdings={summary?.holdings}
              currency={summary?.usd.currency ?? 'USD'}
              caption={atEnd ? 'Holdings now' : `Holdings as of ${utc(time)}`}
              emptyText="No coins held at this moment."
            />
          </div>
        </div>
      )}
    </section>
  );
}
