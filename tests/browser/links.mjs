// The 联网 administration tab (web/admin-links.js) as two admins use it, in headless Chromium, zh-CN.
// Env: VIGIL_URL, VIGIL_ARTIFACTS, VIGIL_PASSWORD (the admin's), VIGIL_PHASE:
// - issue (at a city): a credential for VIGIL_NAME sharing region VIGIL_REGION; prints it (shown once).
// - link (at the province): links VIGIL_NAME at VIGIL_LINK_URL with VIGIL_CREDENTIAL; waits until it is up
//   and prints the cameras it brings.
// Prints one JSON line per step ({step, ...}); exits non-zero on a failed check.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (k) => process.env[k] || '';
const base = env('VIGIL_URL');
const shots = env('VIGIL_ARTIFACTS') || '.';
const phase = env('VIGIL_PHASE');
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-chromium-'));
const log = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1600, height: 1000 },
  locale: 'zh-CN',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] || await context.newPage();

async function openTab() {
  await page.goto(`${base}/`);
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#login input[name=username]', 'admin');
  await page.fill('#login input[name=password]', env('VIGIL_PASSWORD'));
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#pages a[data-page=admin]');
  await page.goto(`${base}/#/admin/links`);
  await page.waitForSelector('.adm-links form[data-form=grant] input[type=checkbox]');
}

async function issue() {
  await openTab();
  await page.fill('form[data-form=grant] input[name=name]', env('VIGIL_NAME'));
  await page.check(`form[data-form=grant] input[name=region_codes][value="${env('VIGIL_REGION')}"]`);
  await page.click('form[data-form=grant] button[type=submit]');
  const credential = await (await page.waitForSelector('.adm-secret')).inputValue();
  await page.waitForSelector(`.adm-links tr[data-grant="${env('VIGIL_NAME')}"]`);
  const title = await page.textContent('.adm-secret-box h3');
  await page.screenshot({ path: path.join(shots, 'admin-links-city.png') });
  log('issued', { credential, title });
}

async function link() {
  await openTab();
  const name = env('VIGIL_NAME');
  await page.fill('form[data-form=link] input[name=name]', name);
  await page.fill('form[data-form=link] input[name=url]', env('VIGIL_LINK_URL'));
  await page.fill('form[data-form=link] input[name=credential]', env('VIGIL_CREDENTIAL'));
  await page.click('form[data-form=link] button[type=submit]');
  const row = `.adm-links tr[data-link="${name}"][data-state=up]`;
  await page.waitForSelector(row, { timeout: 20000 });
  const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent.trim()));
  await page.screenshot({ path: path.join(shots, 'admin-links-province.png') });
  log('linked', { cells });
}

let failed = false;
try {
  if (phase === 'issue') await issue(); else await link();
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.stack || e}`);
  await page.screenshot({ path: path.join(shots, `links-failed-${phase}.png`) }).catch(() => {});
  console.error('page text:', await page.evaluate(() => document.body.innerText.slice(0, 2000)).catch(() => ''));
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
