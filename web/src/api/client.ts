// The one GraphQL client: queries and mutations over POST /graphql, subscriptions over
// graphql-ws on /graphql/ws, both carrying the session's access token (refreshed
// before it expires by the auth exchange). A dropped socket reconnects by itself, and
// `useLive()` tells the page so.
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from 'urql';
import { authExchange } from '@urql/exchange-auth';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { useSyncExternalStore } from 'react';
import { graphql } from '../gql';
import { session, type AuthPayloadLike } from './session';

export const RefreshMutation = graphql(`
  mutation Refresh($refreshToken: String!) {
    refreshToken(refreshToken: $refreshToken) {
      ...AuthFields
    }
  }
`);

export const AuthFields = graphql(`
  fragment AuthFields on AuthPayload {
    accessToken
    accessTokenExpiresAt
    refreshToken
    refreshTokenExpiresAt
    user {
      id
      username
      displayName
      theme
      baseCurrency
    }
  }
`);

/**
 * The live connection: `idle` while no page subscribes, `connecting`, `live`, and
 * `dropped` while it retries after a connection was lost.
 */
export type LiveState = 'idle' | 'connecting' | 'live' | 'dropped';
let live: LiveState = 'idle';
const liveListeners = new Set<() => void>();
function setLive(state: LiveState) {
  if (live === state) return;
  live = state;
  for (const listener of liveListeners) listener();
}
export function useLive(): LiveState {
  return useSyncExternalStore(
    (listener) => {
      liveListeners.add(listener);
      return () => liveListeners.delete(listener);
    },
    () => live,
  );
}

function endpoint(path: string, ws = false): string {
  const { protocol, host } = window.location;
  if (!ws) return `${protocol}//${host}${path}`;
  return `${protocol === 'https:' ? 'wss:' : 'ws:'}//${host}${path}`;
}

function credentials(): Record<string, string> {
  const token = session.accessToken;
  return token ? { authorization: `Bearer ${token}` } : {};
}

let wsClient: WsClient | undefined;
/** The server closed the socket because its token no longer holds (4403). */
let staleCredential = false;

function socket(): WsClient {
  if (!wsClient) setLive('connecting');
  wsClient ??= createWsClient({
    url: endpoint('/graphql/ws', true),
    // Read at each (re)connection: a refreshed token is used from the next one.
    connectionParams: async () => {
      if (staleCredential || session.needsRefresh()) {
        staleCredential = false;
        await session.refresh();
      }
      return credentials();
    },
    lazy: true,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** retries, 15_000)));
    },
    on: {
      connected: () => setLive('live'),
      closed: (event) => {
        // 1000: closed on purpose (no subscription left); anything else was lost.
        const code = (event as { code?: number } | undefined)?.code;
        if (code === 1000) setLive('idle');
        else if (live === 'live') setLive('dropped');
        // 4403: the server ended the connection because its token no longer holds
        // (expired, logged out, revoked): graphql-ws reconnects by itself, with a
        // refreshed token (or the session ends, signed out, if the refresh is refused).
        if (code === 4403) staleCredential = true;
        // 4401, 4400, 1002: graphql-ws gives up on those; get a new token and start over.
        if (code === 4401 || code === 4400 || code === 1002) void recoverCredential();
      },
      error: () => setLive('dropped'),
    },
  });
  return wsClient;
}

let recovering = false;
let lastRecovery = 0;
/** After a refused credential: a fresh token (or signed out), then a new socket. */
async function recoverCredential() {
  if (recovering) return;
  recovering = true;
  // At most one attempt every 5 s: a server that keeps refusing is not hammered.
  const wait = lastRecovery + 5_000 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  lastRecovery = Date.now();
  try {
    if (session.storedRefreshToken()) await session.refresh();
    setLive('dropped');
    socketListeners.forEach((listener) => listener());
  } finally {
    recovering = false;
  }
}

const socketListeners = new Set<() => void>();
/** Called when the socket had to be replaced: the app makes a new client and resubscribes. */
export function onSocketReplaced(listener: () => void): () => void {
  socketListeners.add(listener);
  return () => socketListeners.delete(listener);
}

/** Starts the socket again: after signing in or out, its credential changed. */
export function restartSocket() {
  wsClient?.terminate();
  wsClient = undefined;
  setLive('idle');
}

// The refresh goes around the auth exchange (it would wait for itself).
const bare = new Client({ url: '/graphql', exchanges: [fetchExchange], requestPolicy: 'network-only', preferGetMethod: false });

async function refreshCall(refreshToken: string): Promise<AuthPayloadLike | null> {
  const result = await bare.mutation(RefreshMutation, { refreshToken }).toPromise();
  if (result.data?.refreshToken) return result.data.refreshToken;
  const code = result.error?.graphQLErrors[0]?.extensions?.code;
  // Refused (ended, reused, expired): signed out. Anything else: try again later.
  if (code === 'UNAUTHENTICATED' || code === 'FORBIDDEN' || code === 'VALIDATION' || code === 'NOT_FOUND') return null;
  throw new Error(result.error?.message ?? 'no answer');
}
session.setRefreshCall(refreshCall);

export function makeClient(): Client {
  return new Client({
    url: endpoint('/graphql'),
    // POST only: the API refuses GET (a GET would carry tokens in the URL).
    preferGetMethod: false,
    // Reads go to the network first so the numbers are never stale, and stay cached
    // for the moment a page is left and opened again.
    requestPolicy: 'cache-and-network',
    exchanges: [
      cacheExchange,
      authExchange(async (utils) => ({
        addAuthToOperation(operation) {
          const headers = credentials();
          return Object.keys(headers).length ? utils.appendHeaders(operation, headers) : operation;
        },
        willAuthError() {
          return session.needsRefresh();
        },
        didAuthError(error) {
          return error.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED');
        },
        async refreshAuth() {
          if (session.storedRefreshToken()) await session.refresh();
          else if (session.getSnapshot().status === 'signed-in') session.signOut();
        },
      })),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const unsubscribe = socket().subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
}
