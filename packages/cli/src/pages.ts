// The list commands' paging (`ee leases list`, `ee payouts list`, `ee abuse list`, `ee nodes list`): --limit per page, --cursor
// to continue, --all to follow every page; the merged pages print as one list with the last next_cursor.
import type { Command } from 'commander';
import type { z } from 'zod';
import { apiRequest, type AuthMode, type GlobalOptions } from './client.js';
import { usageError } from './errors.js';
import { addConnectionOptions, addJsonOption } from './options.js';

/** The server's largest page (market/store/lists.ts MAX_PAGE_ROWS). */
export const MAX_LIST_PAGE = 200;
/** Pages --all follows at most: a runaway list ends with its cursor printed instead of never ending. */
export const MAX_LIST_PAGES = 1000;

export type PageOptions = GlobalOptions & { json?: boolean; limit: string; cursor?: string; all?: boolean };

export function addPageOptions(cmd: Command): Command {
  return addJsonOption(
    addConnectionOptions(
      cmd
        .option('--limit <n>', `entries per page (1-${MAX_LIST_PAGE})`, '50')
        .option('--cursor <cursor>', "continue from a previous page's next_cursor")
        .option('--all', 'follow every page'),
    ),
  );
}

/** Every requested page of `path` (one, or all with --all), its rows merged, with the last next_cursor. */
export async function fetchPages<S extends z.ZodType, T>(
  o: PageOptions,
  req: { path: string; auth: AuthMode; schema: S; query?: Record<string, string | undefined> },
  rowsOf: (page: z.output<S>) => readonly T[],
): Promise<{ rows: T[]; next_cursor: string | null }> {
  if (!/^\d{1,3}$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > MAX_LIST_PAGE)
    throw usageError(`--limit must be an integer from 1 to ${MAX_LIST_PAGE}`);
  const rows: T[] = [];
  let cursor = o.cursor;
  let next: string | null = null;
  for (let n = 0; n < MAX_LIST_PAGES; n++) {
    const page = await apiRequest(
      { path: req.path, query: { ...req.query, limit: o.limit, cursor }, auth: req.auth, schema: req.schema },
      o,
    );
    rows.push(...rowsOf(page));
    next = (page as { next_cursor?: string | null }).next_cursor ?? null;
    if (o.all !== true || next === null) break;
    cursor = next;
  }
  return { rows, next_cursor: next };
}

/** The line after a table when there is more. */
export const moreLine = (next: string | null): string => (next ? `\nmore: --cursor ${next}` : '');
