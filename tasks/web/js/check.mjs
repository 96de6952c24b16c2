// Drive the bundle's page in headless Chromium (puppeteer-core, the system's browser): its own prediction code
// on the inputs given, online, then reloaded offline from the service worker's cache; a screenshot; timings.
// Usage: node check.mjs JOB.json   (JOB: {url, browser, inputs: [[...]], batch, screenshot, timeout_ms})
// Prints one JSON object. Any request to a host other than the page's own is refused and listed.
import { readFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const origin = new URL(job.url).origin;
const foreign = [];
const consoleLines = [];
const browser = await puppeteer.launch({
  executablePath: job.browser, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
const out = {};
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 760 });
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    if (r.url().startsWith(origin) || r.url().startsWith("data:") || r.url().startsWith("blob:")) r.continue();
    else { foreign.push(r.url()); r.abort(); }
  });
  const ready = async () => {
    await page.waitForFunction("window.tfrun !== undefined", { timeout: job.timeout_ms });
    const state = await page.evaluate("({ready: window.tfrun.ready, error: window.tfrun.error, backend: window.tfrun.backend})");
    if (!state.ready) throw new Error(`the page did not load the model: ${state.error}`);
    return state;
  };
  const predictAll = async () => {
    const probs = [];
    for (let i = 0; i < job.inputs.length; i += job.batch) {
      probs.push(...await page.evaluate((rows) => window.tfrun.predict(rows), job.inputs.slice(i, i + job.batch)));
    }
    return probs;
  };
  // p50 over `repeats` samples; each sample times `inner` calls (the browser's clock ticks in 0.1 ms steps)
  const timeBatch = async (n, repeats, inner) => page.evaluate((rows, repeats, inner) => {
    window.tfrun.predict(rows);  // warm
    const times = [];
    for (let r = 0; r < repeats; r++) {
      const t = performance.now();
      for (let k = 0; k < inner; k++) window.tfrun.predict(rows);
      times.push((performance.now() - t) / inner);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }, Array.from({ length: n }, (_, i) => job.inputs[i % job.inputs.length]), repeats, inner);

  const started = Date.now();
  await page.goto(job.url, { waitUntil: "load", timeout: job.timeout_ms });
  const state = await ready();
  await page.evaluate((row) => window.tfrun.predict([row]), job.inputs[0]);
  out.first_prediction_ms = Date.now() - started;
  out.backend = state.backend;
  out.probabilities = await predictAll();
  out.p50_ms = { batch_1: await timeBatch(1, 30, 20), batch_64: await timeBatch(64, 15, 2) };
  await page.click("#example");
  await page.screenshot({ path: job.screenshot });
  out.shown = await page.evaluate("document.getElementById('top').textContent");
  await page.evaluate("navigator.serviceWorker.ready");
  await page.setOfflineMode(true);
  await page.reload({ waitUntil: "load", timeout: job.timeout_ms });
  const offline = await ready();
  out.offline = { backend: offline.backend, probabilities: await predictAll(),
                  controlled: await page.evaluate("!!navigator.serviceWorker.controller") };
} catch (err) {
  out.error = String(err && err.message || err);
} finally {
  out.foreign_requests = foreign;
  out.console = consoleLines.slice(-20);
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
