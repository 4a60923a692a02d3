// mlpc web: run a compiled model in onnxruntime-web and show the network's state.
//
// Nothing here executes SUBLEQ: every step is one call of the model with its own
// `resume_state` and `max_steps` inputs, and the page shows what the model's `final_state`
// holds, decoded with the `state_layout` in the model's metadata (as `decode_state` in
// compiler/codegen.py does, pending write included). `site.json` (written by `mlpc web`)
// lists the models and the tables that word a run's status as `mlpc run` does.
'use strict';

const $ = (id) => document.getElementById(id);

/** An error the page shows to the user (its text is the whole message). */
class PageError extends Error {}

let site = null;   // site.json
let model = null;  // the loaded Model
let run = null;    // the current Run, or null before the first step
let running = false;
let loading = true;  // a model is being loaded (from the start until the first is ready)
let pauseWanted = false;
let idleWaiters = [];

// ---- messages -----------------------------------------------------------------------------

function showMessage(text, kind = 'error') {
  const box = $('message');
  box.textContent = text;
  box.className = kind;
  box.hidden = false;
}

function clearMessage() {
  $('message').hidden = true;
  $('message').textContent = '';
}

function firstLine(text) {
  return String(text).trim().split('\n')[0];
}

// ---- the model's metadata, read from the ONNX file itself ---------------------------------

/** ModelProto.metadata_props (field 14: key 1, value 2) from the protobuf bytes; the rest of
 * the file (the graph) is skipped, not parsed. */
function readMetadata(bytes) {
  const view = new Uint8Array(bytes);
  const text = new TextDecoder();
  const varint = (pos) => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (pos >= view.length) throw new PageError('not an ONNX model (the file ends early)');
      const b = view[pos++];
      value += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) return [value, pos];
    }
  };
  const fields = (start, end, visit) => {
    let pos = start;
    while (pos < end) {
      let key;
      [key, pos] = varint(pos);
      const number = Math.floor(key / 8);
      const wire = key % 8;
      if (wire === 0) { [, pos] = varint(pos); }
      else if (wire === 1) { pos += 8; }
      else if (wire === 5) { pos += 4; }
      else if (wire === 2) {
        let length;
        [length, pos] = varint(pos);
        if (pos + length > end) throw new PageError('not an ONNX model (a field runs past the end)');
        visit(number, pos, pos + length);
        pos += length;
      } else {
        throw new PageError(`not an ONNX model (wire type ${wire})`);
      }
    }
  };
  const meta = {};
  fields(0, view.length, (number, start, end) => {
    if (number !== 14) return;
    const entry = {};
    fields(start, end, (n, s, e) => { entry[n] = text.decode(view.subarray(s, e)); });
    if (entry[1] !== undefined) meta[entry[1]] = entry[2] ?? '';
  });
  return meta;
}

// ---- the model ----------------------------------------------------------------------------

const i64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values), dims);

/** A compiled model in onnxruntime-web, with what its metadata says about its state. */
class Model {
  static async open(bytes, name) {
    let meta;
    try {
      meta = readMetadata(bytes);
    } catch (err) {
      throw new PageError(`${name}: ${err.message}`);
    }
    if (meta.model_kind === 'step') {
      throw new PageError(`${name} is a step model (state in, next_state out): this page runs ` +
                          'full models (mlpc compile -o)');
    }
    if (!meta.state_layout || !meta.listing) {
      throw new PageError(`${name}: this ONNX model was not made by mlpc (no program metadata)`);
    }
    let session;
    try {
      session = await ort.InferenceSession.create(bytes);
    } catch (err) {
      throw new PageError(`onnxruntime-web cannot load ${name}: ${firstLine(err.message)}`);
    }
    return new Model(session, meta, name);
  }

  constructor(session, meta, name) {
    this.session = session;
    this.meta = meta;
    this.name = name;
    const layout = JSON.parse(meta.state_layout);
    this.nState = layout.n_state;
    this.slot = layout.scalars;
    this.memoryWords = Number(meta.memory_words);
    this.wordBits = Number(meta.word_bits);
    this.H = 1n << BigInt(this.wordBits - 1);
    this.tapeIn = Number(meta.tape_in);
    this.inputs = Object.keys(JSON.parse(meta.inputs || '{}'));
    this.outputs = Object.keys(JSON.parse(meta.outputs || '{}'));
    const tensors = JSON.parse(meta.tensor_names || '{"inputs": {}, "outputs": {}}');
    this.inputTensor = (n) => tensors.inputs[n] ?? n;
    this.outputTensor = (n) => tensors.outputs[n] ?? n;
    // a specialised network's state holds only the words the program can write (in this
    // order); the others are constant: the image's, as the model's `memory` output has them
    this.stateWords = meta.state_words ? JSON.parse(meta.state_words) : null;
    this.symbols = Object.entries(JSON.parse(meta.memory_map || '{}'));
    this.lines = JSON.parse(meta.source_lines || '[]');
  }

  /** The source line the word at `address` was compiled from, or 0. */
  lineAt(address) {
    for (const [start, end, line] of this.lines) {
      if (start <= address && address < end) return line;
    }
    return 0;
  }

  /** The machine state a final_state stands for: memory with the pending writes landed (and
   * a specialised state's constant words filled in from `constants`) and pc (mirrors
   * decode_state in compiler/codegen.py). */
  decode(state, constants) {
    const x = state.data;
    const m = this.memoryWords;
    let memory;
    if (this.stateWords === null) {
      memory = new Array(m);
      for (let j = 0; j < m; j++) memory[j] = Number(x[j] - this.H);
    } else {
      memory = constants.slice();
      this.stateWords.forEach((j, k) => { memory[j] = Number(x[k] - this.H); });
    }
    const wa = Number(x[this.slot.wa2]) - 2;
    const wo = x[this.slot.wo];
    const wv = x[this.slot.wv];
    if (wv !== wo && wa >= 0 && wa < m) memory[wa] = Number(wv - this.H);
    // a straight-line run's pending writes (rwa_k: address + 2, 0 for none; rwv_k: word + H)
    for (let k = 0; `rwa${k}` in this.slot; k++) {
      const at = Number(x[this.slot[`rwa${k}`]]) - 2;
      const held = this.stateWords === null ? at >= 0 && at < m : this.stateWords.includes(at);
      if (held) memory[at] = Number(x[this.slot[`rwv${k}`]] - this.H);
    }
    return {memory, pc: Number(x[this.slot.pc1]) - 1};
  }

  fits(value) {
    return -this.H <= value && value < this.H;
  }
}

// ---- a run: calls of the model, each continuing from the last one's final_state -----------

class Run {
  constructor(model, inputs, tape, maxSteps) {
    this.model = model;
    this.inputs = inputs;    // name -> BigInt
    this.tape = tape;        // BigInt[]
    this.maxSteps = Math.min(maxSteps, site.max_budget);
    this.state = null;       // the last final_state
    this.steps = 0;
    this.callSeconds = 0;    // time spent in the model's calls (the rest is the page's)
    this.out = [];
    this.code = null;        // the model's status code of the last call
    this.results = null;
    this.constants = null;   // the first call's memory output (its constant words)
    this.view = null;        // decoded state
    this.before = null;      // decoded state before the last call
  }

  get finished() {
    return this.code !== null && (this.code !== 0 || this.steps >= this.maxSteps);
  }

  /** One call of the model for up to `n` steps; returns the steps it ran. */
  async advance(n) {
    const m = this.model;
    const want = Math.max(0, Math.min(n, this.maxSteps - this.steps));
    const feeds = {};
    for (const [name, value] of Object.entries(this.inputs)) {
      feeds[m.inputTensor(name)] = i64([value], [1]);
    }
    feeds.max_steps = i64([BigInt(want)], []);
    if (this.state === null) {
      feeds.tape = i64(this.tape, [1, this.tape.length]);
      // a program that uses eof() counts the tape's words down from its length
      if (m.session.inputNames.includes('tape_length')) {
        feeds.tape_length = i64([BigInt(this.tape.length)], [1]);
      }
      feeds.resume_state = i64([], [0, m.nState]);  // empty: start afresh (the default)
    } else {
      const data = this.state.data.slice();
      data[m.slot.budget] = BigInt(want);  // as max_steps, which the model gives the call
      feeds.tape = i64([], [1, 0]);
      feeds.resume_state = new ort.Tensor('int64', data, this.state.dims);
    }
    let results;
    const started = performance.now();
    try {
      results = await m.session.run(feeds);
    } catch (err) {
      throw new PageError(`onnxruntime-web failed to run the model: ${firstLine(err.message)}`);
    }
    this.callSeconds += (performance.now() - started) / 1000;
    this.results = results;
    this.state = results.final_state;
    const done = want - Number(this.state.data[m.slot.budget]);
    this.steps += done;
    const length = Number(results.output_length.data[0]);
    for (let i = 0; i < length; i++) this.out.push(Number(results.output_tape.data[i]));
    this.code = Number(results.status.data[0]);
    if (this.constants === null) this.constants = Array.from(results.memory.data, Number);
    this.before = this.view;
    this.view = m.decode(this.state, this.constants);
    return done;
  }

  /** status, detail and named outputs, worded as BatchRun.report in runtime/onnx_engine.py. */
  report() {
    if (this.code === null) return {status: 'ready', detail: '', outputs: []};
    const r = this.results;
    let status = site.status_names[this.code];
    let detail = '';
    if (status === 'fault') {
      detail = site.fault_text[Number(r.fault.data[0])];
    } else if (status === 'trap' && r.trap && r.trap_line) {
      const kind = Number(r.trap.data[0]);
      detail = `${site.trap_kinds[kind] ?? `trap ${kind}`} at line ${Number(r.trap_line.data[0])}`;
    } else if (status === 'step-limit') {
      if (this.steps < this.maxSteps) status = 'paused';
      else detail = `stopped after ${this.steps} steps (max_steps)`;
    }
    const outputs = this.model.outputs.map(
      (n) => [n, Number(r[this.model.outputTensor(n)].data[0])]);
    return {status, detail, outputs};
  }
}

// ---- reading the fields -------------------------------------------------------------------

function parseWord(text, what) {
  const t = text.trim();
  if (!/^[-+]?(0x[0-9a-f]+|0o[0-7]+|0b[01]+|\d+)$/i.test(t)) {
    throw new PageError(`${what}: not an integer: "${text}"`);
  }
  const negative = t.startsWith('-');
  const magnitude = BigInt(t.replace(/^[-+]/, ''));
  return negative ? -magnitude : magnitude;
}

function readFields() {
  const inputs = {};
  for (const name of model.inputs) {
    const value = parseWord($(`input-${name}`).value, `input ${name}`);
    if (!model.fits(value)) {
      throw new PageError(`input ${name} = ${value} does not fit in ${model.wordBits} bits`);
    }
    inputs[name] = value;
  }
  const text = $('tape').value;
  let tape;
  if ($('tape-kind').value === 'text') {
    tape = Array.from(text, (ch) => BigInt(ch.codePointAt(0)));
  } else {
    tape = text.trim() === '' ? [] : text.split(',').map((w) => parseWord(w, 'input tape'));
  }
  tape.forEach((w, k) => {
    if (!model.fits(w)) {
      throw new PageError(`input tape word ${k} is ${w}, outside the ${model.wordBits}-bit range`);
    }
  });
  if (tape.length > model.tapeIn) {
    throw new PageError(`input tape has ${tape.length} words but its capacity is ` +
                        `${model.tapeIn} (compile with --tape-in)`);
  }
  const limit = parseWord($('max-steps').value.replaceAll(',', '').replaceAll('_', ''),
                         'max steps');
  if (limit < 0n) throw new PageError('max steps: must not be negative');
  const maxSteps = Number(limit > BigInt(site.max_budget) ? BigInt(site.max_budget) : limit);
  return new Run(model, inputs, tape, maxSteps);
}

// ---- running ------------------------------------------------------------------------------

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

/** Run up to `limit` steps in calls sized to take 0.1 to 0.4 seconds each, drawing
 * the state after every call; Pause stops between calls. */
async function go(limit) {
  if (running || loading || model === null) return;  // the buttons are off then
  try {
    if (run === null || run.finished) run = readFields();
  } catch (err) {
    report(err);
    return;
  }
  clearMessage();
  running = true;
  pauseWanted = false;
  setButtons();
  let chunk = Math.min(limit, 64);
  let left = limit;
  const startSteps = run.steps;
  const started = performance.now();
  try {
    do {
      const t = performance.now();
      const done = await run.advance(Math.min(chunk, left));
      const dt = performance.now() - t;
      left -= done;
      if (dt < 100) chunk *= 2;
      else if (dt > 400) chunk = Math.max(1, Math.floor(chunk / 2));
      const seconds = (performance.now() - started) / 1000;
      draw(seconds > 0 ? (run.steps - startSteps) / seconds : null);
      await nextFrame();
      if (done === 0) break;
    } while (!pauseWanted && !run.finished && left > 0);
  } catch (err) {
    report(err);
  } finally {
    running = false;
    setButtons();
    idleWaiters.forEach((resolve) => resolve());
    idleWaiters = [];
  }
}

/** The buttons that run the model are live only when a model is ready and nothing else is
 * under way (a click before the model has loaded would have nothing to run); choosing another
 * model waits for the site's list and for the current load or run to end. */
function setButtons() {
  const busy = running || loading;
  for (const id of ['run', 'step', 'run-n', 'reset']) $(id).disabled = busy || model === null;
  for (const id of ['model-select', 'model-file']) $(id).disabled = busy || site === null;
  $('pause').disabled = !running;
  document.body.dataset.running = running ? 'yes' : 'no';
}

function showStatus(status) {
  $('status').textContent = status;
  $('status').className = `status-${status.replaceAll(' ', '-')}`;
}

/** Show an error in the page; one that is not the page's own wording (a bug, or something
 * the page did not foresee) also goes to the console with its stack. */
function report(err) {
  if (err instanceof PageError) {
    showMessage(err.message);
    return;
  }
  const text = err && err.message !== undefined ? err.message : String(err);
  showMessage(`unexpected error: ${firstLine(text)}`);
  console.error(err);
}

// ---- drawing ------------------------------------------------------------------------------

function tapeText(words) {
  return words.map((w) => (w >= 0 && w < 0x110000 && !(w >= 0xd800 && w < 0xe000)
    ? String.fromCodePoint(w) : `\\u{${w}}`)).join('');
}

function draw(rate) {
  if (model === null) {  // nothing loaded (the load failed: the message says why)
    showStatus(loading ? 'loading' : 'no model');
    return;
  }
  const r = run ? run.report() : {status: 'ready', detail: '', outputs: []};
  showStatus(loading ? 'loading' : r.status);
  $('detail').textContent = r.detail;
  $('steps').textContent = run ? String(run.steps) : '0';
  if (rate !== undefined) $('rate').textContent = rate === null ? '' : String(Math.round(rate));
  const view = run && run.view;
  $('pc').textContent = view ? String(view.pc) : '';
  const table = $('outputs');
  table.replaceChildren(...r.outputs.map(([name, value]) => {
    const row = document.createElement('tr');
    row.dataset.name = name;
    const th = document.createElement('th');
    th.textContent = name;
    const td = document.createElement('td');
    td.textContent = String(value);
    row.append(th, td);
    return row;
  }));
  $('output-text').textContent = run ? tapeText(run.out) : '';
  $('output-words').textContent = run ? run.out.join(' ') : '';
  drawMemory(view, run && run.before);
  markLines(view ? view.pc : -1);
}

function cellColour(value, bits) {
  if (value === 0) return '#20242c';
  const strength = Math.log2(Math.abs(value) + 1) / bits;  // 0 < strength <= 1
  const light = 30 + Math.round(45 * Math.sqrt(strength));
  return value > 0 ? `hsl(212 70% ${light}%)` : `hsl(8 70% ${light}%)`;
}

const grid = {cols: 64, cell: 10};

function drawMemory(view, before) {
  const canvas = $('memory');
  const m = model.memoryWords;
  grid.cols = m <= 2048 ? 64 : m <= 8192 ? 128 : 256;  // at most 32 rows of 64 or 128
  grid.cell = Math.max(1, Math.floor(canvas.width / grid.cols));
  const rows = Math.ceil(m / grid.cols);
  if (canvas.height !== rows * grid.cell) canvas.height = rows * grid.cell;
  const ctx = canvas.getContext('2d');
  const c = grid.cell;
  const memory = view ? view.memory : null;
  ctx.fillStyle = '#14171c';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let j = 0; j < m; j++) {
    const x = (j % grid.cols) * c;
    const y = Math.floor(j / grid.cols) * c;
    const value = memory ? memory[j] : 0;
    const changed = memory && before && before.memory[j] !== value;
    ctx.fillStyle = changed ? '#ffd23f' : cellColour(value, model.wordBits);
    ctx.fillRect(x, y, Math.max(1, c - 1), Math.max(1, c - 1));
  }
  if (!view) return;
  const box = (address, colour) => {
    if (address < 0 || address >= m) return;
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.strokeRect((address % grid.cols) * c + 1, Math.floor(address / grid.cols) * c + 1,
                   Math.max(1, c - 3), Math.max(1, c - 3));
  };
  const pc = view.pc;
  if (pc >= 0 && pc + 2 < m) {
    box(view.memory[pc], '#ff5cf0');      // a
    box(view.memory[pc + 1], '#36e3ff');  // b
    for (let o = 0; o < 3; o++) box(pc + o, '#3dff7a');
  }
}

function describeCell(address) {
  const view = run && run.view;
  const value = view ? view.memory[address] : '(not started)';
  const names = model.symbols.filter(([, a]) => a === address).map(([n]) => n);
  const line = model.lineAt(address);
  return `M[${address}] = ${value}` + (names.length ? ` (${names.join(', ')})` : '') +
    (line ? `, code of line ${line}` : '');
}

let listingRows = new Map();  // address -> listing line element

function showProgram() {
  const file = (model.meta.source_path || model.name).split('/').pop();
  $('title').textContent = file;
  $('source-path').textContent = file;
  $('memory-size').textContent = `(${model.memoryWords} words of ${model.wordBits} bits)`;
  const lines = (model.meta.source || '(the model holds no source)').split('\n');
  $('source').replaceChildren(...lines.map((text, i) => {
    const span = document.createElement('span');
    span.className = 'line';
    span.dataset.line = String(i + 1);
    span.textContent = `${text}\n`;
    return span;
  }));
  listingRows = new Map();
  $('listing').replaceChildren(...model.meta.listing.split('\n').map((text) => {
    const span = document.createElement('span');
    span.className = 'line';
    span.textContent = `${text}\n`;
    const address = /^(?:\S+:)?\s+(\d+):/.exec(text);
    if (address && !listingRows.has(Number(address[1]))) {
      listingRows.set(Number(address[1]), span);
    }
    return span;
  }));
}

/** Highlight the source line and the listing row of the instruction at pc. */
function markLines(pc) {
  for (const old of document.querySelectorAll('.code .current')) old.classList.remove('current');
  const line = pc >= 0 ? model.lineAt(pc) : 0;
  const sourceRow = line ? $('source').querySelector(`[data-line="${line}"]`) : null;
  const listingRow = listingRows.get(pc);
  for (const [row, panel] of [[sourceRow, $('source')], [listingRow, $('listing')]]) {
    if (!row) continue;
    row.classList.add('current');
    const top = row.offsetTop - panel.offsetTop;
    if (top < panel.scrollTop || top > panel.scrollTop + panel.clientHeight - row.offsetHeight) {
      panel.scrollTop = top - panel.clientHeight / 3;
    }
  }
}

function showInputs(entry) {
  const box = $('inputs');
  box.replaceChildren(...model.inputs.map((name) => {
    const label = document.createElement('label');
    label.textContent = `${name} `;
    const field = document.createElement('input');
    field.id = `input-${name}`;
    field.size = 10;
    field.spellcheck = false;
    field.value = String(entry.inputs?.[name] ?? 0);
    label.append(field);
    return label;
  }));
  const tape = entry.tape ?? [];
  const printable = tape.length > 0 && tape.every((w) => w >= 32 && w < 127);
  $('tape-kind').value = printable ? 'text' : 'words';
  $('tape').value = printable ? String.fromCharCode(...tape) : tape.join(',');
  $('max-steps').value = String(site.max_steps);
}

// ---- loading ------------------------------------------------------------------------------

/** Load the model whose bytes `read()` gives: until it is ready (or has failed) the buttons
 * are off and the status says `loading`. A model that cannot be loaded is reported and leaves
 * the one before it (if any) in place. */
async function openModel(name, read, entry) {
  if (running) return;
  loading = true;
  setButtons();
  showStatus('loading');
  showMessage(`Loading ${name}…`, 'info');
  let loaded = null;
  try {
    loaded = await Model.open(await read(), name);
  } catch (err) {
    report(err);
  }
  loading = false;
  if (loaded !== null) {
    model = loaded;
    run = null;
    showProgram();
    showInputs(entry);
    clearMessage();
  }
  setButtons();
  draw(loaded !== null ? null : undefined);  // a failed load keeps the last run's steps/s
}

async function openSiteModel(index) {
  const entry = site.models[index];
  await openModel(entry.title, async () => {
    let response;
    try {
      response = await fetch(entry.file);
    } catch (err) {
      throw new PageError(`cannot fetch ${entry.file}: ${firstLine(err.message ?? err)}`);
    }
    if (!response.ok) throw new PageError(`cannot fetch ${entry.file}: HTTP ${response.status}`);
    return response.arrayBuffer();
  }, entry);
}

async function start() {
  if (typeof ort === 'undefined') {
    throw new PageError('onnxruntime-web did not load (onnxruntime-web/ort.wasm.min.js is ' +
                        'missing): rebuild the site with mlpc web');
  }
  ort.env.wasm.numThreads = 1;  // no cross-origin isolation needed
  ort.env.wasm.wasmPaths = new URL('onnxruntime-web/', document.baseURI).href;
  let response;
  try {
    response = await fetch('site.json');
  } catch (err) {  // no server any more, or offline
    throw new PageError(`cannot fetch site.json: ${firstLine(err.message ?? err)}`);
  }
  if (!response.ok) throw new PageError(`cannot fetch site.json: HTTP ${response.status}`);
  try {
    site = await response.json();
  } catch {  // mlpc web writes it: a cut or edited copy
    throw new PageError('site.json is not valid JSON: rebuild the site with mlpc web');
  }
  $('versions').textContent = `${site.mlpc_version}, onnxruntime-web ${site.onnxruntime_web}`;
  const select = $('model-select');
  select.replaceChildren(...site.models.map((entry, i) => {
    const option = document.createElement('option');
    option.value = String(i);
    option.textContent = entry.title;
    return option;
  }));
  $('model-choice').hidden = site.models.length < 2;
  select.addEventListener('change', () => {
    window.mlpc.loading = openSiteModel(Number(select.value));
  });
  $('model-file').addEventListener('change', (event) => {
    const file = event.target.files[0];
    if (file) window.mlpc.loading = openModel(file.name, () => file.arrayBuffer(), {});
  });
  $('run').addEventListener('click', () => go(Infinity));
  $('step').addEventListener('click', () => go(1));
  $('run-n').addEventListener('click', () => {
    try {
      const n = parseWord($('n').value, 'steps to run');
      if (n <= 0n) throw new PageError('steps to run: must be positive');
      go(Number(n));
    } catch (err) {
      report(err);
    }
  });
  $('pause').addEventListener('click', () => { pauseWanted = true; });
  $('reset').addEventListener('click', () => {
    run = null;
    clearMessage();
    draw(null);
  });
  $('memory').addEventListener('mousemove', (event) => {
    const rect = event.target.getBoundingClientRect();
    const scale = event.target.width / rect.width;
    const col = Math.floor((event.clientX - rect.left) * scale / grid.cell);
    const row = Math.floor((event.clientY - rect.top) * scale / grid.cell);
    const address = row * grid.cols + col;
    if (model && col < grid.cols && address < model.memoryWords) {
      $('cell-info').textContent = describeCell(address);
    }
  });
  if (site.models.length === 0) throw new PageError('this site holds no models');
  await openSiteModel(0);
}

/** The page's start failed (no onnxruntime-web, no site.json, no models): say why, and leave
 * the buttons off with the status saying nothing is loaded. */
function startFailed(err) {
  loading = false;
  report(err);
  setButtons();
  draw(null);
}

// For scripts (tests, benchmarks) driving the page: wait for the page to start, for a model
// chosen in the list to load and for a run to end; read the state.
window.mlpc = {
  ready: null,
  loading: null,
  idle: () => (running ? new Promise((resolve) => idleWaiters.push(resolve)) : Promise.resolve()),
  snapshot: () => ({
    memory: run && run.view ? run.view.memory : null,
    pc: run && run.view ? run.view.pc : null,
    steps: run ? run.steps : 0,
    callSeconds: run ? run.callSeconds : 0,
    state: run && run.state ? Array.from(run.state.data, (v) => Number(v)) : null,
  }),
};

// Every error reaches the message area, not only the console: one thrown by an event
// handler, and a promise nobody awaits that fails (preventDefault: report() decides what the
// console gets).
window.addEventListener('error', (event) => {
  event.preventDefault();
  report(event.error ?? new Error(event.message));
});
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  report(event.reason);
});

setButtons();
window.mlpc.ready = start().catch(startFailed);
