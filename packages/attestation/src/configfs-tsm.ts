// A TDX QuoteProvider through Linux configfs-tsm (Documentation/ABI/testing/configfs-tsm), shared by the agent
// and the control plane (which attests itself). One quote:
//
//   mkdir  <tsm>/report/<fresh name>          a new report entry, ours alone
//   read   provider                           must be "tdx_guest" (when the attribute exists)
//   read   generation                         g0, before our write (0 on a fresh entry)
//   write  inblob                             the 64-byte report_data
//   read   outblob                            the quote (the kernel asks the TDX module/QE for it)
//   read   provider, generation               provider again; g1 must be g0 + 1, i.e. nobody wrote to the entry but us
//   rmdir  the entry
//
// If the generation moved, or the quote's REPORTDATA is not what we wrote, another writer raced us: the whole
// sequence is retried once with a fresh entry, then it fails. outblob is polled until it is non-empty (bounded
// by `timeout_ms`): a kernel answers the first read, file-backed test fakes fill it a moment later.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EvidenceType, Measurements, QuoteProvider } from './evidence.js';
import { parseTdxQuote, QUOTE_MAX_BYTES } from './quote.js';
import { REPORT_DATA_LENGTH } from './report-data.js';

/** Where configfs-tsm report entries live on a Linux guest with configfs mounted. */
export const DEFAULT_TSM_REPORT_PATH = '/sys/kernel/config/tsm/report';
export const TSM_TDX_PROVIDER = 'tdx_guest';

export interface ConfigfsQuoteProviderOptions {
  /** The configfs-tsm report directory (default /sys/kernel/config/tsm/report). */
  path?: string;
  /** Upper bound for one outblob read, polling included (default 30 s). */
  timeout_ms?: number;
  /** Poll interval while outblob is empty (default 10 ms). */
  poll_ms?: number;
}

/** True when a configfs-tsm report directory exists at `path`: the machine can produce TDX quotes. */
export function hasConfigfsTsm(path: string = DEFAULT_TSM_REPORT_PATH): boolean {
  return existsSync(path);
}

class RaceError extends Error {}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

async function readOptional(file: string): Promise<string | null> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw err;
  }
}

/** Refuses an entry whose `provider` attribute names another TEE (an entry without one is allowed). */
async function checkProvider(entry: string): Promise<void> {
  const provider = await readOptional(join(entry, 'provider'));
  if (provider !== null && provider !== TSM_TDX_PROVIDER) {
    throw new Error(`configfs-tsm: the report provider is "${provider}", not "${TSM_TDX_PROVIDER}"`);
  }
}

export class ConfigfsQuoteProvider implements QuoteProvider {
  readonly evidence_type: EvidenceType = 'tdx';
  readonly path: string;
  readonly #timeout: number;
  readonly #poll: number;
  /** Measurements of the last quote produced (informational: verifiers read them from the quote). */
  measurements: Partial<Measurements> = {};
  /** Entries created so far (for tests and diagnostics). */
  entries_created = 0;

  constructor(opts: ConfigfsQuoteProviderOptions = {}) {
    this.path = opts.path ?? DEFAULT_TSM_REPORT_PATH;
    this.#timeout = opts.timeout_ms ?? 30_000;
    this.#poll = opts.poll_ms ?? 10;
  }

  async getQuote(report_data: Buffer): Promise<Buffer> {
    if (!Buffer.isBuffer(report_data) || report_data.length !== REPORT_DATA_LENGTH) {
      throw new Error(`report_data must be ${REPORT_DATA_LENGTH} bytes`);
    }
    try {
      return await this.#once(report_data);
    } catch (err) {
      if (!(err instanceof RaceError)) throw err;
      // Someone else wrote to our entry between our write and our read: once more, on a fresh entry.
      try {
        return await this.#once(report_data);
      } catch (again) {
        if (again instanceof RaceError) throw new Error(`configfs-tsm: ${again.message} (twice; giving up)`);
        throw again;
      }
    }
  }

  async #once(report_data: Buffer): Promise<Buffer> {
    const entry = join(this.path, `ee-${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      await mkdir(entry);
    } catch (err) {
      throw new Error(`configfs-tsm: cannot create a report entry under ${this.path}: ${(err as Error).message}`);
    }
    this.entries_created++;
    try {
      await checkProvider(entry);
      const g0 = await readOptional(join(entry, 'generation'));
      await writeFile(join(entry, 'inblob'), report_data);
      const quote = await this.#readOutblob(join(entry, 'outblob'));
      // Again once the report is there: an attribute that appeared late must not let another TEE's report through.
      await checkProvider(entry);
      const g1 = await readOptional(join(entry, 'generation'));
      if (g0 !== null && g1 !== null && Number(g1) !== Number(g0) + 1) {
        throw new RaceError(`the report entry's generation went from ${g0} to ${g1} while we used it`);
      }
      let parsed;
      try {
        parsed = parseTdxQuote(quote);
      } catch (err) {
        throw new Error(`configfs-tsm: outblob is not a TDX quote: ${(err as Error).message}`);
      }
      if (!parsed.td.report_data.equals(report_data)) {
        throw new RaceError("the quote's REPORTDATA is not the report_data we wrote");
      }
      const hex = (b: Buffer): string => b.toString('hex');
      this.measurements = {
        mrtd: hex(parsed.td.mrtd),
        rtmr0: hex(parsed.td.rtmr0),
        rtmr1: hex(parsed.td.rtmr1),
        rtmr2: hex(parsed.td.rtmr2),
        rtmr3: hex(parsed.td.rtmr3),
      };
      return quote;
    } finally {
      await this.#remove(entry);
    }
  }

  async #readOutblob(file: string): Promise<Buffer> {
    const deadline = Date.now() + this.#timeout;
    for (;;) {
      let out: Buffer | null = null;
      try {
        out = await readFile(file);
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT')
          throw new Error(`configfs-tsm: reading outblob failed: ${(err as Error).message}`);
      }
      if (out !== null && out.length > QUOTE_MAX_BYTES)
        throw new Error(`configfs-tsm: outblob is ${out.length} bytes (max ${QUOTE_MAX_BYTES})`);
      if (out !== null && out.length > 0) return out;
      if (Date.now() >= deadline) throw new Error(`configfs-tsm: no quote in outblob within ${this.#timeout} ms`);
      await new Promise((r) => setTimeout(r, this.#poll));
    }
  }

  /** configfs entries go with rmdir; a plain directory (a test fake) needs its files removed first. */
  async #remove(entry: string): Promise<void> {
    try {
      await rmdir(entry);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        await rm(entry, { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }
}
