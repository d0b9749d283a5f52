// <vigil-live camera="ID" stream="main|sub" mode="auto|webrtc|mse">: one live tile.
//
// WebRTC first (lowest latency), MSE over the same WebSocket as the fallback; reconnects with backoff;
// streams only while it is on screen and the tab is visible. Protocol: docs/live.md.
//
// State for tests and the console: the element's `state` attribute (idle, connecting, webrtc, mse,
// error) and `transport`; the <video> is `element.video`.

const MSE_CODECS = [
  'avc1.42e01e', 'avc1.4d401f', 'avc1.640028', 'avc1.640029', 'avc1.64002a', 'avc1.640033',
  'hvc1.1.6.L93.B0', 'hvc1.1.6.L120.90', 'hvc1.1.6.L123.B0', 'hvc1.1.6.L153.B0', 'hev1.1.6.L120.90',
];
// How far behind the live edge MSE may drift before the player jumps forward, and where it lands.
const MAX_LAG_S = 0.4;
const EDGE_S = 0.05;
const KEEP_S = 10;

class VigilLive extends HTMLElement {
  static get observedAttributes() { return ['camera', 'stream', 'mode']; }

  constructor() {
    super();
    this.video = document.createElement('video');
    this.video.muted = true;
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.style.cssText = 'width:100%;height:100%;background:#000;object-fit:contain';
    this.attempt = 0;
    this.visible = false;
    this.timer = null;
    this.session = null;
  }

  connectedCallback() {
    if (!this.contains(this.video)) this.append(this.video);
    this.setState('idle');
    this.io = new IntersectionObserver((entries) => {
      this.visible = entries.some((e) => e.isIntersecting);
      this.update();
    });
    this.io.observe(this);
    this.onVisibility = () => this.update();
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  disconnectedCallback() {
    this.io?.disconnect();
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.stop();
  }

  attributeChangedCallback() {
    if (this.session) { this.stop(); this.update(); }
  }

  get wanted() { return this.visible && document.visibilityState === 'visible' && this.isConnected; }

  update() {
    if (this.wanted && !this.session && !this.timer) this.start();
    else if (!this.wanted) this.stop();
  }

  setState(state, transport) {
    this.setAttribute('state', state);
    if (transport !== undefined) this.setAttribute('transport', transport);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    const s = this.session;
    this.session = null;
    if (s) s.close();
    this.setState('idle', '');
  }

  retry(reason) {
    if (this.session) { this.session.close(); this.session = null; }
    if (!this.wanted) return;
    const delay = Math.min(30000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt = Math.min(this.attempt + 1, 6);
    this.setState('error');
    this.setAttribute('error', reason || '');
    this.timer = setTimeout(() => { this.timer = null; this.update(); }, delay);
  }

  start() {
    const camera = this.getAttribute('camera');
    const stream = this.getAttribute('stream') || 'main';
    const mode = this.getAttribute('mode') || 'auto';
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${location.host}/api/v1/cameras/${encodeURIComponent(camera)}/live?stream=${stream}`;
    this.setState('connecting');
    this.session = new Session(this, url, mode);
  }
}

class Session {
  constructor(el, url, mode) {
    this.el = el;
    this.video = el.video;
    this.closed = false;
    this.queue = [];
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => {
      if (mode !== 'mse' && window.RTCPeerConnection) this.startWebrtc(mode === 'webrtc');
      else this.startMse();
    };
    this.ws.onmessage = (ev) => this.onMessage(ev);
    this.ws.onclose = () => { if (!this.closed) el.retry('connection closed'); };
  }

  send(obj) { if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj)); }

  close() {
    this.closed = true;
    clearTimeout(this.rtcTimer);
    try { this.ws.close(); } catch (_) { /* already closed */ }
    if (this.pc) this.pc.close();
    if (this.ms && this.video.src) { URL.revokeObjectURL(this.video.src); }
    this.video.removeAttribute('src');
    this.video.srcObject = null;
    this.video.load();
  }

  // --- WebRTC -----------------------------------------------------------------------------------
  async startWebrtc(only) {
    this.transport = 'webrtc';
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (ev) => {
      this.video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      this.video.play().catch(() => {});
    };
    pc.onicecandidate = (ev) => {
      if (ev.candidate) this.send({ type: 'webrtc/candidate', candidate: ev.candidate.candidate });
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected') {
        clearTimeout(this.rtcTimer);
        this.el.attempt = 0;
        this.el.setState('webrtc', 'webrtc');
      } else if (pc.connectionState === 'failed') {
        this.fallback(only, 'WebRTC failed');
      }
    };
    // If WebRTC does not connect quickly (UDP blocked), fall back to MSE on the same socket.
    this.rtcTimer = setTimeout(() => this.fallback(only, 'WebRTC timed out'), 4000);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.send({ type: 'webrtc/offer', sdp: pc.localDescription.sdp });
  }

  fallback(only, reason) {
    if (this.closed || this.transport !== 'webrtc') return;
    if (this.pc && this.pc.connectionState === 'connected') return;
    if (only) { this.el.retry(reason); return; }
    if (this.pc) { this.pc.close(); this.pc = null; }
    this.video.srcObject = null;
    this.startMse();
  }

  // --- MSE --------------------------------------------------------------------------------------
  startMse() {
    this.transport = 'mse';
    clearTimeout(this.rtcTimer);
    if (!window.MediaSource) { this.el.retry('no MediaSource in this browser'); return; }
    const codecs = MSE_CODECS.filter((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`));
    this.send({ type: 'mse', codecs });
  }

  openSource(mime) {
    if (this.sb) {
      if (this.sb.changeType) this.sb.changeType(mime);
      return;
    }
    const ms = new MediaSource();
    this.ms = ms;
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      try {
        this.sb = ms.addSourceBuffer(mime);
      } catch (e) {
        this.el.retry(`cannot play ${mime}`);
        return;
      }
      this.sb.mode = 'segments';
      this.sb.addEventListener('updateend', () => this.pump());
      this.pump();
    }, { once: true });
  }

  onMessage(ev) {
    if (typeof ev.data !== 'string') {
      this.queue.push(ev.data);
      this.pump();
      return;
    }
    let m;
    try { m = JSON.parse(ev.data); } catch (_) { return; }
    switch (m.type) {
      case 'mse':
        this.el.attempt = 0;
        this.el.setState('mse', 'mse');
        this.openSource(m.mime);
        break;
      case 'skip':
        // The next fragment is a keyframe after a gap: resume there rather than play a backlog.
        this.jump = true;
        break;
      case 'webrtc/answer':
        this.pc?.setRemoteDescription({ type: 'answer', sdp: m.sdp }).catch((e) => this.fallback(false, String(e)));
        break;
      case 'webrtc/candidate':
        if (m.candidate) this.pc?.addIceCandidate({ candidate: m.candidate, sdpMid: '0' }).catch(() => {});
        break;
      case 'error':
        if (this.transport === 'webrtc') this.fallback(this.el.getAttribute('mode') === 'webrtc', m.message);
        else { this.el.setAttribute('error', m.message); }
        break;
      default:
        break;
    }
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || this.closed) return;
    const v = this.video;
    const b = v.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      // Stay at the live edge: MSE over TCP only ever drifts later.
      if (this.jump || end - v.currentTime > MAX_LAG_S || v.currentTime < b.start(b.length - 1)) {
        v.currentTime = Math.max(b.start(b.length - 1), end - EDGE_S);
        this.jump = false;
      }
      // Between a small lag and the jump threshold, play slightly fast to close the gap smoothly.
      const lag = end - v.currentTime;
      v.playbackRate = lag > 0.15 ? 1.1 : 1.0;
      if (v.paused) v.play().catch(() => {});
      // Keep memory bounded.
      if (b.start(0) < v.currentTime - 2 * KEEP_S) {
        sb.remove(0, v.currentTime - KEEP_S);
        return;
      }
    }
    const next = this.queue.shift();
    if (!next) return;
    try {
      sb.appendBuffer(next);
    } catch (e) {
      if (e.name === 'QuotaExceededError') { this.queue.unshift(next); sb.remove(0, v.currentTime - 1); }
      else this.el.retry(String(e));
    }
  }
}

customElements.define('vigil-live', VigilLive);
