// The local network's configuration, written by `npm start` into .easyenclave/config.json: where its control
// plane listens. `ee` looks for it from the current directory upwards (like git looks for .git) and uses its
// URL when neither --url nor EE_CONTROL_URL is given, so `npx ee health` after `EE_CONTROL_PORT=18088 npm
// start` talks to that network, not to whatever else listens on 8088. It holds no secrets (tokens stay in
// their own files) and is read only for the URL.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { usageError } from './errors.js';

export const LOCAL_CONFIG_PATH = join('.easyenclave', 'config.json');
/** The file is a few hundred bytes; anything far larger is not ours. */
const MAX_CONFIG_BYTES = 64 * 1024;
/** Directories walked upwards at most (a deep tree ends the search rather than the walk ending the process). */
const MAX_PARENT_DIRS = 64;
/** The shape version this CLI reads (scripts/local-network.mjs CONFIG_VERSION). */
const CONFIG_VERSION = 1;

const LocalConfigSchema = z.looseObject({
  version: z.number().int(),
  control_url: z.url().max(2048),
});

export interface LocalConfig {
  path: string;
  control_url: string;
}

/** The nearest .easyenclave/config.json from `cwd` upwards, or undefined; a broken one is a usage error. */
export function findLocalConfig(cwd: string = process.cwd()): LocalConfig | undefined {
  let dir = cwd;
  for (let i = 0; i < MAX_PARENT_DIRS; i++) {
    const path = join(dir, LOCAL_CONFIG_PATH);
    if (existsSync(path)) return readLocalConfig(path);
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
  return undefined;
}

function readLocalConfig(path: string): LocalConfig {
  const broken = (why: string) =>
    usageError(`${path}: ${why} (written by npm start; remove it, or set EE_CONTROL_URL / --url)`);
  if (statSync(path).size > MAX_CONFIG_BYTES) throw broken(`larger than ${MAX_CONFIG_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw broken(`not JSON: ${(err as Error).message}`);
  }
  const r = LocalConfigSchema.safeParse(json);
  if (!r.success) throw broken(`not a local network configuration: ${r.error.issues[0]?.message ?? 'invalid'}`);
  if (r.data.version > CONFIG_VERSION)
    throw broken(`version ${r.data.version} is newer than this ee understands (${CONFIG_VERSION})`);
  return { path, control_url: r.data.control_url };
}
