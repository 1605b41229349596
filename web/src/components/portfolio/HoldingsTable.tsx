// Holdings: coin, quantity, cost basis, value, unrealized P&L and ROI per coin, for
// the live holdings and for a past moment's (each row data-coin, each quantity cell
// data-testid="qty-<COIN>").
import { direction, money, percent, price, quantity } from '../../format';
import type { HoldingRow } from './shared';

export function HoldingsTable(props: {
  holdings: HoldingRow[] | undefined;
  currency: string;
  caption: string;
  /** What the empty table says. */
  emptyText: string;
}) {
  const rows = props.holdings ?? [];
  return (
    <div className="pf-scroll">
      <table>
        <caption className="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Coin</th>
            <th scope="col" className="num">Quantity</th>
            <th scope="col" className="num">Price</th>
            <th scope="col" className="num">Cost basis</th>
            <th scope="col" className="num">Value</th>
            <th scope="col" className="num">Unrealized P&amp;L</th>
            <th scope="col" className="num">ROI</th>
            <th scope="col" className="num">Realized P&amp;L</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((h) => (
            <tr key={h.coin} data-coin={h.coin} className={isZero(h.quantity) ? 'pf-closed' : undefined}>
              <th scope="row">{h.coin}</th>
              <td className="num" data-testid={`qty-${h.coin}`}>
                {quantity(h.quantity)}
              </td>
              <td className="num">{price(h.price, props.currency)}</td>
              <td className="num">{money(h.costBasis, props.currency)}</td>
              <td className="num">{money(h.value, props.currency)}</td>
              <td className={`num ${direction(h.unrealizedGain)}`}>{money(h.unrealizedGain, props.currency)}</td>
              <td className={`num ${direction(h.unrealizedPct)}`}>{percent(h.unrealizedPct)}</td>
              <td className={`num ${direction(h.realizedGain)}`}>{money(h.realizedGain, props.currency)}</td>
            </tr>
          ))}
          {props.holdings && rows.length === 0 && (
            <tr>
              <td colSpan={8} className="muted">
                {props.emptyText}
              </td>
            </tr>
          )}
          {!props.holdings && (
            <tr>
              <td colSpan={8} className="muted">
                Loading…
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Whether a decimal string is zero ("0", "0.000", "-0"), without floats. */
export function isZero(value: string): boolean {
  return /^[-+]?0*(\.0*)?$/.test(value.trim());
}
