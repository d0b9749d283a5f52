// The administration pages as an admin uses them (tests/console_admin.rs starts the server and simulator).
// Logs in through the form, then: a region (renamed; another deleted, a used one refused) and a site, a camera tested before saving (online with a
// snapshot; a closed port reads offline with an error and saves nothing), an NVR import, a position edited
// and another deleted, a camera with credentials tested from its edit form without retyping the password, a
// user (and a locked one unlocked) and a token (secret shown once), the audit log and the health figures;
// English and a laptop screen at the end.
// Env: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, VIGIL_SIM_PORT (no credentials), VIGIL_CRED_SIM_PORT (user
// operator, password right-pass), VIGIL_CLOSED_PORT, VIGIL_ARTIFACTS.
// Prints one JSON line per step; exits non-zero at the first step that fails.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const base = process.env.VIGIL_URL;
const simPort = process.env.VIGIL_SIM_PORT;
const closedPort = process.env.VIGIL_CLOSED_PORT;
const credPort = process.env.VIGIL_CRED_SIM_PORT;
const shots = process.env.VIGIL_ARTIFACTS;
const simUrl = (n) => `rtsp://127.0.0.1:${simPort}/cam${n}`;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-chromium-'));
const SLOW = { timeout: 30000 };

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1920, height: 1080 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const pageErrors = [];
let ok = true;
const t0 = Date.now();
const log = (step, extra = {}) => console.log(JSON.stringify({ step, s: ((Date.now() - t0) / 1000).toFixed(1), ...extra }));

try {
  const page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') console.error('page:', m.text()); });
  const shot = (name) => page.screenshot({ path: path.join(shots, name) });
  // What the API holds, read with the page's own session (never through the UI under test).
  const apiGet = (p) => page.evaluate(async (u) => (await fetch(`/api/v1${u}`)).json(), p);
  const tab = async (id) => {
    await page.evaluate((h) => { location.hash = h; }, `#/admin/${id}`);
    await page.waitForSelector(`.adm-tabs a[data-tab="${id}"][aria-current=page]`);
  };
  const form = (name) => page.locator(`form[data-form="${name}"]`);

  // The shell first opens the role's first page (the wall); its module is held back here so that it
  // arrives after the administration the admin asked for meanwhile: the page asked for last must stay.
  let releaseWall;
  const wallHeld = new Promise((r) => { releaseWall = r; });
  await page.route('**/wall.js', async (r) => { await wallHeld; await r.continue(); });

  // Log in through the form, as a person does; Enter submits.
  await page.goto(`${base}/`);
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#login input[name=username]', process.env.VIGIL_USER);
  await page.fill('#login input[name=password]', process.env.VIGIL_PASSWORD);
  await page.press('#login input[name=password]', 'Enter');
  await page.waitForSelector('#whoami:not([hidden])');
  await page.waitForSelector('#pages a[data-page=admin]');
  log('login');
  await tab('regions');
  const wallLoaded = page.waitForResponse((r) => r.url().endsWith('/wall.js'));
  releaseWall();
  await wallLoaded;
  await page.waitForTimeout(500);
  if (!(await page.locator('.adm-tabs a[data-tab="regions"][aria-current=page]').isVisible())) {
    throw new Error('the wall, asked for first, replaced the administration asked for after it');
  }
  await page.unroute('**/wall.js');
  log('last page asked for stays');

  // A region below 赣州市, from the keyboard; the same code again shows the server's refusal beside the form
  // and keeps what was typed.
  await tab('regions');
  const rf = form('region');
  await rf.locator('select[name=parent_code]').selectOption('360700');
  await rf.locator('select[name=level]').selectOption('district');
  await rf.locator('input[name=code]').fill('360703');
  await rf.locator('input[name=name]').fill('南康县');
  await rf.locator('input[name=name]').press('Enter');
  await page.waitForSelector('li[data-code="360700"] li[data-code="360703"]');
  // The name was mistyped: renamed in place; Escape first leaves it as it was.
  const regionRow = page.locator('li[data-code="360703"] > .adm-tree-row');
  await regionRow.locator('button', { hasText: '改名' }).click();
  await page.locator('form[data-form="region-rename"] input[name=name]').fill('南康市');
  await page.locator('form[data-form="region-rename"] input[name=name]').press('Escape');
  if ((await regionRow.locator('strong').textContent()) !== '南康县') throw new Error('Escape renamed the region');
  await regionRow.locator('button', { hasText: '改名' }).click();
  await page.locator('form[data-form="region-rename"] input[name=name]').fill('南康区');
  await page.locator('form[data-form="region-rename"] input[name=name]').press('Enter');
  await page.locator('li[data-code="360703"] > .adm-tree-row strong', { hasText: '南康区' }).waitFor();
  if ((await apiGet('/regions')).find((r) => r.code === '360703')?.name !== '南康区') throw new Error('rename not saved');
  // A region made by mistake is deleted (two presses); 赣州市, with regions and people below it, is not.
  await rf.locator('select[name=parent_code]').selectOption('360700');
  await rf.locator('input[name=code]').fill('360799');
  await rf.locator('input[name=name]').fill('错误区');
  await rf.locator('input[name=name]').press('Enter');
  const wrong = page.locator('li[data-code="360799"] > .adm-tree-row');
  await wrong.waitFor();
  await wrong.locator('button.danger').click();
  await wrong.locator('button.danger').click();
  await page.locator('li[data-code="360799"]').waitFor({ state: 'detached' });
  const city = page.locator('li[data-code="360700"] > .adm-tree-row');
  await city.locator('button.danger').click();
  await city.locator('button.danger').click();
  const refusal = await page.locator('#toasts .toast-error', { hasText: '360700' }).textContent();
  if (!(await apiGet('/regions')).some((r) => r.code === '360700')) throw new Error('赣州市 was deleted');
  await rf.locator('select[name=parent_code]').selectOption('360700');
  await rf.locator('input[name=code]').fill('360703');
  await rf.locator('input[name=name]').fill('南康区');
  await rf.locator('input[name=name]').press('Enter');
  await rf.locator('.adm-error:not(:empty)').waitFor();
  const dupError = await rf.locator('.adm-error').textContent();
  // In Chinese first, the server's detail after it.
  if (!dupError.startsWith('无法完成：') || !dupError.includes('exists')) throw new Error(`duplicate error: ${dupError}`);
  if (await rf.locator('input[name=code]').inputValue() !== '360703') throw new Error('the form lost what was typed');
  await shot('admin-regions.png');
  await rf.locator('input[name=code]').press('Escape');
  if (await rf.locator('input[name=code]').inputValue() !== '') throw new Error('Escape did not cancel the form');
  log('region', { duplicate_error: dupError, refusal });

  // A site in it.
  await tab('sites');
  const sf = form('site');
  await sf.locator('input[name=name]').fill('南康区政务服务中心');
  await sf.locator('select[name=kind]').selectOption('service_hall');
  await sf.locator('select[name=region_code]').selectOption('360703');
  await sf.locator('input[name=name]').press('Enter');
  const siteRow = page.locator('.adm-list tr', { hasText: '南康区政务服务中心' });
  await siteRow.waitFor();
  const siteId = Number(await siteRow.getAttribute('data-id'));
  // Edit fills the same form; the list shows the new name once the server took it.
  await siteRow.locator('button', { hasText: '编辑' }).click();
  if (await sf.locator('input[name=name]').inputValue() !== '南康区政务服务中心') throw new Error('edit did not fill the form');
  await sf.locator('input[name=name]').fill('南康区行政服务中心');
  await sf.locator('input[name=name]').press('Enter');
  await page.locator(`.adm-list tr[data-id="${siteId}"]`, { hasText: '南康区行政服务中心' }).waitFor();
  await shot('admin-sites.png');
  log('site', { siteId });

  // A camera, tested before it is saved.
  await tab('cameras');
  const cf = form('camera');
  const result = cf.locator('.adm-test');
  const fillCamera = async (name, url) => {
    await cf.locator('input[name=name]').fill(name);
    await cf.locator('select[name=site_id]').selectOption(String(siteId));
    await cf.locator('input[name=main_url]').fill(url);
  };
  const test = async () => {
    await cf.locator('button[data-action=test]').click();
    await page.waitForFunction(() => {
      const s = document.querySelector('form[data-form=camera] .adm-test')?.dataset.state;
      return s && s !== 'testing';
    }, null, SLOW);
    return result.getAttribute('data-state');
  };
  const saved = async (name) => (await apiGet('/cameras')).some((c) => c.name === name);
  const snapshotWidth = () => page.waitForFunction(() => {
    const img = document.querySelector('form[data-form=camera] img.adm-snapshot');
    return img && img.complete && img.naturalWidth > 0 && img.naturalWidth;
  }, null, SLOW).then((h) => h.jsonValue());

  // Not an RTSP URL: the server's 4xx message appears beside the form and the typing stays.
  await fillCamera('综合窗口1', 'http://127.0.0.1/cam1');
  await cf.locator('button[data-action=test]').click();
  await cf.locator('.adm-error:not(:empty)').waitFor();
  const urlError = await cf.locator('.adm-error').textContent();
  if (await cf.locator('input[name=main_url]').inputValue() !== 'http://127.0.0.1/cam1') throw new Error('URL lost');
  log('camera-bad-url', { error: urlError });

  await fillCamera('综合窗口1', simUrl(1));
  let state = await test();
  if (state !== 'online') throw new Error(`test of the simulator: ${state}: ${await result.textContent()}`);
  const width = await snapshotWidth();
  if (await saved('综合窗口1')) throw new Error('the test saved the camera');
  log('camera-test-online', { state, snapshotWidth: width, facts: await result.locator('dl').textContent() });
  await cf.locator('input[name=name]').press('Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('.adm-list tr')]
    .some((tr) => tr.textContent.includes('综合窗口1') && tr.querySelector('[data-state=online]')), null, SLOW);
  log('camera-saved-online');

  // A closed port: offline with the reason, and nothing saved (Escape cancels the form).
  await fillCamera('坏摄像机', `rtsp://127.0.0.1:${closedPort}/cam1`);
  state = await test();
  const error = await result.locator('.adm-error-text').textContent().catch(() => '');
  if (state !== 'offline' || !error) throw new Error(`test of a closed port: ${state} ${error}`);
  await shot('admin-cameras-offline.png');
  await cf.locator('input[name=main_url]').press('Escape');
  if (await saved('坏摄像机')) throw new Error('a failed test saved the camera');
  log('camera-test-offline', { state, error });

  // The screenshot: the list with the saved camera online, and a test result with its snapshot.
  await fillCamera('综合窗口2', simUrl(2));
  if (await test() !== 'online') throw new Error('second test');
  await snapshotWidth();
  await shot('admin-cameras.png');
  await cf.locator('input[name=name]').press('Escape');
  if (await saved('综合窗口2')) throw new Error('a cancelled form saved the camera');

  // An NVR: a generic one whose channels are the simulator's cameras.
  await tab('nvr');
  const nf = form('nvr');
  await nf.locator('select[name=site_id]').selectOption(String(siteId));
  await nf.locator('select[name=vendor]').selectOption('generic');
  await nf.locator('input[name=host]').fill('127.0.0.1');
  await nf.locator('input[name=port]').fill(String(simPort));
  await nf.locator('input[name=channels]').fill('2');
  await nf.locator('input[name=url_template]').fill('rtsp://{host}:{port}/cam{channel}');
  await nf.locator('input[name=name_prefix]').fill('NVR-1');
  await nf.locator('input[name=host]').press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('.adm-nvr-result tbody tr').length === 2, null, SLOW);
  await page.waitForFunction(() => document.querySelectorAll('.adm-nvr-result tbody [data-state=online]').length === 2,
    null, SLOW);
  const channels = await page.locator('.adm-nvr-result tbody tr').allTextContents();
  await shot('admin-nvr.png');
  log('nvr', { channels });

  // A window position covered by the tested camera.
  await tab('positions');
  const pf = form('position');
  await pf.locator('input[name=code]').fill('A12');
  await pf.locator('select[name=kind]').selectOption('window');
  await pf.locator('label', { hasText: '综合窗口1' }).locator('input').check();
  await pf.locator('input[name=code]').press('Enter');
  const a12 = page.locator('.adm-list tr', { hasText: 'A12' });
  await a12.filter({ hasText: '综合窗口1' }).waitFor();
  log('position');

  // Edit it from the keyboard: the code is read-only, the kind gets the focus; the cameras become NVR-1 ch01
  // instead of 综合窗口1 (the ties are replaced by exactly the ticked ones).
  await a12.locator('button', { hasText: '编辑' }).focus();
  await page.keyboard.press('Enter');
  await pf.locator('h3', { hasText: 'A12' }).waitFor();
  if (!await pf.locator('input[name=code]').evaluate((i) => i.readOnly)) throw new Error('the code is editable');
  if (!await pf.locator('select[name=kind]').evaluate((s) => s === document.activeElement)) throw new Error('kind not focused');
  if (!await pf.locator('label', { hasText: '综合窗口1' }).locator('input').isChecked()) throw new Error('ties not shown');
  await pf.locator('select[name=kind]').selectOption('seat');
  await pf.locator('label', { hasText: '综合窗口1' }).locator('input').press('Space');
  await pf.locator('label', { hasText: 'NVR-1 ch01' }).locator('input').press('Space');
  await shot('admin-positions-edit.png');
  await pf.locator('button[type=submit]').press('Enter');
  await a12.filter({ hasText: 'NVR-1 ch01' }).filter({ hasText: '座位' }).filter({ hasNotText: '综合窗口1' }).waitFor();
  if (await pf.locator('input[name=code]').evaluate((i) => i.readOnly)) throw new Error('the form stayed in edit mode');
  // A second position, removed with the two-step button (from the keyboard too).
  await pf.locator('input[name=code]').fill('B01');
  await pf.locator('label', { hasText: '综合窗口1' }).locator('input').check();
  await pf.locator('input[name=code]').press('Enter');
  const b01 = page.locator('.adm-list tr', { hasText: 'B01' });
  await b01.waitFor();
  await shot('admin-positions.png');
  await b01.locator('button.danger').press('Enter');
  await b01.locator('button.danger', { hasText: '确认删除' }).press('Enter');
  await b01.waitFor({ state: 'detached' });
  const positions = await apiGet(`/sites/${siteId}/positions`);
  if (positions.some((p) => p.code === 'B01')) throw new Error('B01 was not deleted');
  const kept = positions.find((p) => p.code === 'A12');
  if (kept?.kind !== 'seat' || kept.camera_ids.length !== 1) throw new Error(`A12: ${JSON.stringify(kept)}`);
  log('position-edit-delete', { positions });

  // Rename an NVR channel (the password field stays empty: kept), then delete it with the two-step button.
  await tab('cameras');
  const ch2 = page.locator('.adm-list tr', { hasText: 'NVR-1 ch02' });
  await ch2.locator('button', { hasText: '编辑' }).click();
  if (await cf.locator('input[name=password]').inputValue() !== '') throw new Error('a password was shown');
  await cf.locator('input[name=name]').fill('评标室2');
  await cf.locator('input[name=name]').press('Enter');
  const renamed = page.locator('.adm-list tr', { hasText: '评标室2' });
  await renamed.waitFor();
  await renamed.locator('button.danger').click();
  await renamed.locator('button.danger', { hasText: '确认删除' }).click();
  await renamed.waitFor({ state: 'detached' });
  if (await saved('评标室2')) throw new Error('the camera was not deleted');
  log('camera-edit-delete');

  // A camera with credentials (a second simulator that demands them). A new form tested without the
  // password is refused; saved with it, the camera's edit form tests online with its password left empty.
  await fillCamera('门禁摄像机', `rtsp://127.0.0.1:${credPort}/cam1`);
  await cf.locator('input[name=username]').fill('operator');
  state = await test();
  if (state !== 'auth_failed') throw new Error(`test without the password: ${state}`);
  log('camera-test-no-password', { state });
  await cf.locator('input[name=password]').fill('right-pass');
  await cf.locator('input[name=name]').press('Enter');
  const door = page.locator('.adm-list tr', { hasText: '门禁摄像机' });
  await door.waitFor();
  await door.locator('button', { hasText: '编辑' }).click();
  if (await cf.locator('input[name=password]').inputValue() !== '') throw new Error('a password was shown');
  state = await test();
  if (state !== 'online') throw new Error(`test of the saved camera: ${state}: ${await result.textContent()}`);
  const doorWidth = await snapshotWidth();
  await shot('admin-cameras-edit-test.png');
  await cf.locator('input[name=name]').press('Escape');
  log('camera-test-stored-credentials', { state, snapshotWidth: doorWidth });

  // A supervisor of the new district, then a token whose secret is shown once.
  await tab('users');
  const uf = form('user');
  await uf.locator('input[name=username]').fill('nk-supervisor');
  await uf.locator('input[name=password]').fill('supervisor-pass-1');
  await uf.locator('select[name=role]').selectOption('supervisor');
  await uf.locator('input[name=region_codes][value="360703"]').check();
  await uf.locator('input[name=username]').press('Enter');
  const userRow = page.locator('.adm-list tr', { hasText: 'nk-supervisor' });
  await userRow.waitFor();
  if (!(await userRow.textContent()).includes('南康区')) throw new Error('user row without its region');
  // The clerk's account was locked by failed logins (tests/console_admin.rs): unlock it.
  const clerk = page.locator('.adm-list tr', { hasText: 'clerk' });
  await clerk.filter({ hasText: '已锁定' }).waitFor();
  await shot('admin-users.png');
  await clerk.locator('button', { hasText: '解锁' }).click();
  await clerk.filter({ hasText: '正常' }).waitFor();
  log('user', { row: await userRow.textContent() });

  await tab('tokens');
  const tf = form('token');
  await tf.locator('input[name=name]').fill('approval-nk');
  await tf.locator('select[name=role]').selectOption('integrator');
  await tf.locator('input[name=region_codes][value="360703"]').check();
  await tf.locator('input[name=name]').press('Enter');
  const secretInput = page.locator('.adm-secret-box input.adm-secret');
  await secretInput.waitFor();
  const secret = await secretInput.inputValue();
  if (secret.length < 20) throw new Error(`short secret: ${secret}`);
  await page.locator('.adm-secret-box button[data-action=copy]').click();
  await page.locator('.adm-list tr', { hasText: 'approval-nk' }).waitFor();
  await shot('admin-tokens.png');
  await secretInput.press('Escape');
  await tab('audit');
  await tab('tokens');
  await page.locator('.adm-list tr', { hasText: 'approval-nk' }).waitFor();
  if ((await page.content()).includes(secret)) throw new Error('the secret is shown again');
  log('token', { secretLength: secret.length });

  // The audit log: the camera's creation, found by the action filter.
  await tab('audit');
  await page.locator('.adm-audit-list tbody tr').first().waitFor();
  const af = form('audit');
  await af.locator('input[name=action]').fill('camera.create');
  await af.locator('input[name=action]').press('Enter');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('.adm-audit-list tbody tr')];
    return rows.length > 0 && rows.every((r) => r.dataset.action === 'camera.create');
  }, null, SLOW);
  const createRows = await page.locator('.adm-audit-list tbody tr').allTextContents();
  if (!createRows.some((r) => r.includes('综合窗口1'))) throw new Error(`no camera.create row: ${createRows}`);
  await af.locator('input[name=action]').press('Escape');
  await page.waitForFunction(() => document.querySelectorAll('.adm-audit-list tbody tr[data-action="nvr.import"]').length > 0,
    null, SLOW);
  await shot('admin-audit.png');
  log('audit', { camera_create: createRows.length });

  // Health: the site's online rate (its two cameras online); sortable by it.
  await tab('health');
  const rateOf = () => page.evaluate((id) =>
    Number(document.querySelector(`.adm-health-table tbody tr[data-id="${id}"] td:nth-child(5) [data-rate]`)?.dataset.rate ?? -1), siteId);
  const until = Date.now() + 30000;
  let rate = await rateOf();
  while (rate !== 1 && Date.now() < until) {
    await page.waitForTimeout(1000);
    await page.click('button[data-action=refresh]');
    rate = await rateOf();
  }
  if (rate !== 1) throw new Error(`online rate ${rate}`);
  // Over the period (sampled every second here): its cameras were connecting at first, then online.
  const overPeriod = await page.evaluate((id) =>
    Number(document.querySelector(`.adm-health-table tbody tr[data-id="${id}"] td:nth-child(6) [data-rate]`)?.dataset.rate ?? -1), siteId);
  if (!(overPeriod > 0 && overPeriod <= 1)) throw new Error(`online rate over the period ${overPeriod}`);
  await page.click('button[data-sort=online_rate]');
  await page.waitForSelector('th[aria-sort] button[data-sort=online_rate]');
  const healthRow = await page.locator(`.adm-health-table tbody tr[data-id="${siteId}"]`).textContent();
  await shot('admin-health.png');
  log('health', { rate, overPeriod, row: healthRow });

  // Cluster nodes: this server runs alone (tests/cluster.rs covers a cluster through GET /nodes).
  await tab('nodes');
  await page.waitForSelector('.adm-node-list p.empty');
  const nodesText = await page.locator('.adm-node-list').textContent();
  if (!nodesText.includes('单机运行')) throw new Error(`nodes tab: ${nodesText}`);
  log('nodes', { text: nodesText });

  // GB/T 28181: the simulated NVR registered (tests/console_admin.rs started it) and waits, pending, with its
  // catalog; bound to the first site on the page, its two channels become cameras.
  await tab('gb');
  const dev = `tr[data-device="${process.env.VIGIL_GB_DEVICE}"]`;
  await page.waitForSelector(`${dev} [data-pending]`, SLOW);
  await page.waitForFunction((sel) => document.querySelectorAll(`${sel} li[data-channel]`).length === 2, dev, SLOW);
  const gbPending = await page.locator(dev).textContent();
  if (!gbPending.includes('在线') || !gbPending.includes('通道 1')) throw new Error(`GB device row: ${gbPending}`);
  await shot('admin-gb.png');
  await page.click(`${dev} button[data-bind]`);
  await page.waitForFunction((sel) => document.querySelectorAll(`${sel} li[data-channel] a`).length === 2, dev, SLOW);
  log('gb', { pending: gbPending, bound: await page.locator(dev).textContent() });

  // 设备录像: the bound channel's playback page lists the footage on the NVR's own disk and plays it; the
  // device takes a 4x speed (MANSRTSP) and the video moves.
  const gbHref = await page.locator(`${dev} li[data-channel] a`).first().getAttribute('href');
  const gbCam = gbHref.split('camera=')[1];
  await page.evaluate((c) => { location.hash = `#/playback/${c}`; }, gbCam);
  await page.waitForSelector('section.df');
  await page.click('section.df .df-query');
  await page.waitForSelector('section.df tr.df-row', SLOW);
  await page.click('section.df tr.df-row .df-play');
  await page.waitForSelector('section.df[data-state=playing]', SLOW);
  await page.waitForFunction(() => document.querySelector('video.df-video').currentTime > 0.5, null, SLOW);
  await page.click('section.df .df-speed[data-speed="4"]');
  await page.waitForSelector('section.df[data-speed="4"]', SLOW);
  const at = await page.evaluate(() => document.querySelector('video.df-video').currentTime);
  await shot('playback-device.png');
  await page.click('section.df .df-pause');
  await page.waitForSelector('section.df[data-state=paused]', SLOW);
  log('gb-playback', { camera: gbCam, videoTime: at });

  // 云台: on the live wall the channel's tile turns the dome: a drag sends moves, the release a stop, a
  // preset button calls the preset (tests/console_admin.rs reads what the simulated NVR received).
  await page.evaluate(() => { location.hash = '#/wall'; });
  await page.waitForSelector('.page-wall .camera-tree [role=treeitem]');
  await page.click('.wall-toolbar [data-layout="1"]');
  await page.click('.page-wall .tile[data-index="0"]');
  await page.click(`.camera-tree [data-camera="${gbCam}"] > .row .label`);
  const ptzTile = '.page-wall .tile[data-index="0"]';
  await page.waitForSelector(`${ptzTile} .tile-ptz`, SLOW);
  await page.click(`${ptzTile} .tile-ptz`);
  const pad = await page.locator(`${ptzTile} .ptz-pad`).boundingBox();
  await page.mouse.move(pad.x + pad.width / 2, pad.y + pad.height / 2);
  await page.mouse.down();
  await page.mouse.move(pad.x + pad.width * 0.85, pad.y + pad.height * 0.2, { steps: 6 });
  await page.waitForTimeout(1000);
  await page.mouse.up();
  await page.click(`${ptzTile} .ptz-preset:text("2")`);
  await shot('wall-ptz.png');
  log('ptz', { camera: gbCam, note: await page.locator(`${ptzTile} .ptz-note`).textContent() });
  await tab('gb');

  // ONVIF 发现: the simulated camera (vigil sim --onvif) answers the probe with its profiles; added under
  // the first site with its main and sub streams (tests/console_admin.rs finds it afterwards).
  await tab('onvif');
  await page.fill('form[data-form=onvif] input[name=username]', 'onvif');
  await page.fill('form[data-form=onvif] input[name=password]', 'any');
  await page.click('form[data-form=onvif] button[type=submit]');
  const onvifRow = `.adm-onvif-results tr:has(small:text(":${process.env.VIGIL_SIM_PORT}/cam1"))`;
  await page.waitForSelector(onvifRow, SLOW);
  const onvifText = await page.locator(onvifRow).first().textContent();
  if (!onvifText.includes('Vigil') || !onvifText.includes('320×240') || !onvifText.includes('160×120')) {
    throw new Error(`ONVIF row: ${onvifText}`);
  }
  await shot('admin-onvif.png');
  await page.locator(`${onvifRow} button[data-add]`).first().click();
  await page.waitForSelector('#toasts .toast:has-text("已添加摄像机")', SLOW);
  log('onvif', { row: onvifText });

  // English, and a 1366x768 laptop: the tab still fits without a horizontal scroll.
  await page.click('#lang');
  await page.waitForSelector('.adm-tabs a[data-tab=cameras]:text("Cameras")');
  await page.setViewportSize({ width: 1366, height: 768 });
  const overflow = {};
  for (const id of ['regions', 'sites', 'positions', 'nvr', 'onvif', 'gb', 'users', 'tokens', 'audit', 'health', 'cameras']) {
    await tab(id);
    await page.waitForSelector('.adm-body form, .adm-body table');
    // The page scrolls inside <main id=view>: both it and the document must fit the width.
    overflow[id] = await page.evaluate(() => {
      const v = document.getElementById('view');
      return Math.max(document.documentElement.scrollWidth - window.innerWidth, v.scrollWidth - v.clientWidth);
    });
  }
  await page.waitForSelector('.adm-list tr[data-id]');
  await shot('admin-cameras-laptop-en.png');
  if (Object.values(overflow).some((o) => o > 0)) throw new Error(`tabs overflow a laptop screen: ${JSON.stringify(overflow)}`);
  log('english-laptop', { overflow });
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
} catch (e) {
  ok = false;
  console.error('FAILED:', e.message);
  const page = context.pages()[0];
  if (page) await page.screenshot({ path: path.join(shots, 'admin-failure.png') }).catch(() => {});
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
