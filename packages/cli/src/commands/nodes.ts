// `ee nodes register | list | show <node> | stake <node> | unstake <node>`: a provider's market nodes
// (docs/market.md). Prices and stakes take dollars or integer micro-USD, checked before any request. The node
// token is printed once, by `register` (the control plane keeps only its hash); nothing else ever shows it.
import type { Command } from 'commander';
import { IDENTITY_ID_PATTERN, TIERS } from '@easyenclave/control-plane';
import { apiRequest, type GlobalOptions } from '../client.js';
import { CliError, usageError } from '../errors.js';
import { eligibleText, intArg, nodeId, textArg } from '../market-args.js';
import {
  BalanceSchema,
  NodeDetailSchema,
  NodeListSchema,
  RegisteredNodeSchema,
  StakeResultSchema,
  type NodeDetail,
  type NodeList,
  type RegisteredNode,
  type StakeResult,
} from '@easyenclave/sdk';
import { addIdempotencyOption, AMOUNT, amountBody, idempotentPost, keyOrAdmin, type AmountSpec } from '../mutations.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { addPageOptions, fetchPages, moreLine, type PageOptions } from '../pages.js';
import { formatFields, formatTable, printResult, section, type Cell } from '../output.js';

type ReadOptions = GlobalOptions & { json?: boolean };
type PostOptions = ReadOptions & { idempotencyKey?: string };
type RegisterOptions = PostOptions & {
  region: string;
  tier: string;
  vcpus: string;
  capacityMonths?: string;
  price?: string;
  priceMicroUsd?: string;
  name?: string;
  network?: string;
  ppid?: string;
  provider?: string;
};
type StakeOptions = PostOptions & { amount?: string; microUsd?: string };

const PRICE: AmountSpec = {
  dollarsFlag: '--price',
  microFlag: '--price-micro-usd',
  dollarsField: 'price_per_vcpu_hour',
  microField: 'price_per_vcpu_hour_micro_usd',
  example: '"$0.12" per vCPU-hour',
};

/** The register body, every field checked as the server's schema will (market-nodes.ts RegisterBody). */
function registerBody(o: RegisterOptions): Record<string, unknown> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(o.region))
    throw usageError('--region must be 1 to 64 characters: letters, digits, _ . -');
  if (!(TIERS as readonly string[]).includes(o.tier)) throw usageError(`--tier must be one of ${TIERS.join(', ')}`);
  if (o.network !== undefined && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(o.network))
    throw usageError('--network must be a network name like sandbox-1');
  if (o.ppid !== undefined && !/^[0-9a-f]{32}$/.test(o.ppid))
    throw usageError("--ppid must be 32 lowercase hex characters (the platform's PPID)");
  if (o.provider !== undefined && !(IDENTITY_ID_PATTERN.test(o.provider) && o.provider.startsWith('provider:')))
    throw usageError('--provider must be a provider account id (like provider:0123456789abcdef0123)');
  return {
    region: o.region,
    tier: o.tier,
    vcpus: intArg(o.vcpus, '--vcpus', 1, 4096),
    ...(o.capacityMonths !== undefined
      ? { capacity_months: intArg(o.capacityMonths, '--capacity-months', 1, 120) }
      : {}),
    ...amountBody(o.price, o.priceMicroUsd, PRICE),
    ...(o.name !== undefined ? { name: textArg(o.name, '--name', 128) } : {}),
    ...(o.network !== undefined ? { network: o.network } : {}),
    ...(o.ppid !== undefined ? { ppid: o.ppid } : {}),
    ...(o.provider !== undefined ? { provider: o.provider } : {}),
  };
}

/** The fields a registration and a node's detail both show. */
const nodeFields = (d: RegisteredNode | NodeDetail): [string, Cell][] => [
  ['Node', d.node_id],
  ['Name', d.name],
  ['Provider', d.provider],
  ['Region', d.region],
  ['Tier', d.tier],
  ['Network', d.network],
  ['vCPUs', d.vcpus],
  ['Machine-months', d.machine_months],
  ['Price', `${d.price_per_vcpu_hour_usd} per vCPU-hour`],
];

const registeredTable = (d: RegisteredNode): string =>
  formatFields([
    ...nodeFields(d),
    ['Binding', d.binding],
    [
      'Node token',
      d.node_token ??
        (d.binding === 'ppid'
          ? '(none: agents are bound by PPID)'
          : '(already shown when this request first ran; not stored)'),
    ],
  ]) +
  (d.node_token
    ? "\nStore the node token now: it is not shown again. Give it to the node's agents as EE_NODE_TOKEN."
    : '');

const listTable = (d: NodeList): string =>
  formatTable(
    d.nodes,
    [
      { header: 'node', value: (n) => n.node_id },
      { header: 'provider', value: (n) => n.provider },
      { header: 'region', value: (n) => n.region },
      { header: 'tier', value: (n) => n.tier },
      { header: 'vcpus', value: (n) => n.vcpus, align: 'right' },
      { header: 'price/vcpu-h', value: (n) => n.price_per_vcpu_hour_usd, align: 'right' },
      { header: 'trust', value: (n) => n.trust.toFixed(3), align: 'right' },
      { header: 'status', value: (n) => n.status },
      { header: 'eligible', value: (n) => eligibleText(n.eligible, n.ineligible_reasons) },
    ],
    '(no nodes registered)',
  ) + moreLine(d.next_cursor);

const showTable = (d: NodeDetail): string =>
  formatFields([
    ...nodeFields(d),
    ['Status', d.banned_reason ? `${d.status} (${d.banned_reason})` : d.status],
    ['Stake held', `${d.stake.held_usd} (per ${d.stake.per})`],
    ['Stake required', d.stake.required_usd],
    ['Eligible', eligibleText(d.eligible, d.ineligible_reasons)],
    ['Trust', d.trust.toFixed(3)],
    ['Live agents', `${d.live.agents} (${d.live.attested} attested, ${d.live.healthy} healthy)`],
  ]) +
  section(
    'Agents',
    formatTable(
      d.agents,
      [
        { header: 'agent', value: (a) => a.agent_id },
        { header: 'app', value: (a) => a.app },
        { header: 'via', value: (a) => a.via },
        { header: 'connected', value: (a) => a.connected },
        { header: 'attested', value: (a) => a.attested },
        { header: 'health', value: (a) => a.health },
        { header: 'last attest', value: (a) => a.last_attest },
      ],
      '(no agent bound)',
    ),
  ) +
  (d.slashes.length === 0
    ? ''
    : section(
        'Slashes',
        formatTable(d.slashes, [
          { header: 'when', value: (s) => s.at },
          { header: 'kind', value: (s) => s.kind },
          { header: 'amount', value: (s) => s.amount_usd, align: 'right' },
          { header: 'reason', value: (s) => s.reason },
        ]),
      ));

const stakeTable =
  (verb: string) =>
  (d: StakeResult): string =>
    formatFields([
      [verb, d.amount_usd],
      ['Node', d.node_id],
      ['Provider', d.provider],
      ['Stake held', d.stake.held_usd],
      ['Stake required', d.stake.required_usd],
      // Absent from an idempotent replay (the stored answer predates them).
      ['Eligible', d.eligible === undefined ? null : eligibleText(d.eligible, d.ineligible_reasons ?? [])],
      ['Transfer', d.transfer_id],
    ]);

/**
 * A stake the provider cannot cover: the error names the account the stake comes from (the provider's
 * earnings), what it holds, and the fix. A new provider has no earnings yet, which "not enough available
 * credits" alone did not say. The look-ups are best effort: when they fail, the server's message stands.
 */
async function stakeShortfall(err: CliError, node: string, o: StakeOptions): Promise<CliError> {
  try {
    const detail = await apiRequest(
      { path: `/v1/nodes/${nodeId(node)}`, auth: keyOrAdmin(o), schema: NodeDetailSchema },
      o,
    );
    const provider = detail.provider;
    const balance = await apiRequest(
      { path: `/v1/balances/${encodeURIComponent(provider)}`, auth: keyOrAdmin(o), schema: BalanceSchema },
      o,
    );
    return new CliError(
      `${err.message}. ` +
        `A stake moves credits from the provider's earnings account ${provider}:earnings, which has ` +
        `${balance.available_usd} available (stake held ${detail.stake.held_usd}, required ${detail.stake.required_usd}). ` +
        `A new provider earns nothing until it serves leases: have the operator credit it first, e.g. ` +
        `EE_ADMIN_TOKEN=… ee credits purchase --account ${provider} --amount '${detail.stake.required_usd}' --payment-ref <payment id>`,
      1,
      err.code,
    );
  } catch {
    return err;
  }
}

const stakeOptions = (cmd: Command, amountHelp: string) =>
  addJsonOption(
    addConnectionOptions(
      addIdempotencyOption(
        cmd
          .argument('<node>', 'the node id (node_…)')
          .option('--amount <dollars>', amountHelp)
          .option('--micro-usd <n>', 'the amount as an integer in micro-USD (1 USD = 1000000)'),
      ),
    ),
  );

export function registerNodes(program: Command): void {
  const nodes = program
    .command('nodes')
    .description('market nodes: register, list (admin), show, stake, unstake (provider key, or admin)');

  const register = nodes
    .command('register')
    .description('register a node with its posted price; prints its node token once')
    .requiredOption('--region <region>', 'where the node runs (e.g. eu-west)')
    .requiredOption('--tier <tier>', `service tier: ${TIERS.join(', ')} (sets the outage threshold and penalty)`)
    .requiredOption('--vcpus <n>', 'vCPUs offered (1-4096)')
    .option('--price <dollars>', 'posted price per vCPU-hour in dollars, exactly: "$0.12", 0.12')
    .option('--price-micro-usd <n>', 'posted price per vCPU-hour as an integer in micro-USD (120000 = $0.12)')
    .option('--capacity-months <n>', 'months of capacity offered (1-120; server default 1)')
    .option('--name <name>', 'a display name (default: the node id)')
    .option('--network <network>', 'the network its agents join (server default sandbox-1)')
    .option(
      '--ppid <hex>',
      "sealed networks only: the platform's PPID (32 hex); agents are bound by it instead of a token",
    )
    .option('--provider <account>', 'with the admin token: the provider account to register for');
  addJsonOption(addConnectionOptions(addIdempotencyOption(register)));
  addExamples(register, [
    "EE_API_KEY=ee_provider_… ee nodes register --region eu-west --tier standard --vcpus 4 --price '$0.12'",
    'ee nodes register --provider provider:0123456789abcdef0123 --region us-east --tier premium --vcpus 16 --price-micro-usd 90000 --json',
  ]);
  register.addHelpText(
    'after',
    "\nThe node token is shown only in this output. Store it now and give it to the node's agents as EE_NODE_TOKEN.",
  );
  register.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<RegisterOptions>(cmd);
    const body = registerBody(o);
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        {
          method: 'POST',
          path: '/v1/nodes/register',
          auth: keyOrAdmin(o),
          body,
          idempotencyKey: key,
          schema: RegisteredNodeSchema,
        },
        o,
      ),
    );
    printResult(r, { json: o.json, table: registeredTable });
  });

  const list = addPageOptions(
    nodes
      .command('list')
      .description("nodes, newest first, with eligibility, trust and price (admin), or with --mine a provider's own")
      .option('--mine', "the provider's own nodes, with its API key (EE_API_KEY) instead of the admin token"),
  );
  addExamples(list, [
    'EE_ADMIN_TOKEN=$(cat .easyenclave/admin-token) ee nodes list',
    'EE_API_KEY=ee_provider_… ee nodes list --mine',
    'ee nodes list --all --json',
  ]);
  list.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<PageOptions & { mine?: boolean }>(cmd);
    const auth = o.mine === true ? 'api-key' : 'admin';
    const r = await fetchPages(o, { path: '/v1/nodes', auth, schema: NodeListSchema }, (p) => p.nodes);
    printResult({ nodes: r.rows, next_cursor: r.next_cursor }, { json: o.json, table: listTable });
  });

  const show = nodes
    .command('show')
    .description('one node: price, stake held and required, eligibility and why not, trust, agents, slashes')
    .argument('<node>', 'the node id (node_…)');
  addJsonOption(addConnectionOptions(show));
  addExamples(show, [
    'EE_API_KEY=ee_provider_… ee nodes show node_0123456789abcdef',
    'ee nodes show node_0123456789abcdef --json',
  ]);
  show.action(async (node: string, _o: unknown, cmd: Command) => {
    const o = optsOf<ReadOptions>(cmd);
    printResult(
      await apiRequest({ path: `/v1/nodes/${nodeId(node)}`, auth: keyOrAdmin(o), schema: NodeDetailSchema }, o),
      { json: o.json, table: showTable },
    );
  });

  const stakeCmd = (unstake: boolean) => async (node: string, _o: unknown, cmd: Command) => {
    const o = optsOf<StakeOptions>(cmd);
    const path = `/v1/nodes/${nodeId(node)}/${unstake ? 'unstake' : 'stake'}`;
    const body = amountBody(o.amount, o.microUsd, AMOUNT, unstake);
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        { method: 'POST', path, auth: keyOrAdmin(o), body, idempotencyKey: key, schema: StakeResultSchema },
        o,
      ),
    ).catch(async (err: unknown) => {
      if (unstake || !(err instanceof CliError) || err.code !== 'insufficient_funds') throw err;
      throw await stakeShortfall(err, node, o);
    });
    printResult(r, { json: o.json, table: stakeTable(unstake ? 'Unstaked' : 'Staked') });
  };

  const stake = stakeOptions(
    nodes
      .command('stake')
      .description("move provider earnings into the provider's stake (held per provider, for all its nodes)"),
    'dollars, exactly: "$9.60", 9.60',
  );
  addExamples(stake, ["EE_API_KEY=ee_provider_… ee nodes stake node_0123456789abcdef --amount '$9.60'"]);
  stake.action(stakeCmd(false));

  const unstake = stakeOptions(
    nodes.command('unstake').description('move stake back to earnings (no open period, after the cooldown)'),
    'dollars, exactly (default: the whole stake)',
  );
  addExamples(unstake, [
    'EE_API_KEY=ee_provider_… ee nodes unstake node_0123456789abcdef',
    'ee nodes unstake node_0123456789abcdef --amount 5 --json',
  ]);
  unstake.action(stakeCmd(true));
}
