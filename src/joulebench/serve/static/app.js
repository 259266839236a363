// The dashboard: three views over the read-only JSON API, redrawn when the server's
// version of the data changes (polled; the server answers 304 while nothing changed).
"use strict";
const POLL_MS = 2000;
const main = document.getElementById("main");
const live = document.getElementById("live");
let shownVersion = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function getJSON(url) {
  const res = await fetch(url, {cache: "no-cache", credentials: "same-origin"});
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  return {status: res.status, body};
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

function stateClass(state) { return "state-" + state.split(":")[0]; }

function counts(c) {
  return el("span", {class: "counts"}, ...Object.entries(c).map(
    ([state, n]) => el("span", {class: stateClass(state), text: `${n} ${state}`})));
}

function progress(done, total) {
  const bar = el("span", {class: "bar"}, el("span"));
  bar.firstChild.style.width = total ? `${(100 * done) / total}%` : "0";
  return el("span", {}, bar, " ", el("span", {class: "progress-text", text: `${done}/${total} done`}));
}

function trackerError(err) {
  return el("div", {class: "error", id: "tracker-error"},
    el("strong", {text: "The progress tracker cannot be read. `joulebench tracker check` says:"}),
    el("pre", {text: err.check.join("\n")}),
    ...(err.fix ? [el("div", {}, "To rebuild it: ", el("code", {text: err.fix}))] : []));
}

function failuresTable(failures) {
  if (!failures.length) return null;
  return el("table", {class: "failures"},
    el("tr", {}, ...["key", "ID", "cause", "attempts", "when", "error"].map((h) => el("th", {text: h}))),
    ...failures.map((f) => el("tr", {},
      el("td", {text: f.key}), el("td", {text: f.experiment_id || "–"}),
      el("td", {class: "state-failed", text: f.cause || "?"}), el("td", {text: f.attempts}),
      el("td", {text: f.updated_at || ""}), el("td", {text: f.error || ""}))));
}

function renderSuites(data) {
  const out = [el("h1", {text: "Suites"})];
  if (data.tracker_error) out.push(trackerError(data.tracker_error));
  if (data.sacct_problem) out.push(el("div", {class: "notice", text: data.sacct_problem}));
  for (const problem of data.results_problems || []) out.push(el("div", {class: "notice", text: problem}));
  if (!data.suites.length && !data.tracker_error) out.push(el("p", {class: "muted", text: "No suites in the tracker yet: run submit-suite."}));
  for (const s of data.suites) {
    const block = el("section", {id: `suite-${s.name}`, class: "suite"},
      el("h2", {}, el("a", {href: `/suites/${encodeURIComponent(s.name)}`, text: s.name}), " ",
        progress(s.done, s.total)),
      el("p", {}, counts(s.counts), el("span", {class: "muted",
        text: ` · pace ${s.pace_per_hour ? JB.fmt(s.pace_per_hour) + "/h" : "–"} · ETA ${duration(s.eta_s)}` +
              ` · ${s.flagged} flagged`})),
      el("table", {class: "cycles"},
        el("tr", {}, el("th", {text: "cycle"}), el("th", {text: "progress"}), el("th", {text: "states"}), el("th", {text: "flagged"})),
        ...s.cycles.map((c) => el("tr", {}, el("td", {text: c.cycle}), el("td", {}, progress(c.done, c.total)),
          el("td", {}, counts(c.counts)), el("td", {text: c.flagged})))));
    const fails = failuresTable(s.failures);
    if (fails) block.append(el("h2", {text: "Latest failures"}), fails);
    out.push(block);
  }
  main.replaceChildren(...out);
}

const COLUMNS = [
  ["config_name", "config"], ["cycle", "cycle"], ["experiment_id", "ID"],
  ["energy_per_output_token_j", "J/token"], ["dynamic_energy_per_output_token_j", "dynamic J/token"],
  ["throughput_output_tokens_per_s", "tok/s"], ["request_latency_p95_s", "p95 latency (s)"],
  ["quality_flags", "flags"], ["status", "in report"]];
let sortBy = {key: "experiment_id", dir: 1};

function resultsTable(rows) {
  const sorted = [...rows].sort((a, b) => {
    const x = a[sortBy.key], y = b[sortBy.key];
    if (x === y) return 0;
    if (x === null || x === undefined || x === "") return 1;
    if (y === null || y === undefined || y === "") return -1;
    return (x < y ? -1 : 1) * sortBy.dir;
  });
  const head = el("tr", {}, ...COLUMNS.map(([key, label]) => {
    const th = el("th", {class: "sortable" + (sortBy.key === key ? (sortBy.dir > 0 ? " sorted-asc" : " sorted-desc") : ""), text: label, "data-key": key});
    th.addEventListener("click", () => {
      sortBy = {key, dir: sortBy.key === key ? -sortBy.dir : 1};
      document.getElementById("results").replaceWith(resultsTable(rows));
    });
    return th;
  }));
  return el("table", {id: "results"}, head, ...sorted.map((r) => el("tr", {},
    ...COLUMNS.map(([key]) => {
      const v = r[key];
      if (key === "experiment_id") return el("td", {}, el("a", {href: `/experiments/${v}`, text: v}));
      return el("td", {class: typeof v === "number" ? "num" : "", text: typeof v === "number" ? JB.fmt(v) : (v ?? "")});
    }))));
}

function plotCharts(plots) {
  return el("div", {class: "charts", id: "plots"}, ...plots.map((p) => JB.chart({
    title: p.title, xLabel: p.x_label, yLabel: p.y_label, categorical: !p.numeric,
    series: [...p.series.map((s) => ({label: s.label, x: s.x, y: s.y, lo: s.ci_low, hi: s.ci_high,
      notes: s.configs.map((c, i) => `(${c}, n=${s.n[i] ?? "?"})`)})),
      ...(p.front ? [{label: "Pareto front", x: p.front.x, y: p.front.y, line: true, color: "#999"}] : [])],
  })));
}

function renderSuite(data) {
  const out = [el("h1", {text: `Suite ${data.name}`})];
  if (data.tracker_error) out.push(trackerError(data.tracker_error));
  if (data.status) {
    const s = data.status;
    out.push(el("p", {id: `suite-${data.name}`}, progress(s.done, s.total), " ", counts(s.counts),
      el("span", {class: "muted", text: ` · ETA ${duration(s.eta_s)} · ${s.flagged} flagged`})));
  }
  out.push(el("h2", {text: `Results so far (${data.results.length})`}));
  out.push(data.results.length ? resultsTable(data.results) : el("p", {class: "muted", text: "No results yet."}));
  if (data.plots.length) {
    out.push(el("h2", {text: "Plots (mean with 95% CI over the current cycles)"}), plotCharts(data.plots));
  }
  main.replaceChildren(...out);
}

function timelineCharts(rows) {
  const samples = rows.filter((r) => r.kind === "sample");
  const mark = (kind) => rows.find((r) => r.kind === kind);
  const markers = ["window_start", "window_end"].map(mark).filter(Boolean)
    .map((r) => ({x: r.t_s, label: r.kind.replace("window_", "")}));
  const baselines = rows.filter((r) => r.kind === "baseline" && r.power_w !== null);
  const bySeries = new Map();
  for (const r of samples) {
    const name = `${r.source} ${r.device}`;
    if (!bySeries.has(name)) bySeries.set(name, []);
    bySeries.get(name).push(r);
  }
  const power = [], temp = [], clock = [];
  for (const [name, list] of bySeries) {
    // Counters without a power reading (RAPL): power from consecutive energy readings.
    const watts = list.map((r, i) => r.power_w ?? (i && r.energy_j !== null && list[i - 1].energy_j !== null &&
      r.t_s > list[i - 1].t_s ? (r.energy_j - list[i - 1].energy_j) / (r.t_s - list[i - 1].t_s) : null));
    power.push({label: name, x: list.map((r) => r.t_s), y: watts, line: true});
    if (list.some((r) => r.temp_c !== null)) temp.push({label: name, x: list.map((r) => r.t_s), y: list.map((r) => r.temp_c), line: true});
    if (list.some((r) => r.clock_mhz !== null)) clock.push({label: name, x: list.map((r) => r.t_s), y: list.map((r) => r.clock_mhz), line: true});
  }
  const charts = [JB.chart({id: "timeline", title: "Power during the metered window", xLabel: "time from window start (s)",
    yLabel: "power (W)", series: power, markers,
    hlines: baselines.map((b) => ({y: b.power_w, label: `idle baseline ${b.device || ""} ${JB.fmt(b.power_w)} W`}))})];
  if (temp.length) charts.push(JB.chart({title: "Temperature", xLabel: "time from window start (s)", yLabel: "temperature (°C)", series: temp, markers, yFromZero: false}));
  if (clock.length) charts.push(JB.chart({title: "SM clock", xLabel: "time from window start (s)", yLabel: "clock (MHz)", series: clock, markers, yFromZero: false}));
  return el("div", {class: "charts"}, ...charts);
}

async function renderExperiment(data, eid) {
  const files = el("ul", {}, ...data.files.map((f) => el("li", {}, el("a", {href: `/api/experiments/${eid}/files/${f}`, text: f}))));
  const figures = el("dl", {class: "figures"}, ...data.figures.flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v})]));
  const out = [el("h1", {text: `Experiment ${data.experiment_id}`}),
    data.suite ? el("p", {}, "Suite ", el("a", {href: `/suites/${encodeURIComponent(data.suite)}`, text: data.suite})) : null,
    figures, el("h2", {text: "Power timeline"})];
  if (data.has_timeline) {
    const t = await getJSON(`/api/experiments/${eid}/timeline`);
    out.push(t.status === 200 ? timelineCharts(t.body.rows) : el("p", {class: "muted", text: t.body?.error || "no timeline"}));
  } else {
    out.push(el("p", {class: "muted", text: "No power timeline (recorded by joulebench runs since the dashboard came)."}));
  }
  out.push(el("h2", {text: "Files"}), files);
  main.replaceChildren(...out.filter(Boolean));
}

function route() {
  const path = decodeURIComponent(location.pathname);
  let m;
  if ((m = path.match(/^\/suites\/([^/]+)$/))) return {api: `/api/suites/${encodeURIComponent(m[1])}`, view: renderSuite, crumb: m[1], live: true};
  if ((m = path.match(/^\/experiments\/([^/]+)$/))) return {api: `/api/experiments/${encodeURIComponent(m[1])}`, view: (d) => renderExperiment(d, m[1]), crumb: `experiment ${m[1]}`, live: false};
  return {api: "/api/suites", view: renderSuites, crumb: "", live: true};
}

async function refresh(r) {
  try {
    const {status, body} = await getJSON(r.api);
    live.classList.remove("stale");
    live.textContent = r.live ? `live · ${new Date().toLocaleTimeString()}` : "";
    if (!body) return;
    if (body.version && body.version === shownVersion) return;
    shownVersion = body.version || null;
    if (status === 200 || (status === 503 && body.tracker_error)) await r.view(body);
    else main.replaceChildren(el("div", {class: "error", id: "api-error", text: body.error || `HTTP ${status}`}));
  } catch (e) {
    live.classList.add("stale");
    live.textContent = "server unreachable, retrying";
  }
}

(async function start() {
  if (location.search.includes("token=")) history.replaceState(null, "", location.pathname);
  const r = route();
  document.getElementById("crumbs").textContent = r.crumb;
  await refresh(r);
  if (r.live) setInterval(() => refresh(r), POLL_MS);
})();
