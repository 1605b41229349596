import { describe, expect, it } from 'vitest';
import { renderHook } from '@testing-library/react';
import { useIntentKeys } from './intents';

describe('idempotency keys by intent', () => {
  it('sends a retried command with its first key, and a new one after success', () => {
    const { result, rerender } = renderHook(() => useIntentKeys());
    const trade = { id: 'p1', trade: { side: 'BUY', coin: 'BTC', quantity: '0.5' } };
    const first = result.current.keyFor(trade);
    rerender();
    expect(result.current.keyFor({ ...trade })).toBe(first);
    expect(result.current.keyFor({ ...trade, trade: { ...trade.trade, quantity: '0.6' } })).not.toBe(first);
    result.current.done(trade);
    expect(result.current.keyFor(trade)).not.toBe(first);
  });
});
