// The signed-in user's alerts as they fire, on whatever page is open: a toast each
// (kept 15 s, or until closed), and the alerts list hears of it too.
import { useEffect, useRef, useState } from 'react';
import { Link } from 'react-router-dom';
import { useClient } from 'urql';
import { graphql } from '../gql';
import { describeObservation, recordFired } from '../api/alerts';

const AlertTriggered = graphql(`
  subscription AlertTriggered {
    alertTriggered {
      alertId
      coin
      observation
    }
  }
`);

interface Toast {
  key: number;
  coin: string;
  text: string;
}

let counter = 0;

export function AlertToasts() {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const client = useClient();
  const timers = useRef(new Set<ReturnType<typeof setTimeout>>());
  useEffect(() => {
    const pending = timers.current;
    return () => pending.forEach(clearTimeout);
  }, []);
  // Each message on its own (several may come between two renders).
  useEffect(() => {
    const subscription = client.subscription(AlertTriggered, {}).subscribe((result) => {
      const fired = result.data?.alertTriggered;
      if (fired) show(fired);
    });
    return () => subscription.unsubscribe();
  }, [client]);
  function show(fired: { alertId: string; coin: string; observation: unknown }) {
    recordFired(fired);
    const key = ++counter;
    setToasts((current) => [...current.slice(-4), { key, coin: fired.coin, text: describeObservation(fired.observation) }]);
    const timer = setTimeout(() => {
      timers.current.delete(timer);
      setToasts((current) => current.filter((t) => t.key !== key));
    }, 15_000);
    timers.current.add(timer);
  }
  return (
    <div className="toasts" role="region" aria-label="Alerts that fired" aria-live="assertive">
      {toasts.map((toast) => (
        <div key={toast.key} className="toast" data-testid="alert-toast">
          <header>
            <span>Alert fired: {toast.coin}</span>
            <button type="button" className="ghost" aria-label="Close" onClick={() => setToasts((c) => c.filter((t) => t.key !== toast.key))}>
              ×
            </button>
          </header>
          <p>{toast.text}</p>
          <Link to="/alerts">See your alerts</Link>
        </div>
      ))}
    </div>
  );
}
