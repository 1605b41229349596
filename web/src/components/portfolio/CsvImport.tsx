// CSV import (importTrades, all or none): drop a file or choose one, see its lines
// numbered, import; a bad line is named in an alert and marked in the preview.
import { useEffect, useRef, useState } from 'react';
import { useMutation } from 'urql';
import { graphql } from '../../gql';
import type { ImportFormat, PfImportMutation } from '../../gql/graphql';
import { describe, problemOf, type ApiProblem } from '../../api/errors';
import { ErrorNote } from '../ErrorNote';
import { useIntentKeys, useSync } from './shared';

const PfImport = graphql(`
  mutation PfImport($id: ID!, $format: ImportFormat!, $csv: String!, $key: String) {
    importTrades(portfolioId: $id, format: $format, csv: $csv, idempotencyKey: $key) {
      receipt {
        id
        version
      }
      imported
      alreadyRecorded
      skipped {
        line
        reason
      }
    }
  }
`);

const PREVIEW = 200;
const FORMATS: { value: ImportFormat; words: string }[] = [
  { value: 'GENERIC', words: 'Generic (coinfold columns)' },
  { value: 'BINANCE', words: 'Binance spot trade history' },
  { value: 'COINBASE', words: 'Coinbase transaction history' },
];

type Result = PfImportMutation['importTrades'];

/** The line an import problem names ("line 3"), if any. */
function lineOf(problem: ApiProblem | undefined): number | undefined {
  const match = problem?.code === 'VALIDATION' ? /^line (\d+)$/.exec(problem.field ?? '') : null;
  return match?.[1] ? Number(match[1]) : undefined;
}

/** A file's text (with FileReader where Blob.text is missing). */
function readText(file: File): Promise<string> {
  if (typeof file.text === 'function') return file.text();
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(typeof reader.result === 'string' ? reader.result : '');
    reader.onerror = () => reject(reader.error ?? new Error('unreadable'));
    reader.readAsText(file);
  });
}

export function CsvImport() {
  const { id, afterWrite } = useSync();
  const [format, setFormat] = useState<ImportFormat>('GENERIC');
  const [file, setFile] = useState<{ name: string; text: string }>();
  const [readError, setReadError] = useState<string>();
  const [dragging, setDragging] = useState(false);
  const [problem, setProblem] = useState<ApiProblem>();
  const [result, setResult] = useState<Result>();
  const [{ fetching }, run] = useMutation(PfImport);
  const intents = useIntentKeys();
  const fileInput = useRef<HTMLInputElement>(null);
  const preview = useRef<HTMLOListElement>(null);

  const lines = file ? file.text.replace(/\r\n?/g, '\n').replace(/\n$/, '').split('\n') : [];
  const bad = lineOf(problem);

  useEffect(() => {
    if (bad === undefined) return;
    const element = preview.current?.querySelector<HTMLElement>(`[data-line="${bad}"]`);
    element?.scrollIntoView?.({ block: 'nearest', behavior: 'smooth' });
  }, [bad, problem]);

  const take = async (chosen: File | null | undefined) => {
    setProblem(undefined);
    setResult(undefined);
    setReadError(undefined);
    if (!chosen) return;
    if (!/\.csv$/i.test(chosen.name) && chosen.type !== 'text/csv' && chosen.type !== '') {
      setReadError(`${chosen.name} is not a .csv file.`);
      return;
    }
    try {
      setFile({ name: chosen.name, text: await readText(chosen) });
    } catch {
      setReadError(`${chosen.name} could not be read.`);
    }
  };

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setProblem(undefined);
    setResult(undefined);
    if (!file) {
      setReadError('Choose a .csv file first, or drop one here.');
      return;
    }
    const answer = await run({ id, format, csv: file.text, key: intents.keyFor([format, file.text]) });
    const done = answer.data?.importTrades;
    if (!done) {
      setProblem(problemOf(answer.error));
      return;
    }
    intents.done([format, file.text]);
    setResult(done);
    afterWrite(done.receipt.version);
  };

  const lineItem = (text: string, n: number) => (
    <li key={n} data-line={n} value={n} className={n === bad ? 'bad' : undefined} aria-invalid={n === bad ? true : undefined}>
      <code>{text || ' '}</code>
    </li>
  );

  return (
    <section className="card">
      <h2>Import trades from CSV</h2>
      <div
        className={`pf-drop${dragging ? ' over' : ''}`}
        data-testid="csv-drop-zone"
        onDragOver={(e) => {
          e.preventDefault();
          e.dataTransfer.dropEffect = 'copy';
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void take(e.dataTransfer.files[0]);
        }}
      >
        <p>Drag a .csv export here, or choose it:</p>
        <form className="row pf-align-end" onSubmit={(e) => void submit(e)} noValidate>
          <div className="pf-field">
            <label htmlFor="pf-csv-file">CSV file</label>
            <input
              ref={fileInput}
              id="pf-csv-file"
              type="file"
              accept=".csv,text/csv"
              onChange={(e) => {
                void take(e.target.files?.[0]);
              }}
            />
          </div>
          <div className="pf-field">
            <label htmlFor="pf-csv-format">Format</label>
            <select id="pf-csv-format" value={format} onChange={(e) => setFormat(e.target.value as ImportFormat)}>
              {FORMATS.map((f) => (
                <option key={f.value} value={f.value}>
                  {f.words}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" className="primary" disabled={fetching}>
            Import
          </button>
        </form>
        <p className="muted small">
          Generic: a header <code>executed_at,side,coin,quantity,price,quote,fee,external_id,note</code>, then one trade a line. All or none: a bad line stops the import and nothing is stored; trades already imported (same external id) are not recorded twice.
        </p>
      </div>
      {readError && (
        <p className="error" role="alert">
          {readError}
        </p>
      )}
      {problem && bad !== undefined ? (
        <p className="error" role="alert" data-code={problem.code}>
          Nothing was imported: {describe(problem)}
        </p>
      ) : (
        <ErrorNote problem={problem} />
      )}
      {result && (
        <div className="ok" role="status" data-testid="import-result">
          <p>
            Imported {result.imported} trades, skipped {result.skipped.length}
            {result.alreadyRecorded > 0 ? ` (and ${result.alreadyRecorded} already recorded, left as they were)` : ''}.
          </p>
          {result.skipped.length > 0 && (
            <ul>
              {result.skipped.map((s) => (
                <li key={s.line}>
                  line {s.line}: {s.reason}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {file && (
        <div className="pf-preview-box">
          <h3>
            {file.name}: {lines.length} {lines.length === 1 ? 'line' : 'lines'}
            {lines.length > PREVIEW ? `, the first ${PREVIEW} shown` : ''}
          </h3>
          <ol className="pf-preview" ref={preview} aria-label={`Lines of ${file.name}`} tabIndex={0}>
            {lines.slice(0, PREVIEW).map((text, i) => lineItem(text, i + 1))}
            {bad !== undefined && bad > PREVIEW && lines[bad - 1] !== undefined && lineItem(lines[bad - 1] ?? '', bad)}
          </ol>
        </div>
      )}
    </section>
  );
}
