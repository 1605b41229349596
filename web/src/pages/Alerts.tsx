// The caller's alerts: create one of every kind the API has, see each one's state,
// disable, re-arm or delete it; a firing shows here at once (and as a toast anywhere).
import { useEffect, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../gql';
import type { AlertConditionInput } from '../gql/graphql';
import { describe, formSubmit, isAbout, problemOf, type ApiProblem } from '../api/errors';
import { describeCondition, describeObservation, firedSoFar, useFired } from '../api/alerts';
import { ErrorNote } from '../components/ErrorNote';
import { useIntentKeys } from '../api/intents';
import { utc } from '../format';

const AlertList = graphql(`
  query AlertList($after: String) {
    alerts(first: 50, after: $after) {
      nodes {
        id
        coin
        condition
        repeat
        cooldownSeconds
        status
        timesTriggered
        lastTriggeredAt
        lastObservation
        createdAt
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const CreateAlert = graphql(`
  mutation CreateAlert($input: CreateAlertInput!, $key: String) {
    createAlert(input: $input, idempotencyKey: $key) {
      id
      version
    }
  }
`);
const Disable = graphql(`
  mutation DisableAlert($id: ID!) {
    disableAlert(id: $id) {
      id
      version
    }
  }
`);
const Rearm = graphql(`
  mutation RearmAlert($id: ID!) {
    rearmAlert(id: $id) {
      id
      version
    }
  }
`);
const Delete = graphql(`
  mutation DeleteAlert($id: ID!) {
    deleteAlert(id: $id) {
      id
      version
    }
  }
`);

const KINDS = {
  priceAbove: 'Price at or above (USD)',
  priceBelow: 'Price at or below (USD)',
  change24H: '24 h change reaches (%)',
  moveWithin: 'Moves by % within minutes',
  volumeSpike: 'Volume spike (× usual) within minutes',
  crossesAverage: 'Price crosses its moving average',
  sentimentBelow: 'Sentiment at or below (−1 to 1)',
  sentimentAbove: 'Sentiment at or above (−1 to 1)',
} as const;
type Kind = keyof typeof KINDS;

/** The form's values as the API's one-of condition. */
export function conditionOf(kind: Kind, form: FormData): AlertConditionInput {
  const value = String(form.get('value') ?? '').trim();
  const minutes = Number(form.get('windowMinutes') ?? 0);
  switch (kind) {
    case 'moveWithin':
      return { moveWithin: { percent: value, windowMinutes: minutes } };
    case 'volumeSpike':
      return { volumeSpike: { factor: value, windowMinutes: minutes } };
    case 'crossesAverage':
      return {
        crossesAverage: {
          average: form.get('average') === 'EMA' ? 'EMA' : 'SMA',
          period: Number(form.get('period') ?? 20),
          direction: form.get('direction') === 'BELOW' ? 'BELOW' : 'ABOVE',
        },
      };
    case 'priceAbove':
      return { priceAbove: value };
    case 'priceBelow':
      return { priceBelow: value };
    case 'change24H':
      return { change24H: value };
    case 'sentimentBelow':
      return { sentimentBelow: value };
    case 'sentimentAbove':
      return { sentimentAbove: value };
  }
}

export default function Alerts() {
  // "Show more" adds the next page below the rows already shown.
  const [after, setAfter] = useState<string | null>(null);
  const [earlier, setEarlier] = useState<AlertRow[]>([]);
  const [{ data, error }, refetch] = useQuery({ query: AlertList, variables: { after } });
  const fired = useFired();
  // A firing changes an alert's state: read the list again.
  const count = fired.length ? firedSoFar() : 0;
  useEffect(() => {
    if (count) refetch({ requestPolicy: 'network-only' });
  }, [count, refetch]);
  // The read model follows the command a moment later: read again a few times.
  // After a change, from the first page again: the rows shown before may have changed.
  const reload = () => {
    setEarlier([]);
    setAfter(null);
    for (const ms of [300, 1_000, 3_000]) setTimeout(() => refetch({ requestPolicy: 'network-only' }), ms);
  };
  const page = data?.alerts;
  const rows = [...earlier, ...(page?.nodes ?? [])];
  return (
    <div className="stack">
      <NewAlert onCreated={reload} />
      {fired.length > 0 && (
        <section className="card">
          <h2>Fired while you were here</h2>
          <ul data-testid="fired-alerts">
            {fired.map((f) => (
              <li key={`${f.alertId}-${f.receivedAt}`}>
                <strong>{f.coin}</strong> {describeObservation(f.observation)}
              </li>
            ))}
          </ul>
        </section>
      )}
      <section className="card">
        <h1>Your alerts</h1>
        {error && <ErrorNote problem={problemOf(error)} />}
        <AlertTable alerts={rows} onChange={reload} />
        {page?.pageInfo.hasNextPage && page.pageInfo.endCursor && (
          <button
            type="button"
            onClick={() => {
              setEarlier(rows);
              setAfter(page.pageInfo.endCursor ?? null);
            }}
          >
            Show more alerts
          </button>
        )}
      </section>
    </div>
  );
}

function NewAlert({ onCreated }: { onCreated: () => void }) {
  const [kind, setKind] = useState<Kind>('priceAbove');
  const [{ fetching }, create] = useMutation(CreateAlert);
  const intents = useIntentKeys();
  const [problem, setProblem] = useState<ApiProblem>();
  const [created, setCreated] = useState(false);
  const submit = async (form: FormData) => {
    const recurring = form.get('repeat') === 'RECURRING';
    const result = await create({
      input: {
        coin: String(form.get('coin')).trim().toUpperCase(),
        condition: conditionOf(kind, form),
        repeat: recurring ? 'RECURRING' : 'ONE_SHOT',
        cooldownSeconds: Number(form.get('cooldownMinutes') ?? 60) * 60,
      },
      key: intents.keyFor([kind, Object.fromEntries(form)]),
    });
    setProblem(problemOf(result.error));
    setCreated(!result.error);
    if (!result.error) {
      intents.done([kind, Object.fromEntries(form)]);
      onCreated();
    }
  };
  const invalid = (field: string) => isAbout(problem, field);
  const windowed = kind === 'moveWithin' || kind === 'volumeSpike';
  return (
    <section className="card">
      <h1>New alert</h1>
      <form className="grid" onSubmit={formSubmit(submit)}>
        <label htmlFor="alert-coin">
          Coin
          <input id="alert-coin" name="coin" required defaultValue="BTC" aria-invalid={invalid('coin')} />
        </label>
        <label htmlFor="alert-kind">
          Condition
          <select id="alert-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            {Object.entries(KINDS).map(([value, text]) => (
              <option key={value} value={value}>
                {text}
              </option>
            ))}
          </select>
        </label>
        {kind !== 'crossesAverage' && (
          <label htmlFor="alert-value">
            {kind === 'volumeSpike' ? 'Factor' : kind.startsWith('sentiment') ? 'Score' : kind.startsWith('price') ? 'Price (USD)' : 'Percent'}
            <input id="alert-value" name="value" required inputMode="decimal" aria-invalid={invalid('condition')} />
          </label>
        )}
        {windowed && (
          <label htmlFor="alert-window">
            Window (minutes)
            <input id="alert-window" name="windowMinutes" type="number" min={1} defaultValue={60} required aria-invalid={invalid('condition')} />
          </label>
        )}
        {kind === 'crossesAverage' && (
          <>
            <label htmlFor="alert-average">
              Average
              <select id="alert-average" name="average">
                <option>SMA</option>
                <option>EMA</option>
              </select>
            </label>
            <label htmlFor="alert-period">
              Period (1-minute candles)
              <input id="alert-period" name="period" type="number" min={2} defaultValue={20} required aria-invalid={invalid('condition')} />
            </label>
            <label htmlFor="alert-direction">
              Crossing
              <select id="alert-direction" name="direction">
                <option value="ABOVE">From below to above</option>
                <option value="BELOW">From above to below</option>
              </select>
            </label>
          </>
        )}
        <label htmlFor="alert-repeat">
          Repeat
          <select id="alert-repeat" name="repeat">
            <option value="ONE_SHOT">Once, then wait to be re-armed</option>
            <option value="RECURRING">Again after a cooldown</option>
          </select>
        </label>
        <label htmlFor="alert-cooldown">
          Cooldown (minutes)
          <input id="alert-cooldown" name="cooldownMinutes" type="number" min={0} defaultValue={60} aria-invalid={invalid('cooldownSeconds')} />
        </label>
        <button type="submit" className="primary" disabled={fetching}>
          Create alert
        </button>
      </form>
      {problem && (
        <p className="error" role="alert">
          {describe(problem)}
        </p>
      )}
      {created && !problem && (
        <p className="ok" role="status">
          Alert created: it is armed.
        </p>
      )}
    </section>
  );
}

interface AlertRow {
  id: string;
  coin: string;
  condition: unknown;
  repeat: string;
  cooldownSeconds: number;
  status: string;
  timesTriggered: number;
  lastTriggeredAt?: string | null;
  lastObservation?: unknown;
}

function AlertTable({ alerts, onChange }: { alerts: AlertRow[]; onChange: () => void }) {
  const [, disable] = useMutation(Disable);
  const [, rearm] = useMutation(Rearm);
  const [, remove] = useMutation(Delete);
  const [problem, setProblem] = useState<ApiProblem>();
  const act = async (run: Promise<{ error?: Parameters<typeof problemOf>[0] }>) => {
    const result = await run;
    setProblem(problemOf(result.error));
    if (!result.error) onChange();
  };
  if (alerts.length === 0) return <p className="muted">No alerts yet: create one above.</p>;
  return (
    <>
      <ErrorNote problem={problem} />
      <table data-testid="alert-list">
        <thead>
          <tr>
            <th scope="col">Coin</th>
            <th scope="col">When</th>
            <th scope="col">Repeat</th>
            <th scope="col">State</th>
            <th scope="col" className="num">Fired</th>
            <th scope="col">Last fired</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {alerts.map((alert) => (
            <tr key={alert.id} data-alert={alert.id} data-status={alert.status}>
              <td>
                <strong>{alert.coin}</strong>
              </td>
              <td>{describeCondition(alert.condition)}</td>
              <td>{alert.repeat === 'RECURRING' ? `every ${Math.round(alert.cooldownSeconds / 60)} min at most` : 'once'}</td>
              <td>{alert.status.toLowerCase()}</td>
              <td className="num">{alert.timesTriggered}</td>
              <td title={describeObservation(alert.lastObservation)}>{alert.lastTriggeredAt ? utc(alert.lastTriggeredAt) : '—'}</td>
              <td className="row">
                {alert.status === 'ARMED' ? (
                  <button type="button" onClick={() => void act(disable({ id: alert.id }))}>
                    Disable
                  </button>
                ) : (
                  <button type="button" onClick={() => void act(rearm({ id: alert.id }))}>
                    Re-arm
                  </button>
                )}
                <button type="button" className="danger" onClick={() => void act(remove({ id: alert.id }))}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
