// The portfolio's figures, kept live by the `portfolio(id)` subscription: value, cost
// basis, unrealized and realized P&L, ROI, and the best and worst performers.
import { direction, money, percent } from '../../format';
import type { Summary } from './shared';

export function SummaryCard({ summary, live }: { summary?: Summary; live: boolean }) {
  const usd = summary?.usd;
  const base = summary?.base && summary.base.currency !== summary.usd.currency ? summary.base : undefined;
  const currency = usd?.currency ?? 'USD';
  const pct = (coin: string | null | undefined) => {
    const holding = summary?.holdings.find((h) => h.coin === coin);
    return holding ? percent(holding.unrealizedPct) : '';
  };
  return (
    <section className="card">
      <div className="row between">
        <h2>Summary</h2>
        <span className="muted small">{live ? 'Updates live' : 'Waiting for live updates…'}</span>
      </div>
      {!summary ? (
        <p className="muted">Loading…</p>
      ) : (
        <>
          <div className="pf-stats">
            <div className="stat">
              <span className="label">Value</span>
              <strong data-testid="portfolio-value">{money(usd?.value, currency)}</strong>
              {base && <span className="muted">{money(base.value, base.currency)}</span>}
            </div>
            <div className="stat">
              <span className="label">Cost basis</span>
              <strong data-testid="portfolio-cost-basis">{money(usd?.costBasis, currency)}</strong>
              {base && <span className="muted">{money(base.costBasis, base.currency)}</span>}
            </div>
            <div className="stat">
              <span className="label">Unrealized P&amp;L</span>
              <strong data-testid="unrealized-pnl" className={direction(usd?.unrealizedGain)}>
                {money(usd?.unrealizedGain, currency)}
              </strong>
              {base && <span className="muted">{money(base.unrealizedGain, base.currency)}</span>}
            </div>
            <div className="stat">
              <span className="label">Realized P&amp;L</span>
              <strong data-testid="realized-pnl" className={direction(usd?.realizedGain)}>
                {money(usd?.realizedGain, currency)}
              </strong>
              {base && <span className="muted">{money(base.realizedGain, base.currency)}</span>}
            </div>
            <div className="stat">
              <span className="label">ROI</span>
              <strong data-testid="portfolio-roi" className={direction(usd?.roiPct)}>
                {percent(usd?.roiPct)}
              </strong>
            </div>
            <div className="stat">
              <span className="label">Best performer</span>
              <strong data-testid="best-performer">{summary.best ?? '—'}</strong>
              <span className={`muted ${direction(summary.holdings.find((h) => h.coin === summary.best)?.unrealizedPct)}`}>{pct(summary.best)}</span>
            </div>
            <div className="stat">
              <span className="label">Worst performer</span>
              <strong data-testid="worst-performer">{summary.worst ?? '—'}</strong>
              <span className={`muted ${direction(summary.holdings.find((h) => h.coin === summary.worst)?.unrealizedPct)}`}>{pct(summary.worst)}</span>
            </div>
          </div>
          {summary.unpriced.length > 0 && (
            <p className="muted">
              No price yet for {summary.unpriced.join(', ')}: valued at nothing, so the value leaves them out.
            </p>
          )}
        </>
      )}
    </section>
  );
}
