// kvsim report viewer. Reads the JSON blob in #kvsim-data and draws the timeline on a canvas.
// Every string from the history is user data: it only ever reaches the page through
// textContent / canvas text, never through innerHTML.
"use strict";
(function () {
  const started = performance.now();
  const D = JSON.parse(document.getElementById("kvsim-data").textContent);

  // ---- constants --------------------------------------------------------------------------
  const ROW_H = 16, AXIS_H = 22, GUTTER_W = 86, TOOLTIP_CHARS_MAX = 700;
  // One colour per operation kind (kvsim_model::mvcc::gen::KIND_NAMES); kinds of one family
  // (reads, txns, leases) share a hue.
  const KIND_COLORS = {
    put: "#4e79a7", lease_put: "#6f98c4",
    get: "#59a14f", get_prefix: "#7fbf6f", get_historic: "#3d7a35", get_serializable: "#a4d38f",
    delete: "#e15759",
    txn_create: "#b07aa1", txn_cas: "#8e5b82", txn_multi: "#cfa2c3",
    lease_grant: "#76b7b2", lease_revoke: "#9c755f", lease_keepalive: "#86bcb6", lease_ttl: "#a0cbe8",
    lease_expire: "#ff9da7", compact: "#bab0ac",
  };
  const FAULT_COLORS = {
    partition: "#f28e2b", crash: "#d62728", pause: "#edc948", loss: "#9c755f", latency: "#b07aa1",
    skew: "#76b7b2",
    disk: "#4e79a7",
  };
  const TICK_STYLES = {
    s: ["#2e7d32", 1.0, "start"], r: ["#66bb6a", 1.0, "resume"], e: ["#1f77b4", 0.8, "events"],
    p: ["#9aa4b2", 0.35, "empty response"], c: ["#8e44ad", 1.0, "compacted"],
    x: ["#ef8c00", 0.7, "error"], k: ["#333333", 1.0, "cancel"], "?": ["#999999", 0.5, "other"],
  };
  const BAD = "#d62728", PROP = "#c2185b", PREFIX = "#2e7d32";
  // Operation fields (arrays keep the blob small).
  const ID = 0, CLIENT = 1, CALL = 2, RET = 3, ST = 4, KIND = 5, IN = 6, OUT = 7, KEYS = 8, SERVED = 9;
  const OK = 0, FAIL = 1, UNKNOWN = 2;

  // ---- helpers ----------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value; else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }
  function fmtT(ns) {
    if (ns === null || ns < 0) return "—";
    return (ns / 1e6).toFixed(3) + " ms";
  }
  function cap(text, max) {
    return text.length > max ? text.slice(0, max) + " … (" + (text.length - max) + " more chars)" : text;
  }
  function upperBound(list, value, key) { // first index with key(list[i]) > value
    let lo = 0, hi = list.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (key(list[mid]) <= value) lo = mid + 1; else hi = mid; }
    return lo;
  }

  // ---- data -------------------------------------------------------------------------------
  const ops = D.ops;
  const kinds = D.kinds;
  const indexOfId = new Map();
  ops.forEach((op, index) => indexOfId.set(op[ID], index));
  const clientIds = Array.from(new Set(ops.map((op) => op[CLIENT]))).sort((a, b) => a - b);
  // Lanes, not a row per client id: a client whose request had an unknown outcome continues under
  // a fresh id, so a long run has hundreds of ids with a few live at a time. Ids whose lifetimes
  // (first call to last answer; an unknown op occupies only its call instant) do not overlap
  // share a lane, packed greedily by first call: rows ≈ the peak number of live clients.
  const lifetime = new Map(); // client id -> [first call, last occupied instant]
  for (const op of ops) {
    const busy = op[RET] >= 0 ? op[RET] : op[CALL];
    const span = lifetime.get(op[CLIENT]);
    if (span) { span[0] = Math.min(span[0], op[CALL]); span[1] = Math.max(span[1], busy); }
    else lifetime.set(op[CLIENT], [op[CALL], busy]);
  }
  const laneFree = []; // per lane: the instant its last client's lifetime ended
  const laneClients = [];
  const rowOfClient = new Map();
  clientIds.slice().sort((a, b) => lifetime.get(a)[0] - lifetime.get(b)[0] || a - b).forEach((client) => {
    const [start, end] = lifetime.get(client);
    let lane = laneFree.findIndex((free) => free < start);
    if (lane < 0) { lane = laneFree.length; laneFree.push(0); laneClients.push([]); }
    laneFree[lane] = end;
    laneClients[lane].push(client);
    rowOfClient.set(client, lane);
  });
  const rowOps = laneClients.map(() => []);
  ops.forEach((op, index) => rowOps[rowOfClient.get(op[CLIENT])].push(index));
  // A lane's bars are disjoint: one operation in flight per client id, and an unknown outcome is
  // its client id's last operation.
  rowOps.forEach((list) => list.sort((a, b) => ops[a][CALL] - ops[b][CALL]));
  const laneLabel = (clients) =>
    "c" + clients[0] + (clients.length > 1 ? " +" + (clients.length - 1) : "");

  let tEnd = 1;
  for (const op of ops) tEnd = Math.max(tEnd, op[CALL], op[RET]);
  for (const s of D.spans) tEnd = Math.max(tEnd, s[1], s[2]);
  for (const m of D.marks) tEnd = Math.max(tEnd, m[1]);
  for (const t of D.ticks) tEnd = Math.max(tEnd, t[1]);
  for (const p of D.props) if (typeof p.t_ns === "number") tEnd = Math.max(tEnd, p.t_ns);
  tEnd = Math.ceil(tEnd * 1.01) + 1;
  // An unknown outcome is open-ended (it may take effect at any time after its call, or never);
  // in a shared lane its tail is cut where the lane's next operation starts.
  const drawnEnd = new Map();
  rowOps.forEach((list) => list.forEach((index, k) => {
    const op = ops[index];
    if (op[RET] >= 0) drawnEnd.set(op, op[RET]);
    else drawnEnd.set(op, k + 1 < list.length ? Math.max(op[CALL], ops[list[k + 1]][CALL]) : tEnd);
  }));
  const opEnd = (op) => drawnEnd.get(op);
  // Running maximum of the ends along each row: monotone even if a malformed history has
  // overlapping operations under one client id, so the draw's binary search stays correct.
  const rowEndMax = rowOps.map((list) => {
    const ends = new Float64Array(list.length);
    let max = -Infinity;
    list.forEach((index, k) => { max = Math.max(max, opEnd(ops[index])); ends[k] = max; });
    return ends;
  });

  const lin = D.lin;
  const prefixPos = new Map((lin.prefix || []).map((id, pos) => [id, pos]));
  const stuckIds = new Set(lin.stuck || []);
  // Answered ops that could never be placed once a stuck op took effect (see explain.rs).
  const blockerIds = new Set();
  for (const s of lin.explained || []) for (const b of s.blockers) blockerIds.add(b[0]);
  const hasLinViolation = lin.verdict === "not_linearizable";
  const propsOfOp = new Map();
  D.props.forEach((p, index) => {
    if (Array.isArray(p.ops)) for (const id of p.ops) {
      if (!propsOfOp.has(id)) propsOfOp.set(id, []);
      propsOfOp.get(id).push(index);
    }
  });
  // Operations drawn on top at every zoom level, so they never merge away.
  const special = [];
  ops.forEach((op, index) => {
    if (stuckIds.has(op[ID]) || blockerIds.has(op[ID]) || propsOfOp.has(op[ID])) special.push(index);
  });

  const spansByRow = D.rows.map(() => []);
  D.spans.forEach((s) => spansByRow[s[0]].push(s));
  const marksByRow = D.rows.map(() => []);
  D.marks.forEach((m) => marksByRow[m[0]].push(m));
  const ticksByRow = D.watchers.map(() => []);
  D.ticks.forEach((t) => ticksByRow[t[0]].push(t));
  const watchRow = new Map(D.watchers.map((w, row) => [w, row]));
  const badTicks = []; // [watcher row, t_ns, property index]
  D.props.forEach((p, index) => {
    if (typeof p.watcher === "number" && watchRow.has(p.watcher) && typeof p.t_ns === "number") {
      badTicks.push([watchRow.get(p.watcher), p.t_ns, index]);
    }
  });

  // The flat list of rows: section headers, fault rows, client rows, watcher rows.
  const rows = [];
  rows.push({ type: "section", label: "faults" });
  D.rows.forEach((name, index) => rows.push({ type: "node", index, label: name }));
  rows.push({ type: "section", label: "clients" });
  laneClients.forEach((clients, index) => rows.push({ type: "client", index, label: laneLabel(clients) }));
  if (D.watchers.length > 0) {
    rows.push({ type: "section", label: "watchers" });
    D.watchers.forEach((w, index) => rows.push({ type: "watch", index, label: "w" + w }));
  }
  const rowOfClientRow = new Map();
  const rowOfWatcherRow = new Map();
  rows.forEach((row, r) => {
    if (row.type === "client") rowOfClientRow.set(row.index, r);
    if (row.type === "watch") rowOfWatcherRow.set(row.index, r);
  });

  // ---- view state -------------------------------------------------------------------------
  const canvas = document.getElementById("timeline");
  const ctx = canvas.getContext("2d");
  const tooltip = document.getElementById("tooltip");
  const view = { t0: 0, nsPerPx: 1, scrollY: 0, width: 800, height: 400, dim: hasLinViolation };
  let selected = -1; // op index
  let selectedTick = null;
  let frameQueued = false;

  const plotW = () => Math.max(10, view.width - GUTTER_W);
  const plotH = () => view.height - AXIS_H;
  const xOf = (t) => GUTTER_W + (t - view.t0) / view.nsPerPx;
  const tOf = (x) => view.t0 + (x - GUTTER_W) * view.nsPerPx;

  function sizeCanvas() {
    const dpr = window.devicePixelRatio || 1;
    view.width = canvas.parentElement.clientWidth || 800;
    const wanted = AXIS_H + rows.length * ROW_H + 4;
    view.height = Math.max(200, Math.min(wanted, Math.round(window.innerHeight * 0.62)));
    canvas.width = Math.round(view.width * dpr);
    canvas.height = Math.round(view.height * dpr);
    canvas.style.height = view.height + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    clampScroll();
  }
  function clampScroll() {
    const maxScroll = Math.max(0, rows.length * ROW_H - plotH() + 4);
    view.scrollY = Math.min(Math.max(0, view.scrollY), maxScroll);
    const maxNsPerPx = (tEnd * 4) / plotW();
    view.nsPerPx = Math.min(Math.max(view.nsPerPx, 1e-3), maxNsPerPx);
    const span = plotW() * view.nsPerPx;
    view.t0 = Math.min(Math.max(view.t0, -span * 0.5), tEnd - span * 0.5);
  }
  function fit() { view.t0 = 0; view.nsPerPx = tEnd / plotW(); clampScroll(); schedule(); }
  function zoomAt(x, factor) {
    const t = tOf(x);
    view.nsPerPx *= factor;
    clampScroll();
    view.t0 = t - (x - GUTTER_W) * view.nsPerPx;
    clampScroll();
    schedule();
  }
  function schedule() {
    if (frameQueued) return;
    frameQueued = true;
    requestAnimationFrame(() => { frameQueued = false; draw(); });
  }

  // ---- drawing ----------------------------------------------------------------------------
  const hatches = new Map();
  function hatch(color) {
    if (!hatches.has(color)) {
      const tile = document.createElement("canvas");
      tile.width = tile.height = 8;
      const g = tile.getContext("2d");
      g.fillStyle = "rgba(255,255,255,0.9)"; g.fillRect(0, 0, 8, 8);
      g.strokeStyle = color; g.lineWidth = 2;
      g.beginPath(); g.moveTo(-2, 10); g.lineTo(10, -2); g.moveTo(6, 10); g.lineTo(10, 6);
      g.moveTo(-2, 2); g.lineTo(2, -2); g.stroke();
      hatches.set(color, ctx.createPattern(tile, "repeat"));
    }
    return hatches.get(color);
  }
  function niceStep(minNs) {
    let step = Math.pow(10, Math.floor(Math.log10(Math.max(minNs, 1e-3))));
    for (const m of [1, 2, 5, 10]) if (step * m >= minNs) return step * m;
    return step * 10;
  }
  function axisLabel(t, step) {
    if (step >= 1e9) return (t / 1e9).toFixed(step >= 1e10 ? 0 : 1) + " s";
    if (step >= 1e6) return (t / 1e6).toFixed(step >= 1e7 ? 0 : 1) + " ms";
    if (step >= 1e3) return (t / 1e3).toFixed(step >= 1e4 ? 0 : 1) + " µs";
    return t.toFixed(0) + " ns";
  }
  function opLabel(op) {
    return op[IN];
  }
  function drawOp(index, y, emphasis) {
    const op = ops[index];
    let x0 = xOf(op[CALL]), x1 = xOf(opEnd(op));
    if (x1 - x0 < 2) x1 = x0 + 2;
    if (x1 < GUTTER_W || x0 > view.width) return x1;
    const color = KIND_COLORS[kinds[op[KIND]]] || "#888";
    const top = y + 3, h = ROW_H - 6;
    const dimmed = view.dim && hasLinViolation && !prefixPos.has(op[ID]) && !stuckIds.has(op[ID]) && !blockerIds.has(op[ID]);
    ctx.globalAlpha = dimmed ? 0.28 : 1;
    if (op[ST] === FAIL) {
      ctx.fillStyle = "#d4d6da"; ctx.fillRect(x0, top, x1 - x0, h);
      ctx.strokeStyle = "#9aa0a8"; ctx.lineWidth = 1; ctx.strokeRect(x0 + 0.5, top + 0.5, x1 - x0 - 1, h - 1);
    } else if (op[ST] === UNKNOWN) {
      // Open-ended: it may take effect at any time after its call, or never.
      // A strong hatched head, then a faint open tail so that many retired client ids stay readable.
      const head = Math.min(x1 - x0, 24), alpha = ctx.globalAlpha;
      ctx.fillStyle = hatch(color); ctx.fillRect(x0, top, head, h);
      ctx.globalAlpha = alpha * 0.22; ctx.fillRect(x0 + head, top, x1 - x0 - head, h);
      ctx.globalAlpha = alpha;
      ctx.fillStyle = color; ctx.fillRect(x0, top, 2, h);
      ctx.strokeStyle = color; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x0, top + 0.5); ctx.lineTo(x0 + head, top + 0.5);
      ctx.moveTo(x0, top + h - 0.5); ctx.lineTo(x0 + head, top + h - 0.5); ctx.stroke();
    } else {
      ctx.fillStyle = color; ctx.fillRect(x0, top, x1 - x0, h);
    }
    if (prefixPos.has(op[ID])) {
      // An unknown op in the prefix took effect somewhere after its call: underline its head only.
      const underline = op[ST] === UNKNOWN ? Math.min(x1 - x0, 24) : x1 - x0;
      ctx.fillStyle = PREFIX; ctx.fillRect(x0, y + ROW_H - 2, underline, 2);
    }
    ctx.globalAlpha = 1;
    const w = x1 - x0;
    if (w > 36 && op[ST] !== UNKNOWN) {
      ctx.save();
      ctx.beginPath(); ctx.rect(Math.max(x0, GUTTER_W), top, w, h); ctx.clip();
      ctx.fillStyle = op[ST] === FAIL ? "#555" : "#fff";
      ctx.font = "10px ui-monospace, Menlo, Consolas, monospace";
      ctx.fillText(opLabel(op).slice(0, Math.floor(w / 6)), Math.max(x0, GUTTER_W) + 3, top + h - 2);
      ctx.restore();
    } else if (op[ST] === UNKNOWN && xOf(op[CALL]) + 14 < view.width) {
      ctx.fillStyle = color; ctx.font = "bold 10px sans-serif";
      ctx.fillText("?", Math.max(x0, GUTTER_W) + 4, top + h - 1);
    }
    if (emphasis) {
      const stuck = stuckIds.has(op[ID]);
      ctx.lineWidth = 2;
      ctx.strokeStyle = index === selected ? "#000" : stuck || blockerIds.has(op[ID]) ? BAD : PROP;
      if (!stuck && blockerIds.has(op[ID]) && index !== selected) ctx.setLineDash([3, 2]);
      ctx.strokeRect(x0 - 1, top - 1, Math.min(x1, view.width + 4) - x0 + 2, h + 2);
      ctx.setLineDash([]);
      if (stuck) { // a marker above the operation that cannot follow the prefix
        ctx.fillStyle = BAD;
        ctx.beginPath(); ctx.moveTo(x0 - 4, y); ctx.lineTo(x0 + 4, y); ctx.lineTo(x0, y + 4); ctx.fill();
      }
    }
    return x1;
  }
  function drawClientRow(row, y) {
    const list = rowOps[row], ends = rowEndMax[row];
    const tLeft = tOf(GUTTER_W - 2), tRight = tOf(view.width);
    // Every operation before k ends before the left edge.
    let lo = 0, hi = list.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (ends[mid] < tLeft) lo = mid + 1; else hi = mid; }
    let k = lo;
    let lastX = -Infinity;
    for (; k < list.length; k++) {
      const op = ops[list[k]];
      if (op[CALL] > tRight) break;
      if (opEnd(op) < tLeft) continue;
      const x1 = Math.max(xOf(opEnd(op)), xOf(op[CALL]) + 2);
      if (x1 <= lastX + 0.5) continue; // sub-pixel neighbours merge at this zoom level
      lastX = drawOp(list[k], y, false);
    }
  }
  function drawNodeRow(row, y) {
    ctx.font = "10px sans-serif";
    for (const s of spansByRow[row]) {
      const end = s[2] < 0 ? tEnd : s[2];
      const x0 = Math.max(xOf(s[1]), GUTTER_W), x1 = Math.min(Math.max(xOf(end), xOf(s[1]) + 2), view.width);
      if (x1 < GUTTER_W || x0 > view.width) continue;
      ctx.globalAlpha = 0.55;
      ctx.fillStyle = FAULT_COLORS[s[3]] || "#999";
      ctx.fillRect(x0, y + 2, x1 - x0, ROW_H - 4);
      ctx.globalAlpha = 1;
      if (x1 - x0 > 40) {
        ctx.save(); ctx.beginPath(); ctx.rect(x0, y, x1 - x0, ROW_H); ctx.clip();
        ctx.fillStyle = "#222"; ctx.fillText(s[4], x0 + 3, y + ROW_H - 4); ctx.restore();
      }
    }
    for (const m of marksByRow[row]) {
      const x = xOf(m[1]);
      if (x < GUTTER_W || x > view.width) continue;
      ctx.fillStyle = "#444";
      ctx.beginPath(); ctx.moveTo(x, y + 2); ctx.lineTo(x + 4, y + ROW_H / 2); ctx.lineTo(x, y + ROW_H - 2);
      ctx.lineTo(x - 4, y + ROW_H / 2); ctx.fill();
    }
  }
  function drawWatchRow(row, y) {
    const list = ticksByRow[row];
    const tLeft = tOf(GUTTER_W - 3), tRight = tOf(view.width + 3);
    let k = Math.max(0, upperBound(list, tLeft, (t) => t[1]) - 1);
    let lastX = -Infinity;
    for (; k < list.length; k++) {
      const t = list[k];
      if (t[1] > tRight) break;
      const x = Math.round(xOf(t[1]));
      if (x < GUTTER_W || (x <= lastX && t[2] === "p")) continue;
      const style = TICK_STYLES[t[2]] || TICK_STYLES["?"];
      const h = (ROW_H - 4) * style[1];
      ctx.fillStyle = style[0];
      ctx.fillRect(x - 1, y + ROW_H - 2 - h, 2, h);
      lastX = x;
    }
    for (const [badRow, t] of badTicks) {
      if (badRow !== row) continue;
      const x = xOf(t);
      if (x < GUTTER_W || x > view.width) continue;
      ctx.strokeStyle = BAD; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(x, y + ROW_H / 2, 5, 0, 2 * Math.PI); ctx.stroke();
    }
    if (selectedTick && selectedTick[0] === row) {
      const x = xOf(selectedTick[1]);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.strokeRect(x - 3, y + 1, 6, ROW_H - 2);
    }
  }
  function draw() {
    const W = view.width, H = view.height;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    const first = Math.max(0, Math.floor(view.scrollY / ROW_H));
    const last = Math.min(rows.length - 1, Math.ceil((view.scrollY + plotH()) / ROW_H));
    ctx.save();
    ctx.beginPath(); ctx.rect(0, AXIS_H, W, H - AXIS_H); ctx.clip();
    for (let r = first; r <= last; r++) {
      const row = rows[r];
      const y = AXIS_H + r * ROW_H - view.scrollY;
      if (row.type === "section") {
        ctx.fillStyle = "#e9ecf1"; ctx.fillRect(0, y, W, ROW_H);
        ctx.fillStyle = "#3b4252"; ctx.font = "bold 11px sans-serif"; ctx.fillText(row.label, 6, y + ROW_H - 4);
        continue;
      }
      if (r % 2 === 0) { ctx.fillStyle = "#f7f8fa"; ctx.fillRect(GUTTER_W, y, W - GUTTER_W, ROW_H); }
      ctx.save(); ctx.beginPath(); ctx.rect(GUTTER_W, y, W - GUTTER_W, ROW_H); ctx.clip();
      if (row.type === "node") drawNodeRow(row.index, y);
      else if (row.type === "client") drawClientRow(row.index, y);
      else drawWatchRow(row.index, y);
      ctx.restore();
    }
    // Operations that must stay visible at any zoom: stuck, named by a property, selected.
    ctx.save(); ctx.beginPath(); ctx.rect(GUTTER_W, AXIS_H, W - GUTTER_W, H - AXIS_H); ctx.clip();
    const emphasized = selected >= 0 ? special.concat([selected]) : special;
    for (const index of emphasized) {
      const r = rowOfClientRow.get(rowOfClient.get(ops[index][CLIENT]));
      if (r < first || r > last) continue;
      drawOp(index, AXIS_H + r * ROW_H - view.scrollY, true);
    }
    // Property violations with a time: a dashed line across every row.
    ctx.setLineDash([4, 4]); ctx.strokeStyle = PROP; ctx.lineWidth = 1;
    for (const p of D.props) {
      if (typeof p.t_ns !== "number") continue;
      const x = Math.round(xOf(p.t_ns)) + 0.5;
      if (x < GUTTER_W || x > W) continue;
      ctx.beginPath(); ctx.moveTo(x, AXIS_H); ctx.lineTo(x, H); ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.restore();
    // Gutter labels.
    ctx.font = "11px ui-monospace, Menlo, Consolas, monospace";
    for (let r = first; r <= last; r++) {
      const row = rows[r];
      if (row.type === "section") continue;
      const y = AXIS_H + r * ROW_H - view.scrollY;
      ctx.fillStyle = "#fff"; ctx.fillRect(0, y, GUTTER_W - 2, ROW_H);
      ctx.fillStyle = "#3b4252"; ctx.fillText(row.label.slice(0, 12), 6, y + ROW_H - 4);
    }
    ctx.restore();
    ctx.strokeStyle = "#c5cad3"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(GUTTER_W - 0.5, AXIS_H); ctx.lineTo(GUTTER_W - 0.5, H); ctx.stroke();
    // Time axis.
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, AXIS_H);
    const step = niceStep(90 * view.nsPerPx);
    ctx.fillStyle = "#3b4252"; ctx.font = "11px sans-serif";
    ctx.strokeStyle = "#e3e6eb";
    for (let t = Math.ceil(tOf(GUTTER_W) / step) * step; t <= tOf(W); t += step) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, AXIS_H - 6); ctx.lineTo(x, H); ctx.stroke();
      ctx.fillText(axisLabel(t, step), x + 3, AXIS_H - 8);
    }
    ctx.strokeStyle = "#c5cad3";
    ctx.beginPath(); ctx.moveTo(0, AXIS_H - 0.5); ctx.lineTo(W, AXIS_H - 0.5); ctx.stroke();
    // Vertical scroll position.
    const total = rows.length * ROW_H;
    if (total > plotH()) {
      const barH = Math.max(20, (plotH() * plotH()) / total);
      const barY = AXIS_H + (view.scrollY / (total - plotH())) * (plotH() - barH);
      ctx.fillStyle = "rgba(60,70,90,0.35)"; ctx.fillRect(W - 6, barY, 5, barH);
    }
  }

  // ---- hit testing ------------------------------------------------------------------------
  function hit(x, y) {
    if (y < AXIS_H || x < GUTTER_W) return null;
    const r = Math.floor((y - AXIS_H + view.scrollY) / ROW_H);
    const row = rows[r];
    if (!row) return null;
    const t = tOf(x), slack = 3 * view.nsPerPx;
    if (row.type === "client") {
      const list = rowOps[row.index];
      const k = upperBound(list, t + slack, (index) => ops[index][CALL]) - 1;
      for (let j = k; j >= Math.max(0, k - 1); j--) {
        const op = ops[list[j]];
        if (Math.max(opEnd(op), op[CALL] + 2 * view.nsPerPx) >= t - slack) return { op: list[j] };
      }
      return null;
    }
    if (row.type === "node") {
      for (const m of marksByRow[row.index]) if (Math.abs(m[1] - t) <= slack + 2 * view.nsPerPx) return { text: m[2] };
      const found = spansByRow[row.index].filter((s) => s[1] <= t && t <= (s[2] < 0 ? tEnd : s[2]));
      if (found.length === 0) return null;
      return { text: found.map((s) => s[4] + "\n" + fmtT(s[1]) + " → " + (s[2] < 0 ? "never healed" : fmtT(s[2]))).join("\n\n") };
    }
    if (row.type === "watch") {
      const list = ticksByRow[row.index];
      let best = null;
      const k = upperBound(list, t, (tick) => tick[1]);
      for (let j = Math.max(0, k - 3); j < Math.min(list.length, k + 3); j++) {
        const d = Math.abs(list[j][1] - t);
        if (d <= slack && (!best || d < best.d)) best = { d, tick: list[j] };
      }
      const bad = badTicks.filter((b) => b[0] === row.index && Math.abs(b[1] - t) <= slack + 3 * view.nsPerPx);
      if (!best && bad.length === 0) return null;
      return { tick: best && best.tick, props: bad.map((b) => b[2]), watcher: D.watchers[row.index] };
    }
    return null;
  }
  function opSummary(index) {
    const op = ops[index];
    const lines = [
      "op " + op[ID] + " · client " + op[CLIENT] + " · " + kinds[op[KIND]],
      fmtT(op[CALL]) + " → " + (op[RET] < 0 ? "no return (outcome unknown)" : fmtT(op[RET])),
      "in:  " + op[IN],
      (op[ST] === OK ? "out: " : "") + op[OUT],
    ];
    if (op[SERVED]) lines.push("served by " + op[SERVED]);
    if (prefixPos.has(op[ID])) lines.push("linearized at position " + (prefixPos.get(op[ID]) + 1) + " of the prefix");
    if (stuckIds.has(op[ID])) lines.push("CANNOT FOLLOW the longest linearizable prefix");
    if (blockerIds.has(op[ID])) lines.push("CANNOT BE PLACED once the stuck operation takes effect (its answer's revision is too old)");
    for (const p of propsOfOp.get(op[ID]) || []) lines.push("violates " + D.props[p].property);
    return lines.join("\n");
  }
  function hitText(h) {
    if (h.op !== undefined) return opSummary(h.op);
    if (h.text !== undefined) return h.text;
    const lines = ["watcher " + h.watcher];
    if (h.tick) lines.push(fmtT(h.tick[1]) + "  " + h.tick[3]);
    for (const p of h.props) lines.push("VIOLATION " + D.props[p].property + ": " + D.props[p].message);
    return lines.join("\n");
  }

  // ---- panels -----------------------------------------------------------------------------
  function opLink(id) {
    const link = el("a", { href: "#", class: "op-link", "data-op": id }, "op " + id);
    link.addEventListener("click", (event) => { event.preventDefault(); focusOp(id); });
    return link;
  }
  function watchLink(watcher, t) {
    const link = el("a", { href: "#", class: "watch-link", "data-watcher": watcher }, "watcher " + watcher + (typeof t === "number" ? " at " + fmtT(t) : ""));
    link.addEventListener("click", (event) => { event.preventDefault(); focusWatch(watcher, t); });
    return link;
  }
  function focusOp(id) {
    const index = indexOfId.get(id);
    if (index === undefined) return;
    const op = ops[index];
    const end = op[RET] < 0 ? op[CALL] + Math.max(1e6, (op[CALL] * 0.02)) : op[RET];
    const spanNs = Math.max((end - op[CALL]) * 8, 2e6);
    view.nsPerPx = spanNs / plotW();
    view.t0 = (op[CALL] + end) / 2 - spanNs / 2;
    const r = rowOfClientRow.get(rowOfClient.get(op[CLIENT]));
    view.scrollY = r * ROW_H - plotH() / 2;
    clampScroll();
    select(index);
    canvas.scrollIntoView({ block: "nearest" });
  }
  function focusWatch(watcher, t) {
    const row = watchRow.get(watcher);
    if (row === undefined) return;
    if (typeof t === "number") {
      const spanNs = Math.max(plotW() * view.nsPerPx / 4, 5e6);
      view.nsPerPx = spanNs / plotW();
      view.t0 = t - spanNs / 2;
    }
    view.scrollY = rowOfWatcherRow.get(row) * ROW_H - plotH() / 2;
    clampScroll();
    selectedTick = typeof t === "number" ? [row, t] : null;
    schedule();
    canvas.scrollIntoView({ block: "nearest" });
  }
  function pre(text) { return el("pre", {}, text); }
  function select(index) {
    selected = index;
    const box = document.getElementById("details");
    box.textContent = "";
    if (index < 0) { schedule(); return; }
    const op = ops[index];
    const outcome = ["ok", "fail (did not take effect)", "unknown (may take effect at any time after its call, or never)"][op[ST]];
    const role = stuckIds.has(op[ID]) ? "cannot follow the longest linearizable prefix"
      : blockerIds.has(op[ID]) ? "cannot be placed after the prefix: its answer's revision is below the state's"
      : prefixPos.has(op[ID]) ? "linearized at position " + (prefixPos.get(op[ID]) + 1) + " of " + lin.prefix.length
      : hasLinViolation ? "not in the longest linearizable prefix" : "—";
    const table = el("table", {},
      el("tr", {}, el("td", {}, "operation"), el("td", {}, opLink(op[ID]))),
      el("tr", {}, el("td", {}, "client"), el("td", {}, String(op[CLIENT]))),
      el("tr", {}, el("td", {}, "kind"), el("td", {}, kinds[op[KIND]])),
      el("tr", {}, el("td", {}, "call"), el("td", {}, fmtT(op[CALL]))),
      el("tr", {}, el("td", {}, "return"), el("td", {}, op[RET] < 0 ? "— (no answer)" : fmtT(op[RET]) + "  (" + ((op[RET] - op[CALL]) / 1e6).toFixed(3) + " ms)")),
      el("tr", {}, el("td", {}, "outcome"), el("td", {}, outcome)),
      el("tr", {}, el("td", {}, "served by"), el("td", {}, op[SERVED] || "— (not recorded)")),
      el("tr", {}, el("td", {}, "linearization"), el("td", {}, role)));
    box.append(table, el("div", { class: "label" }, "input"), pre(op[IN]), el("div", { class: "label" }, op[ST] === OK ? "output" : "error"), pre(op[OUT]));
    for (const p of propsOfOp.get(op[ID]) || []) {
      box.append(el("div", {}, el("span", { class: "property" }, D.props[p].property), " " + String(D.props[p].message)));
    }
    schedule();
  }
  function renderVerdict() {
    const verdict = document.getElementById("verdict");
    const props = D.props.length;
    let text, cls;
    if (lin.verdict === "not_linearizable") { text = "NOT LINEARIZABLE"; cls = "bad"; }
    else if (lin.verdict === "linearizable") { text = "linearizable"; cls = props ? "bad" : "good"; }
    else { text = "linearizability inconclusive"; cls = "unknown"; }
    text += " · " + (props === 0 ? "no property violations" : D.props_total + " property violation" + (D.props_total === 1 ? "" : "s"));
    verdict.textContent = text;
    verdict.className = cls;
  }
  function renderViolation() {
    const box = document.getElementById("violation");
    box.textContent = "";
    if (lin.verdict === "linearizable") {
      box.append(el("p", {}, "Linearizable: the checker found a valid order for all " + ops.length + " operations."));
      return;
    }
    if (lin.verdict !== "not_linearizable") {
      box.append(el("p", {}, "Inconclusive: " + lin.message));
      return;
    }
    const stuckLinks = [];
    (lin.stuck || []).forEach((id, i) => { if (i) stuckLinks.push(", "); stuckLinks.push(opLink(id)); });
    box.append(el("p", {}, "Not linearizable" + (lin.partition !== null ? " (partition " + JSON.stringify(lin.partition) + ")" : "") +
      ": the longest linearizable prefix has " + lin.prefix.length + " operations (underlined green on the timeline); none of ",
      ...stuckLinks, " can follow it (outlined red)."));
    if (lin.replay_error) box.append(el("p", { class: "label" }, "The report could not replay the prefix: " + lin.replay_error));
    box.append(el("div", { class: "label" }, "Model state after the prefix (before the stuck operations):"), pre(lin.before || lin.state_debug));
    for (const s of lin.explained) {
      const index = indexOfId.get(s.id);
      const op = index === undefined ? null : ops[index];
      box.append(el("div", { class: "stuck", id: "stuck-op-" + s.id },
        el("div", {}, opLink(s.id), op ? " · client " + op[CLIENT] + " · " + fmtT(op[CALL]) + " → " + fmtT(op[RET]) : ""),
        op ? pre(op[IN]) : null,
        el("div", { class: "label" }, "observed"), pre(s.observed),
        el("div", { class: "label" }, "the model answers here"), pre(s.expected),
        el("div", { class: "label" }, "model state after the model's answer"), pre(s.change),
        blockersNote(s)));
    }
    const tail = lin.prefix.slice(-12);
    const items = tail.map((id) => {
      const index = indexOfId.get(id);
      return el("li", {}, opLink(id), index === undefined ? "" : "  " + cap(ops[index][IN], 160) + "  →  " + cap(ops[index][OUT], 160));
    });
    box.append(el("div", { class: "label" }, "Last operations of the prefix, in linearization order:"),
      el("ol", { start: Math.max(1, lin.prefix.length - tail.length + 1) }, ...items));
    box.append(el("details", {}, el("summary", {}, "the search's final state (Debug)"), pre(lin.state_debug)));
  }
  function blockersNote(s) {
    if (!s.accepted) return el("p", {}, "The model rejects the observed answer here.");
    if (s.blockers.length === 0) return el("p", {}, "The model accepts the observed answer here, but no order of the remaining operations completes the history.");
    const note = el("p", {}, "The model accepts the observed answer here, but then the state's revision exceeds what " +
      (s.blockers.length === 1 ? "this operation" : "these operations") + " answered, so " +
      (s.blockers.length === 1 ? "it" : "they") + " could never be placed (dashed red on the timeline; the likely culprit): ");
    s.blockers.forEach((b, i) => {
      if (i) note.append(", ");
      note.append(opLink(b[0]), " (revision ≤ " + b[1] + " when it takes effect)");
    });
    return note;
  }
  function renderProperties() {
    const list = document.getElementById("violations");
    list.textContent = "";
    if (lin.verdict === "not_linearizable") {
      list.append(el("li", {}, el("span", { class: "property" }, "linearizability"), " see above: ",
        ...(lin.stuck || []).map((id) => opLink(id))));
    }
    D.props.forEach((p) => {
      const item = el("li", {}, el("span", { class: "property" }, String(p.property)), " " + String(p.message === undefined ? "" : p.message));
      const refs = el("div", {});
      if (Array.isArray(p.ops) && p.ops.length) {
        refs.append("ops: ");
        p.ops.slice(0, 50).forEach((id, i) => { if (i) refs.append(", "); refs.append(opLink(id)); });
        if (p.ops.length > 50) refs.append(" … " + (p.ops.length - 50) + " more");
      }
      if (typeof p.watcher === "number") { refs.append(" "); refs.append(watchLink(p.watcher, p.t_ns)); }
      else if (typeof p.t_ns === "number") refs.append(" at " + fmtT(p.t_ns));
      item.append(refs);
      list.append(item);
    });
    if (D.props_total > D.props.length) list.append(el("li", {}, "… " + (D.props_total - D.props.length) + " more (not embedded)"));
    // A numbered list of nothing read "1. none" on a passing run: an unnumbered line instead.
    if (list.children.length === 0) {
      list.style.listStyle = "none";
      list.append(el("li", {}, "none: every checked property holds"));
    }
  }
  function renderLegend() {
    const legend = document.getElementById("legend");
    const used = new Set(ops.map((op) => op[KIND]));
    kinds.forEach((kind, i) => {
      if (used.has(i)) legend.append(el("span", {}, el("span", { class: "swatch", style: "background:" + KIND_COLORS[kind] }), kind));
    });
    legend.append(el("span", {}, el("span", { class: "swatch", style: "background:repeating-linear-gradient(135deg,#4e79a7 0 2px,#fff 2px 5px)" }), "unknown outcome (open-ended)"));
    legend.append(el("span", {}, el("span", { class: "swatch", style: "background:#d4d6da" }), "failed"));
    for (const [name, color] of Object.entries(FAULT_COLORS)) {
      legend.append(el("span", {}, el("span", { class: "swatch", style: "background:" + color + ";opacity:.6" }), name));
    }
    if (hasLinViolation) legend.append(el("span", {}, el("span", { class: "swatch", style: "background:" + PREFIX }), "in the linearizable prefix"));
  }

  // ---- latency and throughput over time, faults shaded ------------------------------------
  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART_W = 900, CHART_H = 150, CHART_L = 64, CHART_R = 8, CHART_T = 6, CHART_B = 20;
  const CHART_DOTS_MAX = 20000, THROUGHPUT_BUCKETS = 120;
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function chartX(t) { return CHART_L + (t / tEnd) * (CHART_W - CHART_L - CHART_R); }
  function chart(id, title) {
    const root = svg("svg", { id: id, viewBox: "0 0 " + CHART_W + " " + CHART_H, width: "100%", role: "img", "aria-label": title });
    // Fault periods, every row's, shaded across the whole chart (as across the client lanes).
    for (const s of D.spans) {
      const x0 = chartX(s[1]), x1 = chartX(s[2] < 0 ? tEnd : s[2]);
      root.append(svg("rect", { class: "fault", x: x0.toFixed(1), y: CHART_T, width: Math.max(1, x1 - x0).toFixed(1),
        height: CHART_H - CHART_T - CHART_B, fill: FAULT_COLORS[s[3]] || "#999", "fill-opacity": 0.18 }));
    }
    root.append(svg("line", { x1: CHART_L, y1: CHART_H - CHART_B, x2: CHART_W - CHART_R, y2: CHART_H - CHART_B, stroke: "#888" }));
    for (let i = 0; i <= 5; i++) {
      const t = (tEnd / 5) * i;
      root.append(svg("text", { x: chartX(t).toFixed(1), y: CHART_H - 6, "font-size": 10, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" }, fmtT(t)));
    }
    return root;
  }
  function renderCharts() {
    const box = document.getElementById("charts");
    box.textContent = "";
    const answered = ops.filter((op) => op[RET] >= 0 && op[ST] !== UNKNOWN && kinds[op[KIND]] !== "lease_expire");
    if (answered.length === 0) { box.append(el("p", {}, "No answered operations to plot.")); return; }
    // Latency, log scale: one dot per answered operation (evenly sampled beyond CHART_DOTS_MAX).
    let lo = Infinity, hi = 0;
    for (const op of answered) { const ms = Math.max((op[RET] - op[CALL]) / 1e6, 1e-3); lo = Math.min(lo, ms); hi = Math.max(hi, ms); }
    const decadeLo = Math.floor(Math.log10(lo)), decadeHi = Math.max(decadeLo + 1, Math.ceil(Math.log10(hi)));
    const plotH = CHART_H - CHART_T - CHART_B;
    const latencyY = (ms) => CHART_T + plotH * (1 - (Math.log10(Math.max(ms, 1e-3)) - decadeLo) / (decadeHi - decadeLo));
    const latency = chart("latency-plot", "latency of every answered operation over time");
    for (let d = decadeLo; d <= decadeHi; d++) {
      const y = latencyY(Math.pow(10, d)).toFixed(1);
      latency.append(svg("line", { x1: CHART_L, y1: y, x2: CHART_W - CHART_R, y2: y, stroke: "#e3e5e8" }));
      latency.append(svg("text", { x: CHART_L - 4, y: Number(y) + 3, "font-size": 10, "text-anchor": "end" }, Math.pow(10, d) >= 1 ? Math.pow(10, d) + " ms" : Math.pow(10, d).toPrecision(1) + " ms"));
    }
    const step = Math.max(1, Math.ceil(answered.length / CHART_DOTS_MAX));
    let dots = 0;
    for (let i = 0; i < answered.length; i += step) {
      const op = answered[i];
      latency.append(svg("circle", { class: "dot", cx: chartX(op[CALL]).toFixed(1), cy: latencyY((op[RET] - op[CALL]) / 1e6).toFixed(1), r: 1.6,
        fill: op[ST] === FAIL ? "#9aa0a6" : KIND_COLORS[kinds[op[KIND]]] || "#555" }));
      dots++;
    }
    latency.dataset.dots = String(dots);
    // Throughput: operations answered ok per second, in THROUGHPUT_BUCKETS slices of the run.
    const bucketNs = tEnd / THROUGHPUT_BUCKETS, counts = new Array(THROUGHPUT_BUCKETS).fill(0);
    for (const op of answered) if (op[ST] === OK) counts[Math.min(THROUGHPUT_BUCKETS - 1, Math.floor(op[RET] / bucketNs))]++;
    const rates = counts.map((c) => c / (bucketNs / 1e9));
    const rateMax = Math.max(1, ...rates);
    const throughput = chart("throughput-plot", "operations answered ok per second over time");
    throughput.append(svg("text", { x: CHART_L - 4, y: CHART_T + 9, "font-size": 10, "text-anchor": "end" }, Math.round(rateMax) + " ops/s"));
    throughput.append(svg("text", { x: CHART_L - 4, y: CHART_H - CHART_B, "font-size": 10, "text-anchor": "end" }, "0"));
    rates.forEach((rate, i) => {
      if (rate === 0) return;
      const h = plotH * (rate / rateMax);
      throughput.append(svg("rect", { class: "bar", x: chartX(i * bucketNs).toFixed(1), y: (CHART_H - CHART_B - h).toFixed(1),
        width: Math.max(1, chartX(bucketNs) - chartX(0) - 0.5).toFixed(1), height: h.toFixed(1), fill: "#4e79a7" }));
    });
    box.append(el("div", { class: "label" }, "Latency (call to answer, log scale; grey: failed), shaded where faults were in force"), latency,
      el("div", { class: "label" }, "Throughput (operations answered ok per second)"), throughput);
  }

  // ---- the operations on a violation's key --------------------------------------------------
  const PER_KEY_ROWS_MAX = 200;
  function keyInRange(key, range) {
    const [start, end] = range;
    if (end === "") return key === start;
    if (end === "\u0000") return key >= start;
    return key >= start && key < end;
  }
  function renderPerKey() {
    const box = document.getElementById("per-key");
    box.textContent = "";
    const focus = [];
    if (lin.verdict === "not_linearizable") for (const id of lin.stuck || []) focus.push(id);
    for (const p of D.props) if (Array.isArray(p.ops)) for (const id of p.ops.slice(0, 4)) focus.push(id);
    const keys = [];
    for (const id of focus) {
      const index = indexOfId.get(id);
      if (index === undefined) continue;
      for (const range of ops[index][KEYS] || []) if (range[1] === "" && !keys.includes(range[0])) keys.push(range[0]);
    }
    if (keys.length === 0) { box.append(el("p", {}, "No violation names a single key.")); return; }
    for (const key of keys.slice(0, 3)) {
      const on = [];
      ops.forEach((op, index) => { if ((op[KEYS] || []).some((range) => keyInRange(key, range))) on.push(index); });
      on.sort((a, b) => ops[a][CALL] - ops[b][CALL]);
      // The rows nearest the first focused operation on this key, in call order.
      const anchorId = focus.find((id) => on.includes(indexOfId.get(id)));
      const at = Math.max(0, on.indexOf(indexOfId.get(anchorId)));
      const from = Math.max(0, Math.min(at - PER_KEY_ROWS_MAX / 2, on.length - PER_KEY_ROWS_MAX));
      const shown = on.slice(from, from + PER_KEY_ROWS_MAX);
      const rows = shown.map((index) => {
        const op = ops[index];
        return el("tr", { class: focus.includes(op[ID]) ? "focus" : "" }, el("td", {}, opLink(op[ID])), el("td", {}, String(op[CLIENT])),
          el("td", {}, fmtT(op[CALL])), el("td", {}, op[RET] < 0 ? "—" : fmtT(op[RET])), el("td", {}, cap(op[IN], 200)), el("td", {}, cap(op[OUT], 200)));
      });
      box.append(el("h3", {}, "key " + JSON.stringify(key) + ": " + on.length + " operations" + (on.length > shown.length ? " (" + shown.length + " shown, around the violation)" : "")),
        el("table", { class: "per-key", "data-key": key },
          el("tr", {}, el("th", {}, "op"), el("th", {}, "client"), el("th", {}, "call"), el("th", {}, "return"), el("th", {}, "input"), el("th", {}, "output")),
          ...rows));
    }
  }

  // ---- interaction ------------------------------------------------------------------------
  let drag = null;
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? view.height : 1;
    const rect = canvas.getBoundingClientRect();
    if (event.shiftKey) { view.scrollY += event.deltaY * unit; clampScroll(); schedule(); return; }
    if (Math.abs(event.deltaX) > Math.abs(event.deltaY)) { view.t0 += event.deltaX * unit * view.nsPerPx; clampScroll(); schedule(); return; }
    zoomAt(event.clientX - rect.left, Math.exp(event.deltaY * unit * 0.002));
  }, { passive: false });
  canvas.addEventListener("mousedown", (event) => {
    drag = { x: event.clientX, y: event.clientY, t0: view.t0, scrollY: view.scrollY, moved: false };
  });
  window.addEventListener("mouseup", (event) => {
    if (drag && !drag.moved) {
      const rect = canvas.getBoundingClientRect();
      const h = hit(event.clientX - rect.left, event.clientY - rect.top);
      if (h && h.op !== undefined) { selectedTick = null; select(h.op); }
      else if (h && h.tick) { selectedTick = [watchRow.get(h.watcher), h.tick[1]]; schedule(); }
    }
    drag = null;
  });
  canvas.addEventListener("mousemove", (event) => {
    const rect = canvas.getBoundingClientRect();
    if (drag) {
      const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) {
        view.t0 = drag.t0 - dx * view.nsPerPx; view.scrollY = drag.scrollY - dy;
        clampScroll(); schedule(); tooltip.hidden = true; return;
      }
    }
    const h = hit(event.clientX - rect.left, event.clientY - rect.top);
    if (!h) { tooltip.hidden = true; return; }
    tooltip.textContent = cap(hitText(h), TOOLTIP_CHARS_MAX);
    tooltip.hidden = false;
    const left = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
    const top = event.clientY + 16 + tooltip.offsetHeight > window.innerHeight ? event.clientY - tooltip.offsetHeight - 8 : event.clientY + 16;
    tooltip.style.left = Math.max(4, left) + "px"; tooltip.style.top = Math.max(4, top) + "px";
  });
  canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  canvas.addEventListener("keydown", (event) => {
    const mid = GUTTER_W + plotW() / 2;
    const keys = {
      "+": () => zoomAt(mid, 0.5), "=": () => zoomAt(mid, 0.5), "-": () => zoomAt(mid, 2), "0": fit,
      ArrowLeft: () => { view.t0 -= plotW() * view.nsPerPx * 0.2; }, ArrowRight: () => { view.t0 += plotW() * view.nsPerPx * 0.2; },
      ArrowUp: () => { view.scrollY -= ROW_H * 3; }, ArrowDown: () => { view.scrollY += ROW_H * 3; },
      PageUp: () => { view.scrollY -= plotH(); }, PageDown: () => { view.scrollY += plotH(); },
    };
    if (!keys[event.key]) return;
    event.preventDefault(); keys[event.key](); clampScroll(); schedule();
  });
  document.getElementById("fit").addEventListener("click", fit);
  document.getElementById("zoom-in").addEventListener("click", () => zoomAt(GUTTER_W + plotW() / 2, 0.5));
  document.getElementById("zoom-out").addEventListener("click", () => zoomAt(GUTTER_W + plotW() / 2, 2));
  const goto = document.getElementById("goto-violation");
  const firstBad = (lin.stuck && lin.stuck.length) ? () => focusOp(lin.stuck[0])
    : D.props.length && Array.isArray(D.props[0].ops) && D.props[0].ops.length ? () => focusOp(D.props[0].ops[0])
    : D.props.length && typeof D.props[0].watcher === "number" ? () => focusWatch(D.props[0].watcher, D.props[0].t_ns) : null;
  if (firstBad) goto.addEventListener("click", firstBad); else goto.disabled = true;
  const dim = document.getElementById("dim");
  dim.checked = view.dim; dim.disabled = !hasLinViolation;
  dim.addEventListener("change", () => { view.dim = dim.checked; schedule(); });
  window.addEventListener("resize", () => { sizeCanvas(); schedule(); });

  // ---- start ------------------------------------------------------------------------------
  renderVerdict();
  renderViolation();
  renderProperties();
  renderCharts();
  renderPerKey();
  renderLegend();
  sizeCanvas();
  fit();
  // `report.html#op-17` opens the report focused on operation 17.
  const linked = /^#op-(\d+)$/.exec(window.location.hash);
  if (linked) focusOp(Number(linked[1]));
  const drawStarted = performance.now();
  draw();
  const drawMs = performance.now() - drawStarted;
  const renderMs = performance.now() - started;
  document.body.dataset.drawMs = drawMs.toFixed(1);
  document.body.dataset.renderMs = renderMs.toFixed(1);
  document.body.dataset.sinceNavigationMs = performance.now().toFixed(1);
  document.getElementById("status").textContent = ops.length + " operations by " + clientIds.length +
    " client ids in " + laneClients.length + " lanes · " + D.rows.length + " fault rows · " + D.watchers.length + " watchers (" + D.ticks.length +
    " watch records" + (D.wskip ? ", " + D.wskip + " unreadable" : "") + ") · drawn in " + renderMs.toFixed(0) + " ms";
  document.body.dataset.ready = "1";
})();
