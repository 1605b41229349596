// What the portfolio page's sections share: the summary fragment, the "a write
// happened" signal (the read models follow the write side a moment later), small form
// helpers, and time conversions for datetime-local inputs (always UTC).
import { createContext, useContext, useEffect, useRef } from 'react';
import { graphql } from '../../gql';
import type { PfSummaryFieldsFragment } from '../../gql/graphql';
import { isAbout, type ApiProblem } from '../../api/errors';

export const PfSummaryFields = graphql(`
  fragment PfSummaryFields on PortfolioSummary {
    holdings {
      coin
      quantity
      costBasis
      realizedGain
      price
      value
      unrealizedGain
      unrealizedPct
    }
    usd {
      currency
      value
      costBasis
      realizedGain
      unrealizedGain
      roiPct
    }
    base {
      currency
      value
      costBasis
      realizedGain
      unrealizedGain
      roiPct
    }
    best
    worst
    unpriced
  }
`);

export type Summary = PfSummaryFieldsFragment;
export type HoldingRow = Summary['holdings'][number];

export const PfVersion = graphql(`
  query PfVersion($id: ID!) {
    portfolio(id: $id) {
      id
      version
    }
  }
`);

export interface PortfolioSync {
  id: string;
  /** The portfolio's base currency. */
  currency: string;
  /** Counts the writes whose effect the read models now show: refetch on change. */
  tick: number;
  /** After a write answered with `version`: waits for the read model, then ticks. */
  afterWrite: (version: number) => void;
}

export const SyncContext = createContext<PortfolioSync | null>(null);

export function useSync(): PortfolioSync {
  const sync = useContext(SyncContext);
  if (!sync) throw new Error('useSync outside the portfolio page');
  return sync;
}

/** Runs `refetch` (network-only) each time the page's tick moves on. */
export function useRefetchOnTick(refetch: (opts: { requestPolicy: 'network-only' }) => void) {
  const { tick } = useSync();
  const latest = useRef(refetch);
  latest.current = refetch;
  const first = useRef(tick);
  useEffect(() => {
    if (tick !== first.current) latest.current({ requestPolicy: 'network-only' });
  }, [tick]);
}

/** A fresh idempotency key for one submission. */
export { newKey, useIntentKeys } from '../../api/intents';

const DECIMAL = /^\d+(\.\d+)?$/;
/** Thousands grouped by commas, a point for the decimals: 68,000.50. */
const GROUPED = /^\d{1,3}(,\d{3})+(\.\d+)?$/;

/**
 * A non-negative decimal as typed, or undefined. Spaces are taken out; commas only
 * where they group thousands (68,000.50): a decimal comma (0,5) is refused rather
 * than read as 05.
 */
export function decimalInput(raw: string): string | undefined {
  const text = raw.trim().replace(/[\s_]/g, '');
  if (GROUPED.test(text)) return text.replace(/,/g, '');
  return DECIMAL.test(text) ? text : undefined;
}

/** The current minute in UTC, as a datetime-local input shows it. */
export function nowForInput(): string {
  return new Date().toISOString().slice(0, 16);
}

/** A datetime-local value read as UTC, to RFC 3339; empty: now. Undefined when invalid. */
export function inputToRfc3339(value: string): string | undefined {
  const text = value.trim();
  if (!text) return new Date().toISOString();
  const full = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(text) ? `${text}:00` : text;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(full)) return undefined;
  const date = new Date(`${full}Z`);
  return Number.isNaN(date.getTime()) ? undefined : `${full}Z`;
}

/** An RFC 3339 time as a datetime-local input shows it (UTC, to the second). */
export function rfc3339ToInput(value: string): string {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString().slice(0, 19);
}

/**
 * The message for `field`: a local check's, else the API's VALIDATION about it.
 * `names` are the field's names in the API (e.g. `quantity`, `trade.quantity`).
 */
export function fieldMessage(
  local: Record<string, string>,
  problem: ApiProblem | undefined,
  field: string,
): string | undefined {
  const mine = local[field];
  if (mine) return mine;
  if (problem && isAbout(problem, field)) {
    const prefix = `${problem.field ?? ''}: `;
    return problem.message.startsWith(prefix) ? problem.message.slice(prefix.length) : problem.message;
  }
  return undefined;
}

/** Whether a problem is shown next to one of `fields` (else it goes to ErrorNote). */
export function isFieldProblem(problem: ApiProblem | undefined, fields: string[]): boolean {
  return fields.some((f) => isAbout(problem, f));
}

/** A labelled input or select with its error under it (aria-invalid, aria-describedby). */
export function Field(props: { id: string; label: string; error?: string; hint?: string; children: (a11y: FieldA11y) => React.ReactNode }) {
  const errorId = `${props.id}-error`;
  const hintId = `${props.id}-hint`;
  const describedBy = [props.error ? errorId : undefined, props.hint ? hintId : undefined].filter(Boolean).join(' ') || undefined;
  return (
    <div className="pf-field">
      <label htmlFor={props.id}>{props.label}</label>
      {props.children({ id: props.id, 'aria-invalid': props.error ? true : undefined, 'aria-describedby': describedBy })}
      {props.hint && (
        <span id={hintId} className="pf-hint">
          {props.hint}
        </span>
      )}
      {props.error && (
        <span id={errorId} className="field-error">
          {props.error}
        </span>
      )}
    </div>
  );
}

export interface FieldA11y {
  id: string;
  'aria-invalid': true | undefined;
  'aria-describedby': string | undefined;
}

export const COST_BASIS_METHODS = ['FIFO', 'LIFO', 'HIFO', 'AVERAGE'] as const;

export const METHOD_WORDS: Record<(typeof COST_BASIS_METHODS)[number], string> = {
  FIFO: 'FIFO (first in, first out)',
  LIFO: 'LIFO (last in, first out)',
  HIFO: 'HIFO (highest cost first)',
  AVERAGE: 'Average cost',
};
