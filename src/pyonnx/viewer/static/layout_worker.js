// The layout worker: runs off the page's main thread so that laying out a large graph never
// freezes the tab. The page builds this worker from a Blob holding dagre's source followed by
// this file, so `dagre` is a global here.
//
// Message in:  {id, nodes: [{w, h, parent}], edges: [[src, dst]], clusters: [{parent}],
//               fast: bool}   (parent: a cluster index or -1)
// Message out: {id, x, y (node centres), cx, cy, cw, ch (cluster boxes), points (flat x,y
//               list), offsets (edge k's points are points[offsets[k]..offsets[k+1])),
//               engine: 'dagre' | 'fast', ms}
'use strict';

// dagre is a well-kept layered layout, but it costs about a millisecond per node and its
// recursion overflows the stack on very long chains: above this size the fast layered layout
// below is used instead (the page can still ask for dagre on what is expanded).
const DAGRE_LIMIT = 1500;
// dagre's depth-first searches recurse once per rank: about 1,000 ranks overflow a worker's
// stack, so deeper graphs go to the fast layout at once instead of failing after a while
const DAGRE_MAX_DEPTH = 800;
const NODESEP = 24, RANKSEP = 36, PAD = 18;

self.onmessage = (ev) => {
  const msg = ev.data;
  const t0 = performance.now();
  let out = null;
  if (!msg.fast && msg.nodes.length <= DAGRE_LIMIT && typeof dagre !== 'undefined' &&
      ranking(msg).maxRank < DAGRE_MAX_DEPTH) {
    try {
      out = dagreLayout(msg);
    } catch (e) {
      out = null;  // a graph dagre cannot lay out (a stack overflow) gets the fast layout
    }
  }
  if (out === null) out = fastLayout(msg);
  out.id = msg.id;
  out.ms = performance.now() - t0;
  self.postMessage(out, [out.x.buffer, out.y.buffer, out.points.buffer, out.offsets.buffer]);
};

function dagreLayout(msg) {
  const compound = msg.clusters.length > 0;
  const g = new dagre.graphlib.Graph({compound: compound, multigraph: false});
  g.setGraph({rankdir: 'TB', nodesep: NODESEP, ranksep: RANKSEP, marginx: 8, marginy: 8});
  g.setDefaultEdgeLabel(() => ({}));
  msg.clusters.forEach((c, k) => g.setNode('c' + k, {paddingTop: PAD}));
  msg.nodes.forEach((n, i) => g.setNode('n' + i, {width: n.w, height: n.h}));
  if (compound) {
    msg.clusters.forEach((c, k) => { if (c.parent >= 0) g.setParent('c' + k, 'c' + c.parent); });
    msg.nodes.forEach((n, i) => { if (n.parent >= 0) g.setParent('n' + i, 'c' + n.parent); });
  }
  for (const [s, d] of msg.edges) if (s !== d) g.setEdge('n' + s, 'n' + d);
  dagre.layout(g, {disableOptimalOrderHeuristic: msg.nodes.length > 600});
  const n = msg.nodes.length;
  const x = new Float64Array(n), y = new Float64Array(n);
  for (let i = 0; i < n; i++) { const v = g.node('n' + i); x[i] = v.x; y[i] = v.y; }
  const k = msg.clusters.length;
  const cx = [], cy = [], cw = [], ch = [];
  for (let c = 0; c < k; c++) {
    const v = g.node('c' + c);
    cx.push(v.x); cy.push(v.y); cw.push(v.width); ch.push(v.height);
  }
  const pts = [], offsets = [0];
  for (const [s, d] of msg.edges) {
    const e = s !== d ? g.edge('n' + s, 'n' + d) : null;
    if (e && e.points) for (const p of e.points) pts.push(p.x, p.y);
    offsets.push(pts.length);
  }
  return {x, y, cx, cy, cw, ch, points: new Float64Array(pts), offsets: new Int32Array(offsets),
          engine: 'dagre'};
}

// A layered layout in linear time: longest-path ranks (sources pulled down next to their first
// consumer), one barycentre pass to order each rank, and overlaps pushed apart. Edges are straight.
// Longest-path ranks in Kahn's order (nodes left on a cycle are appended in index order);
// sources are pulled down to just above their first consumer.
function ranking(msg) {
  const n = msg.nodes.length;
  const preds = Array.from({length: n}, () => []);
  const succs = Array.from({length: n}, () => []);
  const indeg = new Int32Array(n);
  for (const [s, d] of msg.edges) {
    if (s === d) continue;
    succs[s].push(d); preds[d].push(s); indeg[d]++;
  }
  const order = [], seen = new Uint8Array(n);
  const queue = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) queue.push(i);
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q]; order.push(v); seen[v] = 1;
    for (const w of succs[v]) if (--indeg[w] === 0) queue.push(w);
  }
  for (let i = 0; i < n; i++) if (!seen[i]) order.push(i);
  const pos = new Int32Array(n);
  order.forEach((v, k) => { pos[v] = k; });
  const rank = new Int32Array(n);
  for (const v of order) {
    let r = 0;
    for (const u of preds[v]) if (pos[u] < pos[v]) r = Math.max(r, rank[u] + 1);
    rank[v] = r;
  }
  for (let k = order.length - 1; k >= 0; k--) {  // constants sit just above their consumer
    const v = order[k];
    if (preds[v].length === 0 && succs[v].length > 0) {
      let m = Infinity;
      for (const w of succs[v]) m = Math.min(m, rank[w]);
      rank[v] = Math.max(0, m - 1);
    }
  }
  let maxRank = 0;
  for (let i = 0; i < n; i++) maxRank = Math.max(maxRank, rank[i]);
  return {preds, succs, order, rank, maxRank};
}

function fastLayout(msg) {
  const n = msg.nodes.length;
  const {preds, order, rank, maxRank} = ranking(msg);
  const byRank = Array.from({length: maxRank + 1}, () => []);
  for (const v of order) byRank[rank[v]].push(v);
  const x = new Float64Array(n), y = new Float64Array(n);
  let top = 8;
  for (let r = 0; r <= maxRank; r++) {
    const row = byRank[r];
    let h = 0;
    const want = new Float64Array(row.length);
    row.forEach((v, k) => {
      h = Math.max(h, msg.nodes[v].h);
      let sum = 0, cnt = 0;
      for (const u of preds[v]) if (rank[u] < r) { sum += x[u]; cnt++; }
      want[k] = cnt ? sum / cnt : k * (msg.nodes[v].w + NODESEP);
    });
    const idx = row.map((v, k) => k).sort((a, b) => want[a] - want[b]);
    let right = -Infinity, shift = 0, cnt = 0;
    for (const k of idx) {
      const v = row[k], w = msg.nodes[v].w;
      const left = Math.max(want[k] - w / 2, right + NODESEP);
      x[v] = left + w / 2;
      shift += x[v] - want[k]; cnt++;
      right = left + w;
    }
    if (cnt) {  // centre the row on where it wanted to be
      const s = shift / cnt;
      for (const v of row) x[v] -= s;
    }
    for (const v of row) y[v] = top + h / 2;
    top += h + RANKSEP;
  }
  let minX = Infinity;
  for (let i = 0; i < n; i++) minX = Math.min(minX, x[i] - msg.nodes[i].w / 2);
  for (let i = 0; i < n; i++) x[i] += 8 - minX;
  // cluster boxes: the bounds of their members (and nested clusters), padded
  const k = msg.clusters.length;
  const bx0 = new Float64Array(k).fill(Infinity), by0 = new Float64Array(k).fill(Infinity);
  const bx1 = new Float64Array(k).fill(-Infinity), by1 = new Float64Array(k).fill(-Infinity);
  const grow = (c, a0, b0, a1, b1) => {
    for (; c >= 0; c = msg.clusters[c].parent) {
      bx0[c] = Math.min(bx0[c], a0 - PAD); by0[c] = Math.min(by0[c], b0 - PAD);
      bx1[c] = Math.max(bx1[c], a1 + PAD); by1[c] = Math.max(by1[c], b1 + PAD);
    }
  };
  msg.nodes.forEach((nd, i) => {
    if (nd.parent >= 0) grow(nd.parent, x[i] - nd.w / 2, y[i] - nd.h / 2, x[i] + nd.w / 2, y[i] + nd.h / 2);
  });
  const cx = [], cy = [], cw = [], ch = [];
  for (let c = 0; c < k; c++) {
    const ok = isFinite(bx0[c]);
    cx.push(ok ? (bx0[c] + bx1[c]) / 2 : 0); cy.push(ok ? (by0[c] + by1[c]) / 2 : 0);
    cw.push(ok ? bx1[c] - bx0[c] : 0); ch.push(ok ? by1[c] - by0[c] : 0);
  }
  // an edge between adjacent ranks is straight; a longer one (a residual connection) bends
  // out to the right of both ends, so that it does not run hidden through the nodes between
  const pts = [], offsets = new Int32Array(msg.edges.length + 1);
  msg.edges.forEach(([s, d], e) => {
    const ns = msg.nodes[s], nd = msg.nodes[d];
    const y0 = y[s] + ns.h / 2, y1 = y[d] - nd.h / 2;
    if (rank[d] - rank[s] > 1) {
      const bx = Math.max(x[s] + ns.w / 2, x[d] + nd.w / 2) + 14 + 6 * (e % 3);
      pts.push(x[s], y0, bx, y0 + RANKSEP / 2, bx, y1 - RANKSEP / 2, x[d], y1);
    } else {
      pts.push(x[s], y0, x[d], y1);
    }
    offsets[e + 1] = pts.length;
  });
  const points = new Float64Array(pts);
  return {x, y, cx, cy, cw, ch, points, offsets, engine: 'fast'};
}
