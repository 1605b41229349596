// The cost-basis method later sells use (setCostBasisMethod); past sells keep theirs.
import { useEffect, useState } from 'react';
import { useMutation } from 'urql';
import { graphql } from '../../gql';
import type { CostBasis } from '../../gql/graphql';
import { problemOf, type ApiProblem } from '../../api/errors';
import { ErrorNote } from '../ErrorNote';
import { COST_BASIS_METHODS, Field, METHOD_WORDS, fieldMessage, isFieldProblem, newKey, useSync } from './shared';

const PfSetMethod = graphql(`
  mutation PfSetMethod($id: ID!, $method: CostBasis!, $key: String) {
    setCostBasisMethod(id: $id, method: $method, idempotencyKey: $key) {
      id
      version
      events
    }
  }
`);

export function CostBasisSwitch({ current }: { current: CostBasis }) {
  const { id, afterWrite } = useSync();
  const [method, setMethod] = useState<CostBasis>(current);
  const [problem, setProblem] = useState<ApiProblem>();
  const [done, setDone] = useState<string>();
  const [{ fetching }, change] = useMutation(PfSetMethod);
  useEffect(() => setMethod(current), [current]);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setProblem(undefined);
    setDone(undefined);
    const result = await change({ id, method, key: newKey() });
    const receipt = result.data?.setCostBasisMethod;
    if (!receipt) {
      setProblem(problemOf(result.error));
      return;
    }
    setDone(receipt.events === 0 ? `The method already was ${METHOD_WORDS[method]}.` : `Later sells now use ${METHOD_WORDS[method]}.`);
    afterWrite(receipt.version);
  };

  return (
    <section className="card">
      <h2>Cost basis method</h2>
      <p className="muted">
        The method picks which bought lots a sell uses up, and so its cost basis and realized P&amp;L: a change applies to sells recorded from now on, while past sells keep the method they were recorded with.
      </p>
      <form className="row pf-align-end" onSubmit={(e) => void submit(e)} noValidate>
        <Field id="pf-method" label="Cost basis method" error={fieldMessage({}, problem, 'method')}>
          {(a11y) => (
            <select {...a11y} value={method} onChange={(e) => setMethod(e.target.value as CostBasis)}>
              {COST_BASIS_METHODS.map((m) => (
                <option key={m} value={m}>
                  {METHOD_WORDS[m]}
                </option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" disabled={fetching}>
          Change method
        </button>
        <span className="muted">Now: {METHOD_WORDS[current]}</span>
      </form>
      {!isFieldProblem(problem, ['method']) && <ErrorNote problem={problem} />}
      {done && (
        <p className="ok" role="status">
          {done}
        </p>
      )}
    </section>
  );
}
