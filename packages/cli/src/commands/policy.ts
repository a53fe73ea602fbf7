// `ee policy init --from-quote <file> | --from-app <app>`: writes an attestation policy (the allowlist the
// control plane's EE_ALLOWLIST_ASSET and `ee attestation verify --policy` read) from evidence: the
// measurements of a quote file (raw TDX or sandbox quote, or evidence saved by `ee attestation fetch --out`),
// or of an app's agent fetched through the control plane. Trust on first use: the measurements are taken as
// presented, so the output says to compare them with the release's published ones before relying on them.
// The result is checked with the attestation package's own policy parser before it is written.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EvidenceSchema } from '@easyenclave/sdk';
import { apiRequest, type GlobalOptions } from '../client.js';
import { usageError } from '../errors.js';
import { addConnectionOptions, addExamples, optsOf } from '../options.js';
import { formatFields } from '../output.js';

/** The file `ee attestation verify --policy` is documented with. */
export const DEFAULT_POLICY_FILE = 'agent-attestation-allowlist.json';
/** A quote is a few KiB; an evidence JSON with its certificate chain well under this. */
const MAX_INPUT_BYTES = 256 * 1024;
/** TCB statuses a new policy accepts: current platforms only (widen it deliberately, by editing the file). */
const DEFAULT_TCB = { allowed_statuses: ['UpToDate', 'SWHardeningNeeded'], out_of_date_grace_days: 0 };

type InitOptions = GlobalOptions & {
  fromQuote?: string;
  fromApp?: string;
  repo?: string;
  releaseTag?: string;
  network?: string;
  out: string;
  add?: boolean;
  force?: boolean;
};

interface Release {
  repo: string;
  release_tag: string;
  network: string | undefined;
  measurements: Record<'mrtd' | 'rtmr0' | 'rtmr1' | 'rtmr2' | 'rtmr3', string>;
  evidence_type: 'tdx' | 'sandbox';
}

type Attestation = typeof import('@easyenclave/attestation');

/** The measurements of a quote's bytes (TDX or sandbox). */
function quoteMeasurements(
  a: Attestation,
  quote: Buffer,
  where: string,
): Pick<Release, 'measurements' | 'evidence_type'> {
  try {
    if (a.isSandboxQuote(quote))
      return { measurements: a.parseSandboxQuote(quote).measurements, evidence_type: 'sandbox' };
    const td = a.parseTdxQuote(quote).td;
    const hex = (b: Buffer) => b.toString('hex');
    return {
      measurements: {
        mrtd: hex(td.mrtd),
        rtmr0: hex(td.rtmr0),
        rtmr1: hex(td.rtmr1),
        rtmr2: hex(td.rtmr2),
        rtmr3: hex(td.rtmr3),
      },
      evidence_type: 'tdx',
    };
  } catch (err) {
    throw usageError(`${where} is not a TDX or sandbox quote: ${(err as Error).message}`);
  }
}

function fromQuoteFile(a: Attestation, path: string, o: InitOptions): Release {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw usageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (raw.length > MAX_INPUT_BYTES) throw usageError(`${path} is larger than ${MAX_INPUT_BYTES} bytes`);
  // Evidence saved by `ee attestation fetch --out` names its release; a bare quote needs --repo/--release-tag.
  if (raw[0] === 0x7b) {
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw usageError(`${path} is not JSON evidence: ${(err as Error).message}`);
    }
    const ev = EvidenceSchema.safeParse(json);
    if (!ev.success) throw usageError(`${path} is not attestation evidence: ${ev.error.issues[0]?.message}`);
    return {
      repo: o.repo ?? ev.data.repo,
      release_tag: o.releaseTag ?? ev.data.release_tag,
      network: o.network ?? ev.data.network,
      ...quoteMeasurements(a, Buffer.from(ev.data.quote, 'base64'), path),
    };
  }
  if (o.repo === undefined || o.releaseTag === undefined)
    throw usageError('a bare quote does not name its release: give --repo <owner/name> and --release-tag <tag>');
  return { repo: o.repo, release_tag: o.releaseTag, network: o.network, ...quoteMeasurements(a, raw, path) };
}

async function fromApp(a: Attestation, app: string, o: InitOptions): Promise<Release> {
  const ev = await apiRequest(
    {
      path: `/v1/apps/${encodeURIComponent(app)}/attestation`,
      query: { nonce: a.newNonce().toString('hex') },
      auth: 'none',
      schema: EvidenceSchema,
    },
    o,
  );
  return {
    repo: o.repo ?? ev.repo,
    release_tag: o.releaseTag ?? ev.release_tag,
    network: o.network ?? ev.network,
    ...quoteMeasurements(a, Buffer.from(ev.quote, 'base64'), `the evidence of app ${app}`),
  };
}

async function initCommand(o: InitOptions): Promise<void> {
  if ((o.fromQuote === undefined) === (o.fromApp === undefined))
    throw usageError('give exactly one of --from-quote <file> and --from-app <app>');
  if (o.add === true && o.force === true) throw usageError('give --add or --force, not both');
  const exists = existsSync(o.out);
  if (exists && o.add !== true && o.force !== true)
    throw usageError(`${o.out} exists: --add adds this release to it, --force replaces it`);
  const a = await import('@easyenclave/attestation');
  const r = o.fromQuote !== undefined ? fromQuoteFile(a, o.fromQuote, o) : await fromApp(a, o.fromApp!, o);
  const network = r.network ?? (r.evidence_type === 'sandbox' ? 'sandbox-1' : undefined);
  if (network === undefined) throw usageError('the evidence does not name its network: give --network (e.g. forge-1)');
  const net = a.networkPolicy(network);
  if (net === undefined)
    throw usageError(`unknown network "${network}" (known: ${Object.keys(a.NETWORKS).join(', ')})`);
  if (net.sealed && r.evidence_type === 'sandbox')
    throw usageError(`sandbox evidence proves nothing on the sealed network ${network}: use a TDX quote`);

  let base: Record<string, unknown> & { measurements: unknown[]; networks: Record<string, unknown> };
  if (exists && o.add === true) {
    try {
      base = a.parsePolicy(JSON.parse(readFileSync(o.out, 'utf8'))) as typeof base;
    } catch (err) {
      throw usageError(`cannot add to ${o.out}: ${(err as Error).message}`);
    }
  } else {
    base = { version: '', measurements: [], tcb: DEFAULT_TCB, advisory_deny: [], networks: {} };
  }
  const entry = { repo: r.repo, release_tag: r.release_tag, ...r.measurements };
  const same = (m: unknown) => JSON.stringify(m) === JSON.stringify(entry);
  const policy = {
    ...base,
    version: `${new Date().toISOString().slice(0, 10)}-${r.repo}@${r.release_tag}`.slice(0, 128),
    measurements: [...base.measurements.filter((m) => !same(m)), entry],
    networks: { ...base.networks, [network]: { sealed: net.sealed } },
  };
  try {
    a.parsePolicy(policy); // the control plane's own check: what is written loads
  } catch (err) {
    throw usageError(`the evidence does not make a valid policy: ${(err as Error).message}`);
  }
  writeFileSync(o.out, `${JSON.stringify(policy, null, 2)}\n`);
  process.stdout.write(
    `${formatFields([
      [exists && o.add === true ? 'Added to' : 'Wrote', o.out],
      ['Release', `${r.repo}@${r.release_tag}`],
      ['Network', `${network}${net.sealed ? ' (sealed)' : ' (sandbox)'}`],
      ['Evidence', r.evidence_type],
      ['MRTD', r.measurements.mrtd],
    ])}\n\n` +
      'Trust on first use: these measurements are what the evidence presented. Compare them with the release\n' +
      `build's published measurements before relying on ${o.out}.\n` +
      `Use it: ee attestation verify --policy ${o.out}${o.fromApp !== undefined ? ` --app ${o.fromApp}` : ''}` +
      " (or as the control plane's EE_ALLOWLIST_ASSET)\n",
  );
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('attestation policies (allowlists of measurements)');
  const init = policy
    .command('init')
    .description("write an attestation policy from evidence: a quote file, or an app's agent")
    .option('--from-quote <file>', 'a TDX or sandbox quote, or evidence saved by ee attestation fetch --out')
    .option('--from-app <app>', "fetch the evidence of the app's agent through the control plane")
    .option('--repo <owner/name>', 'the release the measurements belong to (default: what the evidence says)')
    .option('--release-tag <tag>', 'the release tag (default: what the evidence says)')
    .option(
      '--network <name>',
      "the network the policy covers (default: the evidence's, or sandbox-1 for sandbox evidence)",
    )
    .option('--out <file>', 'the policy file to write', DEFAULT_POLICY_FILE)
    .option('--add', 'add this release to an existing policy file')
    .option('--force', 'replace an existing policy file');
  addConnectionOptions(init);
  addExamples(init, [
    'ee policy init --from-app demo',
    'ee policy init --from-quote quote.bin --repo acme/api --release-tag v1.4.0 --network forge-1',
    'ee attestation fetch --app demo --out evidence.json && ee policy init --from-quote evidence.json --add',
  ]);
  init.action((_o: unknown, cmd: Command) => initCommand(optsOf<InitOptions>(cmd)));
}
