// The cap on in-flight asynchronous work (Note [In-flight cap] in src/pool.h).
//
// At most `cap` jobs are submitted to the worker pool and unsettled at once. A call past the cap waits in a
// FIFO queue and is submitted when a slot frees; once anything waits, later calls queue behind it, so calls are
// submitted in program order and the pool's per-tensor ordering (Note [Per-tensor order]) is program order.
// The non-blocking form (trySubmit) never waits: past the cap it rejects with InFlightLimitError.
import { InFlightLimitError } from './errors.js';

export class Scheduler {
  constructor(cap = 256) {
    this.setCap(cap);
    this.inFlight = 0;
    this.queue = [];
  }

  setCap(cap) {
    if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`in-flight cap must be a positive integer, got ${cap}`);
    this.cap = cap;
  }

  get waiting() {
    return this.queue.length;
  }

  // start() submits the work and returns its promise.
  submit(start) {
    if (this.inFlight < this.cap && this.queue.length === 0) return this.#start(start);
    return new Promise((resolve, reject) => this.queue.push({ start, resolve, reject }));
  }

  trySubmit(start) {
    if (this.inFlight >= this.cap || this.queue.length > 0) {
      return Promise.reject(new InFlightLimitError(
        `${this.inFlight} calls are in flight, the cap (${this.cap}); await some, or call without .try to wait`));
    }
    return this.#start(start);
  }

  #start(start) {
    this.inFlight++;
    let p;
    try {
      p = start();
    } catch (e) {
      p = Promise.reject(e);
    }
    const done = () => {
      this.inFlight--;
      while (this.queue.length > 0 && this.inFlight < this.cap) {
        const w = this.queue.shift();
        this.#start(w.start).then(w.resolve, w.reject);
      }
    };
    p.then(done, done);
    return p;
  }
}

export const scheduler = new Scheduler(Number(process.env.VT_JS_MAX_IN_FLIGHT || 256));
