// Record a trade (recordTrade), and move coins in or out (transferIn, transferOut).
// A VALIDATION answer is shown under the field it names; anything else via ErrorNote.
import { useState } from 'react';
import { useMutation } from 'urql';
import { graphql } from '../../gql';
import type { TradeSide } from '../../gql/graphql';
import { problemOf, type ApiProblem } from '../../api/errors';
import { ErrorNote } from '../ErrorNote';
import { Field, decimalInput, fieldMessage, inputToRfc3339, isFieldProblem, nowForInput, useSync, useIntentKeys } from './shared';

const PfRecordTrade = graphql(`
  mutation PfRecordTrade($id: ID!, $trade: TradeInput!, $key: String) {
    recordTrade(portfolioId: $id, trade: $trade, idempotencyKey: $key) {
      id
      version
      events
      entryId
    }
  }
`);

const PfTransferIn = graphql(`
  mutation PfTransferIn($id: ID!, $transfer: TransferInInput!, $key: String) {
    transferIn(portfolioId: $id, transfer: $transfer, idempotencyKey: $key) {
      id
      version
      entryId
    }
  }
`);

const PfTransferOut = graphql(`
  mutation PfTransferOut($id: ID!, $transfer: TransferOutInput!, $key: String) {
    transferOut(portfolioId: $id, transfer: $transfer, idempotencyKey: $key) {
      id
      version
      entryId
    }
  }
`);

const TRADE_FIELDS = ['coin', 'quantity', 'price', 'quote', 'fee', 'executedAt', 'side'];

export function TradeForm() {
  const { id, currency, afterWrite } = useSync();
  const [side, setSide] = useState<TradeSide>('BUY');
  const [coin, setCoin] = useState('');
  const [qty, setQty] = useState('');
  const [unitPrice, setUnitPrice] = useState('');
  const [quote, setQuote] = useState(currency);
  const [fee, setFee] = useState('');
  const [executedAt, setExecutedAt] = useState(nowForInput);
  const [local, setLocal] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<ApiProblem>();
  const [done, setDone] = useState<string>();
  const [{ fetching }, record] = useMutation(PfRecordTrade);
  const intents = useIntentKeys();

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setDone(undefined);
    setProblem(undefined);
    const errors: Record<string, string> = {};
    const symbol = coin.trim().toUpperCase();
    if (!symbol) errors.coin = 'Name the coin, e.g. BTC.';
    const quantity = decimalInput(qty);
    if (!quantity) errors.quantity = 'A positive number, e.g. 0.5.';
    const p = decimalInput(unitPrice);
    if (!p) errors.price = 'A number, e.g. 64000.';
    const f = fee.trim() ? decimalInput(fee) : '0';
    if (!f) errors.fee = 'A number, or leave it empty for none.';
    const at = inputToRfc3339(executedAt);
    if (!at) errors.executedAt = 'A date and time, or leave it empty for now.';
    setLocal(errors);
    if (Object.keys(errors).length > 0 || !quantity || !p || !f || !at) return;
    const command = { id, trade: { side, coin: symbol, quantity, price: p, quote: quote.trim().toUpperCase() || undefined, fee: f, executedAt: at } };
    const result = await record({ ...command, key: intents.keyFor(command) });
    const receipt = result.data?.recordTrade;
    if (!receipt) {
      setProblem(problemOf(result.error));
      return;
    }
    intents.done(command);
    setDone(`Recorded: ${side === 'BUY' ? 'bought' : 'sold'} ${quantity} ${symbol} at ${p} ${quote.trim().toUpperCase() || currency}.`);
    setQty('');
    setUnitPrice('');
    setFee('');
    setExecutedAt(nowForInput());
    afterWrite(receipt.version);
  };

  const message = (field: string) => fieldMessage(local, problem, field);
  return (
    <div className="stack">
      <form className="grid" onSubmit={(e) => void submit(e)} noValidate aria-label="Record a trade">
        <Field id="pf-trade-side" label="Side" error={message('side')}>
          {(a11y) => (
            <select {...a11y} value={side} onChange={(e) => setSide(e.target.value as TradeSide)}>
              <option value="BUY">Buy</option>
              <option value="SELL">Sell</option>
            </select>
          )}
        </Field>
        <Field id="pf-trade-coin" label="Coin" error={message('coin')}>
          {(a11y) => <input {...a11y} value={coin} onChange={(e) => setCoin(e.target.value)} placeholder="BTC" autoComplete="off" autoCapitalize="characters" />}
        </Field>
        <Field id="pf-trade-quantity" label="Quantity" error={message('quantity')}>
          {(a11y) => <input {...a11y} value={qty} onChange={(e) => setQty(e.target.value)} inputMode="decimal" placeholder="0.5" autoComplete="off" />}
        </Field>
        <Field id="pf-trade-price" label="Price" error={message('price')}>
          {(a11y) => <input {...a11y} value={unitPrice} onChange={(e) => setUnitPrice(e.target.value)} inputMode="decimal" placeholder="64000" autoComplete="off" />}
        </Field>
        <Field id="pf-trade-quote" label="Quote" error={message('quote')}>
          {(a11y) => <input {...a11y} value={quote} onChange={(e) => setQuote(e.target.value)} autoComplete="off" />}
        </Field>
        <Field id="pf-trade-fee" label="Fee" hint="Optional, in the quote currency" error={message('fee')}>
          {(a11y) => <input {...a11y} value={fee} onChange={(e) => setFee(e.target.value)} inputMode="decimal" placeholder="0" autoComplete="off" />}
        </Field>
        <Field id="pf-trade-at" label="Executed at (UTC)" hint="Optional: empty is now" error={message('executedAt')}>
          {(a11y) => <input {...a11y} type="datetime-local" step={1} value={executedAt} onChange={(e) => setExecutedAt(e.target.value)} />}
        </Field>
        <div>
          <button type="submit" className="primary" disabled={fetching}>
            Record trade
          </button>
        </div>
      </form>
      {!isFieldProblem(problem, TRADE_FIELDS) && <ErrorNote problem={problem} />}
      {done && (
        <p className="ok" role="status">
          {done}
        </p>
      )}
    </div>
  );
}

const TRANSFER_FIELDS = ['coin', 'quantity', 'costBasis', 'executedAt'];

/** Coins arriving from, or leaving for, another wallet or exchange. */
export function TransferForm() {
  const { id, currency, afterWrite } = useSync();
  const [coin, setCoin] = useState('');
  const [qty, setQty] = useState('');
  const [cost, setCost] = useState('');
  const [executedAt, setExecutedAt] = useState(nowForInput);
  const [local, setLocal] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<ApiProblem>();
  const [done, setDone] = useState<string>();
  const [inState, transferIn] = useMutation(PfTransferIn);
  const [outState, transferOut] = useMutation(PfTransferOut);
  const intents = useIntentKeys();

  const send = async (direction: 'in' | 'out') => {
    setDone(undefined);
    setProblem(undefined);
    const errors: Record<string, string> = {};
    const symbol = coin.trim().toUpperCase();
    if (!symbol) errors.coin = 'Name the coin, e.g. BTC.';
    const quantity = decimalInput(qty);
    if (!quantity) errors.quantity = 'A positive number, e.g. 0.5.';
    const basis = direction === 'in' ? decimalInput(cost) : '0';
    if (!basis) errors.costBasis = `What the coins cost, in ${currency}.`;
    const at = inputToRfc3339(executedAt);
    if (!at) errors.executedAt = 'A date and time, or leave it empty for now.';
    setLocal(errors);
    if (Object.keys(errors).length > 0 || !quantity || !basis || !at) return;
    const inCommand = { id, transfer: { coin: symbol, quantity, costBasis: basis, executedAt: at } };
    const outCommand = { id, transfer: { coin: symbol, quantity, executedAt: at } };
    const result =
      direction === 'in'
        ? await transferIn({ ...inCommand, key: intents.keyFor(['in', inCommand]) })
        : await transferOut({ ...outCommand, key: intents.keyFor(['out', outCommand]) });
    const receipt = result.data && ('transferIn' in result.data ? result.data.transferIn : result.data.transferOut);
    if (!receipt) {
      setProblem(problemOf(result.error));
      return;
    }
    intents.done(direction === 'in' ? ['in', inCommand] : ['out', outCommand]);
    setDone(direction === 'in' ? `Transferred in ${quantity} ${symbol}.` : `Transferred out ${quantity} ${symbol}.`);
    setQty('');
    setCost('');
    setExecutedAt(nowForInput());
    afterWrite(receipt.version);
  };

  const message = (field: string) => fieldMessage(local, problem, field);
  return (
    <div className="stack">
      <h3>Transfers</h3>
      <p className="muted small">Coins arriving from another wallet or exchange at what they cost there, or leaving for one: nothing is realized.</p>
      <form
        className="grid"
        noValidate
        aria-label="Transfers in and out"
        onSubmit={(e) => {
          e.preventDefault();
          void send('in');
        }}
      >
        <Field id="pf-transfer-coin" label="Asset" error={message('coin')}>
          {(a11y) => <input {...a11y} value={coin} onChange={(e) => setCoin(e.target.value)} placeholder="ETH" autoComplete="off" />}
        </Field>
        <Field id="pf-transfer-quantity" label="Units" error={message('quantity')}>
          {(a11y) => <input {...a11y} value={qty} onChange={(e) => setQty(e.target.value)} inputMode="decimal" placeholder="2" autoComplete="off" />}
        </Field>
        <Field id="pf-transfer-cost" label={`Acquisition cost (${currency})`} hint="Transfers in only" error={message('costBasis')}>
          {(a11y) => <input {...a11y} value={cost} onChange={(e) => setCost(e.target.value)} inputMode="decimal" placeholder="3000" autoComplete="off" />}
        </Field>
        <Field id="pf-transfer-at" label="When (UTC)" hint="Optional: empty is now" error={message('executedAt')}>
          {(a11y) => <input {...a11y} type="datetime-local" step={1} value={executedAt} onChange={(e) => setExecutedAt(e.target.value)} />}
        </Field>
        <div className="row">
          <button type="submit" disabled={inState.fetching || outState.fetching}>
            Transfer in
          </button>
          <button type="button" disabled={inState.fetching || outState.fetching} onClick={() => void send('out')}>
            Transfer out
          </button>
        </div>
      </form>
      {!isFieldProblem(problem, TRANSFER_FIELDS) && <ErrorNote problem={problem} />}
      {done && (
        <p className="ok" role="status">
          {done}
        </p>
      )}
    </div>
  );
}
