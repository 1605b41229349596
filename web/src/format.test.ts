import { describe, expect, it } from 'vitest';
import { compact, direction, money, percent, price, quantity, utc } from './format';

describe('display formatting', () => {
  it('keeps digits for small prices and two for large ones', () => {
    expect(price('68123.456')).toBe('68,123.46 USD');
    expect(price('0.081234')).toBe('0.0812 USD');
    expect(price('0.00001234')).toBe('0.000012 USD');
    expect(price(null)).toBe('—');
  });

  it('formats money, quantities and volumes', () => {
    expect(money('-1234.5', 'EUR')).toBe('-1,234.50 EUR');
    expect(quantity('0.123456789')).toBe('0.12345679');
    expect(compact('1234567890')).toBe('1.23B');
  });

  it('signs percentages and tells their direction', () => {
    expect(percent('2.3456')).toBe('+2.35 %');
    expect(percent(-1)).toBe('-1.00 %');
    expect(direction('-0.1')).toBe('down');
    expect(direction('0')).toBe('flat');
    expect(direction('not a number')).toBe('flat');
  });

  it('shows times in UTC and says so', () => {
    expect(utc('2026-01-31T14:05:00+02:00')).toBe('2026-01-31 12:05:00 UTC');
    expect(utc('garbage')).toBe('—');
  });
});
