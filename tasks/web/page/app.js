// The page's own prediction code: the parity check drives exactly this (window.tfrun.predict).
// page.json (written by tfrun) says the model's input, classes, backend and a few holdout examples.
(async () => {
  const status = (text) => { document.getElementById("status").textContent = text; };
  const page = await (await fetch("page.json")).json();
  document.getElementById("title").textContent = page.title;
  if ("serviceWorker" in navigator) {
    try { await navigator.serviceWorker.register("sw.js"); } catch (err) { console.warn("service worker:", err); }
  }
  let backend = page.backend;
  try {
    if (backend === "wasm") tf.wasm.setWasmPaths("./");
    if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  } catch (err) {
    console.warn(`${backend} backend unavailable (${err}); using cpu`);
    backend = "cpu";
    await tf.setBackend("cpu");
  }
  await tf.ready();
  const tfliteFile = page.format === "tflite";
  if (tfliteFile) tflite.setWasmPath("./");
  const model = tfliteFile ? await tflite.loadTFLiteModel("model.tflite") : await tf.loadGraphModel("model.json");
  if (tfliteFile) backend = "tfjs-tflite (wasm)";
  const shape = page.input.shape;  // without the batch dimension
  const size = shape.reduce((a, b) => a * b, 1);
  const dtype = page.input.dtype === "float32" ? "float32" : "int32";  // TF.js has no uint8 tensors: int32

  function run(rows) {  // rows: flat arrays of `size` numbers -> probabilities, one array per row
    if (tfliteFile) {  // a .tflite file takes a batch of one
      return rows.map((row) => tf.tidy(() => {
        const out = model.predict(tf.tensor(row, [1, ...shape], dtype));
        return (out instanceof tf.Tensor ? out : Object.values(out)[0]).arraySync()[0];
      }));
    }
    return tf.tidy(() => {
      const x = tf.tensor(rows.flat(), [rows.length, ...shape], dtype);
      const out = model.execute({[page.input.name]: x}, page.output);
      return out.arraySync();
    });
  }

  // ----- what a person uses: an image drawn or picked, or a numbers box
  const input = document.getElementById("input");
  const image = shape.length >= 2;
  let current = page.examples.length ? page.examples[0].x : new Array(size).fill(0);
  let canvas, ctx;
  const [h, w] = image ? shape : [1, size];
  const channels = image && shape.length === 3 ? shape[2] : 1;
  if (image) {
    canvas = document.createElement("canvas");
    canvas.id = "draw"; canvas.width = canvas.height = 224;
    ctx = canvas.getContext("2d");
    input.appendChild(canvas);
    const drop = document.createElement("div");
    drop.id = "drop";
    drop.innerHTML = `Draw with the mouse, or drop / <label>pick <input type="file" accept="image/*" id="file"></label> ` +
                     `an image: it is scaled to ${w}×${h} as the model expects.`;
    input.appendChild(drop);
    let drawing = false;
    const point = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    canvas.addEventListener("pointerdown", (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...point(e)); });
    canvas.addEventListener("pointermove", (e) => {
      if (!drawing) return;
      ctx.lineTo(...point(e)); ctx.strokeStyle = "#fff"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.stroke();
    });
    window.addEventListener("pointerup", () => { if (drawing) { drawing = false; current = fromCanvas(); predict(); } });
    const load = (file) => {
      const img = new Image();
      img.onload = () => { ctx.drawImage(img, 0, 0, canvas.width, canvas.height); current = fromCanvas(); predict(); };
      img.src = URL.createObjectURL(file);
    };
    document.getElementById("file").addEventListener("change", (e) => e.target.files[0] && load(e.target.files[0]));
    drop.addEventListener("dragover", (e) => e.preventDefault());
    drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) load(e.dataTransfer.files[0]); });
  } else {
    const box = document.createElement("textarea");
    box.id = "numbers";
    input.appendChild(box);
    box.addEventListener("change", () => { current = box.value.split(/[\s,]+/).filter(Boolean).map(Number); });
  }

  function fromCanvas() {  // the canvas scaled to the model's input, in the data's units (0..scale)
    const small = document.createElement("canvas");
    small.width = w; small.height = h;
    const s = small.getContext("2d");
    s.drawImage(canvas, 0, 0, w, h);
    const pixels = s.getImageData(0, 0, w, h).data;
    const out = [];
    for (let i = 0; i < w * h; i++) {
      const rgb = [pixels[4 * i], pixels[4 * i + 1], pixels[4 * i + 2]];
      if (channels === 3) rgb.forEach((v) => out.push(v / 255 * page.scale));
      else out.push((rgb[0] + rgb[1] + rgb[2]) / 3 / 255 * page.scale);
    }
    return dtype === "int32" ? out.map(Math.round) : out;
  }

  function show(x) {
    if (image) {
      const img = ctx.createImageData(w, h);
      for (let i = 0; i < w * h; i++) {
        const v = channels === 3 ? x.slice(3 * i, 3 * i + 3) : [x[i], x[i], x[i]];
        v.forEach((c, k) => { img.data[4 * i + k] = c / page.scale * 255; });
        img.data[4 * i + 3] = 255;
      }
      const tmp = document.createElement("canvas");
      tmp.width = w; tmp.height = h; tmp.getContext("2d").putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
    } else {
      document.getElementById("numbers").value = x.join(" ");
    }
  }

  function predict() {
    if (current.length !== size) { status(`expected ${size} numbers, got ${current.length}`); return; }
    const started = performance.now();
    const [probs] = run([current]);
    const ms = performance.now() - started;
    const top = probs.indexOf(Math.max(...probs));
    document.getElementById("top").textContent = `${page.classes[top]} (${(probs[top] * 100).toFixed(1)} %)`;
    document.getElementById("bars").innerHTML = probs.map((p, i) =>
      `<div class="bar"><span>${page.classes[i]}</span><div style="width:${(p * 20).toFixed(2)}rem"></div>` +
      `<span>${(p * 100).toFixed(1)} %</span></div>`).join("");
    document.getElementById("timing").textContent = `backend ${backend} · predict ${ms.toFixed(2)} ms`;
  }

  let next = 0;
  document.getElementById("predict").onclick = predict;
  document.getElementById("example").onclick = () => {
    if (!page.examples.length) return;
    current = page.examples[next++ % page.examples.length].x; show(current); predict();
  };
  document.getElementById("clear").onclick = () => {
    current = new Array(size).fill(0); show(current);
    document.getElementById("top").textContent = ""; document.getElementById("bars").innerHTML = "";
  };
  for (const id of ["predict", "example", "clear"]) document.getElementById(id).disabled = false;
  show(current);
  status(`${page.title}: ${page.input.name} ${JSON.stringify(shape)} ${page.input.dtype} · backend ${backend} · ` +
         (navigator.serviceWorker && navigator.serviceWorker.controller ? "works offline" : "offline after this visit"));
  window.tfrun = { ready: true, backend, predict: run, shape, dtype, predictShown: predict };
})().catch((err) => {
  document.getElementById("status").textContent = `the model did not load: ${err}`;
  window.tfrun = { ready: false, error: String(err && err.stack || err) };
});
