// pyonnx viewer: draws the model description that `pyonnx view` embeds in the page.
//
// Rules this file keeps:
// * Everything that comes from the model (names, doc strings, attribute values) reaches the
//   page as text: through textContent or the canvas' fillText, never parsed as markup.
// * Layout runs in a Web Worker; the main thread draws on one canvas, only what is on screen,
//   with less detail when zoomed out, so that a graph of tens of thousands of nodes pans and
//   zooms without long tasks.
'use strict';
(function () {
  const data = JSON.parse(document.getElementById('model-data').textContent);
  const config = JSON.parse(document.getElementById('viewer-config').textContent);
  const api = window.__viewer = {ready: false, layouts: 0, firstPaint: null, engine: null,
                                 errors: []};

  // ------------------------------------------------------------------ small DOM helpers
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function fmt(x) {
    if (x === null || x === undefined) return 'n/a';
    if (typeof x !== 'number') return String(x);
    if (Number.isInteger(x)) return x.toLocaleString('en');
    const a = Math.abs(x);
    return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? x.toExponential(3) : x.toPrecision(4);
  }
  function fmtTime(us) { return us >= 1000 ? (us / 1000).toFixed(2) + ' ms' : us.toFixed(1) + ' µs'; }
  function shapeText(v) {
    if (!v) return 'unknown';
    const dt = v.dtype || v.type || '?';
    if (v.shape === undefined || v.shape === null) return dt + (v.type && v.type.startsWith('tensor') ? ' [rank unknown]' : '');
    return dt + '[' + v.shape.map((d) => (d === null ? '?' : String(d))).join(', ') + ']';
  }
  function kv(table, key, value) {
    const tr = el('tr');
    tr.appendChild(el('th', null, key));
    const td = el('td');
    if (value instanceof Node) td.appendChild(value); else td.textContent = value === undefined ? '' : String(value);
    tr.appendChild(td);
    table.appendChild(tr);
    return tr;
  }

  // ------------------------------------------------------------------ the description, indexed
  const functions = {};
  for (const f of data.functions || []) functions[f.id] = f;
  const violationsByNode = {};
  for (const v of data.violations || []) {
    if (v.node !== null && v.node !== undefined) (violationsByNode[v.node] = violationsByNode[v.node] || []).push(v);
  }
  // every node of the main graph and its subgraphs by template id (for search and reveal)
  const allNodes = [];
  const byTid = new Map();
  (function index(g, parentSid) {
    g.nodes.forEach((n) => {
      allNodes.push({n, g, parentSid});
      byTid.set(n.id, {n, g});
      for (const [, sg] of n.sub || []) index(sg, n.id);
    });
  })(data.graph, null);

  // ------------------------------------------------------------------ scene
  // The scene is what is drawn: the main graph's nodes, graph inputs and outputs, and the
  // subgraphs and function bodies the user expanded (drawn inside a box with their node).
  const expanded = new Set();
  let scene = null;
  const NODE_H = 38, IO_H = 26, WEIGHT_H = 13, MAX_WEIGHT_LINES = 3;

  function nodeWidth(label, sub) {
    const len = Math.max(label.length, Math.min(sub.length, 40) * 0.85);
    return Math.max(72, Math.min(260, 16 + len * 7.2));
  }

  function buildScene() {
    const nodes = [], edges = [], clusters = [];
    const sidIndex = new Map();
    function add(node) { node.index = nodes.length; nodes.push(node); sidIndex.set(node.sid, node.index); return node.index; }
    function graphInstance(g, prefix, cluster, scope, tidMap) {
      // prefix: scene-id prefix of this graph's nodes ('' for the main graph)
      const local = new Map();  // value name -> scene index of its producer here
      const inst = {g, scope, local};
      const inputIdx = [], outputIdx = [];
      const inits = g.initializers || {};
      g.inputs.forEach((name, k) => {
        if (name in inits) { inputIdx.push(-1); return; }
        const i = add({sid: (prefix ? prefix + '/' : '') + 'in:' + k, kind: 'input', label: name, sub: shapeText(g.values[name]),
                       w: nodeWidth(name, ''), h: IO_H, cluster, value: name, g});
        inputIdx.push(i); local.set(name, i);
      });
      const opIdx = g.nodes.map((n, j) => {
        const sid = prefix ? prefix + '/' + j : String(j);
        const tid = tidMap ? tidMap(n.id) : n.id;
        const label = n.op;
        const sub = n.name || '';
        const canExpand = !!((n.sub && n.sub.length) || (n.fn && functions[n.fn]));
        const isOpen = canExpand && expanded.has(sid);
        let myCluster = cluster;
        if (isOpen) {
          myCluster = clusters.length;
          clusters.push({parent: cluster, label: n.op + (n.name ? ' ' + n.name : ''), sid});
        }
        // weights are listed inside their node, as Netron does: name and shape
        const weights = [];
        for (const name of n.in) {
          const st = name ? findInit(g, name) : null;
          if (st) weights.push(name + ' ⟨' + (st.shape.length ? st.shape.join('×') : 'scalar') + '⟩');
        }
        if (weights.length > MAX_WEIGHT_LINES) {
          const more = weights.length - MAX_WEIGHT_LINES + 1;
          weights.splice(MAX_WEIGHT_LINES - 1, weights.length, '+ ' + more + ' more');
        }
        let w = nodeWidth(label, sub);
        for (const t of weights) w = Math.max(w, Math.min(260, 16 + Math.min(t.length, 40) * 6));
        const i = add({sid, tid, kind: 'op', n, label, sub, weights, w, h: NODE_H + WEIGHT_H * weights.length,
                       cluster: myCluster, canExpand, isOpen, g});
        return i;
      });
      g.nodes.forEach((n, j) => { for (const o of n.out) if (o) local.set(o, opIdx[j]); });
      g.outputs.forEach((name, k) => {
        const i = add({sid: (prefix ? prefix + '/' : '') + 'out:' + k, kind: 'output', label: name, sub: shapeText(g.values[name]),
                       w: nodeWidth(name, ''), h: IO_H, cluster, value: name, g});
        outputIdx.push(i);
      });
      const ref = (r) => (typeof r === 'number' ? opIdx[r] : r[0] === 'i' ? inputIdx[+r.slice(1)] : outputIdx[+r.slice(1)]);
      for (const [s, d, v] of g.edges) {
        const a = ref(s), b = ref(d);
        if (a >= 0 && b >= 0) edges.push({s: a, d: b, v, g});
      }
      for (const [v, d] of g.captures || []) {
        const b = ref(d);
        for (let sc = scope; sc; sc = sc.scope) {
          if (sc.local.has(v)) { edges.push({s: sc.local.get(v), d: b, v, g}); break; }
        }
      }
      // expanded bodies, after this graph's own values are known (they may read them)
      g.nodes.forEach((n, j) => {
        const hi = opIdx[j], head = nodes[hi];
        if (!head.isOpen) return;
        const bodies = [];
        if (n.sub && n.sub.length) {
          for (const [label, sg] of n.sub) {
            let c = head.cluster;
            if (n.sub.length > 1) {
              c = clusters.length;
              clusters.push({parent: head.cluster, label, sid: head.sid + '/' + label});
            }
            bodies.push(graphInstance(sg, head.sid + '/' + label, c, inst, tidMap));
          }
        } else {
          const f = functions[n.fn];
          const fprefix = head.sid + '/fn';
          // ids inside the body: the function's template ids (violations are keyed by them)
          bodies.push(graphInstance(f.graph, fprefix, head.cluster, null, null));
        }
        // the body hangs below its node: layout-only edges to its first nodes
        for (const b of bodies) {
          for (const idx of b.roots) edges.push({s: hi, d: idx, v: '', hidden: true});
        }
      });
      // roots: nodes of this instance with no incoming edge from inside it
      const hasIn = new Set();
      const mine = new Set([...inputIdx.filter((i) => i >= 0), ...opIdx, ...outputIdx]);
      for (const e of edges) if (mine.has(e.d) && mine.has(e.s)) hasIn.add(e.d);
      inst.roots = [...mine].filter((i) => !hasIn.has(i) && nodes[i].kind !== 'output');
      return inst;
    }
    graphInstance(data.graph, '', -1, null, null);
    return {nodes, edges, clusters, sidIndex, laid: false};
  }

  // ------------------------------------------------------------------ layout (in a worker)
  let worker = null;
  let layoutSeq = 0;
  function startWorker() {
    const src = document.getElementById('layout-src').textContent;
    const url = URL.createObjectURL(new Blob([src], {type: 'text/javascript'}));
    worker = new Worker(url);
    worker.onmessage = (ev) => applyLayout(ev.data);
    worker.onerror = (ev) => { status('layout failed: ' + (ev.message || 'worker error')); };
  }
  function relayout(keepView) {
    scene = buildScene();
    scene.keepView = keepView;
    const msg = {
      id: ++layoutSeq,
      fast: false,
      nodes: scene.nodes.map((n) => ({w: n.w, h: n.h, parent: n.cluster})),
      edges: scene.edges.map((e) => [e.s, e.d]),
      clusters: scene.clusters.map((c) => ({parent: c.parent})),
    };
    status('laying out ' + scene.nodes.length.toLocaleString('en') + ' nodes…');
    worker.postMessage(msg);
  }

  function applyLayout(r) {
    if (r.id !== layoutSeq) return;  // a newer layout is on its way
    const s = scene;
    s.x = r.x; s.y = r.y; s.points = r.points; s.offsets = r.offsets;
    s.clusters.forEach((c, k) => { c.x = r.cx[k]; c.y = r.cy[k]; c.w = r.cw[k]; c.h = r.ch[k]; });
    s.laid = true;
    api.engine = r.engine;
    api.layoutMs = r.ms;
    buildGrid();
    if (!s.keepView) fit();
    else if (s.focus) centerOn(s.focus);
    api.layouts++;
    status(s.nodes.length.toLocaleString('en') + ' nodes, laid out by ' + (r.engine === 'dagre' ? 'dagre' : 'the fast layered layout') +
           ' in ' + Math.round(r.ms) + ' ms');
    draw();
    if (api.firstPaint === null) api.firstPaint = performance.now();
    api.ready = true;
    document.body.dataset.state = 'ready';
    if (s.afterLayout) { const f = s.afterLayout; s.afterLayout = null; f(); }
  }

  // a uniform grid over the layout: which nodes lie in each cell (culling and hit tests)
  const CELL = 512;
  function buildGrid() {
    const s = scene, grid = new Map();
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let i = 0; i < s.nodes.length; i++) {
      const n = s.nodes[i], hx = n.w / 2, hy = n.h / 2;
      const a = Math.floor((s.x[i] - hx) / CELL), b = Math.floor((s.x[i] + hx) / CELL);
      const c = Math.floor((s.y[i] - hy) / CELL), d = Math.floor((s.y[i] + hy) / CELL);
      for (let gx = a; gx <= b; gx++) for (let gy = c; gy <= d; gy++) {
        const key = gx * 1048576 + gy;
        let cell = grid.get(key);
        if (!cell) grid.set(key, cell = []);
        cell.push(i);
      }
      x0 = Math.min(x0, s.x[i] - hx); x1 = Math.max(x1, s.x[i] + hx);
      y0 = Math.min(y0, s.y[i] - hy); y1 = Math.max(y1, s.y[i] + hy);
    }
    s.grid = grid;
    s.bounds = s.nodes.length ? {x0, y0, x1, y1} : {x0: 0, y0: 0, x1: 100, y1: 100};
  }
  function nodesIn(wx0, wy0, wx1, wy1) {
    const s = scene, out = [];
    const a = Math.floor(wx0 / CELL), b = Math.floor(wx1 / CELL);
    const c = Math.floor(wy0 / CELL), d = Math.floor(wy1 / CELL);
    const cells = (b - a + 1) * (d - c + 1);
    if (cells > s.grid.size) {  // zoomed far out: a plain scan is cheaper
      for (let i = 0; i < s.nodes.length; i++) {
        const n = s.nodes[i];
        if (s.x[i] + n.w / 2 >= wx0 && s.x[i] - n.w / 2 <= wx1 && s.y[i] + n.h / 2 >= wy0 && s.y[i] - n.h / 2 <= wy1) out.push(i);
      }
      return out;
    }
    const seen = new Set();
    for (let gx = a; gx <= b; gx++) for (let gy = c; gy <= d; gy++) {
      const cell = s.grid.get(gx * 1048576 + gy);
      if (!cell) continue;
      for (const i of cell) if (!seen.has(i)) { seen.add(i); out.push(i); }
    }
    return out;
  }

  // ------------------------------------------------------------------ view and drawing
  const canvas = document.getElementById('graph');
  const ctx = canvas.getContext('2d');
  const view = {x: 0, y: 0, k: 1};  // screen = (world - (x, y)) * k
  let overlay = 'none';
  let selected = null;   // scene sid
  let highlighted = new Set();  // search hits (sids)
  let drawQueued = false;

  function resize() {
    const r = canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(r.width * dpr));
    canvas.height = Math.max(1, Math.round(r.height * dpr));
    canvas.style.width = r.width + 'px';
    canvas.style.height = r.height + 'px';
    draw();
  }
  function fit() {
    const b = scene.bounds, W = canvas.clientWidth, H = canvas.clientHeight;
    const kW = W / (b.x1 - b.x0 + 40), kH = H / (b.y1 - b.y0 + 40);
    const k = Math.min(kW, kH, 1.5);
    // a graph much taller than the window starts readable at its top rather than a speck
    const tall = kH < kW && kH < 0.5;
    view.k = tall ? Math.min(1, Math.max(0.5, kW)) : Math.max(k, minZoom());
    view.x = (b.x0 + b.x1) / 2 - W / 2 / view.k;
    view.y = tall ? b.y0 - 20 / view.k : (b.y0 + b.y1) / 2 - H / 2 / view.k;
  }
  // zooming out stops where the whole graph fits in the window (and a little beyond)
  function minZoom() {
    if (!scene || !scene.bounds) return 0.01;
    const b = scene.bounds;
    const all = Math.min(canvas.clientWidth / (b.x1 - b.x0 + 40), canvas.clientHeight / (b.y1 - b.y0 + 40));
    return Math.min(0.05, 0.8 * all);
  }
  function centerOn(sid) {
    const i = scene.sidIndex.get(sid);
    if (i === undefined || !scene.laid) return;
    const W = canvas.clientWidth, H = canvas.clientHeight;
    if (view.k < 0.6) view.k = 1;
    view.x = scene.x[i] - W / 2 / view.k;
    view.y = scene.y[i] - H / 2 / view.k;
    draw();
  }
  function draw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => { drawQueued = false; paint(); });
  }

  function heat(t) {  // 0..1 -> pale yellow .. red
    const r = 255, g = Math.round(236 - 200 * t), b = Math.round(180 - 170 * t);
    return 'rgb(' + r + ',' + g + ',' + b + ')';
  }
  function nodeFill(n) {
    if (n.kind === 'input') return '#dfe9f7';
    if (n.kind === 'output') return '#e4f2e1';
    if (overlay === 'profile' && data.profile) {
      const p = data.profile.nodes[n.tid];
      if (!p) return '#f1f1f1';
      return heat(Math.log1p(p.us) / Math.log1p(profileMax()));
    }
    if (overlay === 'compare' && data.compare) {
      const c = data.compare.nodes[n.tid];
      if (!c) return '#f1f1f1';
      return c.ok ? '#d9f2d9' : '#ff6b6b';
    }
    return n.isOpen ? '#eef0f7' : '#ffffff';
  }
  let _pmax = null;
  function profileMax() {
    if (_pmax === null) { _pmax = 1; for (const k in data.profile.nodes) _pmax = Math.max(_pmax, data.profile.nodes[k].us); }
    return _pmax;
  }

  function paint() {
    api.frames = (api.frames || 0) + 1;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!scene || !scene.laid) return;
    const s = scene, k = view.k;
    ctx.setTransform(dpr * k, 0, 0, dpr * k, -view.x * dpr * k, -view.y * dpr * k);
    const W = canvas.clientWidth, H = canvas.clientHeight;
    const wx0 = view.x, wy0 = view.y, wx1 = view.x + W / k, wy1 = view.y + H / k;
    // clusters (expanded bodies)
    for (const c of s.clusters) {
      if (c.x + c.w / 2 < wx0 || c.x - c.w / 2 > wx1 || c.y + c.h / 2 < wy0 || c.y - c.h / 2 > wy1) continue;
      ctx.fillStyle = 'rgba(90,110,170,0.06)';
      ctx.strokeStyle = '#9aa6c8';
      ctx.lineWidth = 1 / k;
      ctx.fillRect(c.x - c.w / 2, c.y - c.h / 2, c.w, c.h);
      ctx.strokeRect(c.x - c.w / 2, c.y - c.h / 2, c.w, c.h);
      if (k > 0.35) {
        ctx.fillStyle = '#56608a';
        ctx.font = '11px sans-serif';
        ctx.fillText(c.label.slice(0, 80), c.x - c.w / 2 + 4, c.y - c.h / 2 + 12);
      }
    }
    const vis = nodesIn(wx0, wy0, wx1, wy1);
    const detail = k >= 0.45 && vis.length < 4000;
    // edges: one path for all (cheap); skipped when a far zoom would make them a grey smear
    if (vis.length < 20000 || k > 0.05) {
      ctx.beginPath();
      const E = s.edges;
      for (let e = 0; e < E.length; e++) {
        if (E[e].hidden) continue;
        const o0 = s.offsets[e], o1 = s.offsets[e + 1];
        if (o1 - o0 < 4) continue;
        let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
        for (let o = o0; o < o1; o += 2) {
          const px = s.points[o], py = s.points[o + 1];
          if (px < minX) minX = px; if (px > maxX) maxX = px; if (py < minY) minY = py; if (py > maxY) maxY = py;
        }
        if (maxX < wx0 || minX > wx1 || maxY < wy0 || minY > wy1) continue;
        ctx.moveTo(s.points[o0], s.points[o0 + 1]);
        for (let o = o0 + 2; o < o1; o += 2) ctx.lineTo(s.points[o], s.points[o + 1]);
      }
      ctx.strokeStyle = '#8a8f99';
      ctx.lineWidth = Math.max(1 / k, 0.8);
      ctx.stroke();
      if (detail) {  // arrow heads
        ctx.fillStyle = '#8a8f99';
        ctx.beginPath();
        for (let e = 0; e < E.length; e++) {
          if (E[e].hidden) continue;
          const o1 = s.offsets[e + 1];
          if (o1 - s.offsets[e] < 4) continue;
          const tx = s.points[o1 - 2], ty = s.points[o1 - 1];
          if (tx < wx0 || tx > wx1 || ty < wy0 || ty > wy1) continue;
          const fx = s.points[o1 - 4], fy = s.points[o1 - 3];
          const ang = Math.atan2(ty - fy, tx - fx), L = 7;
          ctx.moveTo(tx, ty);
          ctx.lineTo(tx - L * Math.cos(ang - 0.4), ty - L * Math.sin(ang - 0.4));
          ctx.lineTo(tx - L * Math.cos(ang + 0.4), ty - L * Math.sin(ang + 0.4));
          ctx.closePath();
        }
        ctx.fill();
      }
    }
    // far out, thousands of nodes share each pixel: draw one node per 2x2-pixel cell
    let shown = vis;
    if (k < 0.05 && vis.length > 5000) {
      const cw = Math.ceil(W / 2) + 1, occupied = new Uint8Array(cw * (Math.ceil(H / 2) + 1));
      shown = [];
      for (const i of vis) {
        const px = Math.floor((s.x[i] - wx0) * k / 2), py = Math.floor((s.y[i] - wy0) * k / 2);
        if (px < 0 || py < 0 || px >= cw) { shown.push(i); continue; }
        const cell = py * cw + px;
        if (cell >= occupied.length) { shown.push(i); continue; }
        if (!occupied[cell] || selected === s.nodes[i].sid || highlighted.has(s.nodes[i].sid)) {
          occupied[cell] = 1;
          shown.push(i);
        }
      }
    }
    // close in, each edge is labelled with its value's inferred shape, next to its head
    if (detail && k >= 0.6) {
      ctx.font = '10px ui-monospace, monospace';
      ctx.fillStyle = '#4a5470';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'middle';
      let labels = 0;
      for (let e = 0; e < s.edges.length && labels < 1500; e++) {
        const E = s.edges[e];
        if (E.hidden || !E.v) continue;
        const o1 = s.offsets[e + 1];
        if (o1 - s.offsets[e] < 4) continue;
        const tx = s.points[o1 - 2], ty = s.points[o1 - 1] - 12;
        if (tx < wx0 || tx > wx1 || ty < wy0 || ty > wy1) continue;
        const info = findValue(E.g, E.v);
        if (!info || info.shape === undefined || info.shape === null) continue;
        ctx.fillText(info.shape.map((d) => (d === null ? '?' : String(d))).join('×') || 'scalar', tx + 4, ty);
        labels++;
      }
    }
    // nodes, batched by fill colour
    const batches = new Map();
    for (const i of shown) {
      const f = nodeFill(s.nodes[i]);
      let b = batches.get(f);
      if (!b) batches.set(f, b = []);
      b.push(i);
    }
    const least = 2 / k;  // far out, a node stays at least two pixels big
    for (const [f, list] of batches) {
      ctx.beginPath();
      for (const i of list) {
        const n = s.nodes[i], w = Math.max(n.w, least), h = Math.max(n.h, least);
        ctx.rect(s.x[i] - w / 2, s.y[i] - h / 2, w, h);
      }
      ctx.fillStyle = k < 0.08 && f === '#ffffff' ? '#7b8194' : f;
      ctx.fill();
      if (k > 0.08) { ctx.lineWidth = 1 / k; ctx.strokeStyle = '#5b6170'; ctx.stroke(); }
    }
    // marks: violations, compare disagreements, search hits, the selection
    ctx.lineWidth = Math.max(2.5, 2.5 / k);
    for (const i of shown) {
      const n = s.nodes[i];
      let colour = null;
      if (n.sid === selected) colour = '#1565c0';
      else if (highlighted.has(n.sid)) colour = '#f9a825';
      else if (overlay === 'compare' && data.compare && data.compare.first === n.tid) colour = '#b00020';
      else if (n.kind === 'op' && violationsByNode[n.tid]) colour = '#ef6c00';
      if (colour) {
        ctx.strokeStyle = colour;
        ctx.strokeRect(s.x[i] - n.w / 2 - 2, s.y[i] - n.h / 2 - 2, n.w + 4, n.h + 4);
      }
    }
    if (detail) {
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      for (const i of vis) {
        const n = s.nodes[i], cx = s.x[i], cy = s.y[i];
        if (n.kind === 'op') {
          const hy = cy - n.h / 2 + NODE_H / 2;  // centre of the op/name header
          ctx.fillStyle = '#111';
          ctx.font = 'bold 12px sans-serif';
          ctx.fillText(clip(n.label, n.w), cx, n.sub ? hy - 7 : hy);
          if (n.sub) {
            ctx.font = '10px sans-serif';
            ctx.fillStyle = '#555';
            ctx.fillText(clip(n.sub, n.w), cx, hy + 8);
          }
          if (n.weights.length) {
            ctx.font = '10px ui-monospace, monospace';
            ctx.fillStyle = '#2f3b66';
            n.weights.forEach((t, j) => {
              ctx.fillText(clip(t, n.w), cx, cy - n.h / 2 + NODE_H + WEIGHT_H * j + 4);
            });
          }
          if (n.canExpand) {
            ctx.font = 'bold 12px sans-serif';
            ctx.fillStyle = '#3949ab';
            ctx.fillText(n.isOpen ? '−' : '+', cx + n.w / 2 - 8, cy - n.h / 2 + 9);
          }
          if (violationsByNode[n.tid]) {
            ctx.fillStyle = '#ef6c00';
            ctx.fillText('!', cx - n.w / 2 + 7, cy - n.h / 2 + 9);
          }
        } else {
          ctx.fillStyle = '#123';
          ctx.font = '11px sans-serif';
          ctx.fillText(clip(n.label, n.w), cx, cy);
        }
      }
    }
  }
  function clip(text, w) {
    const max = Math.max(4, Math.floor((w - 10) / 6.5));
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  function hit(clientX, clientY) {
    if (!scene || !scene.laid) return null;
    const r = canvas.getBoundingClientRect();
    const wx = view.x + (clientX - r.left) / view.k, wy = view.y + (clientY - r.top) / view.k;
    const cand = nodesIn(wx - 1, wy - 1, wx + 1, wy + 1);
    for (const i of cand) {
      const n = scene.nodes[i];
      if (Math.abs(wx - scene.x[i]) <= n.w / 2 && Math.abs(wy - scene.y[i]) <= n.h / 2) return i;
    }
    return null;
  }

  // pan, zoom, click, double-click
  let drag = null;
  canvas.addEventListener('mousedown', (e) => { drag = {x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false}; });
  window.addEventListener('mousemove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    view.x = drag.vx - dx / view.k; view.y = drag.vy - dy / view.k;
    draw();
  });
  window.addEventListener('mouseup', (e) => {
    if (drag && !drag.moved && e.target === canvas) {
      const i = hit(e.clientX, e.clientY);
      select(i === null ? null : scene.nodes[i].sid);
    }
    drag = null;
  });
  canvas.addEventListener('dblclick', (e) => {
    const i = hit(e.clientX, e.clientY);
    if (i !== null && scene.nodes[i].canExpand) toggle(scene.nodes[i].sid);
  });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    const wx = view.x + mx / view.k, wy = view.y + my / view.k;
    const f = Math.exp(-e.deltaY * (e.ctrlKey ? 0.01 : 0.0015));
    view.k = Math.min(8, Math.max(minZoom(), view.k * f));
    view.x = wx - mx / view.k; view.y = wy - my / view.k;
    draw();
  }, {passive: false});
  window.addEventListener('resize', resize);

  function toggle(sid) {
    if (expanded.has(sid)) expanded.delete(sid); else expanded.add(sid);
    scene.focus = sid;
    relayout(true);
    scene.focus = sid;
  }

  // ------------------------------------------------------------------ side panel
  const panel = document.getElementById('panel');
  function section(title) {
    const s = el('section');
    s.appendChild(el('h3', null, title));
    panel.appendChild(s);
    return s;
  }
  function select(sid) {
    selected = sid;
    draw();
    clear(panel);
    if (sid === null) return showModel();
    const i = scene.sidIndex.get(sid);
    if (i === undefined) return showModel();
    const sn = scene.nodes[i];
    if (sn.kind !== 'op') return showValuePanel(sn);
    showNode(sn);
  }
  function valueRow(table, name, g, role) {
    const tr = el('tr');
    tr.appendChild(el('td', 'vname', name || '(absent)'));
    const info = name ? findValue(g, name) : null;
    tr.appendChild(el('td', 'vshape', name ? shapeText(info) : ''));
    table.appendChild(tr);
    const st = name ? findInit(g, name) : null;
    if (st) {
      const tr2 = el('tr');
      const td = el('td');
      td.colSpan = 2;
      td.appendChild(statsBlock(st));
      tr2.appendChild(td);
      table.appendChild(tr2);
    }
    tr.dataset.role = role;
  }
  function findValue(g, name) {
    // the graph, then enclosing graphs (a subgraph reads outer values)
    for (let cur = g; cur; cur = parentGraph.get(cur)) if (cur.values[name]) return cur.values[name];
    return null;
  }
  function findInit(g, name) {
    for (let cur = g; cur; cur = parentGraph.get(cur)) if (cur.initializers && cur.initializers[name]) return cur.initializers[name];
    return null;
  }
  const parentGraph = new Map();
  (function link(g) { for (const n of g.nodes) for (const [, sg] of n.sub || []) { parentGraph.set(sg, g); link(sg); } })(data.graph);

  function statsBlock(st) {
    const box = el('div', 'stats');
    const t = el('table');
    kv(t, 'tensor', st.dtype + '[' + st.shape.join(', ') + ']' + (st.sparse ? ' (sparse, ' + st.nnz + ' stored)' : ''));
    if (st.external !== undefined) kv(t, 'external data', st.external);
    if (st.error) kv(t, 'error', st.error);
    if (st.min !== undefined) {
      kv(t, 'min / max', fmt(st.min) + ' / ' + fmt(st.max));
      kv(t, 'mean / std', fmt(st.mean) + ' / ' + fmt(st.std));
    }
    if (st.zeros !== undefined) kv(t, 'zeros', (100 * st.zeros).toFixed(2) + ' %');
    if (st.nonfinite) kv(t, 'NaN / inf', st.nonfinite);
    box.appendChild(t);
    if (st.hist) {
      const h = el('div', 'hist');
      const m = Math.max(1, ...st.hist.counts);
      st.hist.counts.forEach((c) => {
        const bar = el('div', 'bar');
        bar.style.height = (c ? Math.max(2, 40 * c / m) : 0) + 'px';
        bar.title = c.toLocaleString('en');
        h.appendChild(bar);
      });
      box.appendChild(h);
      box.appendChild(el('div', 'histaxis', fmt(st.hist.lo) + ' … ' + fmt(st.hist.hi)));
    }
    return box;
  }

  function showNode(sn) {
    const n = sn.n;
    const head = section(n.op + (n.domain ? '  (' + n.domain + ')' : ''));
    head.id = 'node-panel';
    const t = el('table');
    kv(t, 'name', n.name || '(unnamed)');
    kv(t, 'domain', n.domain || 'ai.onnx');
    kv(t, 'since version', n.version === null || n.version === undefined ? 'unknown' : n.version);
    const url = data.opDocs[(n.domain === 'ai.onnx' ? '' : n.domain) + '::' + n.op];
    if (url && url.startsWith('https://')) {
      const a = el('a', null, 'operator documentation');
      a.href = url; a.target = '_blank'; a.rel = 'noopener noreferrer';
      kv(t, 'docs', a);
    }
    if (n.fn) kv(t, 'function', (functions[n.fn] || {}).name || n.fn);
    head.appendChild(t);
    if (n.doc) head.appendChild(el('p', 'doc', n.doc));
    if (sn.canExpand) {
      const b = el('button', null, sn.isOpen ? 'Collapse' : (n.fn ? 'Expand function body' : 'Expand subgraph'));
      b.id = 'expand';
      b.addEventListener('click', () => toggle(sn.sid));
      head.appendChild(b);
    }
    const vs = violationsByNode[sn.tid];
    if (vs) {
      const s = section('Checker');
      for (const v of vs) s.appendChild(el('p', 'violation', '[' + v.rule + '] ' + v.message));
    }
    if (data.profile && data.profile.nodes[sn.tid]) {
      const p = data.profile.nodes[sn.tid], s = section('Profile'), pt = el('table');
      kv(pt, 'time', fmtTime(p.us) + ' in ' + p.count + ' run(s)');
      kv(pt, 'share', (100 * p.us / Math.max(1e-9, data.profile.total_us)).toFixed(2) + ' %');
      s.appendChild(pt);
    }
    if (data.compare && data.compare.nodes[sn.tid]) {
      const c = data.compare.nodes[sn.tid], s = section('Compare'), ct = el('table');
      s.id = 'compare-panel';
      kv(ct, 'verdict', c.ok ? 'agrees with ' + data.compare.baseline : 'DISAGREES with ' + data.compare.baseline);
      kv(ct, 'output', c.value);
      if (!c.ok) kv(ct, 'why', c.reason);
      if (c.max_abs !== null && c.max_abs !== undefined) kv(ct, 'max abs / rel diff', fmt(c.max_abs) + ' / ' + fmt(c.max_rel));
      if (c.total) kv(ct, 'elements beyond tolerance', c.bad + ' of ' + c.total);
      s.appendChild(ct);
    }
    if (n.attrs.length) {
      const s = section('Attributes'), at = el('table');
      for (const a of n.attrs) {
        const tr = kv(at, a.name, a.value);
        if (a.stats) { const r2 = el('tr'), td = el('td'); td.colSpan = 2; td.appendChild(statsBlock(a.stats)); r2.appendChild(td); at.appendChild(r2); }
        tr.title = a.type;
      }
      s.appendChild(at);
    }
    const si = section('Inputs'), it = el('table');
    it.id = 'inputs';
    n.in.forEach((name) => valueRow(it, name, sn.g, 'input'));
    si.appendChild(it);
    const so = section('Outputs'), ot = el('table');
    ot.id = 'outputs';
    n.out.forEach((name) => valueRow(ot, name, sn.g, 'output'));
    so.appendChild(ot);
    if (n.meta) {
      const s = section('Metadata'), mt = el('table');
      for (const k of Object.keys(n.meta)) kv(mt, k, n.meta[k]);
      s.appendChild(mt);
    }
    backLink();
  }
  function showValuePanel(sn) {
    const s = section(sn.kind === 'input' ? 'Graph input' : 'Graph output');
    s.id = 'node-panel';
    const t = el('table');
    kv(t, 'name', sn.value);
    kv(t, 'type', shapeText(findValue(sn.g, sn.value)));
    const v = findValue(sn.g, sn.value);
    if (v && v.doc) kv(t, 'doc', v.doc);
    s.appendChild(t);
    backLink();
  }
  function backLink() {
    const b = el('button', 'back', 'Model overview');
    b.addEventListener('click', () => select(null));
    panel.appendChild(b);
  }

  function showModel() {
    const m = data.model;
    const s = section(data.title);
    s.id = 'model-panel';
    const t = el('table');
    kv(t, 'IR version', m.ir_version);
    kv(t, 'opsets', Object.keys(m.opsets).map((d) => (d || 'ai.onnx') + ' ' + m.opsets[d]).join(', '));
    if (m.producer_name) kv(t, 'producer', m.producer_name + ' ' + m.producer_version);
    if (m.domain) kv(t, 'domain', m.domain);
    if (m.model_version) kv(t, 'model version', m.model_version);
    if (m.graph_name) kv(t, 'graph', m.graph_name);
    kv(t, 'nodes', fmt(data.counts.nodes) + (data.counts.all_nodes !== data.counts.nodes ? ' (' + fmt(data.counts.all_nodes) + ' with subgraphs)' : ''));
    kv(t, 'weights', fmt(data.counts.initializers) + ' tensors, ' + fmt(data.counts.parameters) + ' elements');
    if (data.counts.functions) kv(t, 'local functions', data.counts.functions);
    for (const k of Object.keys(m.metadata)) kv(t, k, m.metadata[k]);
    s.appendChild(t);
    if (m.doc) s.appendChild(el('p', 'doc', m.doc));
    for (const note of data.notes) s.appendChild(el('p', 'note', note));
    if (data.violations.length) {
      const sv = section('Checker: ' + data.violations.length + ' violation(s)');
      for (const v of data.violations.slice(0, 200)) {
        const p = el('p', 'violation', '[' + v.rule + '] ' + v.location + ': ' + v.message);
        if (v.node !== null) { p.classList.add('link'); p.addEventListener('click', () => reveal(v.node)); }
        sv.appendChild(p);
      }
    }
    profileSection();
    compareSection();
    const sh = section('Operators');
    const ht = el('table', 'ophist');
    ht.id = 'ophist';
    const maxc = data.opHistogram.length ? data.opHistogram[0].count : 1;
    for (const o of data.opHistogram) {
      const tr = el('tr');
      const name = el('td', 'link', (o.domain ? o.domain + '::' : '') + o.op);
      name.addEventListener('click', () => { search.value = o.op; runSearch(); });
      tr.appendChild(name);
      tr.appendChild(el('td', 'num', o.count));
      const td = el('td');
      const bar = el('div', 'hbar');
      bar.style.width = Math.max(2, 120 * o.count / maxc) + 'px';
      td.appendChild(bar);
      tr.appendChild(td);
      ht.appendChild(tr);
    }
    sh.appendChild(ht);
  }

  function profileSection() {
    const s = section('Profile');
    s.id = 'profile-section';
    if (data.profile) {
      const p = data.profile;
      s.appendChild(el('p', null, p.source + ': ' + fmtTime(p.total_us) + ' in all, ' + Object.keys(p.nodes).length + ' nodes timed'));
      const t = el('table', 'topops');
      t.id = 'top-ops';
      const hr = el('tr');
      for (const h of ['operator', 'calls', 'time', 'share']) hr.appendChild(el('th', null, h));
      t.appendChild(hr);
      for (const r of p.ops.slice(0, 15)) {
        const tr = el('tr');
        tr.appendChild(el('td', null, r.op));
        tr.appendChild(el('td', 'num', r.count));
        tr.appendChild(el('td', 'num', fmtTime(r.us)));
        tr.appendChild(el('td', 'num', (100 * r.share).toFixed(1) + ' %'));
        t.appendChild(tr);
      }
      s.appendChild(t);
      if (p.unmatched.length) s.appendChild(el('p', 'note', p.unmatched.length + ' timed name(s) are not nodes of this graph (fused by an optimized session, or unnamed), e.g. ' + p.unmatched[0].name));
    } else {
      s.appendChild(el('p', 'note', 'No profile loaded' + (config.api ? '.' : ' (pyonnx view MODEL --profile TRACE.json).')));
    }
    if (config.api) {
      const b = el('button', null, 'Run profile now');
      b.id = 'run-profile';
      b.addEventListener('click', () => callApi('profile', {}, b));
      s.appendChild(b);
    }
  }
  function compareSection() {
    const s = section('Compare engines');
    s.id = 'compare-section';
    if (data.compare) {
      const c = data.compare;
      const bad = Object.values(c.nodes).filter((x) => !x.ok).length;
      s.appendChild(el('p', null, c.agree ? 'pyonnx and ' + c.baseline + ' agree on every compared value.' :
        bad + ' node(s) disagree with ' + (c.baseline || 'the baseline')));
      for (const e of c.engines) if (!e.ok) s.appendChild(el('p', 'violation', e.name + ' failed: ' + e.error));
      if (c.first) {
        const p = el('p', 'link', 'first disagreement: node ' + c.first);
        p.id = 'first-disagreement';
        p.addEventListener('click', () => reveal(c.first));
        s.appendChild(p);
      }
      s.appendChild(el('pre', 'report', c.text));
    } else {
      s.appendChild(el('p', 'note', 'No comparison loaded' + (config.api ? '.' : ' (pyonnx view MODEL --compare-with onnxruntime).')));
    }
    if (config.api) {
      const sel = el('select');
      for (const e of ['onnxruntime', 'reference']) { const o = el('option', null, e); o.value = e; sel.appendChild(o); }
      const b = el('button', null, 'Compare pyonnx with');
      b.id = 'run-compare';
      b.addEventListener('click', () => callApi('compare', {engine: sel.value}, b));
      s.appendChild(b);
      s.appendChild(sel);
    }
  }
  function callApi(what, params, button) {
    button.disabled = true;
    const q = new URLSearchParams(params);
    q.set('token', config.token);
    status('running ' + what + '…');
    fetch('/api/' + what + '?' + q.toString(), {method: 'POST'}).then((r) => r.json().then((body) => {
      if (!r.ok) throw new Error(body.error || r.statusText);
      data[what] = body;
      _pmax = null;
      setOverlay(what);
      select(null);
      status(what + ' done');
    })).catch((e) => { status(what + ' failed: ' + e.message); button.disabled = false; });
  }

  // ------------------------------------------------------------------ search
  const search = document.getElementById('search');
  const results = document.getElementById('results');
  let searchTimer = null;
  search.addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 120); });
  search.addEventListener('keydown', (e) => { if (e.key === 'Enter') { const f = results.querySelector('li'); if (f) f.click(); } });
  function runSearch() {
    const q = search.value.trim().toLowerCase();
    clear(results);
    highlighted = new Set();
    if (!q) { results.hidden = true; draw(); return; }
    const hits = [];
    for (const e of allNodes) {
      const n = e.n;
      if (n.op.toLowerCase() === q || n.name.toLowerCase().includes(q) || n.op.toLowerCase().includes(q) ||
          n.out.some((o) => o && o.toLowerCase().includes(q))) {
        hits.push(e);
        if (scene.sidIndex.has(n.id)) highlighted.add(n.id);
      }
    }
    results.hidden = false;
    results.appendChild(el('li', 'count', hits.length + ' match(es)'));
    for (const e of hits.slice(0, 200)) {
      const li = el('li', 'hit');
      li.appendChild(el('b', null, e.n.op));
      li.appendChild(el('span', null, ' ' + (e.n.name || '(unnamed)')));
      li.dataset.id = e.n.id;
      li.addEventListener('click', () => { results.hidden = true; reveal(e.n.id); });
      results.appendChild(li);
    }
    draw();
  }
  // show a node, expanding the subgraphs that hold it
  function reveal(tid) {
    const parts = tid.split('/');
    let need = false;
    for (let k = 1; k < parts.length; k += 2) {
      const anc = parts.slice(0, k).join('/');
      if (!expanded.has(anc)) { expanded.add(anc); need = true; }
    }
    if (need) {
      relayout(true);
      scene.focus = tid;
      scene.afterLayout = () => select(tid);
    } else {
      centerOn(tid);
      select(tid);
    }
  }

  // ------------------------------------------------------------------ overlays and chrome
  const overlaySel = document.getElementById('overlay');
  function setOverlay(what) {
    overlay = what;
    overlaySel.value = what;
    document.body.dataset.overlay = what;
    draw();
  }
  overlaySel.addEventListener('change', () => setOverlay(overlaySel.value));
  function refreshOverlayChoices() {
    for (const o of overlaySel.options) if (o.value !== 'none') o.disabled = !data[o.value] && !config.api;
  }
  document.getElementById('fit').addEventListener('click', () => { fit(); draw(); });
  const statusEl = document.getElementById('status');
  function status(text) { statusEl.textContent = text; }
  document.getElementById('title').textContent = data.title;
  document.title = data.title + ' — pyonnx view';

  // test and benchmark hooks: where a node is on screen, and programmatic selection
  api.screenPoint = (sid) => {
    const i = scene.sidIndex.get(sid);
    if (i === undefined) return null;
    const r = canvas.getBoundingClientRect();
    return {x: r.left + (scene.x[i] - view.x) * view.k, y: r.top + (scene.y[i] - view.y) * view.k};
  };
  api.centerOn = (sid) => centerOn(sid);
  api.redraw = () => draw();
  api.edges = () => scene.edges.filter((e) => !e.hidden).map((e) => [scene.nodes[e.s].sid, scene.nodes[e.d].sid, e.v]);
  api.zoom = () => view.k;
  api.setZoom = (k) => { view.k = k; draw(); };
  api.nodeCount = () => (scene ? scene.nodes.length : 0);
  api.select = (sid) => select(sid);
  api.reveal = (tid) => reveal(tid);
  api.setOverlay = (o) => setOverlay(o);
  api.fillOf = (sid) => { const i = scene.sidIndex.get(sid); return i === undefined ? null : nodeFill(scene.nodes[i]); };
  api.expanded = () => [...expanded];
  // the colour drawn just inside a node's top-left corner (what a user sees as its fill)
  api.pixelAt = (sid) => {
    const i = scene.sidIndex.get(sid);
    if (i === undefined) return null;
    const n = scene.nodes[i], dpr = window.devicePixelRatio || 1;
    const sx = ((scene.x[i] - n.w / 2 - view.x) * view.k + 6) * dpr;
    const sy = ((scene.y[i] - n.h / 2 - view.y) * view.k + 6) * dpr;
    return Array.from(ctx.getImageData(Math.round(sx), Math.round(sy), 1, 1).data);
  };
  api.toggle = (sid) => toggle(sid);

  refreshOverlayChoices();
  if (data.compare) setOverlay('compare'); else if (data.profile) setOverlay('profile');
  startWorker();
  resize();
  showModel();
  relayout(false);
})();
