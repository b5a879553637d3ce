// What subscribers get: last-value records, events labelled with their continuity, and delivery
// as callbacks, per animation frame, or as an async iterator that conflates per subject when its
// reader falls behind (so a page that cannot keep up, or a hidden tab, holds at most one pending
// event per subject).
import type { Fields } from './protocol.js';

/**
 * How a message continues a subject's stream (the .NET client's `Continuity`):
 * - `continuous`: an update in order, or the first image of a subscription;
 * - `resumed`: an image after a move at the same epoch and seq: nothing was missed;
 * - `gap`: an image after a move at a later seq of the same epoch (updates were missed; this image
 *   holds the current state), or an update whose seq skipped without `@merged` saying so;
 * - `fresh`: another epoch (a new history begins with this image).
 */
export type Continuity = 'continuous' | 'resumed' | 'gap' | 'fresh';

/** A subject's last value, kept up to date for UI code. */
export interface SubjectRecord {
  subject: string;
  /** As decimal strings: epochs and seqs are 64-bit. */
  epoch: string;
  seq: string;
  fields: Fields;
  /** OK, STALE, NOT_FOUND, DENIED, or '' before the first message. */
  status: string;
  /** The server the last message came from. */
  server: string;
  /** The label of the last image or update. */
  continuity: Continuity;
  /** Updates merged into what was delivered so far (server or client conflation). */
  merged: number;
  /** Date.now() of the last change. */
  updatedAt: number;
  /**
   * With stamps (the default): fields held at later writes than the farm now has (it lost them:
   * every server that had them died). Their values are the newest seen and may be out of date;
   * absent when there are none.
   */
  behind?: string[];
}

/** One message for the application. */
export interface SubjectEvent {
  type: 'image' | 'update' | 'status';
  subject: string;
  epoch: string;
  seq: string;
  /** image: every field; update: the fields that changed (merged ones when conflated); status: none. */
  fields: Fields;
  status: string;
  continuity: Continuity;
  /** How many server messages this event stands for (1, or more when conflated). */
  merged: number;
  server: string;
  /** The subject's whole record after this event. */
  record: SubjectRecord;
}

const rank: Record<Continuity, number> = { continuous: 0, resumed: 1, gap: 2, fresh: 3 };

/** Merges `next` into a pending `prev` of the same subject: latest fields, latest seq, the strongest label. */
export function conflate(prev: SubjectEvent, next: SubjectEvent): SubjectEvent {
  if (next.type === 'status') return { ...prev, status: next.status, record: next.record };
  if (next.type === 'image') return { ...next, merged: prev.merged + next.merged, continuity: rank[prev.continuity] > rank[next.continuity] ? prev.continuity : next.continuity };
  const base = prev.type === 'status' ? { ...next, fields: {} } : prev;
  return {
    ...base,
    type: prev.type === 'image' ? 'image' : 'update',
    epoch: next.epoch,
    seq: next.seq,
    fields: { ...base.fields, ...next.fields },
    status: next.status,
    merged: (prev.type === 'status' ? 0 : prev.merged) + next.merged,
    continuity: rank[prev.continuity] > rank[next.continuity] ? prev.continuity : next.continuity,
    server: next.server,
    record: next.record,
  };
}

export type Delivery = 'each' | 'frame';

export interface SubscribeOptions {
  /** 'each' (default): the callback gets every event; 'frame': at most once per animation frame, conflated per subject. */
  delivery?: Delivery;
}

const nextFrame: (f: () => void) => unknown =
  typeof requestAnimationFrame === 'function' ? (f) => requestAnimationFrame(f) : (f) => setTimeout(f, 16);

/** A set of subjects subscribed together. Iterate it (`for await`) or give it a callback. */
export class Subscription implements AsyncIterable<SubjectEvent> {
  private _pending = new Map<string, SubjectEvent>();
  private _waiter: ((r: IteratorResult<SubjectEvent>) => void) | null = null;
  private _closed = false;
  private _frameDue = false;
  /** Events merged because the reader or the page was behind. */
  conflated = 0;

  constructor(
    readonly subjects: readonly string[],
    private readonly _callback: ((e: SubjectEvent) => void) | ((batch: SubjectEvent[]) => void) | undefined,
    private readonly _delivery: Delivery,
    private readonly _onClose: (s: Subscription) => void,
    private readonly _onError: (e: unknown) => void,
  ) {}

  /** Called by the client for each message of one of its subjects. */
  deliver(e: SubjectEvent): void {
    if (this._closed) return;
    if (this._callback && this._delivery === 'each') {
      try {
        (this._callback as (e: SubjectEvent) => void)(e);
      } catch (err) {
        this._onError(err);
      }
      return;
    }
    if (this._waiter && this._pending.size === 0) {
      const w = this._waiter;
      this._waiter = null;
      w({ value: e, done: false });
      return;
    }
    const key = e.type === 'status' ? e.subject + '\0s' : e.subject;
    const prev = this._pending.get(key);
    if (prev) {
      this.conflated++;
      this._pending.delete(key); // re-inserted: the map's order stays the order of the latest change
      this._pending.set(key, conflate(prev, e));
    } else {
      this._pending.set(key, e);
    }
    if (this._callback && !this._frameDue) {
      this._frameDue = true;
      nextFrame(() => this.flushFrame());
    }
  }

  private flushFrame(): void {
    this._frameDue = false;
    if (this._closed || this._pending.size === 0) return;
    const batch = [...this._pending.values()];
    this._pending.clear();
    try {
      (this._callback as (batch: SubjectEvent[]) => void)(batch);
    } catch (err) {
      this._onError(err);
    }
  }

  /** Events waiting for the reader (at most two per subject). */
  get pending(): number {
    return this._pending.size;
  }

  /** Ends the subscription (the client unsubscribes subjects no other subscription wants). */
  close(): void {
    if (this._closed) return;
    this._closed = true;
    this._pending.clear();
    if (this._waiter) {
      this._waiter({ value: undefined, done: true });
      this._waiter = null;
    }
    this._onClose(this);
  }

  get closed(): boolean {
    return this._closed;
  }

  [Symbol.asyncIterator](): AsyncIterator<SubjectEvent> {
    return {
      next: () => {
        if (this._pending.size > 0) {
          const [key, value] = this._pending.entries().next().value as [string, SubjectEvent];
          this._pending.delete(key);
          return Promise.resolve({ value, done: false });
        }
        if (this._closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this._waiter = resolve;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
