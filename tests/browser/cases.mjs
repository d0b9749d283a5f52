// The investigator workspace and playback, as a user drives them (run by tests/console_cases.rs).
// Env: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, VIGIL_CASE (number), VIGIL_CASE_PREFIX (what is typed in the
// search), VIGIL_CAMERA (a camera of the case), VIGIL_T0 (ms, footage recorded from before it),
// VIGIL_EVENT_AT (ms of that camera's first event after t0 + 1 s), VIGIL_ARTIFACTS (screenshots),
// CHROMIUM. Prints one line per step; exits non-zero at the first step that fails.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const base = env('VIGIL_URL').replace(/\/$/, '');
const caseNo = env('VIGIL_CASE');
const camera = env('VIGIL_CAMERA');
const t0 = Number(env('VIGIL_T0'));
const eventAt = Number(env('VIGIL_EVENT_AT'));
const shots = process.env.VIGIL_ARTIFACTS || os.tmpdir();
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-chromium-'));
const LONG = 60000;

const step = (name, detail) => console.log(JSON.stringify({ step: name, ...detail }));
function check(cond, what, detail) {
  if (!cond) throw new Error(`${what}: ${JSON.stringify(detail ?? null)}`);
}

/** Names of the entries of a zip, read from its central directory. */
function zipNames(buf) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i -= 1) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  check(eocd >= 0, 'zip end of central directory');
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const names = [];
  for (let n = 0; n < count; n += 1) {
    check(buf.readUInt32LE(at) === 0x02014b50, 'zip central directory entry', at);
    const nameLen = buf.readUInt16LE(at + 28);
    const extra = buf.readUInt16LE(at + 30);
    const comment = buf.readUInt16LE(at + 32);
    names.push(buf.toString('utf8', at + 46, at + 46 + nameLen));
    at += 46 + nameLen + extra + comment;
  }
  return names;
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1366, height: 768 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
});
let code = 0;
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(LONG);
  page.on('console', (m) => { if (m.type() === 'error') console.error('page:', m.text()); });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  // The versions (ETags) of each footage URL the player read: the browser reuses the bytes it has of a URL,
  // so a URL whose footage changed under it (a window still being recorded) gives undecodable video.
  const versions = new Map();
  page.on('response', (r) => {
    const etag = r.headers().etag;
    if (!r.url().includes('/video.mp4') || !etag) return;
    versions.set(r.url(), new Set([...(versions.get(r.url()) || []), etag]));
  });

  // Log in through the form.
  await page.goto(`${base}/`);
  await page.fill('#login input[name=username]', env('VIGIL_USER'));
  await page.fill('#login input[name=password]', env('VIGIL_PASSWORD'));
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#pages a[data-page=cases]');
  step('login');

  // Search by number.
  await page.click('#pages a[data-page=cases]');
  await page.waitForSelector('.page-cases .cs-form');
  await page.fill('.cs-form input[name=q]', env('VIGIL_CASE_PREFIX'));
  await page.press('.cs-form input[name=q]', 'Enter');
  // The results of this search (not of the page as it first opened, which lists every case).
  await page.waitForSelector(`.page-cases[data-ready=true][data-search*="q="] .cs-results tr[data-case="${caseNo}"]`);
  const found = await page.$$eval('.cs-results tbody tr', (rows) => rows.map((r) => r.dataset.case));
  check(found.includes(caseNo), 'search finds the case', found);
  step('search', { found });

  // Every filter at once still finds it (its day, its site, approval, no card); a red card finds nothing.
  // The local day of the case's first event (t0 itself may fall just before a midnight).
  const day = (() => {
    const d = new Date(eventAt);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  })();
  const filtered = async (card) => {
    await page.fill('.cs-form input[name=q]', caseNo);
    await page.fill('.cs-form input[name=from]', day);
    await page.fill('.cs-form input[name=to]', day);
    await page.selectOption('.cs-form select[name=site_id]', { index: 1 });
    await page.selectOption('.cs-form select[name=case_type]', 'approval');
    await page.selectOption('.cs-form select[name=card]', card);
    await page.click('.cs-form button[type=submit]');
    await page.waitForSelector(`.page-cases[data-ready=true][data-search*="card=${card}"]`);
    return page.$$eval('.cs-results tbody tr', (rows) => rows.map((r) => r.dataset.case));
  };
  const red = await filtered('red');
  check(red.length === 0, 'no red-card case', red);
  const all = await filtered('none');
  check(all.length === 1 && all[0] === caseNo, 'every filter finds the case', all);
  await page.screenshot({ path: path.join(shots, 'cases-search.png') });
  step('filters', { red, all, search: await page.$eval('.page-cases', (el) => el.dataset.search) });

  // Open it and play its first clip.
  await page.click(`.cs-results tr[data-case="${caseNo}"] a`);
  await page.waitForSelector('.page-cases[data-ready=true] .ck-clip');
  const clips = await page.$$eval('.ck-clip', (els) => els.length);
  await page.click('.ck-clip[data-index="0"] .ck-thumb');
  const played = await page.waitForFunction(() => {
    const v = document.querySelector('.ck-player video');
    if (!v || v.videoWidth === 0 || v.paused) return null;
    window.vigilStart ??= { time: v.currentTime, at: performance.now() };
    const advanced = v.currentTime - window.vigilStart.time;
    return advanced > 1 ? { advanced, width: v.videoWidth, height: v.videoHeight } : null;
  }, null, { timeout: LONG, polling: 100 }).then((h) => h.jsonValue());
  const thumbs = await page.$$eval('.ck-thumb img', (imgs) => imgs.filter((i) => i.complete && i.naturalWidth > 0).length);
  check(thumbs > 0, 'clip thumbnails show', thumbs);
  const spans = await page.$$eval('.ck-timeline .tl-span', (els) => els.length);
  check(spans > 0, 'the case timeline shows recorded spans', spans);
  await page.screenshot({ path: path.join(shots, 'case-page.png') });
  step('play clip', { clips, thumbs, spans, ...played });

  // The timeline's strip of pictures, and the picture under the cursor while dragging across it.
  await page.waitForFunction(() => [...document.querySelectorAll('.ck-timeline .tl-thumbs img')]
    .some((i) => i.complete && i.naturalWidth > 0), null, { timeout: LONG, polling: 100 });
  const strip = await page.$$eval('.ck-timeline .tl-thumbs img', (imgs) => imgs.length);
  const bar = await page.$eval('.ck-timeline .tl-bar', (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top + r.height / 2, w: r.width };
  });
  await page.mouse.move(bar.x + bar.w * 0.3, bar.y);
  await page.mouse.down();
  const scrubs = [];
  for (const f of [0.4, 0.5, 0.6]) {
    const t0 = Date.now();
    await page.mouse.move(bar.x + bar.w * f, bar.y, { steps: 4 });
    // The picture shown is the one at the time under the cursor, loaded, within 150 ms of the move.
    const shown = await page.waitForFunction(() => {
      const tl = document.querySelector('.ck-timeline');
      const pv = tl.querySelector('.tl-preview');
      const img = pv.querySelector('img');
      if (pv.hidden || !img.complete || img.naturalWidth === 0) return null;
      const at = Number(pv.dataset.at);
      const pics = tl.thumbnails;
      const head = Number(tl.getAttribute('aria-valuenow'));
      const want = [...pics].reverse().find((p) => p.at <= head) || pics[0];
      return { at, want: want.at, width: img.naturalWidth, src: img.src };
    }, null, { timeout: LONG, polling: 10 }).then((h) => h.jsonValue());
    scrubs.push({ ...shown, ms: Date.now() - t0 });
  }
  await page.mouse.up();
  for (const s of scrubs) {
    check(s.at === s.want, 'the preview shows the picture at the time under the cursor', s);
    check(s.width === 320, 'the preview is a thumbnail', s);
  }
  const slowest = Math.max(...scrubs.map((s) => s.ms));
  check(slowest <= 150, 'the picture under the cursor shows within 150 ms', scrubs);
  await page.screenshot({ path: path.join(shots, 'case-scrub.png') });
  step('scrub timeline', { strip, slowest });

  // Jump to the second event (at the other window, A2): the player switches to that camera and shows its time.
  const firstCamera = await page.$eval('.page-cases', (el) => el.dataset.camera);
  const second = await page.$eval('.ck-events tbody tr:nth-child(2)', (tr) => Number(tr.dataset.at));
  await page.click('.ck-events tbody tr:nth-child(2) .ck-jump');
  const jumped = await page.waitForFunction(({ first, at }) => {
    const root = document.querySelector('.page-cases');
    const shown = Number(root.dataset.time);
    return root.dataset.camera !== first && root.dataset.state !== 'loading' && Math.abs(shown - at) < 1000
      ? { camera: root.dataset.camera, shown } : null;
  }, { first: firstCamera, at: second }, { timeout: LONG, polling: 100 }).then((h) => h.jsonValue());
  step('jump to event', { firstCamera, at: second, ...jumped });

  // Export with progress, then download the package.
  await page.click('.ck-export');
  const states = new Set();
  const end = Date.now() + 120000;
  for (;;) {
    const s = await page.$eval('.ck-export-state', (el) => el.dataset.state || '');
    if (s) states.add(s);
    if (s === 'done') break;
    check(s !== 'failed' && Date.now() < end, 'export finishes', await page.textContent('.ck-export-state'));
    await page.waitForTimeout(200);
  }
  const progress = await page.$eval('.ck-progress', (p) => p.value);
  check(progress === 1, 'progress reaches the end', progress);
  await page.screenshot({ path: path.join(shots, 'case-export.png') });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('.ck-download a')]);
  const file = path.join(userDataDir, 'package.zip');
  await download.saveAs(file);
  const zip = fs.readFileSync(file);
  check(zip.subarray(0, 2).toString() === 'PK', 'the download is a zip', zip.subarray(0, 4));
  const names = zipNames(zip);
  check(names.includes('manifest.json') && names.includes('manifest.sig'), 'the package has its manifest', names);
  check(names.some((n) => n.endsWith('.mp4')), 'the package has clips', names);
  step('export', { states: [...states], bytes: zip.length, file: download.suggestedFilename(), names });

  // Hold.
  await page.fill('.ck-hold textarea[name=reason]', '投诉调查，保留至结案');
  await page.click('.ck-hold button[type=submit]');
  const held = await page.waitForSelector('.ck-hold-ack[data-held]').then((el) => el.textContent());
  step('hold', { held });

  // An event of this case arrives from the approval system while the case is open: announced, shown on reload.
  const before = await page.$$eval('.ck-events tbody tr', (rows) => rows.length);
  const posted = await fetch(`${base}/api/v1/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${env('VIGIL_EVENTS_TOKEN')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ events: [{ event_id: 'zw1-4', case_no: caseNo, case_type: 'approval', kind: 'processing',
      at: new Date(t0 + 6000).toISOString(), site_id: Number(env('VIGIL_SITE')), position: 'A2', operator: '窗口人员' }] }),
  });
  check(posted.ok, 'the event is posted', await posted.text());
  await page.waitForSelector('.ck-fresh:not([hidden])', { timeout: LONG });
  const rowsNow = await page.$$eval('.ck-events tbody tr', (rows) => rows.length);
  check(rowsNow === before, 'the page is not changed under the reader', { before, rowsNow });
  await page.click('.ck-fresh button');
  const rowsAfter = await page.waitForFunction((n) => {
    const rows = document.querySelectorAll('.page-cases[data-ready=true] .ck-events tbody tr');
    return rows.length === n + 1 ? rows.length : null;
  }, before, { timeout: LONG }).then((h) => h.jsonValue());
  step('new event', { before, after: rowsAfter });

  // Playback of a camera's day.
  await page.click('#pages a[data-page=playback]');
  await page.waitForSelector(`.pb-cam[data-camera="${camera}"]`);
  await page.evaluate(({ camera, day, t0 }) => { location.hash = `#/playback/${camera}?day=${day}&t=${t0}`; },
    { camera, day, t0 });
  await page.waitForSelector('.page-playback[data-ready=true] .pb-timeline .tl-span');
  const daySpans = await page.$$eval('.pb-timeline .tl-span', (els) => els.length);
  // Zoom to five minutes around the playhead, then click one second after t0.
  await page.selectOption('.pb-head select[name=zoom]', String(5 * 60000));
  const target = t0 + 1000;
  const box = await page.$eval('.pb-timeline .tl-bar', (el) => {
    const r = el.getBoundingClientRect();
    const tl = el.closest('vigil-timeline');
    return { x: r.x, y: r.y, w: r.width, h: r.height, start: Number(tl.dataset.viewStart), end: Number(tl.dataset.viewEnd) };
  });
  check(target > box.start && target < box.end, 'the zoomed view holds the target', box);
  await page.mouse.click(box.x + ((target - box.start) / (box.end - box.start)) * box.w, box.y + box.h / 2);
  const near = (want, tol) => page.waitForFunction(({ want, tol }) => {
    const root = document.querySelector('.page-playback');
    const v = root?.querySelector('video');
    const at = Number(root?.dataset.time);
    return root.dataset.state !== 'loading' && v.readyState >= 2 && Math.abs(at - want) < tol ? at : null;
  }, { want, tol }, { timeout: LONG, polling: 100 }).then((h) => h.jsonValue());
  const seeked = await near(target, 1500);
  step('seek by click', { daySpans, target, seeked, error: seeked - target });

  await page.click('.rp-speeds button[data-speed="4"]');
  const rate = await page.$eval('.page-playback video', (v) => v.playbackRate);
  check(rate === 4, 'speed 4x', rate);
  await page.click('.pb-next-event');
  const atEvent = await near(eventAt, 700);
  const width = await page.$eval('.page-playback video', (v) => v.videoWidth);
  check(width > 0, 'playback shows frames', width);
  await page.screenshot({ path: path.join(shots, 'playback.png') });
  step('next event', { rate, eventAt, atEvent, error: atEvent - eventAt });

  // Space plays (at the chosen 4x): the shown wall time runs ahead of the clock.
  await page.click('.pb-summary'); // focus off the buttons: a focused button takes Space itself
  await page.keyboard.press('Space');
  const t1 = Date.now();
  const ran = await page.waitForFunction((from) => {
    const at = Number(document.querySelector('.page-playback').dataset.time);
    return at - from > 4000 ? at - from : null;
  }, atEvent, { timeout: LONG, polling: 100 }).then((h) => h.jsonValue());
  step('space plays', { advancedMs: ran, ratio: ran / (Date.now() - t1) });

  // 8x plays the keyframes alone: the window is reloaded as such at the same moment and runs on.
  const at8 = Number(await page.$eval('.page-playback', (el) => el.dataset.time));
  await page.click('.rp-speeds button[data-speed="8"]');
  const fast = await page.waitForFunction((from) => {
    const root = document.querySelector('.page-playback');
    const v = root.querySelector('video');
    const at = Number(root.dataset.time);
    return v.src.includes('keyframes=true') && !v.paused && v.playbackRate === 8 && at - from > 8000
      ? { advanced: at - from, src: v.src } : null;
  }, at8, { timeout: LONG, polling: 100 }).then((h) => h.jsonValue());
  step('keyframes at 8x', fast);
  await page.click('.rp-speeds button[data-speed="4"]');
  await page.waitForFunction(() => !document.querySelector('.page-playback video').src.includes('keyframes'),
    null, { timeout: LONG, polling: 100 });

  // A gap (the cameras were away for a while): the timeline shows two spans; a click in the gap lands on the
  // footage after it.
  await page.keyboard.press('Space');
  await page.waitForFunction(() => document.querySelector('.page-playback video').paused);
  const rec = await page.evaluate(async ({ camera, t0 }) => {
    const q = `start=${new Date(t0 - 60000).toISOString()}&end=${new Date(Date.now() + 60000).toISOString()}`;
    return (await fetch(`/api/v1/cameras/${camera}/recordings?${q}`)).json();
  }, { camera, t0 });
  check(rec.gaps.length >= 1, 'the recording has a gap', rec);
  const gap = { start: Date.parse(rec.gaps[0].start), end: Date.parse(rec.gaps[0].end) };
  const shown = await page.$$eval('.pb-timeline .tl-span', (els) => els.length);
  check(shown >= 2, 'the timeline shows the spans around the gap', shown);
  const view = await page.$eval('.pb-timeline .tl-bar', (el) => {
    const r = el.getBoundingClientRect();
    const tl = el.closest('vigil-timeline');
    return { x: r.x, y: r.y, w: r.width, h: r.height, start: Number(tl.dataset.viewStart), end: Number(tl.dataset.viewEnd) };
  });
  const mid = (gap.start + gap.end) / 2;
  await page.mouse.click(view.x + ((mid - view.start) / (view.end - view.start)) * view.w, view.y + view.h / 2);
  const after = await near(gap.end, 1500);
  const mapping = await page.evaluate(() => {
    const v = document.querySelector('.page-playback video');
    return { duration: v.duration, currentTime: v.currentTime };
  });
  step('gap', { gap, shown, after, error: after - gap.end, ...mapping });

  // Another camera from the tree opens at the same moment, or, when that camera came back later from the
  // same outage, at its first footage after it.
  const otherId = await page.$eval(`.pb-cam:not([data-camera="${camera}"])`, (el) => el.dataset.camera);
  const otherRec = await page.evaluate(async ({ id, t0 }) => {
    const q = `start=${new Date(t0 - 60000).toISOString()}&end=${new Date(Date.now() + 60000).toISOString()}`;
    return (await fetch(`/api/v1/cameras/${id}/recordings?${q}`)).json();
  }, { id: otherId, t0 });
  const expected = otherRec.spans
    .map((s) => ({ start: Date.parse(s.start), end: Date.parse(s.end) }))
    .map((s) => (after < s.start ? s.start : after < s.end ? after : null))
    .find((x) => x !== null);
  check(expected !== undefined, 'the other camera has footage after the gap', otherRec);
  await page.click(`.pb-cam[data-camera="${otherId}"]`);
  await page.waitForSelector(`.page-playback[data-ready=true] .pb-cam[aria-current=true][data-camera="${otherId}"]`);
  const other = await near(expected, 1500);
  step('other camera', { at: other, expected, error: other - expected });
  await page.click(`.pb-cam[data-camera="${camera}"]`);
  await page.waitForSelector(`.page-playback[data-ready=true] .pb-cam[aria-current=true][data-camera="${camera}"]`);

  // An investigator does not watch live (the supervisor's wall test runs playback on into live): no
  // "back to live" button.
  check(!(await page.$('.pb-live')), 'no live button for an investigator', {});

  // The same page in English on a 1920x1080 screen; the language switch keeps the camera and playhead.
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('.page-playback[data-ready=true][data-state=paused] .rp-play')?.textContent === 'Play');
  const kept = await page.evaluate(() => ({
    zoom: document.querySelector('.pb-head select[name=zoom]').value,
    rate: document.querySelector('.page-playback video').playbackRate,
    speed: document.querySelector('.rp-speeds [aria-pressed=true]')?.dataset.speed,
  }));
  check(kept.zoom === String(5 * 60000) && kept.speed === '4', 'the language switch keeps zoom and speed', kept);
  await page.screenshot({ path: path.join(shots, 'playback-en-1080.png') });
  await page.evaluate((no) => { location.hash = `#/cases/${encodeURIComponent(no)}`; }, caseNo);
  await page.waitForSelector('.page-cases[data-ready=true][data-state=paused] .ck-clip');
  const english = await page.textContent('.ck-export');
  check(english === 'Export evidence package', 'the case page in English', english);
  await page.screenshot({ path: path.join(shots, 'case-page-en-1080.png') });
  step('english', { english });
  const changed = [...versions].filter(([, v]) => v.size > 1).map(([u]) => u);
  check(versions.size > 0 && changed.length === 0, 'every footage URL kept its bytes', { urls: versions.size, changed });
  step('stable footage urls', { urls: versions.size });
} catch (e) {
  console.error(e.stack || String(e));
  code = 1;
  const page = context.pages()[0];
  if (page) {
    // What the page showed when it failed: its address, the player's state and a picture.
    const seen = await page.evaluate(() => {
      const root = document.querySelector('#view-root');
      const v = root?.querySelector('video');
      return { hash: location.hash, page: root?.className, ...root?.dataset,
        video: v && { src: v.currentSrc, readyState: v.readyState, paused: v.paused, currentTime: v.currentTime,
          error: v.error?.message }, play: root?.querySelector('.rp-play')?.textContent,
        status: root?.querySelector('.rp-status')?.textContent };
    }).catch((err) => String(err));
    console.error('page state:', JSON.stringify(seen));
    await page.screenshot({ path: path.join(shots, 'cases-failure.png') }).catch(() => {});
    if (seen?.video?.src) {
      // The footage the player failed on, for ffprobe.
      const b64 = await page.evaluate(async (u) => {
        const buf = new Uint8Array(await (await fetch(u)).arrayBuffer());
        let s = '';
        for (let i = 0; i < buf.length; i += 0x8000) s += String.fromCharCode(...buf.subarray(i, i + 0x8000));
        return btoa(s);
      }, seen.video.src).catch(() => null);
      if (b64) fs.writeFileSync(path.join(shots, 'cases-failure.mp4'), Buffer.from(b64, 'base64'));
    }
  }
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(code);
