// GitTix's service worker: keeps the pages that must open without a connection (a pass, the
// check-in page) and what they load. Each is fetched from the network when it can be, and the
// copy kept is the last one fetched; nothing else (the API above all) goes through it.
"use strict";

const CACHE = "gittix-offline-1";
const PAGES = /^\/(scan|tickets\/[^/.]+\/pass)\/?$/;
const ASSETS = /^\/(app\.js|app\.css|vendor\/jsqr\/jsQR\.js)$/;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!PAGES.test(url.pathname) && !ASSETS.test(url.pathname)) return;
  event.respondWith(networkElseKept(event.request, url));
});

async function networkElseKept(request, url) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) {
      // One copy per file: a script's earlier versions (another `?v=`) are dropped.
      for (const old of await cache.keys()) {
        if (new URL(old.url).pathname === url.pathname && old.url !== request.url) await cache.delete(old);
      }
      await cache.put(request, response.clone());
    }
    return response;
  } catch (error) {
    const kept = await cache.match(request);
    if (kept) return kept;
    throw error;
  }
}
