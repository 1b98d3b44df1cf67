// Clicks decoded in the browser (Point prompting tab). The server sends an image's embedding once
// (#point-browser-info holds its description); each click, box or undo then runs the exported click
// decoder with onnxruntime-web (served by the demo, single-threaded WebAssembly) and draws the mask
// here, with no request to the server. When the decoder cannot run, clicks go to the server as before.
(() => {
  "use strict";
  const CONFIG = window.SAM3_BROWSER_CONFIG || {};
  const POSITIVE = "Positive point", NEGATIVE = "Negative point", BOX = "Box (2 clicks)";
  const S = {
    ort: null, // the onnxruntime-web module once loaded
    failed: CONFIG.missing || null, // why the browser cannot decode (then the server does)
    sessions: {}, // graph URL -> InferenceSession
    info: null, // the current image's description from the server
    image: null, // {h, w, feeds, decoder, base}: ready to decode
    loading: null, // the promise of the image being prepared
    history: [], corner: null, result: null, choice: 0, shownUrl: null,
  };
  const api = { state: S, stats: { decodeMs: [], bytes: [] }, last: null, seq: 0 };
  window.sam3Browser = api;

  const el = (sel) => document.querySelector(sel);
  const abs = (url) => new URL(url, document.baseURI).href;
  const enabled = () => {
    const box = el("#point-browser-decode input[type=checkbox]");
    return box ? box.checked : !!CONFIG.defaultOn;
  };

  function note(text) {
    const panel = el("#point-browser-panel .sam3-browser-note");
    if (panel) panel.textContent = text;
  }

  // While the page decodes, its own status line stands in for the server path's (hidden: Gradio
  // redraws that one only when the server's value changes).
  function setStatus(text) {
    const line = el("#point-browser-panel .sam3-browser-status");
    if (line) line.textContent = text;
  }

  function syncMode() {
    const on = !!(enabled() && !S.failed && S.image);
    document.body.classList.toggle("sam3-browser-active", on);
    if (!on) setStatus("");
  }

  // -- onnxruntime-web ---------------------------------------------------------------------------
  let ortPromise = null;
  function loadOrt() {
    if (ortPromise) return ortPromise;
    ortPromise = new Promise((resolve, reject) => {
      if (!CONFIG.ort) return reject(new Error(CONFIG.missing || "onnxruntime-web is not configured"));
      const tag = document.createElement("script");
      tag.src = abs(CONFIG.ort.script);
      tag.onload = () => {
        const ort = window.ort;
        if (!ort) return reject(new Error("onnxruntime-web did not define `ort`"));
        ort.env.wasm.numThreads = 1; // no SharedArrayBuffer needed (the page is not cross-origin isolated)
        ort.env.wasm.proxy = false;
        ort.env.wasm.wasmPaths = { mjs: abs(CONFIG.ort.mjs), wasm: abs(CONFIG.ort.wasm) };
        resolve(ort);
      };
      tag.onerror = () => reject(new Error("onnxruntime-web could not be loaded from the server"));
      document.head.appendChild(tag);
    }).then((ort) => (S.ort = ort));
    return ortPromise;
  }

  async function session(url) {
    if (!S.sessions[url]) {
      S.sessions[url] = S.ort.InferenceSession.create(abs(url), { executionProviders: ["wasm"] });
    }
    return S.sessions[url];
  }

  // -- the image's embedding -----------------------------------------------------------------------
  const F16 = (() => { // float16 bits -> float32, one table
    const table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
      table[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
    return table;
  })();

  async function prepare(info) {
    await loadOrt();
    const decoder = info.decoder;
    const graphs = [decoder.multi, decoder.single].filter(Boolean);
    await Promise.all(graphs.map(session));
    const t0 = performance.now();
    const response = await fetch(abs(info.embedding.url));
    if (!response.ok) throw new Error(`the embedding could not be fetched (HTTP ${response.status})`);
    const buffer = await response.arrayBuffer();
    const half = info.embedding.dtype === "float16";
    const feeds = {};
    let offset = 0;
    info.embedding.shapes.forEach((shape, i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      let data;
      if (half) {
        const bits = new Uint16Array(buffer, offset, n);
        data = new Float32Array(n);
        for (let k = 0; k < n; k++) data[k] = F16[bits[k]];
        offset += 2 * n;
      } else {
        data = new Float32Array(buffer.slice(offset, offset + 4 * n));
        offset += 4 * n;
      }
      feeds[decoder.embeddings[i]] = new S.ort.Tensor("float32", data, shape);
    });
    if (offset !== buffer.byteLength) throw new Error(`the embedding has ${buffer.byteLength} bytes, expected ${offset}`);
    api.stats.bytes.push(buffer.byteLength);
    api.stats.fetchMs = performance.now() - t0;
    const base = await baseImage();
    const image = { h: info.height, w: info.width, feeds, decoder, base };
    const t1 = performance.now();
    for (const url of graphs) await run1(image, url, [info.width / 2, info.height / 2], [1]); // warm-up
    api.stats.warmupMs = performance.now() - t1;
    return image;
  }

  async function baseImage() { // the picture as uploaded (the server shows it without a mask)
    const img = el("#point-image img");
    const picture = new Image();
    picture.src = img.src;
    await picture.decode();
    return picture;
  }

  api.setInfo = (text) => {
    S.info = null; S.image = null; S.loading = null;
    S.history = []; S.corner = null; S.result = null; S.choice = 0;
    renderCandidates();
    syncMode();
    if (!text) return;
    const info = JSON.parse(text);
    if (info.error) { note(`Clicks go to the server: ${info.error}`); return; }
    S.info = info;
    if (S.failed) { note(`Clicks go to the server: ${S.failed}`); return; }
    note("Preparing the browser decoder…");
    S.loading = prepare(info).then((image) => {
      if (S.info !== info) return; // another image came meanwhile
      S.image = image;
      syncMode();
      setStatus("Click on the object.");
      note(`Clicks decode in this browser (embedding: ${(info.embedding.bytes / 1024).toFixed(0)} KiB, ${info.embedding.dtype}).`);
      api.ready = true;
    }).catch((e) => {
      S.failed = String(e && e.message ? e.message : e);
      console.warn("sam3: browser decoding unavailable", e);
      note(`Clicks go to the server: the browser cannot decode them (${S.failed}).`);
      syncMode();
    });
  };

  // -- decoding --------------------------------------------------------------------------------------
  function prompts() {
    const points = [], labels = [];
    let box = null;
    for (const a of S.history) {
      if (a.kind === "point") { points.push(a.xy); labels.push(a.label); } else box = a.box;
    }
    return { points, labels, box };
  }

  // One run of the graph at `url`: points (x, y) in image pixels, mapped to the model input as the
  // processor does (float32 products); a box adds its corners labelled 2 and 3 after the clicks.
  async function run1(image, url, coordsXY, labels) {
    const { h, w, decoder, feeds } = image;
    const sx = Math.fround(decoder.input_size / w), sy = Math.fround(decoder.input_size / h);
    const coords = coordsXY.map((v, i) => Math.fround(Math.fround(v) * (i % 2 ? sy : sx)));
    const ort = S.ort, m = decoder.mask_size, n = labels.length;
    const sess = await session(url);
    const [, , , coordsName, labelsName, maskName, hasMaskName] = decoder.inputs; // the manifest's order
    const all = {
      ...feeds,
      [coordsName]: new ort.Tensor("float32", Float32Array.from(coords), [1, n, 2]),
      [labelsName]: new ort.Tensor("float32", Float32Array.from(labels), [1, n]),
      [maskName]: new ort.Tensor("float32", new Float32Array(m * m), [1, 1, m, m]),
      [hasMaskName]: new ort.Tensor("float32", new Float32Array(1), [1]),
    };
    const inputs = {};
    for (const name of sess.inputNames) {
      if (!(name in all)) throw new Error(`the click decoder wants an input ${name}, which the page does not know`);
      inputs[name] = all[name];
    }
    const out = await sess.run(inputs);
    return { logits: out[decoder.outputs[0]], scores: out[decoder.outputs[1]].data };
  }

  async function decode() {
    const { points, labels, box } = prompts();
    S.choice = 0;
    if (!points.length && !box) { S.result = null; return; }
    const { h, w, decoder } = S.image;
    const xy = points.flat(), labs = labels.slice();
    if (box) { xy.push(...box); labs.push(2, 3); } else if (decoder.pad_point) { xy.push(0, 0); labs.push(-1); }
    const multimask = !box && points.length === 1; // the SDK's default
    const t0 = performance.now();
    const { logits, scores } = await run1(S.image, multimask || !decoder.single ? decoder.multi : decoder.single, xy, labs);
    let order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]); // best first, as the SDK
    if (!multimask && !decoder.single) order = [0];
    const [hm, wm] = logits.dims.slice(-2);
    const candidates = order.map((k) => {
      const up = upsample(logits.data.subarray(k * hm * wm, (k + 1) * hm * wm), hm, wm, h, w);
      const mask = new Uint8Array(h * w);
      let area = 0;
      for (let i = 0; i < up.length; i++) if (up[i] > 0) { mask[i] = 1; area++; }
      return { logits: up, mask, area, score: Math.min(1, Math.max(0, scores[k])) };
    });
    const ms = performance.now() - t0;
    api.stats.decodeMs.push(ms);
    S.result = { candidates, ms };
  }

  // Bilinear, align_corners=False: what the processor's post_process_masks does (torch's formula).
  function axis(inSize, outSize) {
    const scale = Math.fround(inSize / outSize), i0 = new Int32Array(outSize), i1 = new Int32Array(outSize);
    const l1 = new Float32Array(outSize);
    for (let d = 0; d < outSize; d++) {
      let src = Math.fround(scale * (d + 0.5) - 0.5);
      if (src < 0) src = 0;
      const lo = Math.floor(src);
      i0[d] = lo; i1[d] = lo < inSize - 1 ? lo + 1 : lo; l1[d] = src - lo;
    }
    return { i0, i1, l1 };
  }

  function upsample(src, hin, win, hout, wout) {
    const ys = axis(hin, hout), xs = axis(win, wout), out = new Float32Array(hout * wout);
    for (let y = 0; y < hout; y++) {
      const r0 = ys.i0[y] * win, r1 = ys.i1[y] * win, b = ys.l1[y], a = 1 - b;
      for (let x = 0; x < wout; x++) {
        const c0 = xs.i0[x], c1 = xs.i1[x], q = xs.l1[x], p = 1 - q;
        out[y * wout + x] = a * (p * src[r0 + c0] + q * src[r0 + c1]) + b * (p * src[r1 + c0] + q * src[r1 + c1]);
      }
    }
    return out;
  }

  // -- drawing -------------------------------------------------------------------------------------
  async function draw() {
    const { h, w, base } = S.image;
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(base, 0, 0, w, h);
    const chosen = S.result && S.result.candidates[S.choice];
    if (chosen) {
      // As the SDK's overlay: the first palette colour at alpha 0.5, the outline in full colour.
      const pixels = ctx.getImageData(0, 0, w, h), d = pixels.data, m = chosen.mask, color = [230, 25, 75];
      const inside = (x, y) => x >= 0 && y >= 0 && x < w && y < h && m[y * w + x];
      for (let y = 0, i = 0; y < h; y++) {
        for (let x = 0; x < w; x++, i++) {
          if (!m[i]) continue;
          const edge = !(inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1));
          for (let c = 0; c < 3; c++) d[4 * i + c] = edge ? color[c] : 0.5 * d[4 * i + c] + 0.5 * color[c];
        }
      }
      ctx.putImageData(pixels, 0, 0);
    }
    const radius = Math.max(3, Math.round(Math.min(h, w) / 80));
    const { points, labels, box } = prompts();
    points.forEach(([x, y], i) => {
      ctx.beginPath(); ctx.arc(x, y, radius, 0, 2 * Math.PI);
      ctx.fillStyle = labels[i] === 1 ? "rgb(40,220,60)" : "rgb(230,40,40)"; ctx.fill();
      ctx.strokeStyle = "white"; ctx.stroke();
    });
    ctx.strokeStyle = "rgb(40,120,255)";
    if (box) { ctx.lineWidth = Math.max(2, radius >> 1); ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]); }
    if (S.corner) { ctx.lineWidth = 2; ctx.strokeRect(S.corner[0] - radius, S.corner[1] - radius, 2 * radius, 2 * radius); }
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const img = el("#point-image img");
    if (S.shownUrl) URL.revokeObjectURL(S.shownUrl);
    S.shownUrl = URL.createObjectURL(blob);
    img.src = S.shownUrl;
  }

  function statusText() {
    const r = S.result;
    if (!r) {
      if (!S.history.length && !S.corner) return "Click on the object.";
      return S.corner ? "Click the opposite box corner." : "Add a point or finish the box.";
    }
    const c = r.candidates[S.choice], n = r.candidates.length;
    let text = `Mask ${S.choice + 1} of ${n}: ${c.area} pixels, predicted IoU ${c.score.toFixed(2)}.`;
    if (c.area === 0) text = `Mask ${S.choice + 1} of ${n} is empty: nothing was segmented there. Pick another candidate, or click inside the object.`;
    if (S.corner) text = `Box started (the blue square): click its opposite corner. ${text}`;
    return `${text} (decoded in the browser in ${r.ms.toFixed(1)} ms)`;
  }

  function renderCandidates() {
    const list = el("#point-browser-panel .sam3-browser-candidates");
    if (!list) return;
    list.replaceChildren();
    (S.result ? S.result.candidates : []).forEach((c, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "sam3-browser-candidate" + (i === S.choice ? " selected" : "");
      b.textContent = `Mask ${i + 1} (predicted IoU ${c.score.toFixed(2)})`;
      b.onclick = () => { S.choice = i; show(); };
      list.appendChild(b);
    });
    if (S.result) { // the chosen mask as a PNG (white on black), made here: no server call either
      const link = document.createElement("a");
      link.textContent = "Mask (PNG)";
      link.className = "sam3-browser-download";
      link.download = "mask.png";
      link.href = "#";
      link.onclick = (event) => { event.preventDefault(); downloadMask(); };
      list.appendChild(link);
    }
  }

  function downloadMask() {
    const { h, w } = S.image, mask = S.result.candidates[S.choice].mask;
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d"), pixels = ctx.createImageData(w, h);
    for (let i = 0; i < mask.length; i++) {
      const v = mask[i] ? 255 : 0;
      pixels.data[4 * i] = pixels.data[4 * i + 1] = pixels.data[4 * i + 2] = v; pixels.data[4 * i + 3] = 255;
    }
    ctx.putImageData(pixels, 0, 0);
    canvas.toBlob((blob) => {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob); a.download = "mask.png";
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    }, "image/png");
  }

  async function show() {
    await draw();
    renderCandidates();
    setStatus(statusText());
    const c = S.result && S.result.candidates[S.choice];
    api.last = { seq: ++api.seq, choice: S.choice, prompts: prompts(), corner: S.corner, h: S.image.h, w: S.image.w,
      mask: c ? c.mask : null, logits: c ? c.logits : null, scores: S.result ? S.result.candidates.map((x) => x.score) : [],
      ms: S.result ? S.result.ms : null };
  }

  // -- a new picture: ask the server for its embedding (only while the setting is on) ---------------
  let askedFor = null;
  setInterval(() => {
    const img = el("#point-image img"), button = el("#point-browser-fetch");
    if (!enabled() || !img || !img.src || !button || img.src === askedFor) return;
    if (S.image && (img.src === S.image.base.src || img.src === S.shownUrl)) return;
    if (img.src.startsWith("blob:")) return; // our own drawing
    askedFor = img.src;
    button.click();
  }, 250);

  // -- events: clicks on the image, undo and clear, taken before Gradio sees them --------------------
  const queue = [];
  let running = false;
  async function run(action) { // one action at a time, in order
    queue.push(action);
    if (running) return;
    running = true;
    try {
      while (queue.length) {
        const act = queue.shift();
        const before = { history: S.history.slice(), corner: S.corner, result: S.result, choice: S.choice };
        try { if (await act() !== false) { await decode(); } await show(); } catch (e) {
          Object.assign(S, before);
          console.error("sam3: browser decode failed", e);
          setStatus(`⚠️ The browser could not decode this prompt (${e.message || e}); the prompts before it stay.`);
        }
      }
    } finally { running = false; }
  }

  function mode() {
    const checked = el("#point-mode input:checked");
    return checked ? checked.value : POSITIVE;
  }

  function clickXY(event, img) { // the pixel Gradio would report (its image preview's formula)
    const r = img.getBoundingClientRect();
    const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight, 1);
    const ox = (r.width - img.naturalWidth * s) / 2, oy = (r.height - img.naturalHeight * s) / 2;
    const x = Math.round((event.clientX - r.left - ox) / s), y = Math.round((event.clientY - r.top - oy) / s);
    return x < 0 || x >= img.naturalWidth || y < 0 || y >= img.naturalHeight ? null : [x, y];
  }

  const active = () => enabled() && !S.failed && S.info && (S.image || S.loading) && current();
  function current() { // the picture shown is the one whose embedding the page has (or is preparing)
    const img = el("#point-image img");
    if (!img || !S.image) return !!img;
    return img.src === S.image.base.src || img.src === S.shownUrl;
  }

  // The setting turned off: the plain picture again (the server path starts from its own state).
  window.addEventListener("change", (event) => {
    if (!event.target.closest || !event.target.closest("#point-browser-decode")) return;
    syncMode();
    if (enabled()) return;
    const img = el("#point-image img");
    if (img && S.image && img.src === S.shownUrl) img.src = S.image.base.src;
    S.history = []; S.corner = null; S.result = null; S.choice = 0;
    renderCandidates();
  }, true);

  window.addEventListener("click", (event) => {
    if (!active()) return;
    const target = event.target;
    const inImage = target.closest && target.closest("#point-image");
    const undo = target.closest && target.closest("#point-undo");
    const clear = target.closest && target.closest("#point-clear");
    if (!inImage && !undo && !clear) return;
    let act;
    if (inImage) {
      const img = el("#point-image img");
      const holder = target.closest("button");
      if (!img || !(target === img || (holder && holder.contains(img)))) return; // not the toolbar's icons
      const xy = clickXY(event, img);
      if (!xy) return;
      const kind = mode();
      act = () => {
        if (kind === BOX) {
          if (!S.corner) { S.corner = xy; return false; }
          const [x0, y0] = S.corner;
          S.corner = null;
          S.history.push({ kind: "box", box: [Math.min(x0, xy[0]), Math.min(y0, xy[1]), Math.max(x0, xy[0]) + 1, Math.max(y0, xy[1]) + 1] });
        } else {
          S.corner = null;
          S.history.push({ kind: "point", xy, label: kind === POSITIVE ? 1 : 0 });
        }
      };
    } else if (undo) {
      act = () => { if (S.corner) S.corner = null; else S.history.pop(); };
    } else {
      act = () => { S.history = []; S.corner = null; };
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    const ready = S.image ? Promise.resolve() : S.loading;
    ready.then(() => (S.image ? run(act) : setStatus("⚠️ The browser decoder is not available; click again.")));
  }, true);
})();
