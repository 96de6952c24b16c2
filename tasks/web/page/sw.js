// Cache every file of the bundle on install; answer from the cache first, so the page works offline.
const CACHE = "tfrun-__VERSION__";
const FILES = __FILES__;
self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const path = url.pathname.endsWith("/") ? url.pathname + "index.html" : url.pathname;
  event.respondWith(caches.open(CACHE).then((cache) =>
    cache.match(path.split("/").pop() || "index.html").then((hit) => hit || fetch(event.request))));
});
