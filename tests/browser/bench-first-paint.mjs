// First paint of the home page in headless Chromium, as served (the first page of tickets in the
// HTML) against the same page filled by a client-side fetch. Run by scripts/bench-client, which
// starts the app with 100 tickets; usage: node bench-first-paint.mjs BASE_URL [RUNS]
//
// The client-side variant is the real server's page for a search that matches nothing (the same
// shell with an empty list, over the network like the other) plus a script, injected before the
// page's own, that fetches the first page from /api/tickets once the document is parsed and
// renders it with the page's markup: what the page would be without server rendering. The
// injected script costs no download, which favours the client-side variant slightly.
//
// Per load: first contentful paint (Paint Timing API), the time the first ticket title was
// painted (Element Timing API), and the bytes received for everything the
// load fetched (Chromium's encodedDataLength: headers and bodies as sent, compressed), cold (a
// new browser profile, empty cache) and warm (the same page again in that profile).

import { chromium } from "playwright-core";

const BASE = process.argv[2];
const RUNS = Number(process.argv[3] || 15);
const PAGE_SIZE = 48;

// Marks ticket titles for the Element Timing API as they enter the document (before they can be
// painted), records when the first was painted, and fills the list by fetch when asked to.
const probe = (fetchTickets) => {
  window.__firstTicket = null;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (window.__firstTicket === null || entry.renderTime < window.__firstTicket) {
        window.__firstTicket = entry.renderTime;
      }
    }
  }).observe({ type: "element", buffered: true });
  new MutationObserver(() => {
    for (const title of document.querySelectorAll(".ticket-title:not([elementtiming])")) {
      title.setAttribute("elementtiming", "ticket");
    }
  }).observe(document, { childList: true, subtree: true });
  if (!fetchTickets) return;
  document.addEventListener("DOMContentLoaded", async () => {
    const response = await fetch(`/api/tickets?limit=${fetchTickets}`);
    const tickets = await response.json();
    const list = document.querySelector("#tickets");
    // The page's own script has run by now (deferred scripts run before this event): its
    // `ticketItem` makes the same markup the server renders.
    list.replaceChildren(...tickets.map((ticket) => window.ticketItem(ticket)));
    document.querySelector("#heading").textContent = "Tickets for sale";
  });
};

async function load(page, cdp, url) {
  let bytes = 0;
  const count = (event) => { bytes += event.encodedDataLength; };
  cdp.on("Network.loadingFinished", count);
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => window.__firstTicket !== null);
  await page.waitForLoadState("networkidle");
  cdp.off("Network.loadingFinished", count);
  const timing = await page.evaluate(() => ({
    fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime,
    ticket: window.__firstTicket,
    tickets: document.querySelectorAll("#tickets .ticket").length,
  }));
  return { ...timing, bytes };
}

async function measure(browser, url, fetchTickets, runs = RUNS) {
  const cold = [];
  const warm = [];
  for (let run = 0; run < runs; run += 1) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript(probe, fetchTickets);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    cold.push(await load(page, cdp, url));
    warm.push(await load(page, cdp, url));
    await context.close();
  }
  return { cold, warm };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

function report(name, { cold, warm }) {
  for (const [kind, loads] of [["cold", cold], ["warm", warm]]) {
    const shown = loads[0].tickets;
    console.log(
      `${name}, ${kind}: first contentful paint ${median(loads.map((l) => l.fcp)).toFixed(0)} ms, ` +
      `first ticket painted ${median(loads.map((l) => l.ticket)).toFixed(0)} ms, ` +
      `${median(loads.map((l) => l.bytes))} bytes received, ${shown} tickets shown ` +
      `(median of ${loads.length})`,
    );
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  // One throwaway load of each, so neither pays for the host's first instantiation.
  await measure(browser, `${BASE}/`, 0, 1);
  await measure(browser, `${BASE}/?q=warm-up`, PAGE_SIZE, 1);
  const served = await measure(browser, `${BASE}/`, 0);
  const fetched = await measure(browser, `${BASE}/?q=no-ticket-has-this-title`, PAGE_SIZE);
  report("/ as served (tickets in the HTML)", served);
  report("/ by client-side fetch", fetched);
} finally {
  await browser.close();
}
