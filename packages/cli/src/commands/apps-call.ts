// `ee apps call <app> <path>`: one request to an app through the control plane's proxy, the answer's body on
// stdout. With --confidential the SDK verifies the app's agent first (a fresh nonce, the quote, the keyset
// binding, the policy), seals the request to the verified key and opens the answer; the control plane sees
// only ciphertext, and a tampered or truncated answer is an error (docs/confidential.md). --reservation pays
// for it from a reservation (its agent is the one verified; the agent signs a usage receipt).
//
// Exit codes: 0 a 2xx answer; 1 another status (its body still printed), a failed verification or an
// answer that does not open; 2 usage errors.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { APP_NAME_RE } from '@easyenclave/protocol';
import { resolveConnection, type GlobalOptions } from '../client.js';
import { CliError, usageError } from '../errors.js';
import { addConnectionOptions, addExamples, optsOf } from '../options.js';

/** Largest --data read into memory (a file is sent as read; for more, use the SDK with a stream). */
const MAX_DATA_BYTES = 64 * 1024 * 1024;
const MAX_HEADERS = 64;

interface CallOptions extends GlobalOptions {
  method?: string;
  data?: string;
  header?: string[];
  confidential?: boolean;
  reservation?: string;
  policy?: string;
  network?: string;
  allowSandbox?: boolean;
}

function data(arg: string | undefined): Uint8Array | undefined {
  if (arg === undefined) return undefined;
  if (!arg.startsWith('@')) return new TextEncoder().encode(arg);
  const file = arg.slice(1);
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw usageError(`cannot read --data file ${file}: ${(err as Error).message}`);
  }
  if (buf.length > MAX_DATA_BYTES) throw usageError(`--data file ${file} is larger than ${MAX_DATA_BYTES} bytes`);
  return new Uint8Array(buf);
}

function headers(list: string[] | undefined): [string, string][] {
  const out: [string, string][] = [];
  for (const h of list ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw usageError(`--header "${h.slice(0, 80)}" is not "Name: value"`);
    out.push([h.slice(0, i).trim(), h.slice(i + 1).trim()]);
  }
  if (out.length > MAX_HEADERS) throw usageError(`at most ${MAX_HEADERS} --header`);
  return out;
}

export async function callApp(app: string, path: string, o: CallOptions): Promise<void> {
  if (!APP_NAME_RE.test(app)) throw usageError(`"${app.slice(0, 80)}" is not an app name`);
  if (!path.startsWith('/')) throw usageError('the path starts with "/", e.g. /v1/chat/completions');
  if (o.reservation !== undefined && o.confidential !== true)
    throw usageError('--reservation pays for confidential requests: add --confidential');
  const body = data(o.data);
  const method = (o.method ?? (body !== undefined ? 'POST' : 'GET')).toUpperCase();
  const conn = resolveConnection(o);
  let policy: unknown;
  if (o.policy !== undefined) {
    try {
      policy = JSON.parse(readFileSync(o.policy, 'utf8')) as unknown;
    } catch (err) {
      throw usageError(`cannot read --policy ${o.policy}: ${(err as Error).message}`);
    }
  }
  const { EasyEnclave, EasyEnclaveError } = await import('@easyenclave/sdk');
  const ee = new EasyEnclave({
    url: conn.base_url.toString().replace(/\/$/, ''),
    timeout_ms: conn.timeout_ms,
    ...(conn.api_key !== undefined ? { apiKey: conn.api_key } : {}),
    ...(conn.admin_token !== undefined ? { adminToken: conn.admin_token } : {}),
    ...(policy !== undefined ? { policy } : {}),
    ...(o.network !== undefined ? { network: o.network } : {}),
  });
  let res: Response;
  try {
    const client =
      o.confidential === true
        ? await ee.connect(app, {
            confidential: true,
            ...(o.reservation !== undefined ? { reservation: o.reservation } : {}),
            ...(process.env.EE_RESERVATION_TOKEN ? { reservation_token: process.env.EE_RESERVATION_TOKEN } : {}),
            verify: o.allowSandbox === true ? { allow_sandbox: true } : true,
          })
        : await ee.connect(app, { verify: false });
    res = await client.fetch(path, {
      method,
      headers: headers(o.header),
      ...(body !== undefined ? { body } : {}),
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    process.stdout.write(bytes);
  } catch (err) {
    if (err instanceof EasyEnclaveError) throw new CliError(err.message, 1);
    throw new CliError(`the call failed: ${(err as Error).message}`, 1);
  }
  if (res.status < 200 || res.status > 299) throw new CliError(`the app answered ${res.status}`, 1);
}

export function registerAppsCall(apps: Command): void {
  const call = apps
    .command('call')
    .description('send one request to an app through the proxy and print the answer; --confidential seals it')
    .argument('<app>', 'app name')
    .argument('<path>', 'path and query at the app, e.g. /v1/chat/completions')
    .option('-X, --method <method>', 'HTTP method (default: POST with --data, else GET)')
    .option('-d, --data <text|@file>', 'request body: the text, or @file for a file')
    .option('-H, --header <header...>', 'request header "Name: value" (sealed with --confidential)')
    .option('--confidential', 'verify the agent, seal the request to its key, open the answer')
    .option(
      '--reservation <id>',
      'with --confidential: the reservation that pays (its agent is used; its token from EE_RESERVATION_TOKEN, sent sealed)',
    )
    .option('--policy <file>', 'attestation policy JSON for the verification')
    .option('--network <name>', 'the network you expect (sandbox-1 allows sandbox evidence with --allow-sandbox)')
    .option('--allow-sandbox', 'accept sandbox evidence (development networks only)');
  addConnectionOptions(call);
  addExamples(call, [
    'ee apps call demo /healthz',
    "ee apps call chat /v1/chat/completions --confidential --policy policy.json -H 'content-type: application/json' --data @req.json",
    'ee apps call chat /v1/chat/completions --confidential --reservation rsv_… --network sandbox-1 --allow-sandbox --data @req.json',
  ]);
  call.addHelpText(
    'after',
    '\nExit codes: 0 a 2xx answer; 1 another status (body printed), a failed verification or an answer that does not open; 2 usage errors.',
  );
  call.action(async (app: string, path: string, _o: unknown, cmd: Command) =>
    callApp(app, path, optsOf<CallOptions>(cmd)),
  );
}
