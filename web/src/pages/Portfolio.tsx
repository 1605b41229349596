// One portfolio: its live summary and holdings, value over time, trades and transfers
// (recording, correcting, voiding, importing), the cost-basis method, time travel
// through its events, and its audit trail.
//
// The read models follow the write side a moment later: after a write, the page waits
// until the portfolio's version reaches the receipt's, then every section refetches
// (network-only); the summary also comes live from the `portfolio(id)` subscription.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { useClient, useQuery, useSubscription } from 'urql';
import { graphql } from '../gql';
import { problemOf } from '../api/errors';
import { utc } from '../format';
import { ErrorNote } from '../components/ErrorNote';
import { SyncContext, PfVersion, METHOD_WORDS, type PortfolioSync, type Summary } from '../components/portfolio/shared';
import { SummaryCard } from '../components/portfolio/SummaryCard';
import { HoldingsTable } from '../components/portfolio/HoldingsTable';
import { ValueChart } from '../components/portfolio/ValueChart';
import { TradeForm, TransferForm } from '../components/portfolio/TradeForm';
import { Transactions } from '../components/portfolio/Transactions';
import { CostBasisSwitch } from '../components/portfolio/CostBasisSwitch';
import { CsvImport } from '../components/portfolio/CsvImport';
import { TimeTravel } from '../components/portfolio/TimeTravel';
import { AuditTrail } from '../components/portfolio/AuditTrail';
import { RenameForm } from '../components/portfolio/RenameForm';
import './portfolio.css';

const PfPage = graphql(`
  query PfPage($id: ID!) {
    portfolio(id: $id) {
      id
      name
      description
      costBasisMethod
      currency
      createdAt
      archived
      version
      summary {
        ...PfSummaryFields
      }
    }
  }
`);

const PfLive = graphql(`
  subscription PfLive($id: ID!) {
    portfolio(id: $id) {
      ...PfSummaryFields
    }
  }
`);

/** How long to wait for a just-created portfolio to reach the read model. */
const NOT_FOUND_RETRIES = 16;

export default function PortfolioPage() {
  const { id = '' } = useParams();
  // A fresh page per portfolio: nothing of one is left in the next.
  return <PortfolioView key={id} id={id} />;
}

function PortfolioView({ id }: { id: string }) {
  const client = useClient();
  const [{ data, error, fetching }, refetch] = useQuery({ query: PfPage, variables: { id } });
  const portfolio = data?.portfolio;

  // A portfolio created a moment ago may not be in the read model yet: ask again.
  const [retries, setRetries] = useState(0);
  const problem = problemOf(error);
  const waiting = !portfolio && problem?.code === 'NOT_FOUND' && retries < NOT_FOUND_RETRIES;
  useEffect(() => {
    if (!waiting || fetching) return;
    const timer = setTimeout(() => {
      setRetries((n) => n + 1);
      refetch({ requestPolicy: 'network-only' });
    }, 250);
    return () => clearTimeout(timer);
  }, [waiting, fetching, retries, refetch]);

  // After a write: wait until the read model has it, then let every section refetch.
  const [tick, setTick] = useState(0);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const afterWrite = useCallback(
    (version: number) => {
      void (async () => {
        for (let attempt = 0; attempt < 40 && mounted.current; attempt += 1) {
          await new Promise((resolve) => setTimeout(resolve, attempt === 0 ? 100 : 250));
          const result = await client.query(PfVersion, { id }, { requestPolicy: 'network-only' }).toPromise();
          if ((result.data?.portfolio.version ?? 0) >= version) break;
        }
        if (mounted.current) setTick((t) => t + 1);
      })();
    },
    [client, id],
  );
  useEffect(() => {
    if (tick > 0) refetch({ requestPolicy: 'network-only' });
  }, [tick, refetch]);

  // The summary: the query's, then each live one (whichever came last).
  const [live] = useSubscription({ query: PfLive, variables: { id }, pause: !portfolio });
  const [summary, setSummary] = useState<Summary>();
  useEffect(() => {
    if (portfolio?.summary) setSummary(portfolio.summary);
  }, [portfolio?.summary]);
  useEffect(() => {
    if (live.data?.portfolio) setSummary(live.data.portfolio);
  }, [live.data]);

  const [selected, setSelected] = useState<number | null>(null);
  const slider = useRef<HTMLInputElement>(null);
  const showAfter = useCallback((sequence: number) => {
    setSelected(sequence);
    document.getElementById('pf-time-travel')?.scrollIntoView?.({ block: 'start', behavior: 'smooth' });
    slider.current?.focus({ preventScroll: true });
  }, []);

  const currency = portfolio?.currency ?? 'USD';
  const sync = useMemo<PortfolioSync>(() => ({ id, currency, tick, afterWrite }), [id, currency, tick, afterWrite]);

  if (!portfolio) {
    if (waiting || !error) return <p className="muted">Loading the portfolio…</p>;
    return (
      <section className="card">
        <h1>Portfolio</h1>
        <ErrorNote problem={problem} />
        <p>
          <Link to="/portfolios">Back to your portfolios</Link>
        </p>
      </section>
    );
  }

  return (
    <SyncContext.Provider value={sync}>
      <div className="stack pf-page">
        <header className="card">
          <p className="muted small">
            <Link to="/portfolios">Portfolios</Link> /
          </p>
          <h1>{portfolio.name}</h1>
          {portfolio.description && <p>{portfolio.description}</p>}
          <p className="muted">
            Base currency {portfolio.currency} · cost basis {METHOD_WORDS[portfolio.costBasisMethod]} · created {utc(portfolio.createdAt)} · {portfolio.version} events
            {portfolio.archived ? ' · archived: it takes no more entries' : ''}
          </p>
          <RenameForm key={portfolio.name} name={portfolio.name} />
        </header>

        <SummaryCard summary={summary} live={Boolean(live.data)} />

        <section className="card">
          <h2>Holdings</h2>
          <HoldingsTable
            holdings={summary?.holdings}
            currency={summary?.usd.currency ?? 'USD'}
            caption="Holdings now"
            emptyText="No coins held yet: record a trade, transfer coins in, or import a CSV below."
          />
        </section>

        <ValueChart />

        <section className="card">
          <h2>Record a trade</h2>
          <TradeForm />
          <TransferForm />
        </section>

        <Transactions />

        <CostBasisSwitch current={portfolio.costBasisMethod} />

        <CsvImport />

        <TimeTravel selected={selected} onSelect={setSelected} sliderRef={slider} />

        <AuditTrail selected={selected} onShowAfter={showAfter} />
      </div>
    </SyncContext.Provider>
  );
}
