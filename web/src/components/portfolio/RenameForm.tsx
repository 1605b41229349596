// Renames the portfolio (renamePortfolio), folded away under the page's title.
import { useState } from 'react';
import { useMutation } from 'urql';
import { graphql } from '../../gql';
import { problemOf, type ApiProblem } from '../../api/errors';
import { ErrorNote } from '../ErrorNote';
import { Field, fieldMessage, isFieldProblem, newKey, useSync } from './shared';

const PfRename = graphql(`
  mutation PfRename($id: ID!, $name: String!, $key: String) {
    renamePortfolio(id: $id, name: $name, idempotencyKey: $key) {
      id
      version
    }
  }
`);

export function RenameForm({ name }: { name: string }) {
  const { id, afterWrite } = useSync();
  const [value, setValue] = useState(name);
  const [local, setLocal] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<ApiProblem>();
  const [{ fetching }, rename] = useMutation(PfRename);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setProblem(undefined);
    const trimmed = value.trim();
    if (!trimmed) {
      setLocal({ name: 'A name of 1 to 100 characters.' });
      return;
    }
    setLocal({});
    const result = await rename({ id, name: trimmed, key: newKey() });
    const receipt = result.data?.renamePortfolio;
    if (!receipt) {
      setProblem(problemOf(result.error));
      return;
    }
    afterWrite(receipt.version);
  };

  return (
    <details className="pf-rename">
      <summary>Rename</summary>
      <form className="row pf-align-end" onSubmit={(e) => void submit(e)} noValidate>
        <Field id="pf-rename" label="New portfolio name" error={fieldMessage(local, problem, 'name')}>
          {(a11y) => <input {...a11y} value={value} maxLength={100} onChange={(e) => setValue(e.target.value)} autoComplete="off" />}
        </Field>
        <button type="submit" disabled={fetching}>
          Save name
        </button>
      </form>
      {!isFieldProblem(problem, ['name']) && <ErrorNote problem={problem} />}
    </details>
  );
}
