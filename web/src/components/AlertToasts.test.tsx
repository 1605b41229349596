import { afterEach, describe, expect, it } from 'vitest';
import { act, cleanup, render, screen } from '@testing-library/react';
import { MemoryRouter } from 'react-router-dom';
import { Provider, type Client } from 'urql';
import { makeSubject, pipe, subscribe } from 'wonka';
import { AlertToasts } from './AlertToasts';

afterEach(cleanup);

describe('alert toasts', () => {
  it('shows a toast for each alert that fires', async () => {
    const subject = makeSubject<{ data: unknown }>();
    const client = {
      subscription: () => ({
        subscribe: (sink: (result: { data: unknown }) => void) => pipe(subject.source, subscribe(sink)),
      }),
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
    // Two at once: both shown, none lost between renders.
    await act(async () => {
      subject.next({ data: { alertTriggered: { alertId: 'a2', coin: 'ETH', observation: { value: '3000' } } } });
      subject.next({ data: { alertTriggered: { alertId: 'a3', coin: 'SOL', observation: { value: '150' } } } });
    });
    const toasts = await screen.findAllByTestId('alert-toast');
    expect(toasts.map((t) => t.textContent)).toEqual([
      expect.stringContaining('BTC'),
      expect.stringContaining('ETH'),
      expect.stringContaining('SOL'),
    ]);
  });
});
