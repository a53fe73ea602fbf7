// What `npm start` keeps in its state directory (.easyenclave/, or EE_STATE_DIR) besides the database and the
// agent's id, and what it prints once the network is up:
//
//   admin-token, launcher-token, uptime-token   secrets, mode 600, generated once and reused, so the admin API,
//                                               `ee abuse report` (launcher) and `ee usage report` (uptime
//                                               reporter) all work on the local network;
//   config.json                                 where this network listens (no secrets): `ee` reads it when
//                                               neither --url nor EE_CONTROL_URL is given, so `npx ee health`
//                                               talks to the network `npm start` started, whatever its ports.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The tokens npm start configures: file name, the variable the control plane and `ee` read. */
export const TOKENS = [
  { file: 'admin-token', env: 'EE_ADMIN_TOKEN', what: 'admin' },
  { file: 'launcher-token', env: 'EE_LAUNCHER_TOKEN', what: 'launcher (files abuse reports)' },
  { file: 'uptime-token', env: 'EE_UPTIME_TOKEN', what: 'uptime reporter (files usage reports)' },
];
const TOKEN_RE = /^[A-Za-z0-9_-]{16,}$/;
const HOUR_MS = 3_600_000;
/** Version of config.json's shape; `ee` refuses a newer one instead of misreading it. */
export const CONFIG_VERSION = 1;

/** The kept token in `dir/file`, or a new one written there (mode 600). */
export function keptToken(dir, file, say) {
  const path = join(dir, file);
  if (existsSync(path)) {
    const kept = readFileSync(path, 'utf8').trim();
    if (TOKEN_RE.test(kept)) {
      chmodSync(path, 0o600);
      return kept;
    }
    say(`${file} holds no usable token: writing a new one`);
  }
  const token = randomBytes(24).toString('hex');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600); // in case the file existed with other permissions
  return token;
}

/** Every token of TOKENS, by variable name. */
export function keptTokens(dir, say) {
  return Object.fromEntries(TOKENS.map((t) => [t.env, keptToken(dir, t.file, say)]));
}

/** .easyenclave/config.json: the URLs of this network (never a secret: the tokens stay in their files). */
export function writeConfig(dir, { api, proxy, network, app }) {
  const config = {
    version: CONFIG_VERSION,
    control_url: api,
    proxy_url: proxy,
    network,
    app,
    token_files: Object.fromEntries(TOKENS.map((t) => [t.env, t.file])),
    written_at: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

/** The "network is up" text: URLs, curl lines, and `ee` lines that work as printed (from `from`). */
export function readyText({ from, dir, api, proxy, backend, proxyPort, app, appDomain, dbPath, b }) {
  const rel = (p) => (relative(from, p).startsWith('..') ? p : relative(from, p));
  const cat = (file) => `$(cat ${rel(join(dir, file))})`;
  const auth = `-H "Authorization: Bearer ${cat('admin-token')}"`;
  // A usage report names an ended period: the last whole hour.
  const lastHour = new Date((Math.floor(Date.now() / HOUR_MS) - 1) * HOUR_MS).toISOString();
  return [
    '',
    b(`easyenclave local network is up: network sandbox-1, app "${app}" (SANDBOX attestation: development only)`),
    '',
    `  control-plane API    ${api}`,
    `  app proxy            ${proxy}   (host routing: {app}.${appDomain})`,
    `  demo backend         ${backend}`,
    `  database             ${rel(dbPath)} (SQLite)`,
    `  tokens               ${TOKENS.map((t) => rel(join(dir, t.file))).join(', ')}`,
    `  ee configuration     ${rel(join(dir, 'config.json'))} (ee run from here talks to this network)`,
    '',
    b('Try:'),
    `  curl ${api}/v1/proxy/${app}/hello`,
    `  curl -H 'Host: ${app}.${appDomain}' ${proxy}/hello`,
    `  curl http://${app}.${appDomain}:${proxyPort}/hello`,
    `  curl --data-binary 'hello, tunnel' ${api}/v1/proxy/${app}/echo`,
    `  curl ${api}/v1/resolve/${app}`,
    `  curl ${api}/health`,
    `  curl ${auth} ${api}/v1/apps`,
    `  curl ${auth} ${api}/v1/apps/${app}`,
    '',
    b('And with ee (from another terminal):'),
    `  export EE_CONTROL_URL=${api}`,
    `  export EE_ADMIN_TOKEN=${cat('admin-token')}`,
    '  npx ee health',
    `  npx ee apps show ${app}`,
    '  npx ee accounts create --kind user --name Alice        # prints user:… and its API key once',
    "  npx ee credits purchase --account user:… --amount '$200' --payment-ref pay_1",
    `  EE_LAUNCHER_TOKEN=${cat('launcher-token')} npx ee abuse report --node node_… --reason "…"`,
    `  EE_UPTIME_TOKEN=${cat('uptime-token')} npx ee usage report --node node_… --period ${lastHour} --missed-checks 0`,
    `  npx ee ledger verify --db ${rel(dbPath)}`,
    '',
    `Ctrl-C stops everything (agent first, then the control plane).`,
    '',
  ].join('\n');
}
