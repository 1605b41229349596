// The caller's portfolios (20 at a time) and a form to create one; a new portfolio
// opens at once on its own page.
import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../gql';
import type { CostBasis, PfListQuery } from '../gql/graphql';
import { problemOf, type ApiProblem } from '../api/errors';
import { utc } from '../format';
import { ErrorNote } from '../components/ErrorNote';
import { COST_BASIS_METHODS, Field, METHOD_WORDS, fieldMessage, isFieldProblem, useIntentKeys } from '../components/portfolio/shared';
import './portfolio.css';

const PfList = graphql(`
  query PfList($first: Int!, $after: String) {
    portfolios(first: $first, after: $after) {
      nodes {
        id
        name
        currency
        costBasisMethod
        createdAt
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const PfCreate = graphql(`
  mutation PfCreate($input: CreatePortfolioInput!, $key: String) {
    createPortfolio(input: $input, idempotencyKey: $key) {
      id
      version
    }
  }
`);

const PAGE = 20;
type Row = PfListQuery['portfolios']['nodes'][number];

export default function Portfolios() {
  const [pages, setPages] = useState<(string | null)[]>([null]);
  const [next, setNext] = useState<string | null>(null);
  const [empty, setEmpty] = useState(false);
  return (
    <div className="stack">
      <section className="card">
        <h1>Portfolios</h1>
        <table>
          <caption className="sr-only">Your portfolios</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Currency</th>
              <th scope="col">Cost basis</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          {pages.map((after, index) => (
            <ListPage
              key={after ?? ''}
              after={after}
              onPage={(rows, cursor) => {
                if (index === 0) setEmpty(rows.length === 0);
                if (index === pages.length - 1) setNext(cursor);
              }}
            />
          ))}
          {empty && (
            <tbody>
              <tr>
                <td colSpan={4} className="muted">
                  No portfolio yet: create your first one below.
                </td>
              </tr>
            </tbody>
          )}
        </table>
        {next && (
          <button type="button" onClick={() => setPages((p) => [...p, next])}>
            Show more
          </button>
        )}
      </section>
      <CreateForm />
    </div>
  );
}

function ListPage(props: { after: string | null; onPage: (rows: Row[], next: string | null) => void }) {
  const [{ data, error, fetching }] = useQuery({
    query: PfList,
    variables: { first: PAGE, after: props.after },
    requestPolicy: 'cache-and-network',
  });
  const onPage = useRef(props.onPage);
  onPage.current = props.onPage;
  useEffect(() => {
    if (data) {
      const info = data.portfolios.pageInfo;
      onPage.current(data.portfolios.nodes, info.hasNextPage ? (info.endCursor ?? null) : null);
    }
  }, [data]);
  return (
    <tbody>
      {error && (
        <tr>
          <td colSpan={4}>
            <ErrorNote problem={problemOf(error)} />
          </td>
        </tr>
      )}
      {!data && fetching && (
        <tr>
          <td colSpan={4} className="muted">
            Loading…
          </td>
        </tr>
      )}
      {data?.portfolios.nodes.map((p) => (
        <tr key={p.id} data-portfolio={p.id}>
          <td>
            <Link to={`/portfolios/${p.id}`}>{p.name}</Link>
          </td>
          <td>{p.currency}</td>
          <td>{p.costBasisMethod}</td>
          <td>{utc(p.createdAt)}</td>
        </tr>
      ))}
    </tbody>
  );
}

function CreateForm() {
  const navigate = useNavigate();
  const [name, setName] = useState('');
  const [currency, setCurrency] = useState('USD');
  const [method, setMethod] = useState<CostBasis>('FIFO');
  const [local, setLocal] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<ApiProblem>();
  const [{ fetching }, create] = useMutation(PfCreate);
  const intents = useIntentKeys();

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) {
      setLocal({ name: 'Give the portfolio a name.' });
      return;
    }
    setLocal({});
    setProblem(undefined);
    const result = await create({ input: { name: trimmed, currency, costBasisMethod: method }, key: intents.keyFor([trimmed, currency, method]) });
    const receipt = result.data?.createPortfolio;
    if (receipt) {
      navigate(`/portfolios/${receipt.id}`);
      return;
    }
    setProblem(problemOf(result.error));
  };

  const fields = ['name', 'currency', 'costBasisMethod'];
  return (
    <section className="card">
      <h2>New portfolio</h2>
      <form className="grid" onSubmit={(e) => void submit(e)} noValidate>
        <Field id="pf-new-name" label="Name" error={fieldMessage(local, problem, 'name')}>
          {(a11y) => <input {...a11y} value={name} maxLength={100} onChange={(e) => setName(e.target.value)} autoComplete="off" />}
        </Field>
        <Field id="pf-new-currency" label="Base currency" error={fieldMessage(local, problem, 'currency')}>
          {(a11y) => (
            <select {...a11y} value={currency} onChange={(e) => setCurrency(e.target.value)}>
              <option value="USD">USD</option>
              <option value="EUR">EUR</option>
            </select>
          )}
        </Field>
        <Field id="pf-new-method" label="Cost basis" error={fieldMessage(local, problem, 'costBasisMethod')}>
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
        <div>
          <button type="submit" className="primary" disabled={fetching}>
            Create portfolio
          </button>
        </div>
      </form>
      {!isFieldProblem(problem, fields) && <ErrorNote problem={problem} />}
    </section>
  );
}
