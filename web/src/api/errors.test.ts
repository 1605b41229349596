import { describe as suite, expect, it } from 'vitest';
import { CombinedError } from 'urql';
import { GraphQLError } from 'graphql';
import { describe, isAbout, problemOf } from './errors';

function apiError(message: string, extensions: Record<string, unknown>) {
  return new CombinedError({ graphQLErrors: [new GraphQLError(message, { extensions })] });
}

suite('API errors in words', () => {
  it('names the field of a VALIDATION error, once', () => {
    const problem = problemOf(apiError('trade.quantity: must be positive', { code: 'VALIDATION', field: 'trade.quantity' }));
    expect(problem?.field).toBe('trade.quantity');
    expect(describe(problem!)).toBe('trade.quantity: must be positive');
    expect(isAbout(problem, 'quantity')).toBe(true);
    expect(isAbout(problem, 'price')).toBe(false);
  });

  it('names the line of a bad import row', () => {
    const problem = problemOf(apiError('line 3: price: not a decimal', { code: 'VALIDATION', field: 'line 3' }));
    expect(describe(problem!)).toBe('line 3: price: not a decimal');
  });

  it('says when to retry after RATE_LIMITED', () => {
    const problem = problemOf(apiError('too many requests', { code: 'RATE_LIMITED', retryAfter: 42 }));
    expect(describe(problem!)).toBe('Too many requests: try again in 42 s.');
  });

  it('answers NOT_FOUND the same for unknown and foreign ids', () => {
    expect(describe(problemOf(apiError('portfolio not found', { code: 'NOT_FOUND' }))!)).toMatch(/does not exist, or it is not yours/);
  });

  it('says the server cannot be reached on a network error', () => {
    const problem = problemOf(new CombinedError({ networkError: new Error('Failed to fetch') }));
    expect(problem?.code).toBe('NETWORK');
    expect(describe(problem!)).toMatch(/cannot be reached/);
  });

  it('has nothing to say without an error', () => {
    expect(problemOf(undefined)).toBeUndefined();
  });
});
