// Trades and transfers in the order they were executed, 25 at a time; a trade can be
// corrected in place (quantity, price, fee: correctTrade) or voided with a reason
// (voidTrade). Voided ones stay listed, struck through.
import { useEffect, useRef, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../../gql';
import type { PfTransactionsQuery, TradeSide } from '../../gql/graphql';
import { problemOf, type ApiProblem } from '../../api/errors';
import { money, price, quantity, utc } from '../../format';
import { ErrorNote } from '../ErrorNote';
import { decimalInput, fieldMessage, isFieldProblem, useIntentKeys, useRefetchOnTick, useSync } from './shared';

const PfTransactions = graphql(`
  query PfTransactions($id: ID!, $first: Int!, $after: String) {
    portfolio(id: $id) {
      id
      transactions(first: $first, after: $after) {
        nodes {
          id
          kind
          coin
          quantity
          price
          quote
          fee
          cost
          executedAt
          note
          externalId
          voided
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`);

const PfCorrectTrade = graphql(`
  mutation PfCorrectTrade($id: ID!, $trade: TradeInput!, $key: String) {
    correctTrade(portfolioId: $id, trade: $trade, idempotencyKey: $key) {
      id
      version
      events
    }
  }
`);

const PfVoidTrade = graphql(`
  mutation PfVoidTrade($id: ID!, $tradeId: ID!, $reason: String!, $key: String) {
    voidTrade(portfolioId: $id, tradeId: $tradeId, reason: $reason, idempotencyKey: $key) {
      id
      version
    }
  }
`);

const PAGE = 25;
const COLUMNS = 9;
type Tx = PfTransactionsQuery['portfolio']['transactions']['nodes'][number];

const KIND_WORDS: Record<Tx['kind'], string> = { BUY: 'Buy', SELL: 'Sell', TRANSFER_IN: 'Transfer in', TRANSFER_OUT: 'Transfer out' };

export function Transactions() {
  const [pages, setPages] = useState<(string | null)[]>([null]);
  const [next, setNext] = useState<string | null>(null);
  const [empty, setEmpty] = useState(false);
  return (
    <section className="card">
      <h2>Transactions</h2>
      <div className="pf-scroll">
        <table className="pf-transactions">
          <caption className="sr-only">Trades and transfers, in the order they were executed</caption>
          <thead>
            <tr>
              <th scope="col">Executed (UTC)</th>
              <th scope="col">Kind</th>
              <th scope="col">Coin</th>
              <th scope="col" className="num">Quantity</th>
              <th scope="col" className="num">Price</th>
              <th scope="col" className="num">Fee</th>
              <th scope="col" className="num">Cost</th>
              <th scope="col">Note</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          {pages.map((after, index) => (
            <TxPage
              key={after ?? ''}
              after={after}
              onPage={(rows, cursor) => {
                if (index === 0) setEmpty(rows === 0);
                if (index === pages.length - 1) setNext(cursor);
              }}
            />
          ))}
          {empty && (
            <tbody>
              <tr>
                <td colSpan={COLUMNS} className="muted">
                  No transactions yet: record a trade or import a CSV.
                </td>
              </tr>
            </tbody>
          )}
        </table>
      </div>
      {next && (
        <button type="button" onClick={() => setPages((p) => [...p, next])}>
          Show more transactions
        </button>
      )}
    </section>
  );
}

function TxPage(props: { after: string | null; onPage: (rows: number, next: string | null) => void }) {
  const { id } = useSync();
  const [{ data, error }, refetch] = useQuery({ query: PfTransactions, variables: { id, first: PAGE, after: props.after } });
  useRefetchOnTick(refetch);
  const onPage = useRef(props.onPage);
  onPage.current = props.onPage;
  useEffect(() => {
    if (!data) return;
    const { nodes, pageInfo } = data.portfolio.transactions;
    onPage.current(nodes.length, pageInfo.hasNextPage ? (pageInfo.endCursor ?? null) : null);
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
      {data?.portfolio.transactions.nodes.map((tx) => <TxRow key={tx.id} tx={tx} />)}
    </tbody>
  );
}

type Mode = 'view' | 'correct' | 'void';

function TxRow({ tx }: { tx: Tx }) {
  const [mode, setMode] = useState<Mode>('view');
  const isTrade = tx.kind === 'BUY' || tx.kind === 'SELL';
  const quote = tx.quote ?? undefined;
  if (mode === 'correct' && isTrade) return <CorrectRow tx={tx} onDone={() => setMode('view')} />;
  return (
    <>
      <tr data-tx={tx.id} data-voided={tx.voided || undefined} className={tx.voided ? 'pf-voided' : undefined}>
        <td>{utc(tx.executedAt)}</td>
        <td>
          {KIND_WORDS[tx.kind]}
          {tx.voided && <span className="pf-badge"> voided</span>}
        </td>
        <td>{tx.coin}</td>
        <td className="num">{quantity(tx.quantity)}</td>
        <td className="num">{tx.price ? price(tx.price, quote) : '—'}</td>
        <td className="num">{isTrade ? money(tx.fee, quote) : '—'}</td>
        <td className="num">{tx.cost ? money(tx.cost, quote) : '—'}</td>
        <td className="pf-note">{tx.note ?? ''}</td>
        <td>
          {isTrade && !tx.voided && mode === 'view' && (
            <div className="row pf-actions">
              <button type="button" onClick={() => setMode('correct')}>
                Correct
              </button>
              <button type="button" className="danger" onClick={() => setMode('void')}>
                Void
              </button>
            </div>
          )}
        </td>
      </tr>
      {mode === 'void' && <VoidRow tx={tx} onDone={() => setMode('view')} />}
    </>
  );
}

function CorrectRow({ tx, onDone }: { tx: Tx; onDone: () => void }) {
  const { id, afterWrite } = useSync();
  const [qty, setQty] = useState(tx.quantity);
  const [unitPrice, setUnitPrice] = useState(tx.price ?? '');
  const [fee, setFee] = useState(tx.fee);
  const [local, setLocal] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<ApiProblem>();
  const [{ fetching }, correct] = useMutation(PfCorrectTrade);
  const intents = useIntentKeys();
  const base = `pf-correct-${tx.id}`;

  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    const errors: Record<string, string> = {};
    const q = decimalInput(qty);
    if (!q) errors.quantity = 'A positive number.';
    const p = decimalInput(unitPrice);
    if (!p) errors.price = 'A number.';
    const f = fee.trim() ? decimalInput(fee) : '0';
    if (!f) errors.fee = 'A number, or empty for none.';
    setLocal(errors);
    setProblem(undefined);
    if (!q || !p || !f) return;
    const result = await correct({
      id,
      key: intents.keyFor([tx.id, q, p, f]),
      trade: {
        tradeId: tx.id,
        side: tx.kind as TradeSide,
        coin: tx.coin,
        quantity: q,
        price: p,
        quote: tx.quote ?? undefined,
        fee: f,
        executedAt: tx.executedAt,
        note: tx.note ?? undefined,
        externalId: tx.externalId ?? undefined,
      },
    });
    const receipt = result.data?.correctTrade;
    if (!receipt) {
      setProblem(problemOf(result.error));
      return;
    }
    afterWrite(receipt.version);
    onDone();
  };

  const input = (field: 'quantity' | 'price' | 'fee', label: string, value: string, set: (v: string) => void) => {
    const error = fieldMessage(local, problem, field);
    return (
      <div className="pf-field">
        <label htmlFor={`${base}-${field}`}>{label}</label>
        <input
          id={`${base}-${field}`}
          value={value}
          onChange={(e) => set(e.target.value)}
          inputMode="decimal"
          autoComplete="off"
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${base}-${field}-error` : undefined}
        />
        {error && (
          <span id={`${base}-${field}-error`} className="field-error">
            {error}
          </span>
        )}
      </div>
    );
  };

  return (
    <tr data-tx={tx.id} className="pf-editing">
      <td colSpan={COLUMNS}>
        <form className="pf-inline" onSubmit={(e) => void save(e)} noValidate aria-label={`Correct the ${KIND_WORDS[tx.kind].toLowerCase()} of ${tx.coin} on ${utc(tx.executedAt)}`}>
          <span>
            {KIND_WORDS[tx.kind]} {tx.coin}, {utc(tx.executedAt)}
          </span>
          {input('quantity', 'Corrected quantity', qty, setQty)}
          {input('price', `Corrected price (${tx.quote ?? ''})`, unitPrice, setUnitPrice)}
          {input('fee', 'Corrected fee', fee, setFee)}
          <button type="submit" className="primary" disabled={fetching}>
            Save correction
          </button>
          <button type="button" onClick={onDone}>
            Cancel
          </button>
        </form>
        {!isFieldProblem(problem, ['quantity', 'price', 'fee']) && <ErrorNote problem={problem} />}
      </td>
    </tr>
  );
}

function VoidRow({ tx, onDone }: { tx: Tx; onDone: () => void }) {
  const { id, afterWrite } = useSync();
  const [reason, setReason] = useState('');
  const [local, setLocal] = useState<string>();
  const [problem, setProblem] = useState<ApiProblem>();
  const [{ fetching }, voidTrade] = useMutation(PfVoidTrade);
  const intents = useIntentKeys();
  const inputId = `pf-void-${tx.id}`;

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setProblem(undefined);
    if (!reason.trim()) {
      setLocal('Say why it is voided (it stays in the audit trail).');
      return;
    }
    setLocal(undefined);
    const result = await voidTrade({ id, tradeId: tx.id, reason: reason.trim(), key: intents.keyFor([tx.id, reason.trim()]) });
    const receipt = result.data?.voidTrade;
    if (!receipt) {
      setProblem(problemOf(result.error));
      return;
    }
    afterWrite(receipt.version);
    onDone();
  };

  const error = local ?? fieldMessage({}, problem, 'reason');
  return (
    <tr className="pf-editing">
      <td colSpan={COLUMNS}>
        <form className="pf-inline" onSubmit={(e) => void submit(e)} noValidate>
          <div className="pf-field pf-grow">
            <label htmlFor={inputId}>
              Reason for voiding the {KIND_WORDS[tx.kind].toLowerCase()} of {tx.quantity} {tx.coin}
            </label>
            <input
              id={inputId}
              value={reason}
              maxLength={500}
              onChange={(e) => setReason(e.target.value)}
              autoFocus
              aria-invalid={error ? true : undefined}
              aria-describedby={error ? `${inputId}-error` : undefined}
            />
            {error && (
              <span id={`${inputId}-error`} className="field-error">
                {error}
              </span>
            )}
          </div>
          <button type="submit" className="danger" disabled={fetching}>
            Void trade
          </button>
          <button type="button" onClick={onDone}>
            Cancel
          </button>
        </form>
        {!isFieldProblem(problem, ['reason']) && <ErrorNote problem={problem} />}
      </td>
    </tr>
  );
}
