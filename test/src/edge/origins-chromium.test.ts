// One app's cookies and scripts reach neither another app nor the API, in a real browser (headless Chromium
// driven by playwright-core; issue 11 item 10). Names resolve to loopback through Chromium's host resolver
// rules: the API at api.test, apps at {app}.app.test on the proxy port. Host routing gives each app its own
// origin, and the proxy keeps its cookies host-only; the path entry on the API's origin serves no document or
// script and sets no cookie. Skipped where Chromium is absent, except under CI.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, onCleanup, startCp, waitFor } from '../helpers/network.js';
import { startApps, type AppBackend } from './apps.js';

after(closeAll);

const CHROMIUM = process.env.EE_CHROMIUM ?? '/usr/bin/chromium';

function chromiumSkip(): false | string {
  if (existsSync(CHROMIUM)) return false;
  const msg = `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (process.env.CI) throw new Error(`${msg}; required under CI`);
  console.warn(`SKIPPING browser origin tests: ${msg}`);
  return `SKIPPED: ${msg}`;
}

describe('origins in Chromium', { skip: chromiumSkip() }, () => {
  let cp: ControlPlane;
  let browser: Browser;
  let context: BrowserContext;
  let alpha: AppBackend;
  let beta: AppBackend;
  const api = () => `http://api.test:${cp.api_port}`;
  const app = (name: string) => `http://${name}.app.test:${cp.proxy_port}`;

  before(async () => {
    cp = await startCp();
    ({ alpha, beta } = await startApps(cp, (name) => ({
      api: `${api()}/health`,
      other: `${app(name === 'alpha' ? 'beta' : 'alpha')}/cookies`,
    })));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--host-resolver-rules=MAP *.test 127.0.0.1',
        '--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable',
      ],
    });
    onCleanup(() => browser.close());
    context = await browser.newContext();
  });

  it("host entry: an app's page runs in its own origin; its cookies and script reach neither the other app nor the API", async () => {
    const page = await context.newPage();
    const res = await page.goto(`${app('alpha')}/page`);
    assert.equal(res?.status(), 200);
    const report = await waitFor(() => alpha.reports[0], 30_000, "alpha's page to report");
    assert.equal(report.origin, app('alpha'));
    assert.match(String(report.cookie), /js_alpha=1/, 'the page runs and has its own cookies');
    assert.equal(report.api, 'blocked', 'the API is another origin: not readable from an app page');
    assert.equal(report.other, 'blocked', 'the other app is another origin');

    await page.goto(`${app('beta')}/cookies`);
    const seen = beta.cookies_seen.at(-1) ?? '';
    assert.doesNotMatch(seen, /alpha/, `beta received alpha's cookies: ${seen}`);
    const stored = await context.cookies(app('beta'));
    assert.deepEqual(
      stored.filter((c) => /alpha/.test(c.name)),
      [],
      'no cookie of alpha is sent to beta (a Domain attribute would have shared it)',
    );
    await page.close();
  });

  it("path entry: no app document or script runs on the API's origin, and no app sets a cookie there", async () => {
    const page = await context.newPage();
    const before_reports = alpha.reports.length;
    const refused = await page.goto(`${api()}/v1/proxy/alpha/page`);
    assert.equal(refused?.status(), 403);
    assert.equal(await page.evaluate('document.contentType'), 'application/json');

    // Served without a Content-Type: the browser may not sniff it into a document that runs script.
    const sniff = await page.goto(`${api()}/v1/proxy/alpha/sniff`);
    assert.equal(sniff?.status(), 200);
    assert.equal(await page.evaluate('window.ran'), undefined);

    await page.goto(`${api()}/v1/proxy/alpha/setcookie`);
    assert.deepEqual(await context.cookies(api()), [], 'no cookie on the API origin');
    await page.goto(`${api()}/v1/proxy/beta/cookies`);
    assert.equal(beta.cookies_seen.at(-1), '', 'beta, through the path entry, receives no cookie of alpha');
    assert.equal(alpha.reports.length, before_reports, "alpha's script never ran on the API's origin");
    await page.close();
  });
});
