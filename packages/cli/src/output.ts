// Output for every `ee` read command: JSON (--json: one document on stdout, nothing else there) or a human
// table (the default). Progress goes to stderr, only on a terminal, so pipes and --json stay clean. Money
// arrives from the SDK as bigint and is printed as exact JSON integers.
import { stringifyJson } from '@easyenclave/sdk';
import { sanitize } from './errors.js';

export type Cell = string | number | boolean | null | undefined;

export interface Column<Row> {
  header: string;
  value: (row: Row) => Cell;
  /** Numbers read better right-aligned. */
  align?: 'left' | 'right';
}

export interface PrintOptions<T> {
  json: boolean | undefined;
  /** The human form (no trailing newline needed). */
  table: (data: T) => string;
}

/** --json: `data` as pretty JSON on stdout; otherwise `table(data)`. */
export function printResult<T>(data: T, opts: PrintOptions<T>): void {
  process.stdout.write(
    opts.json === true ? `${stringifyJson(data, 2)}\n` : `${opts.table(data).replace(/\n*$/, '')}\n`,
  );
}

/** The text of a cell: '-' for null/undefined/empty, yes/no for booleans. */
export function cellText(v: Cell): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return sanitize(String(v));
}

/** A table with a header row; columns are as wide as their widest cell, two spaces apart. */
export function formatTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[], empty = '(none)'): string {
  if (rows.length === 0) return empty;
  const cells = rows.map((r) => columns.map((c) => cellText(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => (row[i] as string).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i]?.align === 'right' ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header.toUpperCase())), ...cells.map(line)].join('\n');
}

/** Label/value lines, labels padded to one width. */
export function formatFields(fields: ReadonlyArray<readonly [label: string, value: Cell]>): string {
  const width = Math.max(0, ...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${k.padEnd(width)}  ${cellText(v)}`).join('\n');
}

/** A titled block, for composing tables: "\nTitle\n<body>". */
export function section(title: string, body: string): string {
  return `\n${title}\n${body}`;
}

export interface Progress {
  done(): void;
}

/** Shows "ee: <message>…" on stderr while a long operation runs; nothing when stderr is not a terminal. */
export function progress(message: string): Progress {
  if (process.stderr.isTTY !== true) return { done: () => undefined };
  process.stderr.write(`ee: ${message}…`);
  return { done: () => void process.stderr.write('\r\x1b[K') };
}

/** Runs `fn` with a progress line shown meanwhile. */
export async function withProgress<T>(message: string, fn: () => Promise<T>): Promise<T> {
  const p = progress(message);
  try {
    return await fn();
  } finally {
    p.done();
  }
}
