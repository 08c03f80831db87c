// The landscape page: a model's card, its energy landscape and states, a stream labelled
// live through POST /segment/stream, and prior paths. Everything comes from the service's
// API; Plotly (window.Plotly, served by the service) draws it.

const ROOT = document.getElementById("app-script").dataset.root || "";
const $ = (id) => document.getElementById(id);
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39",
  "#5254a3"];
const colour = (k) => COLOURS[k % COLOURS.length];
const PLOT = { responsive: true, displaylogo: false };
// The script runs as soon as it arrives (async); the page's elements wait for the document.
const domReady = new Promise((resolve) => {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", resolve, { once: true });
  else resolve();
});

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const el = document.createElement("script");
    el.src = src;
    el.onload = resolve;
    el.onerror = () => reject(new Error(`Plotly.js did not load from the service (${src})`));
    document.head.append(el);
  });
}

// Plotly.js takes most of a second to load and run, and the page cannot paint
// while it runs: the service's picture of the landscape (GET /landscape/image) goes on screen
// first, then Plotly.js runs and draws the interactive plot in its place.
let runPlotly;
const plotlyReady = new Promise((resolve) => {
  runPlotly = resolve;
}).then(() => loadScript(`${ROOT}/ui/assets/vendor/plotly-cartesian.min.js`));

const state = {
  key: sessionStorage.getItem("nld-key") || "",
  model: null, // the chosen model's name
  minima: null, // GET /landscape/minima
  transitions: null,
  plane: null, // {origin, basis} of the energy grid shown
  stream: null,
  sample: null,
  shown: 0, // model choices so far
};

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// An API call: its JSON answer (or, with `blob`, its body); an ApiError for a 4xx or 5xx.
async function api(path, { method = "GET", json, body, query, blob = false } = {}) {
  const headers = {};
  if (state.key) headers["X-API-Key"] = state.key;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const url = new URL(ROOT + path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v != null) url.searchParams.set(k, v);
  let r = await fetch(url, { method, headers, body });
  // A model still loading answers 503 with Retry-After: wait as asked, up to a minute.
  for (let waited = 0; r.status === 503 && r.headers.has("Retry-After") && waited < 60; ) {
    const seconds = Math.min(Number(r.headers.get("Retry-After")) || 1, 10);
    if ($("status")) $("status").textContent = "the model is loading...";
    await new Promise((done) => setTimeout(done, seconds * 1000));
    waited += seconds;
    r = await fetch(url, { method, headers, body });
  }
  if (r.ok && blob) return r.blob();
  const text = await r.text();
  let out;
  try {
    out = JSON.parse(text);
  } catch {
    out = { detail: text || r.statusText };
  }
  if (!r.ok) {
    const detail = typeof out.detail === "string" ? out.detail : JSON.stringify(out.detail);
    throw new ApiError(r.status, detail);
  }
  return out;
}

function message(e) {
  if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
    return `The service refused the API key (HTTP ${e.status}): ${e.message}\n` +
      "Type the service's key (NLD_API_KEY) in the field above and press \"Use key\".";
  }
  if (e instanceof ApiError) return `HTTP ${e.status}: ${e.message}`;
  if (e instanceof TypeError) return `The service could not be reached: ${e.message}`; // fetch
  return e.message;
}

function show(where, e) {
  const box = $(where);
  if (e == null) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = message(e);
  box.hidden = false;
}

const fmt = (v, digits = 3) => (v == null ? "-" : Number(v).toPrecision(digits));

// Latent points on the plane of the energy grid: plane coordinates (u, v).
function project(p) {
  const { origin, basis } = state.plane;
  return basis.map((b) => b.reduce((s, bi, i) => s + bi * (p[i] - origin[i]), 0));
}

// ---- models --------------------------------------------------------------------------
async function loadModels() {
  let list;
  try {
    list = await api("/models");
  } catch (e) {
    await domReady;
    $("status").textContent = "";
    show("error", e);
    return;
  }
  const wanted = new URLSearchParams(window.location.search).get("model"); // ?model=NAME
  const names = list.models.map((m) => m.name);
  const name = names.includes(wanted) ? wanted : (list.default || names[0]);
  const showing = name ? chooseModel(name) : null; // its answers are asked for at once
  await domReady;
  const select = $("model");
  select.replaceChildren(...list.models.map((m) => new Option(`${m.name} (${m.dynamics}, ${m.n_minima ?? "?"} states)`, m.name)));
  const loading = Object.keys(list.loading || {});
  const failed = Object.entries(list.failed || {});
  $("status").textContent = [
    loading.length ? `loading: ${loading.join(", ")}` : "",
    failed.length ? `failed: ${failed.map(([k, v]) => `${k} (${v})`).join("; ")}` : "",
  ].filter(Boolean).join(" | ");
  if (!showing) {
    show("error", new Error("no model is ready yet; reload the page in a moment"));
    return;
  }
  select.value = name;
  await showing;
}

async function chooseModel(name) {
  state.model = name;
  const shown = ++state.shown; // a later choice wins over this one
  if (shown === 1) showPicture(name);
  const answers = Promise.all([
    api(`/models/${encodeURIComponent(name)}`),
    api("/landscape/minima", { query: { model: name } }),
    api("/landscape/transitions", { query: { model: name } }),
  ]);
  answers.catch(() => {}); // handled below, once the page can show it
  await domReady;
  stopStream();
  state.stream = null; // a recording of one model is not another's
  $("play").disabled = $("reset").disabled = true;
  show("error", null);
  try {
    const [detail, minima, transitions] = await answers;
    if (shown !== state.shown) return;
    state.minima = minima;
    state.transitions = transitions;
    state.sample = null;
    drawCard(detail, minima, transitions);
    const grid = fetchGrid();
    grid.catch(() => {});
    await plotlyReady;
    const energy = await grid;
    if (shown !== state.shown) return;
    drawLandscape(energy);
    drawBand();
    await drawStates();
    await listExamples();
    fillStarts();
  } catch (e) {
    show("error", e);
  }
}

// The landscape as the service draws it (a PNG), shown until Plotly.js has run; then Plotly.js
// is run, whether or not the picture came.
async function showPicture(name) {
  try {
    const img = new Image();
    img.src = URL.createObjectURL(await api("/landscape/image", { query: { model: name }, blob: true }));
    img.id = "landscape-image";
    img.alt = "the energy landscape: E on the plane through the minima, minima numbered, saddles (x)";
    await img.decode();
    await domReady;
    if (!$("landscape").data) $("landscape").replaceChildren(img);
    await new Promise((painted) => requestAnimationFrame(() => setTimeout(painted)));
  } catch { /* no picture: Plotly.js draws the landscape a moment later */ }
  runPlotly();
}

function drawCard(detail, minima, transitions) {
  const data = (detail.meta || {}).data || {};
  const facts = [
    ["dynamics", detail.dynamics],
    ["latent dimension", detail.latent_dim],
    ["observed dimension", detail.obs_dim],
    ["states (minima)", minima.minima.length],
    ["regimes", minima.minima.every((m) => m.regime == null) ? "-" : new Set(minima.minima.map((m) => m.regime)).size],
    ["beta", fmt(minima.beta)],
    ["clock", fmt(transitions.clock)],
    ["labels from", detail.labels_from ?? "-"],
    ["training data", data.n_sequences ? `${data.n_sequences} x ${data.length} steps x ${data.dim}` : "-"],
    ["version", detail.version],
  ];
  $("facts").replaceChildren(...facts.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    return [dt, dd];
  }));
  const warnings = [...new Set([...(minima.warnings || []), ...(transitions.warnings || [])])];
  $("warnings").replaceChildren(...warnings.map((w) => {
    const li = document.createElement("li");
    li.textContent = w;
    return li;
  }));
  $("card").textContent = detail.card || "(this model has no MODEL_CARD.md)";
}

// ---- landscape -----------------------------------------------------------------------
// E on the plane through the minima (the latent plane for d = 2; for d = 3 moved along its
// normal by the slice control), or along the axis for d = 1.
function fetchGrid() {
  const m = state.minima.minima;
  if (m[0].position.length === 1) {
    const xs = m.map((p) => p.position[0]);
    const lo = Math.min(...xs), hi = Math.max(...xs), pad = Math.max(hi - lo, 1) * 0.5;
    const grid = { kind: "box", lo: [lo - pad], hi: [hi + pad], resolution: 400 };
    return api("/landscape/energy", { method: "POST", json: { model: state.model, grid } });
  }
  const offset = m[0].position.length === 3 ? Number($("slice").value) : 0;
  const grid = { kind: "plane", resolution: 80, offset };
  return api("/landscape/energy", { method: "POST", json: { model: state.model, grid, basins: true } });
}

function drawLandscape(grid) {
  const picture = $("landscape-image");
  if (picture) { // Plotly.js draws in its place
    picture.remove();
    URL.revokeObjectURL(picture.src);
  }
  const d = state.minima.minima[0].position.length;
  $("slice-control").hidden = d !== 3;
  const note = $("landscape-note");
  if (d === 1) {
    state.plane = { origin: [0], basis: [[1]] };
    state.grid = null;
    drawLine(grid);
    note.textContent = "E along the latent axis; markers: the minima with their occupancy (d).";
    return;
  }
  state.plane = { origin: grid.origin, basis: grid.basis };
  state.grid = grid;
  drawPlane();
  const offset = Number($("slice").value);
  note.textContent = (d === 2 ? "E on the latent plane" : `E on the plane through the minima${d === 3 && offset ? `, moved ${offset} along its normal` : ""}`) +
    "; circles: minima (state, occupancy (d)); crosses: saddles; dotted: the minimum energy paths through them (projected); hover for E and the basin.";
}

// The page loads Plotly.js's cartesian bundle; the 3-D surface needs the full one, loaded on
// the first use, after which every plot is drawn again by it.
async function fullPlotly() {
  if (state.fullPlotly) return;
  await loadScript(`${ROOT}/ui/vendor/plotly.min.js`);
  state.fullPlotly = true;
  for (const id of ["occupancy", "dwell", "transitions", "band", "landscape"]) Plotly.purge(id);
  await drawStates();
  drawBand();
}

function occupancyOf(m) {
  const o = m.occupancy || {};
  return o.quadrature ?? o.sampling ?? o.zeroth;
}

function drawLine(grid) {
  const m = state.minima.minima;
  const traces = [
    { x: grid.axes[0], y: grid.energy, mode: "lines", name: "E", line: { color: "#444" } },
    {
      x: m.map((p) => p.position[0]), y: m.map((p) => p.energy), mode: "markers+text",
      text: m.map((p, i) => `${i}: ${fmt(occupancyOf(p), 2)}`), textposition: "top center",
      marker: { size: 12, color: m.map((_, i) => colour(i)) }, name: "minima",
    },
  ];
  Plotly.react("landscape", traces, { margin: { t: 20 }, xaxis: { title: { text: "z" } }, yaxis: { title: { text: "E" } } }, PLOT);
}

function landscapeTraces() {
  const grid = state.grid;
  const z = grid.axes[1].map((_, j) => grid.axes[0].map((_, i) => grid.energy[i][j]));
  const basin = grid.axes[1].map((_, j) => grid.axes[0].map((_, i) => grid.basins[i][j]));
  const m = state.minima.minima;
  const uv = m.map((p) => project(p.position));
  const surface = $("surface").checked;
  const saddles = state.transitions.saddles || [];
  const suv = saddles.map((s) => project(s.position));
  const hover = m.map((p, i) => `state ${i}${p.regime != null ? ` (regime ${p.regime})` : ""}<br>E ${fmt(p.energy, 4)}<br>` +
    `occupancy (d) ${fmt(occupancyOf(p), 3)}`);
  if (surface) {
    return [
      { type: "surface", x: grid.axes[0], y: grid.axes[1], z, colorscale: "Viridis", name: "E", showscale: false,
        hovertemplate: "u %{x:.2f}<br>v %{y:.2f}<br>E %{z:.3f}<extra></extra>" },
      { type: "scatter3d", mode: "markers+text", x: uv.map((p) => p[0]), y: uv.map((p) => p[1]),
        z: m.map((p) => p.energy), text: m.map((_, i) => String(i)), name: "minima",
        marker: { size: 6, color: m.map((_, i) => colour(i)) }, hovertext: hover, hoverinfo: "text" },
    ];
  }
  const paths = { x: [], y: [] }; // the minimum energy paths, each ended by a gap
  for (const saddle of saddles) {
    for (const q of saddle.path.map(project)) {
      paths.x.push(q[0]);
      paths.y.push(q[1]);
    }
    paths.x.push(null);
    paths.y.push(null);
  }
  return [
    { type: "contour", x: grid.axes[0], y: grid.axes[1], z, colorscale: "Viridis", ncontours: 30,
      name: "E", colorbar: { title: { text: "E" } }, customdata: basin,
      hovertemplate: "u %{x:.2f}<br>v %{y:.2f}<br>E %{z:.3f}<br>basin of state %{customdata}<extra></extra>" },
    { type: "scatter", mode: "lines", x: paths.x, y: paths.y, name: "minimum energy paths",
      line: { color: "rgba(255,255,255,0.7)", dash: "dot" }, hoverinfo: "skip" },
    { type: "scatter", mode: "markers", x: suv.map((p) => p[0]), y: suv.map((p) => p[1]), name: "saddles",
      marker: { symbol: "x", size: 10, color: "#fff", line: { color: "#000", width: 1 } },
      hovertext: saddles.map((s) => `saddle ${s.between[0]}-${s.between[1]}<br>E ${fmt(s.energy, 4)}<br>` +
        `barriers ${fmt(s.barriers[0])}, ${fmt(s.barriers[1])}`), hoverinfo: "text" },
    { type: "scatter", mode: "markers+text", x: uv.map((p) => p[0]), y: uv.map((p) => p[1]), name: "minima",
      text: m.map((p, i) => `${i}: ${fmt(occupancyOf(p), 2)}`), textposition: "top center",
      textfont: { color: "#fff" }, marker: { size: 13, color: m.map((_, i) => colour(i)), line: { color: "#fff", width: 2 } },
      hovertext: hover, hoverinfo: "text" },
  ];
}

// The stream's trail and point and the prior's paths, drawn over the landscape.
function overlayTraces() {
  const s = state.stream;
  const tail = s && s.z.length ? s.z.slice(-40).map(project) : [];
  const now = tail.slice(-1);
  const out = [
    { type: "scatter", mode: "lines", x: tail.map((p) => p[0]), y: tail.map((p) => p[1]),
      line: { color: "#fff", width: 1.5 }, name: "stream trail", hoverinfo: "skip" },
    { type: "scatter", mode: "markers", x: now.map((p) => p[0]), y: now.map((p) => p[1]), name: "stream now",
      marker: { size: 14, color: now.length ? colour(s.labels[s.labels.length - 1]) : "#fff", line: { color: "#000", width: 2 } } },
  ];
  const p = state.sample;
  if (p) {
    p.paths.forEach((path, i) => {
      const seen = path.slice(0, p.shown + 1).map(project);
      out.push({ type: "scatter", mode: "lines", x: seen.map((q) => q[0]), y: seen.map((q) => q[1]),
        line: { color: "rgba(255,80,80,0.8)", width: 1 }, showlegend: i === 0, name: "prior paths", hoverinfo: "skip" });
    });
  }
  return out;
}

function flatPlane() {
  return state.grid && state.plane.basis.length === 2 && !$("surface").checked;
}

function drawPlane() {
  const layout = {
    margin: { t: 20, r: 10 }, legend: { orientation: "h", y: -0.2 }, uirevision: state.model,
    xaxis: { title: { text: "u (plane coordinate)" }, scaleanchor: "y" }, yaxis: { title: { text: "v" } },
    scene: { xaxis: { title: { text: "u" } }, yaxis: { title: { text: "v" } }, zaxis: { title: { text: "E" } } },
  };
  const own = landscapeTraces();
  Plotly.react("landscape", flatPlane() ? [...own, ...overlayTraces()] : own, layout, PLOT);
}

// While a stream plays the landscape is drawn again at most five times a second (a redraw
// of the contour takes 50-60 ms; Plotly.animate, which would spare it, wipes the contour).
let overlayTimer = null;
function moveOverlay() {
  if (!flatPlane() || overlayTimer) return;
  overlayTimer = setTimeout(() => {
    overlayTimer = null;
    if (flatPlane()) drawPlane();
  }, 200);
}

// ---- states --------------------------------------------------------------------------
async function drawStates() {
  const m = state.minima.minima;
  const k = m.length;
  const names = m.map((_, i) => `state ${i}`);
  let se = null;
  try {
    se = (await api("/landscape/occupancy", { query: { model: state.model, method: "sampling" } })).standard_error;
  } catch { /* no sampling estimate: bars without error bars */ }
  const methods = [["sampling", "(a) sampling"], ["zeroth", "(b) zeroth"], ["second", "(c) second"], ["quadrature", "(d) quadrature"]];
  const occ = methods.filter(([key]) => m.some((p) => p.occupancy[key] != null)).map(([key, label]) => ({
    type: "bar", name: label, x: names, y: m.map((p) => p.occupancy[key]),
    error_y: key === "sampling" && se ? { type: "data", array: se, visible: true } : undefined,
  }));
  Plotly.react("occupancy", occ, { title: { text: "Occupancy" }, barmode: "group", margin: { t: 40 }, legend: { orientation: "h" } }, PLOT);
  const t = state.transitions;
  const dwell = [
    { type: "bar", name: "simulated prior", x: names, y: t.dwell_times_simulated },
    { type: "bar", name: "Kramers", x: names, y: t.dwell_times },
  ];
  if (t.dwell_times_chain) dwell.unshift({ type: "bar", name: "chain (data)", x: names, y: t.dwell_times_chain });
  Plotly.react("dwell", dwell, { title: { text: "Dwell times (steps)" }, barmode: "group", margin: { t: 40 },
    yaxis: { type: "log" }, legend: { orientation: "h" } }, PLOT);
  const counts = t.transitions_simulated || [];
  const probs = counts.map((row) => {
    const n = row.reduce((a, b) => a + b, 0);
    return row.map((c) => (n ? c / n : 0));
  });
  Plotly.react("transitions", [{ type: "heatmap", z: probs, x: names, y: names, colorscale: "Blues", reversescale: true,
    hovertemplate: "from %{y} to %{x}: %{z:.3f}<extra></extra>" }],
  { title: { text: "Transitions (simulated, per exit)" }, margin: { t: 40 }, yaxis: { autorange: "reversed" } }, PLOT);
  if (!k) show("error", new Error("the model has no minima"));
}

// ---- stream --------------------------------------------------------------------------
async function listExamples() {
  const select = $("example");
  select.replaceChildren(new Option("(choose)", ""));
  try {
    const out = await api("/ui/examples", { query: { model: state.model } });
    for (const name of out.examples) select.add(new Option(name, name));
    if (!out.examples.length) select.add(new Option("(no bundled examples: upload a CSV)", ""));
  } catch (e) {
    show("stream-error", e);
  }
}

function newStream(recording) {
  stopStream();
  show("stream-error", null);
  state.stream = {
    recording, next: 0, seq: 0, labels: [], probabilities: [], z: [], playing: false,
    session: crypto.getRandomValues(new Uint8Array(12)).reduce((s, b) => s + b.toString(16).padStart(2, "0"), "ui-"),
  };
  $("play").disabled = false;
  $("reset").disabled = false;
  $("play").textContent = "Play";
  drawBand();
  $("stream-status").textContent = `${recording.name}: ${recording.observations.length} steps x ${recording.observations[0].length}` +
    (recording.recordings > 1 ? ` (the first of ${recording.recordings} recordings)` : "");
}

async function loadExample(name) {
  if (!name) return;
  try {
    newStream(await api(`/ui/examples/${encodeURIComponent(name)}`, { query: { model: state.model } }));
  } catch (e) {
    show("stream-error", e);
  }
}

async function loadUpload(file) {
  if (!file) return;
  try {
    const query = {
      model: state.model, filename: file.name,
      sequence_column: $("sequence-column").value.trim() || null,
      states_column: $("states-column").value.trim() || null,
    };
    const recording = await api("/ui/table", { method: "POST", body: await file.text(), query });
    newStream(recording);
  } catch (e) {
    stopStream();
    state.stream = null;
    $("play").disabled = true;
    show("stream-error", e);
  }
}

function stopStream() {
  if (state.stream) state.stream.playing = false;
  $("play").textContent = "Play";
}

async function play() {
  const s = state.stream;
  if (!s) return;
  if (s.playing) {
    stopStream();
    return;
  }
  if (s.next >= s.recording.observations.length) return;
  s.playing = true;
  $("play").textContent = "Pause";
  const obs = s.recording.observations;
  // Steps are due at the chosen speed; a request sends a chunk, or all the steps due when
  // drawing or the network fell behind, so that the stream keeps its pace.
  const nominal = () => Math.max(1, Number($("chunk").value) || 10);
  let due = nominal(); // steps due and not yet sent
  let last = performance.now();
  while (s.playing && s.next < obs.length && state.stream === s) {
    const speed = Number($("speed").value);
    due += ((performance.now() - last) / 1000) * speed;
    last = performance.now();
    if (due < nominal() && s.next + due < obs.length) {
      await new Promise((r) => setTimeout(r, ((nominal() - due) / speed) * 1000));
      continue;
    }
    const chunk = obs.slice(s.next, s.next + Math.min(Math.max(nominal(), Math.floor(due)), 1000));
    due -= chunk.length;
    const end = s.next + chunk.length >= obs.length;
    let out;
    try {
      out = await api("/segment/stream", {
        method: "POST",
        json: { model: state.model, session_id: s.session, seq: s.seq, end, observations: chunk },
      });
    } catch (e) {
      show("stream-error", e);
      stopStream();
      return;
    }
    s.seq += 1;
    s.next += chunk.length;
    for (const r of out.results) {
      s.labels.push(r.label);
      s.z.push(r.z);
      if (r.probabilities) s.probabilities.push(r.probabilities);
    }
    scheduleBand();
    moveOverlay();
  }
  drawBand();
  if (flatPlane()) drawPlane();
  if (s.next >= obs.length) {
    $("play").textContent = "Done";
    s.playing = false;
  }
}

// The band is redrawn at most four times a second while a stream plays.
let bandTimer = null;
function scheduleBand() {
  bandTimer ??= setTimeout(() => {
    bandTimer = null;
    drawBand();
  }, 250);
}

function drawBand() {
  clearTimeout(bandTimer);
  bandTimer = null;
  const s = state.stream;
  const traces = [];
  if (s && s.labels.length) {
    const t = s.labels.map((_, i) => i);
    const k = state.minima.minima.length;
    traces.push({ type: "heatmap", x: t, y: ["label"], z: [s.labels], zmin: 0, zmax: Math.max(k - 1, 1),
      colorscale: discreteScale(k), showscale: false, yaxis: "y", hovertemplate: "t %{x}: state %{z}<extra></extra>" });
    const truth = s.recording.states;
    if (truth) {
      traces.push({ type: "heatmap", x: t, y: ["known state"], z: [truth.slice(0, s.labels.length)], showscale: false,
        colorscale: "Greys", yaxis: "y3", hovertemplate: "t %{x}: known state %{z}<extra></extra>" });
    }
    if (s.probabilities.length) {
      for (let j = 0; j < s.probabilities[0].length; j++) {
        traces.push({ type: "scatter", mode: "lines", x: t, y: s.probabilities.map((p) => p[j]), yaxis: "y2",
          name: `p(state ${j})`, line: { color: colour(j), width: 1.5 } });
      }
    }
    $("stream-labels").textContent = s.labels.join(" ");
    $("stream-status").textContent = `${s.recording.name}: step ${s.labels.length} of ${s.recording.observations.length}, ` +
      `state ${s.labels[s.labels.length - 1]}`;
  } else {
    $("stream-labels").textContent = "";
  }
  Plotly.react("band", traces, {
    margin: { t: 10, l: 90 }, showlegend: true, legend: { orientation: "h" },
    xaxis: { anchor: "y2", title: { text: "step" }, range: s ? [0, s.recording.observations.length] : undefined },
    yaxis: { domain: [0.84, 1] }, yaxis3: { domain: [0.68, 0.82] },
    yaxis2: { domain: [0, 0.6], range: [0, 1], title: { text: "probability" } },
  }, PLOT);
}

function discreteScale(k) {
  const n = Math.max(k, 2);
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push([i / n, colour(i)], [(i + 1) / n, colour(i)]);
  }
  return out;
}

// ---- sampling ------------------------------------------------------------------------
function fillStarts() {
  const select = $("start");
  select.replaceChildren(new Option("the prior's initial distribution", ""));
  state.minima.minima.forEach((_, i) => select.add(new Option(`minimum ${i}`, String(i))));
}

async function sample() {
  show("sample-error", null);
  const start = $("start").value;
  const body = {
    model: state.model, n_paths: Number($("n-paths").value), n_steps: Number($("n-steps").value), seed: 0,
  };
  if (start !== "") body.start = state.minima.minima[Number(start)].position;
  try {
    const out = await api("/sample", { method: "POST", json: body });
    state.sample = { paths: out.paths, shown: 0 };
  } catch (e) {
    show("sample-error", e);
    return;
  }
  const p = state.sample;
  const steps = p.paths[0].length - 1;
  const per = Math.max(1, Math.ceil(steps / 25)); // 25 frames, 8 a second
  const frame = () => {
    if (state.sample !== p) return;
    p.shown = Math.min(steps, p.shown + per);
    if (flatPlane()) drawPlane();
    if (p.shown < steps) setTimeout(frame, 125);
  };
  frame();
}

// ---- wiring --------------------------------------------------------------------------
loadModels();
await domReady;
$("key").value = state.key;
$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.key = $("key").value.trim();
  sessionStorage.setItem("nld-key", state.key);
  loadModels();
});
$("model").addEventListener("change", (ev) => chooseModel(ev.target.value));
$("surface").addEventListener("change", async () => {
  try {
    if ($("surface").checked) await fullPlotly();
    drawPlane();
  } catch (e) {
    show("error", e);
  }
});
$("slice").addEventListener("change", async () => {
  $("slice-value").textContent = $("slice").value;
  try {
    drawLandscape(await fetchGrid());
  } catch (e) {
    show("error", e);
  }
});
$("speed").addEventListener("input", () => { $("speed-value").textContent = $("speed").value; });
$("example").addEventListener("change", (ev) => loadExample(ev.target.value));
$("upload").addEventListener("change", (ev) => loadUpload(ev.target.files[0]));
$("play").addEventListener("click", play);
$("reset").addEventListener("click", () => {
  if (state.stream) newStream(state.stream.recording);
  moveOverlay();
});
$("sample").addEventListener("click", sample);
window.nld = state; // for the browser tests and the curious
