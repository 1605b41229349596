import { afterEach, describe, expect, it } from 'vitest';
import { act, cleanup, render, screen } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { Provider, type Client } from 'urql';
import { makeSubject } from 'wonka';
import { AlertToasts } from './AlertToasts';

afterEach(cleanup);

describe('alert toasts', () => {
  it('shows a toast for each alert that fires', async () => {
    const subject = makeSubject<{ data: unknown }>();
    const client = {
      executeSubscription: () => subject.source,
    } as unknown as Client;
    render(
      <Provider value={client}>
        <MemoryRouter>
          <AlertToasts />
        </MemoryRouter>
      </Provider>,
    );
    expect(screen.queryByTestId('alert-toast')).toBeNull();
    await act(async () => {
      subject.next({ data: { alertTriggered: { alertId: 'a1', coin: 'BTC', observation: { value: '70100', at: '2026-12-08T10:00:00Z' } } } });
    });
    const toast = await screen.findByTestId('alert-toast');
    expect(toast.textContent).toContain('Alert fired: BTC');
    expect(toast.textContent).toContain('value 70100');
  });
});
