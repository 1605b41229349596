import { describe, type ApiProblem } from '../api/errors';

/** An API error, in words. */
export function ErrorNote({ problem }: { problem?: ApiProblem }) {
  if (!problem) return null;
  return (
    <p className="error" role="alert" data-code={problem.code}>
      {describe(problem)}
    </p>
  );
}
