// <vigil-live camera="ID" stream="main|sub|auto" mode="auto|webrtc|mse">: one live tile.
//
// WebRTC first (lowest latency), MSE over the same WebSocket as the fallback; reconnects with backoff;
// streams only while it is on screen and the tab is visible. Protocol: docs/live.md.
//
// `stream="auto"` plays the sub stream while the element is small and the main stream once it is large
// (a tile enlarged or opened full screen). A change of stream while a picture is shown never blanks it:
// the new stream starts on a second, hidden <video> and replaces the old one at its first decoded frame
// (`Switch`); until then the old stream plays on. On phones without MediaSource (iOS Safari) MSE uses
// ManagedMediaSource.
//
// Sound: a tile is muted (browsers autoplay only muted video); the `sound` attribute unmutes it. The
// element sets `audio` while the stream it plays carries the camera's sound (MSE: AAC in the init
// segment; WebRTC: the server said so in its answer). WebRTC asks for an audio track only with `sound`
// (each listener costs the server an Opus transcode of the camera): unmuting a WebRTC session without one
// goes over to a new session that has it, through a Switch, so the picture never stops.
//
// State for tests and the console: the element's `state` attribute (idle, connecting, webrtc, mse,
// error), `transport` and `showing` (the stream on screen); the <video> shown is `element.video`.

const MSE_CODECS = [
  'avc1.42e01e', 'avc1.4d401f', 'avc1.640028', 'avc1.640029', 'avc1.64002a', 'avc1.640033',
  'hvc1.1.6.L93.B0', 'hvc1.1.6.L120.90', 'hvc1.1.6.L123.B0', 'hvc1.1.6.L153.B0', 'hev1.1.6.L120.90',
];
// How far behind the live edge MSE may drift before the player jumps forward, and where it lands.
const MAX_LAG_S = 0.4;
const EDGE_S = 0.05;
const KEEP_S = 10;
// `stream="auto"`: the main stream from this width in device pixels, the sub stream again below the
// second (apart, so that a tile near the line does not flip back and forth).
const AUTO_MAIN_PX = 960;
const AUTO_SUB_PX = 720;
// A stream switch that has not shown a frame by then is given up; the old stream stays.
const SWITCH_GIVE_UP_MS = 15000;
const VIDEO_CSS = 'width:100%;height:100%;background:#000;object-fit:contain';

/** The MediaSource of this browser: ManagedMediaSource where it is the only one (iOS Safari 17.1+). */
const MediaSourceClass = () => window.MediaSource || window.ManagedMediaSource || null;

function makeVideo() {
  const v = document.createElement('video');
  v.muted = true;
  v.autoplay = true;
  v.playsInline = true;
  // ManagedMediaSource plays only when the element cannot be sent to AirPlay instead.
  v.disableRemotePlayback = true;
  v.style.cssText = VIDEO_CSS;
  return v;
}

/** Calls `cb` once `video` has a decoded frame to show. */
function onFirstFrame(video, cb) {
  let done = false;
  const once = () => { if (!done) { done = true; cb(); } };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(once);
  // A hidden element may never be composited: a decoded current frame is enough.
  const poll = () => {
    if (done) return;
    if (video.readyState >= 2 && !video.paused && video.videoWidth > 0) once();
    else setTimeout(poll, 50);
  };
  poll();
  return () => { done = true; };
}

class VigilLive extends HTMLElement {
  static get observedAttributes() { return ['camera', 'stream', 'mode', 'sound']; }

  constructor() {
    super();
    this.video = makeVideo();
    this.video.muted = !this.hasAttribute('sound');
    this.attempt = 0;
    this.visible = false;
    this.timer = null;
    this.session = null;
    this.current = null; // the stream the session plays
    this.pending = null; // a Switch under way
  }

  connectedCallback() {
    if (!this.contains(this.video)) this.append(this.video);
    if (!this.session) this.setState('idle');
    this.io = new IntersectionObserver((entries) => {
      this.visible = entries.some((e) => e.isIntersecting);
      this.update();
    });
    this.io.observe(this);
    this.ro = new ResizeObserver(() => { if (this.getAttribute('stream') === 'auto') this.switchStream(); });
    this.ro.observe(this);
    this.onVisibility = () => this.update();
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  disconnectedCallback() {
    this.io?.disconnect();
    this.ro?.disconnect();
    document.removeEventListener('visibilitychange', this.onVisibility);
    // Moved to another place in the page (a tile opened full screen): it plays on there.
    queueMicrotask(() => { if (!this.isConnected) this.stop(); });
  }

  attributeChangedCallback(name, before, after) {
    if (name === 'sound') { this.soundChanged(); return; }
    if (!this.session || before === after) return;
    if (name === 'stream') this.switchStream();
    else { this.stop(); this.update(); }
  }

  get wanted() { return this.visible && document.visibilityState === 'visible' && this.isConnected; }

  /** The stream to play now: the attribute's, or for `auto` the one the element's size calls for. */
  get wantedStream() {
    const s = this.getAttribute('stream') || 'main';
    if (s !== 'auto') return s;
    // Past 2x (phones) more pixels do not pay for the main stream's bit rate.
    const px = this.clientWidth * Math.min(window.devicePixelRatio || 1, 2);
    if (this.current === 'main') return px < AUTO_SUB_PX ? 'sub' : 'main';
    return px >= AUTO_MAIN_PX ? 'main' : 'sub';
  }

  /** Unmutes or mutes; a WebRTC session that asked for no audio track is replaced by one that does. */
  soundChanged() {
    this.video.muted = !this.hasAttribute('sound');
    if (!this.hasAttribute('sound') || !this.session || this.session.transport !== 'webrtc' || this.session.audioTrack) return;
    if (!this.playing) { this.stop(); this.update(); return; }
    this.pending?.cancel();
    this.pending = new Switch(this, this.current);
  }

  /** Whether the stream being played carries the camera's sound (the session tells). */
  hasSound(on) { this.toggleAttribute('audio', !!on); }

  get playing() { return ['webrtc', 'mse'].includes(this.getAttribute('state')) && this.video.readyState >= 2; }

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
    this.pending?.cancel();
    const s = this.session;
    this.session = null;
    this.current = null;
    if (s) s.close();
    this.setState('idle', '');
    this.removeAttribute('showing');
    this.removeAttribute('audio');
  }

  retry(reason) {
    this.pending?.cancel();
    if (this.session) { this.session.close(); this.session = null; }
    if (!this.wanted) return;
    const delay = Math.min(30000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt = Math.min(this.attempt + 1, 6);
    this.setState('error');
    this.setAttribute('error', reason || '');
    this.timer = setTimeout(() => { this.timer = null; this.update(); }, delay);
  }

  url(stream) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/api/v1/cameras/${encodeURIComponent(this.getAttribute('camera'))}/live?stream=${stream}`;
  }

  start() {
    this.current = this.wantedStream;
    this.setState('connecting');
    this.setAttribute('showing', this.current);
    this.session = new Session(this, this.video, this.url(this.current), this.getAttribute('mode') || 'auto');
  }

  /** Goes over to the wanted stream: at once when nothing is shown yet, else through a Switch. */
  switchStream() {
    if (!this.session) return;
    const want = this.wantedStream;
    if (this.pending && this.pending.stream !== want) this.pending.cancel();
    if (want === this.current || this.pending) return;
    if (!this.playing) { this.stop(); this.update(); return; }
    this.pending = new Switch(this, want);
  }

  /** The switch showed its first frame: its session and video become the element's. */
  adopt(sw) {
    const old = this.session;
    const oldVideo = this.video;
    this.pending = null;
    this.session = sw.session;
    this.session.el = this;
    this.video = sw.video;
    this.video.style.cssText = VIDEO_CSS;
    this.video.muted = !this.hasAttribute('sound');
    this.toggleAttribute('audio', !!sw.audio);
    this.current = sw.stream;
    this.setAttribute('showing', sw.stream);
    this.setState(sw.state, sw.transport);
    old?.close();
    oldVideo.remove();
  }
}

/** A second session playing `stream` on a hidden video over the shown one; the element adopts it at its
 *  first frame. It stands in for the element towards its Session: its state is kept, not shown, and a
 *  failure ends the switch and leaves the old stream playing. */
class Switch {
  constructor(el, stream) {
    this.el = el;
    this.stream = stream;
    this.attempt = 0;
    this.state = 'connecting';
    this.transport = '';
    this.video = makeVideo();
    this.video.style.cssText = `${VIDEO_CSS};position:absolute;inset:0;opacity:0;pointer-events:none`;
    el.append(this.video);
    this.session = new Session(this, this.video, el.url(stream), el.getAttribute('mode') || 'auto');
    this.giveUp = setTimeout(() => this.cancel(), SWITCH_GIVE_UP_MS);
    this.unwatch = onFirstFrame(this.video, () => {
      clearTimeout(this.giveUp);
      el.adopt(this);
    });
  }

  setState(state, transport) {
    this.state = state;
    if (transport !== undefined) this.transport = transport;
  }

  /** Whether the new stream has sound, told the element when it adopts the switch. */
  hasSound(on) { this.audio = on; }

  getAttribute(name) { return this.el.getAttribute(name); }

  setAttribute() { /* errors of a switch show as it being given up */ }

  retry() { this.cancel(); }

  cancel() {
    clearTimeout(this.giveUp);
    this.unwatch();
    this.session.close();
    this.video.remove();
    if (this.el.pending === this) this.el.pending = null;
  }
}

/** One connection to the server playing into `video`; `el` is the element (or the Switch) it reports to. */
class Session {
  constructor(el, video, url, mode) {
    this.el = el;
    this.video = video;
    this.closed = false;
    this.queue = [];
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => {
      if (mode !== 'mse' && window.RTCPeerConnection) this.startWebrtc(mode === 'webrtc');
      else this.startMse();
    };
    this.ws.onmessage = (ev) => this.onMessage(ev);
    this.ws.onclose = () => { if (!this.closed) this.el.retry('connection closed'); };
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
    this.audioTrack = this.el.getAttribute('sound') !== null;
    if (this.audioTrack) pc.addTransceiver('audio', { direction: 'recvonly' });
    // One stream of both tracks, whatever stream ids the answer gave them.
    const media = new MediaStream();
    pc.ontrack = (ev) => {
      media.addTrack(ev.track);
      if (this.video.srcObject !== media) this.video.srcObject = media;
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
    const MS = MediaSourceClass();
    if (!MS) { this.el.retry('no MediaSource in this browser'); return; }
    const codecs = MSE_CODECS.filter((c) => MS.isTypeSupported(`video/mp4; codecs="${c}"`));
    this.send({ type: 'mse', codecs });
  }

  openSource(mime) {
    if (this.sb) {
      if (this.sb.changeType) this.sb.changeType(mime);
      return;
    }
    const ms = new (MediaSourceClass())();
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
        this.el.hasSound(/mp4a/.test(m.mime));
        this.openSource(m.mime);
        break;
      case 'skip':
        // The next fragment is a keyframe after a gap: resume there rather than play a backlog.
        this.jump = true;
        break;
      case 'webrtc/answer':
        this.el.hasSound(!!m.audio);
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
