// Small SVG charts: lines or points with optional error bars, vertical markers and
// horizontal reference lines. No library: the page must work offline, without a build.
"use strict";
const JB = window.JB || (window.JB = {});
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f6fb2", "#d35400", "#2e8b57", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"];

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t);
  return ticks;
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}
JB.fmt = fmt;

// spec: {title, xLabel, yLabel, series: [{label, x, y, lo?, hi?, line?}], categorical?,
//        markers?: [{x, label}], hlines?: [{y, label}], yFromZero?, id?}
JB.chart = function chart(spec) {
  const W = spec.width || 520, H = spec.height || 300;
  const M = {l: 64, r: 16, t: 12, b: 44};
  const fig = document.createElement("figure");
  if (spec.id) fig.id = spec.id;
  const cap = document.createElement("figcaption");
  cap.textContent = spec.title;
  fig.appendChild(cap);
  const svg = svgEl("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img"});
  svg.appendChild(svgEl("title", {}, spec.title));
  const cats = [];
  if (spec.categorical) {
    for (const s of spec.series) for (const x of s.x) if (!cats.includes(String(x))) cats.push(String(x));
  }
  const xv = (x) => (spec.categorical ? cats.indexOf(String(x)) : Number(x));
  const xs = [], ys = [];
  for (const s of spec.series) {
    s.x.forEach((x, i) => {
      if (s.y[i] === null || s.y[i] === undefined) return;
      xs.push(xv(x)); ys.push(s.y[i]);
      if (s.hi && s.hi[i] !== null && s.hi[i] !== undefined) ys.push(s.hi[i]);
      if (s.lo && s.lo[i] !== null && s.lo[i] !== undefined) ys.push(s.lo[i]);
    });
  }
  for (const m of spec.markers || []) xs.push(m.x);
  for (const h of spec.hlines || []) ys.push(h.y);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  let y0 = spec.yFromZero === false ? Math.min(...ys) : Math.min(0, ...ys), y1 = Math.max(...ys);
  if (!xs.length) { x0 = 0; x1 = 1; }
  if (!ys.length) { y0 = 0; y1 = 1; }
  if (spec.categorical) { x0 = -0.5; x1 = Math.max(cats.length - 0.5, 0.5); }
  else if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y1 = y0 + 1; }
  y1 += (y1 - y0) * 0.05;
  const px = (x) => M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r);
  const py = (y) => H - M.b - ((y - y0) / (y1 - y0)) * (H - M.t - M.b);
  for (const t of niceTicks(y0, y1, 5)) {
    svg.appendChild(svgEl("line", {class: "grid", x1: M.l, x2: W - M.r, y1: py(t), y2: py(t)}));
    svg.appendChild(svgEl("text", {x: M.l - 6, y: py(t) + 4, "text-anchor": "end"}, fmt(t)));
  }
  const xticks = spec.categorical ? cats.map((c, i) => [i, c]) : niceTicks(x0, x1, 6).map((t) => [t, fmt(t)]);
  for (const [t, label] of xticks) {
    svg.appendChild(svgEl("text", {x: px(t), y: H - M.b + 16, "text-anchor": "middle"}, label));
  }
  svg.appendChild(svgEl("line", {class: "axis", x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b}));
  svg.appendChild(svgEl("line", {class: "axis", x1: M.l, x2: M.l, y1: M.t, y2: H - M.b}));
  svg.appendChild(svgEl("text", {x: (M.l + W - M.r) / 2, y: H - 6, "text-anchor": "middle"}, spec.xLabel));
  svg.appendChild(svgEl("text", {x: 12, y: (M.t + H - M.b) / 2, "text-anchor": "middle",
    transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})`}, spec.yLabel));
  (spec.markers || []).forEach((m, k) => {
    svg.appendChild(svgEl("line", {class: "marker", x1: px(m.x), x2: px(m.x), y1: M.t, y2: H - M.b}));
    // The first label to the right of its line, later ones to the left: an end marker
    // sits at the right edge, where a label after it would be cut off.
    const after = k === 0;
    svg.appendChild(svgEl("text", {x: px(m.x) + (after ? 3 : -3), y: M.t + 10,
      "text-anchor": after ? "start" : "end"}, m.label));
  });
  for (const h of spec.hlines || []) {
    svg.appendChild(svgEl("line", {class: "baseline", x1: M.l, x2: W - M.r, y1: py(h.y), y2: py(h.y)}));
    svg.appendChild(svgEl("text", {x: W - M.r - 4, y: py(h.y) - 4, "text-anchor": "end"}, h.label));
  }
  const legend = document.createElement("div");
  legend.className = "legend";
  spec.series.forEach((s, k) => {
    const color = s.color || COLORS[k % COLORS.length];
    const pts = s.x.map((x, i) => [xv(x), s.y[i], i]).filter((p) => p[1] !== null && p[1] !== undefined);
    if (s.line && pts.length > 1) {
      const d = pts.map((p, j) => `${j ? "L" : "M"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join("");
      svg.appendChild(svgEl("path", {class: "series", d, fill: "none", stroke: color, "stroke-width": 1.6}));
    }
    for (const [x, y, i] of pts) {
      if (s.lo && s.hi && s.lo[i] !== null && s.hi[i] !== null && s.lo[i] !== undefined) {
        svg.appendChild(svgEl("line", {x1: px(x), x2: px(x), y1: py(s.lo[i]), y2: py(s.hi[i]), stroke: color}));
      }
      if (!s.line || pts.length < 2) {
        const dot = svgEl("circle", {class: "point", cx: px(x), cy: py(y), r: 4, fill: color});
        dot.appendChild(svgEl("title", {}, `${s.label}: ${fmt(y)}${s.notes ? " " + s.notes[i] : ""}`));
        svg.appendChild(dot);
      }
    }
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    item.append(swatch, s.label);
    legend.appendChild(item);
  });
  fig.append(svg, legend);
  return fig;
};
