// Alerts in words, and the fired ones as they come: the toasts and the alerts page
// both read this store, so a firing shows on every page.
import { useSyncExternalStore } from 'react';
import { session } from './session';

export interface Fired {
  alertId: string;
  coin: string;
  observation: unknown;
  receivedAt: number;
}

let fired: Fired[] = [];
/** How many fired since the page loaded (the list keeps the newest 50). */
let firedCount = 0;
const listeners = new Set<() => void>();

export function recordFired(alert: Omit<Fired, 'receivedAt'>) {
  fired = [{ ...alert, receivedAt: Date.now() }, ...fired].slice(0, 50);
  firedCount += 1;
  for (const listener of listeners) listener();
}

export function firedSoFar(): number {
  return firedCount;
}

// The next user of this tab does not see the last one's alerts.
session.subscribe(() => {
  if (session.getSnapshot().status !== 'signed-in' && fired.length) {
    fired = [];
    for (const listener of listeners) listener();
  }
});

export function useFired(): Fired[] {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => fired,
  );
}

type Json = Record<string, unknown>;

function str(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '?';
}

/**
 * A stored condition in words. The API sends the domain's form, tagged by `kind`:
 * `{"kind": "PRICE_ABOVE", "threshold": "70000"}`.
 */
export function describeCondition(condition: unknown): string {
  if (!condition || typeof condition !== 'object') return 'an unknown condition';
  const v = condition as Json;
  switch (v.kind) {
    case 'PRICE_ABOVE':
      return `price at or above ${str(v.threshold)} USD`;
    case 'PRICE_BELOW':
      return `price at or below ${str(v.threshold)} USD`;
    case 'CHANGE24H':
    case 'CHANGE_24H':
      return `24 h change reaches ${str(v.percent)} %`;
    case 'MOVE_WITHIN':
      return `moves ${str(v.percent)} % within ${str(v.window_minutes)} min`;
    case 'VOLUME_SPIKE':
      return `volume ${str(v.factor)}× usual within ${str(v.window_minutes)} min`;
    case 'CROSSES_AVERAGE':
      return `price crosses ${str(v.direction).toLowerCase()} its ${str(v.average).toUpperCase()}(${str(v.period)})`;
    case 'SENTIMENT_BELOW':
      return `sentiment at or below ${str(v.score)}`;
    case 'SENTIMENT_ABOVE':
      return `sentiment at or above ${str(v.score)}`;
    default:
      return typeof v.kind === 'string' ? v.kind.toLowerCase().replace(/_/g, ' ') : 'an unknown condition';
  }
}

/** What the evaluator saw when it fired: `{value, reference, previous, at}`. */
export function describeObservation(observation: unknown): string {
  if (!observation || typeof observation !== 'object') return '';
  const o = observation as Json;
  const parts: string[] = [];
  if (o.value !== undefined) parts.push(`value ${str(o.value)}`);
  if (o.reference !== undefined && o.reference !== null) parts.push(`reference ${str(o.reference)}`);
  if (typeof o.at === 'string') parts.push(`at ${o.at.slice(0, 19).replace('T', ' ')} UTC`);
  return parts.join(', ');
}
