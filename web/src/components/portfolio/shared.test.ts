import { describe, expect, it } from 'vitest';
import { decimalInput } from './shared';

describe('decimal input', () => {
  it('takes thousands commas and spaces out', () => {
    expect(decimalInput(' 68,000.50 ')).toBe('68000.50');
    expect(decimalInput('1 234.5')).toBe('1234.5');
    expect(decimalInput('0.5')).toBe('0.5');
  });

  it('refuses a decimal comma rather than read 0,5 as 05', () => {
    expect(decimalInput('0,5')).toBeUndefined();
    expect(decimalInput('1,5')).toBeUndefined();
    expect(decimalInput('12,34,567')).toBeUndefined();
  });

  it('refuses what is not a non-negative decimal', () => {
    expect(decimalInput('-1')).toBeUndefined();
    expect(decimalInput('1e5')).toBeUndefined();
    expect(decimalInput('')).toBeUndefined();
  });
});
