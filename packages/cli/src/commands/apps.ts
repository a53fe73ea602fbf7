// `ee apps list | show <app> | resolve <app>`: the apps the control plane knows (admin), one app with its
// agents, registrations and recent events (admin), and whether an app may receive traffic (public).
import type { Command } from 'commander';
import { APP_NAME_RE } from '@easyenclave/protocol';
import {
  AppDetailSchema,
  AppsSchema,
  ResolveSchema,
  type AppDetail,
  type AppList,
  type Resolved,
} from '@easyenclave/sdk';
import { apiRequest, type GlobalOptions } from '../client.js';
import { usageError } from '../errors.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult, section } from '../output.js';
import { registerAppsCall } from './apps-call.js';

type ReadOptions = GlobalOptions & { json?: boolean };

/** Recent events shown in the table form of `apps show` (--json has all the server sends). */
const SHOW_RECENT_EVENTS = 5;

function appPath(app: string): string {
  if (!APP_NAME_RE.test(app))
    throw usageError(
      `"${app.slice(0, 80)}" is not an app name (a DNS label: a-z, 0-9, inner hyphens, at most 63 characters)`,
    );
  return encodeURIComponent(app);
}

const listTable = (d: AppList): string =>
  formatTable(
    d.apps,
    [
      { header: 'app', value: (a) => a.app_name },
      { header: 'status', value: (a) => a.status },
      { header: 'network', value: (a) => a.network },
      { header: 'agents', value: (a) => `${a.agents_routable}/${a.agents_connected}`, align: 'right' },
      { header: 'repo', value: (a) => a.repo },
      { header: 'expires', value: (a) => a.expires_at },
      { header: 'last attest', value: (a) => a.last_attest },
    ],
    '(no apps registered)',
  );

const showTable = (d: AppDetail): string =>
  formatFields([
    ['App', d.app_name],
    ['Status', d.status],
    ['Repo', d.repo],
    ['Network', `${d.network}${d.sealed ? ' (sealed)' : ''}`],
    ['Created', d.created_at],
    ['Expires', d.expires_at],
    ['Last attest', d.last_attest],
  ]) +
  section(
    'Agents',
    formatTable(d.agents, [
      { header: 'agent', value: (a) => a.agent_id },
      { header: 'release', value: (a) => a.release_tag },
      { header: 'status', value: (a) => a.status },
      { header: 'connected', value: (a) => a.connected },
      { header: 'streams', value: (a) => a.streams_active, align: 'right' },
      { header: 'health', value: (a) => a.health },
      { header: 'attested', value: (a) => (a.attested ? (a.evidence_type ?? 'yes') : (a.attest_failure ?? 'no')) },
      { header: 'last attest', value: (a) => a.last_attest },
    ]),
  ) +
  section(
    'Registrations',
    formatTable(d.registrations, [
      { header: 'release', value: (r) => r.release_tag },
      { header: 'status', value: (r) => r.status },
      { header: 'created', value: (r) => r.created_at },
      { header: 'expires', value: (r) => r.expires_at },
    ]),
  ) +
  section(
    `Recent attestations (latest ${SHOW_RECENT_EVENTS})`,
    formatTable(d.recent_attestations.slice(0, SHOW_RECENT_EVENTS), [
      { header: 'at', value: (x) => x.at },
      { header: 'agent', value: (x) => x.agent_id },
      { header: 'reason', value: (x) => x.reason },
      { header: 'result', value: (x) => (x.ok ? 'ok' : (x.failure ?? 'failed')) },
      { header: 'evidence', value: (x) => x.evidence_type },
    ]),
  ) +
  section(
    `Recent health events (latest ${SHOW_RECENT_EVENTS})`,
    formatTable(d.recent_health_events.slice(0, SHOW_RECENT_EVENTS), [
      { header: 'at', value: (h) => h.at },
      { header: 'agent', value: (h) => h.agent_id },
      { header: 'kind', value: (h) => h.kind },
      { header: 'detail', value: (h) => h.detail },
    ]),
  );

const resolveTable = (r: Resolved): string =>
  formatFields([
    ['App', r.app_name],
    ['Status', r.status],
    ['Endpoint', r.endpoint],
    ['Host endpoint', r.host_endpoint],
    ['Network', `${r.network}${r.sealed === true ? ' (sealed)' : ''}`],
    ['Routable agents', r.agents],
    ['Last attest', r.last_attest],
    ['Expires', r.expires_at],
  ]);

export function registerApps(program: Command): void {
  const apps = program.command('apps').description('inspect the apps a control plane knows, and call them');
  registerAppsCall(apps);

  const list = apps
    .command('list')
    .description('every app ever registered: status, network, routable/connected agents, expiry (admin)');
  addJsonOption(addConnectionOptions(list));
  addExamples(list, [
    'EE_ADMIN_TOKEN=$(cat .easyenclave/admin-token) ee apps list',
    'ee apps list --url https://control.example.com --json | jq -r ".apps[].app_name"',
  ]);
  list.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<ReadOptions>(cmd);
    printResult(await apiRequest({ path: '/v1/apps', auth: 'admin', schema: AppsSchema }, o), {
      json: o.json,
      table: listTable,
    });
  });

  const show = apps
    .command('show')
    .description(
      'one app: status, agents (connection, routing, health, attestation), registrations, recent events (admin)',
    )
    .argument('<app>', 'app name');
  addJsonOption(addConnectionOptions(show));
  addExamples(show, ['ee apps show demo', 'ee apps show demo --json | jq ".agents[] | {agent_id, status}"']);
  show.action(async (app: string, _o: unknown, cmd: Command) => {
    const o = optsOf<ReadOptions>(cmd);
    printResult(await apiRequest({ path: `/v1/apps/${appPath(app)}`, auth: 'admin', schema: AppDetailSchema }, o), {
      json: o.json,
      table: showTable,
    });
  });

  const resolve = apps
    .command('resolve')
    .description('whether an app may receive traffic now, and where (public: GET /v1/resolve/<app>)')
    .argument('<app>', 'app name');
  addJsonOption(addConnectionOptions(resolve));
  addExamples(resolve, ['ee apps resolve demo', 'ee apps resolve demo --json | jq -r .endpoint']);
  resolve.addHelpText(
    'after',
    '\nExit codes: 0 routable; 1 not (e.g. app_offline, app_unattested, unknown_app) or unreachable; 2 usage errors.',
  );
  resolve.action(async (app: string, _o: unknown, cmd: Command) => {
    const o = optsOf<ReadOptions>(cmd);
    printResult(await apiRequest({ path: `/v1/resolve/${appPath(app)}`, auth: 'none', schema: ResolveSchema }, o), {
      json: o.json,
      table: resolveTable,
    });
  });
}
