// Idempotency keys for commands.
import { useRef } from 'react';

/**
 * Idempotency keys by intent: the same command sent again (a retry after an answer was
 * lost) carries the same key, so it is stored once; a different command, or the same
 * one again after a success, gets a new key.
 */
export function useIntentKeys() {
  const keys = useRef(new Map<string, string>());
  return useRef({
    keyFor(command: unknown): string {
      const id = JSON.stringify(command);
      let key = keys.current.get(id);
      if (!key) {
        key = newKey();
        keys.current.set(id, key);
      }
      return key;
    },
    done(command: unknown) {
      keys.current.delete(JSON.stringify(command));
    },
  }).current;
}

export function newKey(): string {
  const c = globalThis.crypto as Crypto | undefined;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return `k-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
