// Open tfrun-records' report page in headless Chromium: its table rows, the order after clicking a column, a
// screenshot, and every request the page made (all must go to the page's own 127.0.0.1 server).
// Usage: NODE_PATH=tasks/web/js/node_modules node report_page.mjs URL BROWSER COLUMN SCREENSHOT
import { createRequire } from "node:module";
const require = createRequire(process.env.NODE_PATH + "/");
const puppeteer = require("puppeteer-core");

const [url, browserPath, column, screenshot] = process.argv.slice(2);
const origin = new URL(url).origin;
const requests = [];
const browser = await puppeteer.launch({ executablePath: browserPath, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync",
         "--disable-component-update", "--disable-dev-shm-usage"] });
const out = {};
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1600, height: 900 });
  await page.setRequestInterception(true);
  page.on("request", (r) => { requests.push(r.url()); r.url().startsWith(origin) || r.url().startsWith("data:") ? r.continue() : r.abort(); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url, { waitUntil: "load" });
  const rows = () => page.$$eval("#runs tbody tr", (trs) => trs.map((tr) => tr.dataset.run));
  out.rows = await rows();
  out.counts = await page.$eval("#counts", (e) => e.textContent);
  out.status_colours = await page.$$eval("#runs tbody span", (spans) =>
    Object.fromEntries(spans.map((s) => [s.className, getComputedStyle(s).color])));
  await page.click(`th[data-key="${column}"]`);
  out.sorted = await rows();
  await page.click(`th[data-key="${column}"]`);
  out.sorted_again = await rows();
  await page.type("#filter", "failed");
  out.filtered = await rows();
  await page.$eval("#filter", (el) => { el.value = ""; el.dispatchEvent(new Event("input")); });
  await page.screenshot({ path: screenshot, fullPage: true });
  out.sweeps = await page.$$eval("#sweeps h2", (hs) => hs.length);
  out.plots = await page.$$eval("#sweeps img", (imgs) => imgs.filter((i) => i.naturalWidth > 0).length);
  out.errors = errors;
} finally {
  out.requests = requests;
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
