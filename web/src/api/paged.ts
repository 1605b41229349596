// Reads up to `total` nodes of a connection, a page (at most 100, the API's limit) at
// a time, following `pageInfo.endCursor`. Answers what it has so far and the first
// error; starts again when the variables change.
import { useEffect, useState } from 'react';
import { useClient, type AnyVariables, type CombinedError, type TypedDocumentNode } from 'urql';

/** The API's largest page. */
export const MAX_PAGE = 100;

interface Connection<N> {
  nodes: N[];
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
}

export interface Paged<N> {
  /** Every node read, in the API's order; undefined until the first page arrives. */
  nodes?: N[];
  /** The variables the nodes are for (a change of coin does not show the old coin's). */
  key?: string;
  error?: CombinedError;
  fetching: boolean;
}

export function usePaged<D, V extends AnyVariables & { first: number; after?: string | null }, N>(
  query: TypedDocumentNode<D, V>,
  variables: Omit<V, 'first' | 'after'>,
  pick: (data: D) => Connection<N>,
  total: number,
  /** Change it to read again (e.g. after a new candle closed). */
  generation = 0,
): Paged<N> {
  const client = useClient();
  const key = JSON.stringify(variables);
  const [state, setState] = useState<Paged<N>>({ fetching: true });
  useEffect(() => {
    let stopped = false;
    const vars = JSON.parse(key) as Omit<V, 'first' | 'after'>;
    setState((s) => ({ ...s, fetching: true }));
    void (async () => {
      const nodes: N[] = [];
      let after: string | null = null;
      while (!stopped && nodes.length < total) {
        const first = Math.min(MAX_PAGE, total - nodes.length);
        const result = await client.query(query, { ...vars, first, after } as unknown as V, { requestPolicy: 'network-only' }).toPromise();
        if (stopped) return;
        if (result.error || !result.data) {
          setState({ nodes, key, error: result.error, fetching: false });
          return;
        }
        const page = pick(result.data);
        nodes.push(...page.nodes);
        if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) break;
        after = page.pageInfo.endCursor;
      }
      if (!stopped) setState({ nodes, key, fetching: false });
    })();
    return () => {
      stopped = true;
    };
    // `pick` is a selector of the query's shape: it does not change what is read.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, query, key, total, generation]);
  return state.key === key ? state : { fetching: true };
}
