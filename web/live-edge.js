// Playback that runs on into live (回到直播): the playback page's player. It drives a Replay (recorded
// footage, replay.js) and, when the footage runs out while the camera is recording now, goes on with the
// camera's live stream in the same place, without a reload. "Back to live" jumps to the live edge from
// anywhere; a seek into the recording (the timeline, -10 s, the keyboard) leaves live again.
//
// Invariants: exactly one of the two is shown, the recorded <video> or a <vigil-live>; while live the
// replay is paused and the playhead is the wall clock. Recorded footage ends about a fragment before now,
// so the edge is reached when the replay has nothing newer even after the spans are read again, and the
// newest footage is younger than EDGE_MS. Events: 'time' {time} and 'state' {state, message}, the replay's
// forwarded while it is shown, with state 'live' while live.
import { h } from './core.js';
import './live-player.js';

/** Footage that ended at most this long ago is the live edge: the camera is recording now. */
const EDGE_MS = 15000;

export class LivePlayback extends EventTarget {
  /** `stage`: the element that holds `replay.video`; `refresh()`: reads the spans again, resolves to them;
   *  `live`: whether the user may watch live (an investigator may not: the footage then just ends). */
  constructor({ camera, stage, replay, refresh, live }) {
    super();
    this.mayLive = live;
    this.camera = camera;
    this.stage = stage;
    this.replay = replay;
    this.refresh = refresh;
    this.player = null;
    this.forward = (e) => {
      if (this.player) return;
      this.dispatchEvent(new CustomEvent(e.type, { detail: e.detail }));
      if (e.type === 'state' && e.detail.state === 'ended') this.ended().catch(() => {});
    };
    replay.addEventListener('time', this.forward);
    replay.addEventListener('state', this.forward);
  }

  destroy() {
    this.stopLive();
    this.replay.removeEventListener('time', this.forward);
    this.replay.removeEventListener('state', this.forward);
  }

  get live() { return this.player !== null; }

  /** The wall time shown (ms). */
  get time() { return this.live ? Date.now() : this.replay.time; }

  /** The newest recorded footage's end, if the camera is recording now. */
  get edge() {
    if (!this.mayLive) return null;
    const last = this.replay.spans[this.replay.spans.length - 1];
    return last && Date.now() - last.end < EDGE_MS ? last.end : null;
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  /** Shows the live stream in place of the recording. */
  goLive() {
    if (this.player || !this.mayLive) return;
    this.triedAt = undefined;
    this.replay.pause();
    this.player = h('vigil-live', { class: 'rp-live', camera: String(this.camera), stream: 'main' });
    // The sound goes on live as it was on the recording.
    this.player.toggleAttribute('sound', !this.replay.video.muted);
    this.replay.video.hidden = true;
    this.stage.append(this.player);
    this.clock = setInterval(() => this.emit('time', { time: Date.now() }), 250);
    this.emit('state', { state: 'live' });
    this.emit('time', { time: Date.now() });
  }

  stopLive() {
    if (!this.player) return;
    clearInterval(this.clock);
    this.player.remove();
    this.player = null;
    this.replay.video.hidden = false;
  }

  /** Shows wall time `ms`: the recording there, or live when `ms` lies past the footage at the edge. */
  seek(ms, play) {
    const edge = this.edge;
    if (edge !== null && ms >= edge) { this.goLive(); return; }
    const wasLive = this.live;
    this.stopLive();
    this.triedAt = undefined;
    this.replay.seek(ms, play ?? (wasLive || undefined));
  }

  /** Live pauses into the recording at its newest moment (time-shift); else the replay's play/pause. */
  toggle() {
    if (!this.live) { this.replay.toggle(); return; }
    const last = this.replay.spans[this.replay.spans.length - 1];
    this.stopLive();
    if (last) this.replay.seek(last.end - 1000, false);
  }

  stepRate(dir) { this.replay.stepRate(dir); }

  /** The replay ran out: footage written meanwhile plays on; at the live edge, live does. */
  async ended() {
    const at = this.replay.time;
    // The replay ended where the last attempt to play on started: it found nothing newer it could play
    // (the newest fragment not readable yet). Then live takes over at the edge, instead of reading the
    // spans and trying again at once, over and over (three requests each time, without a pause).
    const again = this.triedAt !== undefined && at !== null && Math.abs(at - this.triedAt) < 1000;
    const spans = await this.refresh();
    if (this.live || this.replay.time !== at || this.replay.state !== 'ended') return; // the user moved on
    const last = spans[spans.length - 1];
    if (!again && last && at !== null && last.end > at + 500) {
      this.triedAt = at;
      this.replay.next();
    } else if (this.edge !== null) this.goLive();
  }
}
