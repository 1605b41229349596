// API errors in words, for people: VALIDATION names the field, RATE_LIMITED says
// when to try again, and the other codes say what happened.
import type { CombinedError } from 'urql';

export interface ApiProblem {
  code: string;
  message: string;
  /** The input the problem is about (VALIDATION), e.g. `trade.quantity` or `line 3`. */
  field?: string;
  /** Seconds to wait (RATE_LIMITED). */
  retryAfter?: number;
}

export function problemOf(error: CombinedError | undefined | null): ApiProblem | undefined {
  if (!error) return undefined;
  const first = error.graphQLErrors[0];
  if (first) {
    const extensions = (first.extensions ?? {}) as Record<string, unknown>;
    const code = typeof extensions.code === 'string' ? extensions.code : 'ERROR';
    const field = typeof extensions.field === 'string' ? extensions.field : undefined;
    const retry = Number(extensions.retryAfter);
    return {
      code,
      message: first.message,
      field,
      retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined,
    };
  }
  if (error.networkError) {
    return { code: 'NETWORK', message: error.networkError.message };
  }
  return { code: 'ERROR', message: error.message };
}

/** One sentence a person can act on. */
export function describe(problem: ApiProblem): string {
  switch (problem.code) {
    case 'VALIDATION':
      return problem.field ? `${problem.field}: ${stripField(problem)}` : problem.message;
    case 'RATE_LIMITED':
      return problem.retryAfter
        ? `Too many requests: try again in ${problem.retryAfter} s.`
        : 'Too many requests: try again in a minute.';
    case 'UNAUTHENTICATED':
      return 'Your session has ended: sign in again.';
    case 'NOT_FOUND':
      return 'Not found: it does not exist, or it is not yours.';
    case 'CONFLICT':
      return `Someone changed this at the same time: ${problem.message}. Try again.`;
    case 'FORBIDDEN':
      return `Not allowed: ${problem.message}`;
    case 'TIMEOUT':
      return 'The server took too long: ask for less (a smaller page, a shorter range) or try again.';
    case 'NETWORK':
      return 'The server cannot be reached: check that coinfold is running.';
    case 'INTERNAL':
      return 'The server failed to answer: try again (the server log says why).';
    default:
      return problem.message;
  }
}

/** The message without a leading `field: ` the API puts in front. */
function stripField(problem: ApiProblem): string {
  const prefix = `${problem.field}: `;
  return problem.message.startsWith(prefix) ? problem.message.slice(prefix.length) : problem.message;
}

/** Whether a VALIDATION problem is about `field` (or one of its parts). */
export function isAbout(problem: ApiProblem | undefined, field: string): boolean {
  if (problem?.code !== 'VALIDATION' || !problem.field) return false;
  return problem.field === field || problem.field.startsWith(`${field}.`) || problem.field.endsWith(`.${field}`);
}

/**
 * An onSubmit handler that reads the form and keeps what was typed: a form given to
 * React 19's `action` is reset as soon as the action returns, errors or not.
 */
export function formSubmit(submit: (form: FormData) => Promise<void>) {
  return (event: { preventDefault(): void; currentTarget: HTMLFormElement }) => {
    event.preventDefault();
    void submit(new FormData(event.currentTarget));
  };
}
