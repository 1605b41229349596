// The audit trail (portfolioHistory), oldest first, 20 at a time: who sent each event,
// when it was recorded and when what it records happened, and its correlation id;
// "Show state after" moves the time-travel slider to it.
import { useEffect, useRef, useState } from 'react';
import { useQuery } from 'urql';
import { graphql } from '../../gql';
import { problemOf } from '../../api/errors';
import { utc } from '../../format';
import { ErrorNote } from '../ErrorNote';
import { useRefetchOnTick, useSync } from './shared';

const PfHistory = graphql(`
  query PfHistory($id: ID!, $first: Int!, $after: String) {
    portfolioHistory(id: $id, first: $first, after: $after) {
      nodes {
        sequence
        eventType
        eventVersion
        actor
        correlationId
        causationId
        recordedAt
        effectiveAt
        payload
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const PAGE = 20;
const COLUMNS = 7;

/** An event type in words: TradeRecorded → Trade recorded. */
function eventWords(type: string): string {
  const spaced = type.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

export function AuditTrail(props: { onShowAfter: (sequence: number) => void; selected: number | null }) {
  const [pages, setPages] = useState<(string | null)[]>([null]);
  const [next, setNext] = useState<string | null>(null);
  return (
    <section className="card">
      <h2>Audit trail</h2>
      <p className="muted">Every event of the portfolio as stored, oldest first, with who sent it and the correlation id of the request it came from.</p>
      <div className="pf-scroll">
        <table className="pf-audit">
          <caption className="sr-only">The portfolio's events</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Event</th>
              <th scope="col">Who</th>
              <th scope="col">Recorded at (UTC)</th>
              <th scope="col">Effective at (UTC)</th>
              <th scope="col">Correlation id</th>
              <th scope="col">
                <span className="sr-only">Action</span>
              </th>
            </tr>
          </thead>
          {pages.map((after, index) => (
            <HistoryPage
              key={after ?? ''}
              after={after}
              selected={props.selected}
              onShowAfter={props.onShowAfter}
              onPage={(cursor) => {
                if (index === pages.length - 1) setNext(cursor);
              }}
            />
          ))}
        </table>
      </div>
      {next && (
        <button type="button" onClick={() => setPages((p) => [...p, next])}>
          Show more events
        </button>
      )}
    </section>
  );
}

function HistoryPage(props: { after: string | null; selected: number | null; onShowAfter: (sequence: number) => void; onPage: (next: string | null) => void }) {
  const { id } = useSync();
  const [{ data, error }, refetch] = useQuery({ query: PfHistory, variables: { id, first: PAGE, after: props.after } });
  useRefetchOnTick(refetch);
  const onPage = useRef(props.onPage);
  onPage.current = props.onPage;
  useEffect(() => {
    if (!data) return;
    const info = data.portfolioHistory.pageInfo;
    onPage.current(info.hasNextPage ? (info.endCursor ?? null) : null);
  }, [data]);
  return (
    <tbody>
      {error && (
        <tr>
          <td colSpan={COLUMNS}>
            <ErrorNote problem={problemOf(error)} />
          </td>
        </tr>
      )}
      {data?.portfolioHistory.nodes.map((entry) => (
        <tr key={entry.sequence} data-sequence={entry.sequence} className={props.selected === entry.sequence ? 'pf-selected' : undefined}>
          <td className="num">{entry.sequence}</td>
          <td>
            <details>
              <summary>
                {eventWords(entry.eventType)} <span className="muted small">({entry.eventType} v{entry.eventVersion})</span>
              </summary>
              <pre className="pf-payload">{JSON.stringify(entry.payload, null, 2)}</pre>
            </details>
          </td>
          <td>
            <code>{entry.actor ?? '—'}</code>
          </td>
          <td>{utc(entry.recordedAt)}</td>
          <td>{entry.effectiveAt ? utc(entry.effectiveAt) : <span className="muted">—</span>}</td>
          <td>
            <code className="pf-id" title={entry.causationId ? `caused by ${entry.causationId}` : undefined}>
              {entry.correlationId ?? '—'}
            </code>
          </td>
          <td>
            <button type="button" onClick={() => props.onShowAfter(entry.sequence)}>
              Show state after
            </button>
          </td>
        </tr>
      ))}
    </tbody>
  );
}
