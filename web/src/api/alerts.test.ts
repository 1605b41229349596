import { describe, expect, it } from 'vitest';
import { describeCondition, describeObservation } from './alerts';
import { conditionOf } from '../pages/Alerts';

function form(values: Record<string, string>) {
  const data = new FormData();
  for (const [k, v] of Object.entries(values)) data.set(k, v);
  return data;
}

describe('alerts in words', () => {
  it('describes every stored condition', () => {
    expect(describeCondition({ kind: 'PRICE_ABOVE', threshold: '70000' })).toBe('price at or above 70000 USD');
    expect(describeCondition({ kind: 'MOVE_WITHIN', percent: '3', window_minutes: 15 })).toBe('moves 3 % within 15 min');
    expect(describeCondition({ kind: 'CROSSES_AVERAGE', average: 'EMA', period: 20, direction: 'ABOVE' })).toBe('price crosses above its EMA(20)');
    expect(describeCondition({ kind: 'SENTIMENT_BELOW', score: '-0.5' })).toBe('sentiment at or below -0.5');
    expect(describeCondition(null)).toBe('an unknown condition');
  });

  it('describes what the evaluator observed', () => {
    expect(describeObservation({ value: '70100', reference: '70000', at: '2026-12-08T10:00:00Z' })).toBe('value 70100, reference 70000, at 2026-12-08 10:00:00 UTC');
  });

  it('turns the form into exactly one condition', () => {
    expect(conditionOf('priceBelow', form({ value: ' 60000 ' }))).toEqual({ priceBelow: '60000' });
    expect(conditionOf('volumeSpike', form({ value: '3', windowMinutes: '30' }))).toEqual({ volumeSpike: { factor: '3', windowMinutes: 30 } });
    expect(conditionOf('crossesAverage', form({ average: 'EMA', period: '50', direction: 'BELOW' }))).toEqual({
      crossesAverage: { average: 'EMA', period: 50, direction: 'BELOW' },
    });
  });
});
