// The portfolio page against a stub API: it renders every section from the answers,
// names a bad CSV line and marks it, moves the time-travel slider, and has no critical
// accessibility violation.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router-dom';
import { Client, Provider, makeResult, type Exchange, type Operation } from 'urql';
import { filter, fromValue, map, mergeMap, never, pipe } from 'wonka';
import axe from 'axe-core';
import PortfolioPage from '../../pages/Portfolio';
import Portfolios from '../../pages/Portfolios';

const ID = '6f1c1f58-4c43-4c8b-9c55-3f0f7f0e8a11';
const totals = (value: string, realized: string) => ({ currency: 'USD', value, costBasis: '10000', realizedGain: realized, unrealizedGain: '500', roiPct: '5' });
const holding = (coin: string, quantity: string) => ({ coin, quantity, costBasis: '10000', realizedGain: '0', price: '21000', value: '10500', unrealizedGain: '500', unrealizedPct: '5' });
const summary = (qty: string, realized = '0') => ({ holdings: [holding('BTC', qty)], usd: totals('10500', realized), base: null, best: 'BTC', worst: 'BTC', unpriced: [] });
const moments = [
  { sequence: 1, eventType: 'PortfolioCreated', recordedAt: '2026-01-01T10:00:00.000001Z', effectiveAt: null },
  { sequence: 2, eventType: 'TradeRecorded', recordedAt: '2026-01-01T11:00:00.5Z', effectiveAt: '2026-01-01T09:00:00Z' },
];
const seen: { name: string; variables: Record<string, unknown> }[] = [];

function answer(op: Operation): { data?: Record<string, unknown> | null; errors?: { message: string; extensions: Record<string, string> }[] } {
  const name = op.query.definitions.map((d) => ('name' in d ? d.name?.value : undefined)).find(Boolean) ?? '';
  const variables = (op.variables ?? {}) as Record<string, unknown>;
  seen.push({ name, variables });
  const page = { hasNextPage: false, endCursor: 'c' };
  switch (name) {
    case 'PfPage':
      return { data: { portfolio: { id: ID, name: 'Main', description: '', costBasisMethod: 'FIFO', currency: 'USD', createdAt: '2026-01-01T10:00:00Z', archived: false, version: 2, summary: summary('0.5', '2000') } } };
    case 'PfValue':
      return { data: { portfolio: { id: ID, valueHistory: [] } } };
    case 'PfTransactions':
      return {
        data: {
          portfolio: {
            id: ID,
            transactions: {
              nodes: [{ id: 't1', kind: 'BUY', coin: 'BTC', quantity: '0.5', price: '20000', quote: 'USD', fee: '0', cost: '10000', executedAt: '2026-01-01T09:00:00Z', note: null, externalId: null, voided: false }],
              pageInfo: page,
            },
          },
        },
      };
    case 'PfMoments':
      return { data: { portfolioHistory: { nodes: moments, pageInfo: page } } };
    case 'PfHistory':
      return {
        data: { portfolioHistory: { nodes: moments.map((m) => ({ ...m, eventVersion: '1', actor: 'user:u1', correlationId: 'corr-1', causationId: null, payload: {} })), pageInfo: page } },
      };
    case 'PfAsOf':
      return { data: { portfolio: { id: ID, version: 2, asOf: variables.asOf ?? null, summary: variables.asOf ? summary('0.25') : summary('0.5') } } };
    case 'PfImport':
      return { data: null, errors: [{ message: 'line 3: price: not a decimal', extensions: { code: 'VALIDATION', field: 'line 3' } }] };
    case 'PfList':
      return { data: { portfolios: { nodes: [{ id: ID, name: 'Main', currency: 'USD', costBasisMethod: 'FIFO', createdAt: '2026-01-01T10:00:00Z' }], pageInfo: page } } };
    default:
      return { data: null };
  }
}

const stub: Exchange = () => (ops$) =>
  pipe(
    ops$,
    filter((op) => op.kind !== 'teardown'),
    mergeMap((op) => {
      if (op.kind === 'subscription') return never;
      const { data, errors } = answer(op);
      return pipe(
        fromValue(op),
        map((o) => makeResult(o, { data, errors })),
      );
    }),
  );

function client() {
  return new Client({ url: '/graphql', exchanges: [stub] });
}

beforeAll(() => {
  class Observer {
    observe() {}
    unobserve() {}
    disconnect() {}
  }
  (globalThis as { ResizeObserver?: unknown }).ResizeObserver = Observer;
});
afterEach(cleanup);

async function critical(container: HTMLElement) {
  const results = await axe.run(container, { rules: { 'color-contrast': { enabled: false } } });
  return results.violations.filter((v) => v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.html).join(' | ')}`);
}

describe('portfolio page', () => {
  it('shows the summary, holdings, import errors by line and time travel', async () => {
    const view = render(
      <Provider value={client()}>
        <MemoryRouter initialEntries={[`/portfolios/${ID}`]}>
          <Routes>
            <Route path="/portfolios/:id" element={<PortfolioPage />} />
          </Routes>
        </MemoryRouter>
      </Provider>,
    );
    expect((await screen.findByTestId('realized-pnl')).textContent).toContain('2,000.00');
    expect(screen.getAllByTestId('qty-BTC')[0]?.textContent).toBe('0.5');
    expect(screen.getByText(/No value to chart/)).toBeTruthy();

    // The trade form's labels.
    const form = screen.getByRole('button', { name: 'Record trade' }).closest('form');
    expect(form).not.toBeNull();
    for (const label of ['Side', 'Coin', 'Quantity', 'Price', 'Quote', 'Fee', 'Executed at (UTC)']) {
      expect(within(form as HTMLElement).getByLabelText(label)).toBeTruthy();
    }
    expect((within(form as HTMLElement).getByLabelText('Quote') as HTMLInputElement).value).toBe('USD');

    // A CSV with a bad third line.
    const file = new File(['executed_at,side,coin,quantity,price\n2026-01-01T09:00:00Z,buy,BTC,0.5,20000\n2026-01-01T09:00:00Z,buy,ETH,2,x\n'], 'bad.csv', { type: 'text/csv' });
    await act(async () => {
      fireEvent.change(screen.getByLabelText('CSV file'), { target: { files: [file] } });
    });
    await screen.findByText(/ETH,2,x/);
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Import' }));
    });
    const alert = await waitFor(() => {
      const found = screen.getAllByRole('alert').find((a) => a.textContent?.includes('line 3'));
      if (!found) throw new Error('no alert naming line 3');
      return found;
    });
    expect(alert.textContent).toContain('price');
    expect(view.container.querySelectorAll('[data-line="3"][aria-invalid="true"].bad')).toHaveLength(1);

    // Time travel: at the right end it is now; at the start, the earlier state.
    const slider = await screen.findByLabelText('Time travel');
    expect(screen.getByTestId('asof-time').textContent).toContain('now');
    await act(async () => {
      fireEvent.change(slider, { target: { value: '0' } });
    });
    await waitFor(() => expect(within(screen.getByTestId('asof-holdings')).getByTestId('qty-BTC').textContent).toBe('0.25'));
    expect(screen.getByTestId('asof-time').textContent).toContain('2026-01-01 10:00:00 UTC');
    expect(seen.some((s) => s.name === 'PfAsOf' && s.variables.asOf === '2026-01-01T10:00:00.000001Z' && s.variables.basis === 'RECORDED')).toBe(true);

    // The audit trail's button moves the slider to the last entry: now.
    const buttons = screen.getAllByRole('button', { name: 'Show state after' });
    await act(async () => {
      fireEvent.click(buttons[1] as HTMLElement);
    });
    expect(screen.getByTestId('asof-time').textContent).toContain('now');

    // Effective time orders by when trades happened.
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Effective' }));
    });
    expect(screen.getByRole('button', { name: 'Effective' }).getAttribute('aria-pressed')).toBe('true');

    expect(await critical(view.container)).toEqual([]);
  });

  it('lists portfolios and has the create form', async () => {
    const view = render(
      <Provider value={client()}>
        <MemoryRouter>
          <Portfolios />
        </MemoryRouter>
      </Provider>,
    );
    expect((await screen.findByRole('link', { name: 'Main' })).getAttribute('href')).toBe(`/portfolios/${ID}`);
    expect(screen.getByLabelText('Name')).toBeTruthy();
    expect(screen.getByLabelText('Base currency')).toBeTruthy();
    expect(screen.getByLabelText('Cost basis')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Create portfolio' })).toBeTruthy();
    expect(await critical(view.container)).toEqual([]);
  });
});
