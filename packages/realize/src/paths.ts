/**
 * Paths through the switch mesh: breadth-first search over the prepared
 * internet's port arrays (fewest switch hops), crossing only edges with enough
 * free capacity and only switches and gateways as transit. Visited marks are
 * epoch-stamped so nothing is cleared between searches.
 */
import { type InternetIndex, KIND_GATEWAY, KIND_SWITCH } from "./internet.ts";

export class PathFinder {
  private readonly seen: Int32Array;
  private readonly inPort: Int32Array;
  private readonly queue: Int32Array;
  /** The search from the far end, for switch-to-switch routes. */
  private readonly seenB: Int32Array;
  private readonly inPortB: Int32Array;
  private readonly queueB: Int32Array;
  private epoch = 0;

  constructor(private readonly ix: InternetIndex) {
    const n = ix.resources.length;
    this.seen = new Int32Array(n);
    this.inPort = new Int32Array(n);
    this.queue = new Int32Array(n);
    this.seenB = new Int32Array(n);
    this.inPortB = new Int32Array(n);
    this.queueB = new Int32Array(n);
  }

  /**
   * Ports from switch `from` to resource `to` (a switch, or an emulator whose
   * ports the far search starts from), searching from both ends a level at a
   * time (the smaller frontier first) until the searches meet: in a
   * leaf/fabric/spine mesh this touches a few switches instead of all of them.
   */
  between(from: number, to: number, edgeOk: (e: number) => boolean): number[] | undefined {
    if (from === to) return [];
    const ix = this.ix;
    const ep = ++this.epoch;
    const { seen, inPort, queue, seenB, inPortB, queueB } = this;
    seen[from] = ep;
    seenB[to] = ep;
    let headA = 0;
    let tailA = 0;
    let headB = 0;
    let tailB = 0;
    queue[tailA++] = from;
    queueB[tailB++] = to;
    let meet = -1;
    const transit = (w: number) => {
      const k = ix.resKind[w];
      return k === KIND_SWITCH || k === KIND_GATEWAY;
    };
    while (meet < 0 && headA < tailA && headB < tailB) {
      const forward = tailA - headA <= tailB - headB;
      const [q, s, ip, other] = forward ? [queue, seen, inPort, seenB] : [queueB, seenB, inPortB, seen];
      // The far end may be a non-transit resource (an emulator): reachable, never passed through.
      const far = forward ? to : from;
      let head = forward ? headA : headB;
      let tail = forward ? tailA : tailB;
      const levelEnd = tail;
      while (head < levelEnd && meet < 0) {
        const v = q[head++]!;
        const end = ix.resPortStart[v + 1]!;
        for (let p = ix.resPortStart[v]!; p < end; p++) {
          const e = ix.portEdge[p]!;
          if (e < 0) continue;
          const qp = ix.portPeer[p]!;
          const w = ix.portRes[qp]!;
          if (s[w] === ep || (w !== far && !transit(w)) || !edgeOk(e)) continue;
          s[w] = ep;
          ip[w] = qp;
          if (other[w] === ep) {
            meet = w;
            break;
          }
          q[tail++] = w;
        }
      }
      if (forward) {
        headA = head;
        tailA = tail;
      } else {
        headB = head;
        tailB = tail;
      }
    }
    if (meet < 0) return undefined;
    const out: number[] = [];
    for (let cur = meet; cur !== from; ) {
      const inp = inPort[cur]!;
      const outp = ix.portPeer[inp]!;
      out.push(inp, outp);
      cur = ix.portRes[outp]!;
    }
    out.reverse();
    for (let cur = meet; cur !== to; ) {
      const outp = inPortB[cur]!;
      const inp = ix.portPeer[outp]!;
      out.push(outp, inp);
      cur = ix.portRes[inp]!;
    }
    return out;
  }

  /**
   * Ports from switch `from` to the first resource accepted by `isTarget`:
   * [out of `from`, into next, out of next, ..., into target]. Empty when `from`
   * is itself a target. Undefined when no usable path exists.
   */
  route(from: number, isTarget: (r: number) => boolean, edgeOk: (e: number) => boolean): number[] | undefined {
    if (isTarget(from)) return [];
    const ix = this.ix;
    const ep = ++this.epoch;
    const { seen, inPort, queue } = this;
    seen[from] = ep;
    let head = 0;
    let tail = 0;
    queue[tail++] = from;
    let found = -1;
    while (head < tail && found < 0) {
      const v = queue[head++]!;
      const end = ix.resPortStart[v + 1]!;
      for (let p = ix.resPortStart[v]!; p < end; p++) {
        const e = ix.portEdge[p]!;
        if (e < 0) continue;
        const q = ix.portPeer[p]!;
        const w = ix.portRes[q]!;
        if (seen[w] === ep || !edgeOk(e)) continue;
        const target = isTarget(w);
        const kind = ix.resKind[w];
        if (!target && kind !== KIND_SWITCH && kind !== KIND_GATEWAY) continue;
        seen[w] = ep;
        inPort[w] = q;
        if (target) {
          found = w;
          break;
        }
        queue[tail++] = w;
      }
    }
    if (found < 0) return undefined;
    const out: number[] = [];
    let cur = found;
    while (cur !== from) {
      const ip = inPort[cur]!;
      const op = ix.portPeer[ip]!;
      out.push(ip, op);
      cur = ix.portRes[op]!;
    }
    return out.reverse();
  }
}
