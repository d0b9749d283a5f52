// Headless Chromium plays simulated cameras through the <vigil-live> player.
// Env: VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD, VIGIL_CASES (JSON: [{name, camera, mode, sound?}] and
// [{name, recording}] where `recording` is a video.mp4 URL with sound, played in a plain <video>),
// `sound`: true when the tile must carry the camera's sound (heard once unmuted), false when it must not
// offer any (absent: not checked).
// CHROMIUM (default /usr/bin/chromium). Exit 0 when every case played; prints one JSON line per case.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const base = process.env.VIGIL_URL;
const cases = JSON.parse(process.env.VIGIL_CASES || '[]');
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-chromium-'));

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
let failed = 0;
try {
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error('page:', m.text()); });
  await page.goto(`${base}/`);
  const login = await page.evaluate(async ({ user, password }) => {
    const r = await fetch('/api/v1/session', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: user, password }),
    });
    return r.status;
  }, { user: process.env.VIGIL_USER, password: process.env.VIGIL_PASSWORD });
  if (login !== 200) throw new Error(`login: ${login}`);
  await page.setContent('<!doctype html><body style="margin:0"></body>');
  await page.addScriptTag({ url: `${base}/live-player.js`, type: 'module' });
  await page.waitForFunction(() => !!customElements.get('vigil-live'));

  for (const c of cases.filter((x) => x.recording)) {
    // A recording with sound, played unmuted: its audio and its video are decoded.
    const r = await page.evaluate(async (url) => {
      document.body.innerHTML = '';
      const v = document.createElement('video');
      v.muted = false;
      document.body.append(v);
      v.src = url;
      const played = await v.play().then(() => true, (e) => String(e));
      await new Promise((x) => setTimeout(x, 2000));
      return { played, time: v.currentTime, error: v.error?.message || null,
        audioBytes: v.webkitAudioDecodedByteCount, videoBytes: v.webkitVideoDecodedByteCount };
    }, c.recording);
    const ok = r.played === true && r.time > 1 && r.audioBytes > 0 && r.videoBytes > 0;
    if (!ok) failed += 1;
    console.log(JSON.stringify({ case: c.name, ok, ...r }));
  }
  for (const c of cases.filter((x) => !x.recording)) {
    const t0 = Date.now();
    const result = await page.evaluate(async ({ camera, mode, stream, timeoutMs, sound }) => {
      document.body.innerHTML = '';
      const el = document.createElement('vigil-live');
      el.setAttribute('camera', String(camera));
      el.setAttribute('stream', stream);
      el.setAttribute('mode', mode);
      el.style.cssText = 'display:block;width:320px;height:240px';
      document.body.append(el);
      const v = el.video;
      const started = performance.now();
      let firstFrameMs = null;
      let t1 = null;
      const deadline = started + timeoutMs;
      while (performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        const q = v.getVideoPlaybackQuality();
        if (firstFrameMs === null && q.totalVideoFrames > 0) firstFrameMs = performance.now() - started;
        if (firstFrameMs !== null && t1 === null) t1 = { time: v.currentTime, at: performance.now(), frames: q.totalVideoFrames };
        if (t1 && performance.now() - t1.at > 2000) break;
      }
      const q = v.getVideoPlaybackQuality();
      const b = v.buffered;
      const seen = {
        state: el.getAttribute('state'), transport: el.getAttribute('transport'), error: el.getAttribute('error'),
        firstFrameMs, currentTime: v.currentTime, advanced: t1 ? v.currentTime - t1.time : 0,
        decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames,
        framesIn2s: t1 ? q.totalVideoFrames - t1.frames : 0,
        lagS: b.length ? b.end(b.length - 1) - v.currentTime : null,
        width: v.videoWidth, height: v.videoHeight,
      };
      // Sound: muted until asked, then decoded (MSE: AAC bytes into the decoder; WebRTC: Opus samples).
      const heard = { mutedAtFirst: v.muted, audio: el.hasAttribute('audio') };
      if (sound !== undefined) {
        el.setAttribute('sound', '');
        const audioIn = async () => {
          const w = el.video;
          if (el.getAttribute('transport') === 'mse') return w.webkitAudioDecodedByteCount || 0;
          const pc = el.session?.pc;
          if (!pc) return 0;
          let n = 0;
          (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'audio') n += r.totalSamplesReceived || 0; });
          return n;
        };
        // WebRTC asked for no audio track while muted: unmuting goes over to a session that has one.
        const a0 = await audioIn();
        let grew = 0;
        for (const end = performance.now() + (sound ? 6000 : 1000); performance.now() < end && grew <= 0;) {
          await new Promise((r) => setTimeout(r, 500));
          // After the switch the WebRTC count is the new session's own.
          grew = (await audioIn()) - (el.getAttribute('transport') === 'mse' ? a0 : 0);
        }
        // The picture goes on with the sound: frames keep being decoded over the next second.
        const frames = () => el.video.getVideoPlaybackQuality().totalVideoFrames;
        const f0 = frames();
        await new Promise((r) => setTimeout(r, 1000));
        Object.assign(heard, { unmuted: !el.video.muted, audio: el.hasAttribute('audio'), audioGrew: grew,
          framesAfter: frames() - f0 });
      }
      return { ...seen, ...heard };
    }, { camera: c.camera, mode: c.mode, stream: c.stream || 'main', timeoutMs: c.timeoutMs || 15000, sound: c.sound });
    const soundOk = c.sound === undefined
      || (c.sound ? result.audio && result.mutedAtFirst && result.unmuted && result.audioGrew > 0 && result.framesAfter >= 10
        : !result.audio);
    const ok = soundOk && result.transport === c.mode && result.decoded > 0 && result.advanced > 1.0
      && result.width > 0 && (!c.width || result.width === c.width) && (!c.height || result.height === c.height);
    if (!ok) failed += 1;
    console.log(JSON.stringify({ case: c.name, ok, ms: Date.now() - t0, ...result }));
    await page.evaluate(() => { document.body.innerHTML = ''; });
  }
  // A tile scrolled out of view stops streaming, and starts again when it comes back.
  if (cases.some((x) => !x.recording)) {
    const c = cases.find((x) => !x.recording);
    const r = await page.evaluate(async ({ camera }) => {
      document.body.innerHTML = '<div id="spacer" style="height:0"></div>';
      const el = document.createElement('vigil-live');
      el.setAttribute('camera', String(camera));
      el.setAttribute('mode', 'mse');
      el.style.cssText = 'display:block;width:320px;height:240px';
      document.body.append(el);
      const until = async (f, ms) => {
        const end = performance.now() + ms;
        while (performance.now() < end) { if (f()) return true; await new Promise((x) => setTimeout(x, 50)); }
        return false;
      };
      const playing = await until(() => el.getAttribute('state') === 'mse', 5000);
      document.getElementById('spacer').style.height = '5000px';
      const stopped = await until(() => el.getAttribute('state') === 'idle', 3000);
      document.getElementById('spacer').style.height = '0';
      const resumed = await until(() => el.getAttribute('state') === 'mse', 5000);
      return { playing, stopped, resumed };
    }, { camera: c.camera });
    const ok = r.playing && r.stopped && r.resumed;
    if (!ok) failed += 1;
    console.log(JSON.stringify({ case: 'out-of-view-stops', ok, ...r }));
  }
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
