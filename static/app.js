// GitTix's browser client: one script for every page. Each page names itself in
// <body data-page="…">; the matching function below fills it in. Every call to the API goes
// through `api`, which never throws: a failed fetch or an unexpected answer becomes an error in the
// API's own format ({"errors": [{"message", "field"?}]}), shown next to its field or at the top.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);

/** Calls the API; resolves to {status, data, headers} whatever happens. */
async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  try {
    const response = await fetch(path, options);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!response.ok && !(data && Array.isArray(data.errors))) {
      data = { errors: [{ message: `Something went wrong (${response.status}). Please try again.` }] };
    }
    return { status: response.status, data, headers: response.headers };
  } catch {
    return { status: 0, data: { errors: [{ message: "The server cannot be reached. Check your connection and try again." }] }, headers: new Headers() };
  }
}

function formatPrice(dollars) {
  return "$" + Number(dollars).toFixed(2);
}

function statusBadge(element, status) {
  element.textContent = status === "awaiting:payment" ? "awaiting payment" : status;
  element.className = "status status-" + status.replace(":", "-");
}

/** The part of the path after `/<prefix>/`: a ticket's or an order's id. */
function idFromPath(prefix) {
  const parts = location.pathname.split("/").filter(Boolean);
  return parts[0] === prefix ? parts[1] || "" : "";
}

// Errors -------------------------------------------------------------------------------------

function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((element) => element.remove());
  form.querySelectorAll("[aria-invalid]").forEach((input) => {
    input.removeAttribute("aria-invalid");
    const hint = input.dataset.hint;
    if (hint) input.setAttribute("aria-describedby", hint); else input.removeAttribute("aria-describedby");
  });
  const alert = form.querySelector(".alert");
  if (alert) { alert.hidden = true; alert.textContent = ""; }
}

/** Shows each error next to the field it names, the rest at the top of the form. */
function showErrors(form, errors) {
  clearErrors(form);
  const general = [];
  let first = null;
  for (const error of errors || []) {
    const input = error.field ? form.querySelector(`[name="${CSS.escape(error.field)}"]`) : null;
    if (!input) { general.push(error.message); continue; }
    const message = document.createElement("p");
    message.className = "field-error";
    message.id = `${input.id}-error`;
    message.textContent = error.message;
    input.insertAdjacentElement("afterend", message);
    input.setAttribute("aria-invalid", "true");
    if (!input.dataset.hint && input.getAttribute("aria-describedby")) input.dataset.hint = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", [input.dataset.hint, message.id].filter(Boolean).join(" "));
    first = first || input;
  }
  if (general.length) {
    const alert = form.querySelector(".alert");
    showAlert(alert, general);
    first = first || alert;
  }
  if (first) first.focus();
}

function showAlert(alert, messages, kind = "error") {
  alert.className = `alert ${kind}`;
  alert.textContent = "";
  if (messages.length === 1) {
    alert.textContent = messages[0];
  } else {
    const list = document.createElement("ul");
    for (const message of messages) {
      const item = document.createElement("li");
      item.textContent = message;
      list.append(item);
    }
    alert.append(list);
  }
  alert.hidden = false;
  if (!alert.hasAttribute("tabindex")) alert.setAttribute("tabindex", "-1");
}

function pageError(messages) {
  showAlert($("#page-alert"), Array.isArray(messages) ? messages : [messages]);
}

function messagesOf(result) {
  return ((result.data && result.data.errors) || []).map((error) => error.message);
}

// Who is signed in ---------------------------------------------------------------------------

let currentUserPromise = null;

function currentUser() {
  currentUserPromise = currentUserPromise || api("GET", "/api/users/current-user")
    .then((result) => (result.status === 200 && result.data ? result.data.currentUser : null));
  return currentUserPromise;
}

/** The header's links, as the reference had them, and who is signed in. */
async function renderNav() {
  const nav = $("#nav");
  if (!nav) return;
  const user = await currentUser();
  const links = user
    ? [["/tickets/new", "Sell Tickets"], ["/tickets/mine", "My Tickets"], ["/orders", "My Orders"], ["/auth/signout", "Sign Out"]]
    : [["/auth/signup", "Sign Up"], ["/auth/signin", "Sign In"]];
  nav.textContent = "";
  for (const [href, label] of links) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = href;
    link.textContent = label;
    if (location.pathname === href) link.setAttribute("aria-current", "page");
    item.append(link);
    nav.append(item);
  }
  if (user) {
    const who = document.createElement("li");
    who.className = "who";
    who.textContent = `Signed in as ${user.email}`;
    nav.append(who);
  }
}

/** The signed-in user, or off to sign in (and back here afterwards). */
async function requireUser() {
  const user = await currentUser();
  if (!user) {
    location.replace("/auth/signin?next=" + encodeURIComponent(location.pathname + location.search));
    return new Promise(() => {});
  }
  return user;
}

/** Where to go after signing in: the `next` page if it is one of ours (a path on this site, not
 * `//elsewhere` or `/\\elsewhere`, which browsers read as another site). */
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return /^\/(?![\/\\])/.test(next) ? next : "/";
}

/** Runs `send` when `form` is submitted, its submit button disabled until the answer is in (and
 * for good once `send` says it is leaving the page, by returning true), so a double click sends
 * once. */
function onSubmit(form, send) {
  const button = form.querySelector('button[type="submit"]');
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    let leaving = false;
    try {
      leaving = await send();
    } finally {
      button.removeAttribute("aria-busy");
      if (!leaving) button.disabled = false;
    }
  });
}

/** Goes to `url`; true, for `onSubmit`. */
function leaveFor(url) {
  location.assign(url);
  return true;
}

// Pages --------------------------------------------------------------------------------------

/** One ticket in a list; the same markup the server renders into the home page. */
function ticketItem(ticket) {
  const item = document.createElement("li");
  item.className = "ticket";
  const link = document.createElement("a");
  link.href = `/tickets/${ticket.id}`;
  const title = document.createElement("span");
  title.className = "ticket-title";
  title.textContent = ticket.title;
  const price = document.createElement("span");
  price.className = "ticket-price";
  price.textContent = formatPrice(ticket.price);
  link.append(title, " ", price);
  item.append(link);
  return item;
}

async function home() {
  // The first page came with the HTML; "Show more" loads the next ones in place.
  const more = $("#more");
  if (!more) return;
  more.addEventListener("click", async (event) => {
    event.preventDefault();
    const query = new URLSearchParams(location.search).get("q") || "";
    const params = new URLSearchParams({ cursor: more.dataset.cursor, limit: "48" });
    if (query) params.set("q", query);
    more.setAttribute("aria-busy", "true");
    const result = await api("GET", "/api/tickets?" + params);
    more.removeAttribute("aria-busy");
    if (result.status !== 200) {
      more.textContent = messagesOf(result)[0] + " Try again.";
      return;
    }
    const list = $("#tickets");
    const items = result.data.map(ticketItem);
    list.append(...items);
    // Keyboard and screen-reader users continue where the new tickets start.
    if (items.length) items[0].querySelector("a").focus();
    const cursor = result.headers.get("x-next-cursor");
    if (cursor) {
      more.dataset.cursor = cursor;
      const next = new URLSearchParams(params);
      next.set("cursor", cursor);
      more.href = "/?" + next;
    } else {
      more.remove();
    }
  });
}

function credentialsPage(path) {
  return async () => {
    const form = $("#form");
    onSubmit(form, async () => {
      const result = await api("POST", path, { email: form.email.value, password: form.password.value });
      if (result.status === 200 || result.status === 201) return leaveFor(nextPage());
      showErrors(form, result.data.errors);
      return false;
    });
  };
}

async function signout() {
  const result = await api("POST", "/api/users/signout");
  if (result.status === 200) {
    saved.clearUser();
    location.replace("/");
  } else {
    pageError(messagesOf(result));
  }
}

/** The price as the API takes it, reformatted to two decimals when it is a number. */
function priceField(input) {
  input.addEventListener("blur", () => {
    const value = Number(input.value);
    if (input.value.trim() !== "" && Number.isFinite(value)) input.value = value.toFixed(2);
  });
  return () => {
    const text = input.value.trim();
    const value = Number(text);
    // Not a number: send the text, so the API's own message names the field.
    return text !== "" && Number.isFinite(value) ? value : text;
  };
}

/** The platform's fee on a sale, in basis points (`GET /api/payments/config`), loaded once. */
let feeBps = null;
async function platformFeeBps() {
  if (feeBps === null) {
    const config = await api("GET", "/api/payments/config");
    if (config.status === 200) feeBps = config.data.platformFeeBps;
  }
  return feeBps;
}

/** The fee on `cents`, rounded down to the cent, as payments charges it. */
function feeCents(cents, bps) {
  return Math.floor((cents * bps) / 10000);
}

function formatCents(cents) {
  return formatPrice(cents / 100);
}

/** "You receive …" under a price input, kept up to date as the seller types. */
async function feeHint(input, hint) {
  const bps = await platformFeeBps();
  if (bps === null) return;
  const update = () => {
    const cents = Math.round(Number(input.value) * 100);
    const rate = `${bps / 100} %`;
    hint.textContent = Number.isFinite(cents) && cents > 0
      ? `You receive ${formatCents(cents - feeCents(cents, bps))}, after the ${rate} platform fee of ${formatCents(feeCents(cents, bps))}.`
      : `The platform keeps a ${rate} fee on each sale; you receive the rest.`;
  };
  input.addEventListener("input", update);
  update();
}

async function sell() {
  // Before anything is awaited, so a price typed while the page still loads is reformatted too.
  const form = $("#form");
  const price = priceField(form.price);
  feeHint(form.price, $("#fee-hint"));
  await requireUser();
  onSubmit(form, async () => {
    const result = await api("POST", "/api/tickets", { title: form.title.value, price: price() });
    if (result.status === 201) return leaveFor(`/tickets/${result.data.id}`);
    showErrors(form, result.data.errors);
    return false;
  });
}

async function edit() {
  const user = await requireUser();
  const id = idFromPath("tickets");
  const result = await api("GET", `/api/tickets/${encodeURIComponent(id)}`);
  if (result.status !== 200) {
    pageError(result.status === 404 ? "There is no such ticket." : messagesOf(result));
    return;
  }
  const ticket = result.data;
  if (ticket.userId !== user.id) {
    pageError("Only the seller can edit this ticket.");
    return;
  }
  const form = $("#form");
  form.title.value = ticket.title;
  form.price.value = Number(ticket.price).toFixed(2);
  const price = priceField(form.price);
  form.hidden = false;
  onSubmit(form, async () => {
    const saved = await api("PUT", `/api/tickets/${ticket.id}`, { title: form.title.value, price: price() });
    if (saved.status === 200) return leaveFor(`/tickets/${ticket.id}`);
    showErrors(form, saved.data.errors);
    return false;
  });
}

/** A paged list under `#list`, loaded from `path`, each item made by `render`. */
async function pagedList(path, render, emptyText) {
  const list = $("#list");
  const more = $("#more");
  let cursor = null;
  const load = async () => {
    const params = new URLSearchParams({ limit: "50" });
    if (cursor) params.set("cursor", cursor);
    const result = await api("GET", `${path}?${params}`);
    if (result.status !== 200) {
      pageError(messagesOf(result));
      return;
    }
    for (const item of result.data) list.append(render(item));
    if (!list.children.length) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = emptyText;
      list.append(empty);
    }
    cursor = result.headers.get("x-next-cursor");
    more.hidden = !cursor;
  };
  more.addEventListener("click", load);
  await load();
}

function link(href, text) {
  const element = document.createElement("a");
  element.href = href;
  element.textContent = text;
  return element;
}

function badge(status) {
  const element = document.createElement("span");
  statusBadge(element, status);
  return element;
}

async function mine() {
  await requireUser();
  await pagedList("/api/tickets/mine", (ticket) => {
    const item = document.createElement("li");
    item.append(link(`/tickets/${ticket.id}`, ticket.title), document.createTextNode(formatPrice(ticket.price)), badge(ticket.status));
    if (ticket.status === "available") item.append(link(`/tickets/${ticket.id}/edit`, "Edit"));
    if (ticket.status === "available" && ticket.listing > 1) item.append(withdrawButton(item, ticket));
    return item;
  }, "You have not listed any tickets yet.");
  await payoutsSection();
}

const PAYOUT_STATES = {
  waiting_for_account: "Waiting for your payout account",
  transferred: "Transferred",
  reversed: "Reversed (refunded to the buyer)",
};

/** My Tickets' "Getting paid": the seller's payout account (connect, continue, or open the
 * Stripe dashboard) and every sale with its price, fee, net and payout. Back from Stripe's
 * onboarding (`?payouts=done`) it follows the account until Stripe's webhook says it is ready;
 * an expired onboarding link (`?payouts=refresh`) is replaced by a fresh one. */
async function payoutsSection() {
  const back = new URLSearchParams(location.search).get("payouts");
  if (back === "refresh") {
    await connectPayouts();
    return;
  }
  $("#payout-connect").addEventListener("click", connectPayouts);
  $("#payout-dashboard").addEventListener("click", async () => {
    const link = await api("POST", "/api/payouts/dashboard");
    if (link.status === 201) leaveFor(link.data.url);
    else showAlert($("#payout-alert"), messagesOf(link));
  });
  let account = await showPayoutAccount();
  for (let i = 0; back === "done" && account && account.status === "pending" && i < 20; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    account = await showPayoutAccount();
  }
  await showSales();
}

async function connectPayouts() {
  const button = $("#payout-connect");
  button.disabled = true;
  const connected = await api("POST", "/api/payouts/account");
  if (connected.status === 201) return leaveFor(connected.data.url);
  button.disabled = false;
  showAlert($("#payout-alert"), messagesOf(connected));
  return null;
}

async function showPayoutAccount() {
  const result = await api("GET", "/api/payouts/account");
  if (result.status !== 200) {
    $("#payout-status").textContent = messagesOf(result).join(" ");
    return null;
  }
  const account = result.data;
  const status = $("#payout-status");
  const connect = $("#payout-connect");
  connect.hidden = account.status === "enabled";
  $("#payout-dashboard").hidden = account.status !== "enabled";
  if (account.status === "none") {
    status.textContent = "Connect a payout account with Stripe to be paid for your sales. You may list tickets first: the money for a sale waits until your account is ready.";
  } else if (account.status === "pending") {
    const due = account.requirementsDue.length ? ` Stripe still needs: ${account.requirementsDue.join(", ")}.` : "";
    status.textContent = `Your payout account is not ready yet.${due} The money for your sales waits until it is.`;
    connect.textContent = "Continue setting up payouts";
  } else {
    status.textContent = "Your payout account is ready: the money for each sale goes to it.";
  }
  return account;
}

async function showSales() {
  const result = await api("GET", "/api/payouts");
  if (result.status !== 200) return;
  const sales = result.data;
  $("#sales-empty").hidden = sales.length > 0;
  $("#sales").hidden = sales.length === 0;
  const titles = await Promise.all(sales.map(async (sale) => {
    const ticket = sale.ticketId ? await api("GET", `/api/tickets/${encodeURIComponent(sale.ticketId)}`) : null;
    return ticket && ticket.status === 200 ? ticket.data.title : "A ticket";
  }));
  const body = $("#sales tbody");
  body.replaceChildren(...sales.map((sale, index) => {
    const row = document.createElement("tr");
    const cells = [titles[index], formatCents(sale.priceCents), formatCents(sale.feeCents), formatCents(sale.netCents), PAYOUT_STATES[sale.state] || sale.state];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    row.dataset.state = sale.state;
    return row;
  }));
}

/** "Withdraw from resale" for `ticket`, a resale listing in `item`: the row then says it is yours
 * again and links its pass. */
function withdrawButton(item, ticket) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = "Withdraw from resale";
  button.setAttribute("aria-label", `Withdraw from resale: ${ticket.title}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    const withdrawn = await api("DELETE", `/api/tickets/${ticket.id}/resale`);
    if (withdrawn.status !== 200) {
      button.disabled = false;
      pageError(messagesOf(withdrawn));
      return;
    }
    const pass = link(`/tickets/${ticket.id}/pass`, "Show pass");
    item.querySelectorAll("a[href$='/edit'], button").forEach((element) => element.remove());
    item.querySelector(".status").replaceWith(badge(withdrawn.data.status));
    item.append(pass);
    pass.focus();
  });
  return button;
}

async function ticketPage() {
  const id = idFromPath("tickets");
  const [result, user] = await Promise.all([api("GET", `/api/tickets/${encodeURIComponent(id)}`), currentUser()]);
  if (result.status !== 200) {
    pageError(result.status === 404 ? "There is no such ticket." : messagesOf(result));
    return;
  }
  const ticket = result.data;
  document.title = `${ticket.title} · GitTix`;
  $("#title").textContent = ticket.title;
  $("#price").textContent = formatPrice(ticket.price);
  statusBadge($("#status"), ticket.status);
  $("#ticket").hidden = false;
  const button = $("#purchase");
  const reason = $("#purchase-reason");
  const disable = (text) => {
    button.disabled = true;
    reason.textContent = text;
    reason.hidden = false;
    button.setAttribute("aria-describedby", "purchase-reason");
  };
  if (user && ticket.userId === user.id) {
    button.hidden = true;
    reason.textContent = ticket.status === "available" ? "This is your ticket, for sale." : `This is your ticket; it is ${ticket.status}.`;
    reason.hidden = false;
    if (ticket.status === "available") {
      const editLink = $("#edit");
      editLink.querySelector("a").href = `/tickets/${ticket.id}/edit`;
      editLink.hidden = false;
    }
  } else if (ticket.status === "reserved") {
    disable("Someone is buying this ticket right now.");
  } else if (ticket.status === "sold") {
    disable("This ticket is sold.");
  }
  button.addEventListener("click", async () => {
    if (!user) {
      location.assign("/auth/signin?next=" + encodeURIComponent(location.pathname));
      return;
    }
    button.disabled = true;
    const ordered = await api("POST", "/api/orders", { ticketId: ticket.id });
    if (ordered.status === 201) {
      location.assign(`/orders/${ordered.data.id}`);
    } else {
      button.disabled = false;
      showAlert($("#form-alert"), messagesOf(ordered));
      $("#form-alert").focus();
    }
  });
}

async function orders() {
  await requireUser();
  await pagedList("/api/orders", (order) => {
    const item = document.createElement("li");
    item.append(link(`/orders/${order.id}`, order.ticket.title), document.createTextNode(formatPrice(order.price)), badge(order.status));
    if (order.status === "complete") {
      const pass = link(`/tickets/${order.ticket.id}/pass`, "Show pass");
      pass.setAttribute("aria-label", `Show pass: ${order.ticket.title}`);
      item.append(pass);
    }
    return item;
  }, "You have not ordered anything yet.");
}

/** Loads a script once; resolves when it ran. */
function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(script);
  });
}

async function orderPage() {
  await requireUser();
  const id = idFromPath("orders");
  const loaded = await api("GET", `/api/orders/${encodeURIComponent(id)}`);
  if (loaded.status !== 200) {
    pageError(loaded.status === 404 ? "There is no such order." : messagesOf(loaded));
    return;
  }
  let order = loaded.data;
  $("#title").textContent = order.ticket.title;
  $("#price").textContent = formatPrice(order.price);
  platformFeeBps().then((bps) => {
    if (bps === null) return;
    const cents = Math.round(order.price * 100);
    $("#fee").textContent = `${formatCents(feeCents(cents, bps))} platform fee; the seller receives ${formatCents(cents - feeCents(cents, bps))}`;
  });
  $("#order").hidden = false;
  const outcome = $("#outcome");
  const countdown = $("#countdown");
  const payForm = $("#pay");
  const expiresAt = Date.parse(order.expiresAt);
  let timer = null;

  const finish = (text, kind) => {
    clearInterval(timer);
    countdown.textContent = "";
    payForm.hidden = true;
    showAlert(outcome, [text], kind);
  };
  const show = (current) => {
    order = current;
    statusBadge($("#status"), order.status);
    if (order.status === "complete") {
      finish("Paid. The ticket is yours.", "ok");
      orderPass(order.ticket.id);
    }
    else if (order.status === "cancelled") finish(Date.now() >= expiresAt ? "Order expired." : "Order cancelled.", "warn");
  };
  const refresh = async () => {
    const result = await api("GET", `/api/orders/${order.id}`);
    if (result.status === 200) show(result.data);
    return result.status === 200 ? result.data.status : null;
  };
  /** Polls until the order is complete or cancelled (or a minute passed). */
  const settle = async () => {
    for (let i = 0; i < 120; i += 1) {
      const status = await refresh();
      if (status === "complete" || status === "cancelled") return;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  show(order);
  if (order.status !== "created" && order.status !== "awaiting:payment") return;

  const tick = () => {
    const left = Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000));
    if (left === 0) {
      finish("Order expired.", "warn");
      refresh();
      return;
    }
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    countdown.textContent = `${minutes}:${seconds} left to pay`;
  };
  tick();
  timer = setInterval(tick, 1000);

  const form = await cardForm();
  if (!form) return;
  if (Date.now() < expiresAt) payForm.hidden = false;
  payOnSubmit(payForm, form, order.id, settle, () => order.status);
}

/** Loads Stripe.js and mounts its card form in #card; null, with the page saying why, when it
 * cannot. */
async function cardForm() {
  const config = await api("GET", "/api/payments/config");
  if (config.status !== 200) {
    pageError(messagesOf(config));
    return null;
  }
  try {
    await loadScript(config.data.stripeJsUrl);
  } catch {
    pageError("The card form cannot be loaded right now. Reload the page to try again.");
    return null;
  }
  const stripe = window.Stripe(config.data.publishableKey);
  const card = stripe.elements().create("card");
  card.mount("#card");
  return { stripe, card };
}

/** On submit, pays order `orderId` with the card in the form, then waits for the order to be
 * settled (`settle`); `status()` is the order's status as the page last saw it. */
function payOnSubmit(payForm, { stripe, card }, orderId, settle, status) {
  const payButton = $("#pay-button");
  payForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(payForm);
    payButton.disabled = true;
    payButton.textContent = "Paying…";
    const fail = (messages) => {
      payButton.disabled = false;
      payButton.textContent = "Pay";
      showErrors(payForm, messages.map((message) => ({ message })));
    };
    // The card goes from the card form to Stripe, never to us: a SetupIntent turns it into a
    // PaymentMethod, which the order is then paid with.
    const setup = await api("POST", "/api/payments/setup");
    if (setup.status !== 201) return fail(messagesOf(setup));
    const confirmed = await stripe.confirmCardSetup(setup.data.clientSecret, { payment_method: { card } });
    if (confirmed.error || !confirmed.setupIntent) {
      return fail([(confirmed.error && confirmed.error.message) || "The card could not be used."]);
    }
    const paymentMethod = confirmed.setupIntent.payment_method;
    const paid = await api("POST", "/api/payments", {
      orderId,
      paymentMethodId: typeof paymentMethod === "string" ? paymentMethod : paymentMethod.id,
    });
    if (paid.status !== 201) return fail(messagesOf(paid));
    if (paid.data.status === "requires_action") {
      // The bank wants the buyer to authenticate (3-D Secure): Stripe.js asks.
      const authenticated = await stripe.confirmCardPayment(paid.data.clientSecret);
      if (authenticated.error) return fail([authenticated.error.message || "Authentication failed."]);
    }
    payButton.textContent = "Confirming…";
    await settle();
    if (status() !== "complete" && status() !== "cancelled") {
      showAlert($("#outcome"), ["Your payment went through; the order is not confirmed yet. Reload this page in a minute."], "warn");
    }
  });
}

// Passes and check-in -------------------------------------------------------------------------

/** localStorage as JSON, never throwing: where it is full or disabled the pages still work,
 * only not offline. */
const saved = {
  get(key, fallback) {
    try {
      const text = localStorage.getItem(key);
      return text === null ? fallback : JSON.parse(text);
    } catch {
      return fallback;
    }
  },
  set(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* not kept: see above */ }
  },
  remove(key) {
    try { localStorage.removeItem(key); } catch { /* nothing kept */ }
  },
  /** Forgets what a signed-in user kept on this device (passes, the scanner's state). */
  clearUser() {
    try {
      Object.keys(localStorage).filter((key) => key.startsWith("gittix.")).forEach((key) => localStorage.removeItem(key));
    } catch { /* nothing kept */ }
  },
};

/** The pass and check-in pages keep working offline once opened: `/sw.js` keeps a copy of them
 * and of the script and stylesheet. */
function keepPageOffline() {
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
}

function formatTime(iso) {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

/** Shows a pass's QR code in `img`: the server's SVG, as an image (no markup of it in the page). */
function showQr(img, pass) {
  img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(pass.svg);
  img.alt = `QR code of the pass for ${pass.title}`;
}

const passKey = (ticketId) => `gittix.pass.${ticketId}`;

/** The pass of ticket `ticketId` as the API answers it, kept on this device while it is valid:
 * {pass, offline} or {error, status}. */
async function loadPass(ticketId) {
  const result = await api("GET", `/api/tickets/${encodeURIComponent(ticketId)}/pass`);
  if (result.status === 200) {
    saved.set(passKey(ticketId), result.data);
    return { pass: result.data, offline: false };
  }
  const kept = saved.get(passKey(ticketId), null);
  if (result.status === 0 && kept) return { pass: kept, offline: true };
  if (result.status === 410 || result.status === 401) saved.remove(passKey(ticketId));
  const messages = {
    401: "This pass is for the ticket's holder only.",
    404: "This ticket has no pass: it has not been sold.",
  };
  return { status: result.status, error: result.status === 410 ? messagesOf(result)[0] : messages[result.status] || messagesOf(result)[0] };
}

/** `loadPass`, asked again for a while when the ticket has no pass yet: a pass is issued a moment
 * after its order is complete (the passes service learns of the sale from its event), so a buyer
 * who just paid may ask first. `waiting` is told once when it waits. */
async function loadPassSoon(ticketId, waiting) {
  for (let attempt = 0; ; attempt += 1) {
    const loaded = await loadPass(ticketId);
    if (loaded.status !== 404 || attempt === 40) return loaded;
    if (attempt === 0) waiting();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function passPage() {
  keepPageOffline();
  const id = idFromPath("tickets");
  const loaded = await loadPassSoon(id, () => showAlert($("#page-alert"), ["Your pass is being issued…"], "warn"));
  $("#page-alert").hidden = true;
  if (loaded.status === 401 && !(await currentUser())) await requireUser();
  if (loaded.error) {
    pageError(loaded.error);
    return;
  }
  const { pass, offline } = loaded;
  document.title = `Pass: ${pass.title} · GitTix`;
  $("#title").textContent = pass.title;
  showQr($("#qr"), pass);
  $("#holder").textContent = pass.holderEmail;
  $("#generation").textContent = pass.generation === 1 ? "1 (first sale)" : `${pass.generation} (a resale replaced the earlier passes)`;
  $("#secret").textContent = pass.secret;
  $("#offline-note").hidden = !offline;
  $("#print").addEventListener("click", () => window.print());
  $("#pass").hidden = false;
  if (!offline) await resaleSection(id);
}

/** The holder's resale of ticket `id`: a form to list it, or the listing and a way to withdraw it. */
async function resaleSection(id) {
  const section = $("#resale");
  const form = $("#resell");
  const alert = $("#resale-alert");
  const price = priceField(form.price);
  feeHint(form.price, $("#fee-hint"));
  const show = (ticket) => {
    section.hidden = false;
    alert.hidden = true;
    form.hidden = ticket.status !== "sold";
    $("#listed").hidden = ticket.status !== "available";
    $("#price-hint").textContent = `Its face value is ${formatPrice(ticket.faceValue)}. A resale may ask a little more than that, never much more: a price above the limit is refused, with the limit.`;
    $("#listed-text").textContent = `Listed for resale at ${formatPrice(ticket.price)}. This pass stays valid until someone buys it.`;
    if (ticket.status === "reserved") showAlert(alert, ["Someone is buying it from you right now."], "warn");
  };
  const load = async () => {
    const result = await api("GET", `/api/tickets/${encodeURIComponent(id)}`);
    if (result.status === 200) show(result.data);
    return result.status === 200;
  };
  if (!(await load())) return;
  onSubmit(form, async () => {
    const listed = await api("POST", `/api/tickets/${encodeURIComponent(id)}/resale`, { price: price() });
    if (listed.status !== 200) {
      showErrors(form, listed.data.errors);
      return false;
    }
    clearErrors(form);
    show(listed.data);
    $("#withdraw").focus();
    return false;
  });
  $("#withdraw").addEventListener("click", async () => {
    const button = $("#withdraw");
    button.disabled = true;
    const withdrawn = await api("DELETE", `/api/tickets/${encodeURIComponent(id)}/resale`);
    button.disabled = false;
    if (withdrawn.status !== 200) {
      showAlert(alert, messagesOf(withdrawn));
      return;
    }
    show(withdrawn.data);
    showAlert(alert, ["Withdrawn: the ticket is yours again, and this pass is still valid."], "ok");
    form.price.focus();
  });
}

/** The pass under a complete order: its code and a link to the pass page. */
async function orderPass(ticketId) {
  const box = $("#order-pass");
  if (!box.hidden) return;
  box.hidden = false;
  const alert = $("#order-pass-alert");
  const loaded = await loadPassSoon(ticketId, () => showAlert(alert, ["Your pass is being issued…"], "warn"));
  alert.hidden = true;
  if (loaded.error) {
    $("#order-qr").hidden = true;
    showAlert(alert, [loaded.error], "warn");
    return;
  }
  showQr($("#order-qr"), loaded.pass);
  $("#order-pass-link").href = `/tickets/${ticketId}/pass`;
  $("#order-pass-link").hidden = false;
}

// The check-in page: what it keeps on this device, under these keys.
const SCANNER = {
  user: "gittix.scan.user",
  key: "gittix.scan.key", // the pass key, base64url
  revoked: "gittix.scan.revoked", // {ticketId: the highest revoked generation}
  since: "gittix.scan.since", // the revocation list's cursor
  seen: "gittix.scan.seen", // {ticketId: the first check-in's time}, as this device knows it
  queue: "gittix.scan.queue", // scans made offline, not yet sent: [{secret, nonce, at}]
};

/** Base64url without padding to bytes; null if it is not that. */
function fromBase64Url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
}

function uuidOf(bytes) {
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A pass secret's fields if `secret` is one signed by `key` (a CryptoKey), else null. The
 * layout: version 1, the ticket id (16 bytes), the generation (u32, big-endian), a 16-byte seed,
 * and the Ed25519 signature (64 bytes) of those 37 bytes. */
async function verifySecret(key, secret) {
  const bytes = secret.length === 135 ? fromBase64Url(secret) : null;
  if (!bytes || bytes.length !== 101 || bytes[0] !== 1) return null;
  const signed = bytes.subarray(0, 37);
  const valid = await crypto.subtle.verify({ name: "Ed25519" }, key, bytes.subarray(37), signed);
  if (!valid) return null;
  return { ticketId: uuidOf(bytes.subarray(1, 17)), generation: new DataView(signed.buffer, signed.byteOffset + 17, 4).getUint32(0) };
}

/** What each answer looks like: its colour, its sign and its words. */
const VERDICTS = {
  ok: { tone: "go", icon: "✓", label: "Valid" },
  already_redeemed: { tone: "wait", icon: "!", label: "Already checked in" },
  revoked: { tone: "stop", icon: "✕", label: "Resold" },
  invalid: { tone: "stop", icon: "✕", label: "Invalid" },
  refused: { tone: "stop", icon: "✕", label: "Not checked in" },
};

function verdictDetail(outcome) {
  const title = outcome.title || "This pass";
  switch (outcome.result) {
    case "ok": return outcome.offline ? `${title}. Checked on this device while offline; it is sent when the connection is back.` : `${title}. Let them in.`;
    case "already_redeemed": return `${title} was first checked in ${formatTime(outcome.at)}${outcome.offline ? " (as this device knows it)" : ""}.`;
    case "revoked": return "This ticket was resold: this pass is no longer valid.";
    case "invalid": return "This is not a GitTix pass, or it was altered.";
    default: return outcome.message;
  }
}

/** Timings the check-in page measured, in milliseconds (also read by the browser tests): the last
 * 200 of each, so a camera left on all night keeps no more. */
const scanTimings = {
  decode: [],
  verify: [],
  firstRead: null,
  add(kind, ms) {
    this[kind].push(ms);
    if (this[kind].length > 200) this[kind].shift();
  },
};
window.gittixScanTimings = scanTimings;

async function scanPage() {
  keepPageOffline();
  // The form and the camera answer at once; a scan waits until the key and revocations are in.
  const scanner = new Scanner();
  const form = $("#paste");
  onSubmit(form, async () => {
    const code = form.code.value.trim();
    if (!code) {
      showErrors(form, [{ field: "code", message: "Paste a pass's code, or scan it with the camera" }]);
      return false;
    }
    clearErrors(form);
    await scanner.show(await scanner.check(code), form.code);
    form.code.value = "";
    return false;
  });
  $("#start-camera").addEventListener("click", () => scanner.startCamera());
  const user = await scannerUser();
  if (!user) return;
  await scanner.refresh();
  scanner.ready();
  window.addEventListener("online", () => scanner.refresh().then(() => scanner.upload()));
  window.addEventListener("offline", () => scanner.render());
  setInterval(() => scanner.refresh().then(() => scanner.upload()), 30000);
  await scanner.upload();
}

/** The signed-in user; offline, the one who last opened this page here; else off to sign in. */
async function scannerUser() {
  const result = await api("GET", "/api/users/current-user");
  if (result.status === 200 && result.data && result.data.currentUser) {
    saved.set(SCANNER.user, result.data.currentUser);
    return result.data.currentUser;
  }
  if (result.status === 0) {
    const user = saved.get(SCANNER.user, null);
    if (!user) pageError("You are offline, and this device has not opened the check-in page before. Open it once with a connection.");
    return user;
  }
  return requireUser();
}

/** The check-in page's state: the pass key, the revocations, the scans waiting to be sent. */
class Scanner {
  constructor() {
    this.key = null;
    this.uploading = false;
    this.paused = false;
    this.loaded = new Promise((resolve) => { this.ready = resolve; });
  }

  /** Fetches the pass key and the revocations since the last time; keeps what it had offline. */
  async refresh() {
    const key = await api("GET", "/api/passes/key");
    if (key.status === 200 && key.data.algorithm === "Ed25519") saved.set(SCANNER.key, key.data.key);
    const revoked = saved.get(SCANNER.revoked, {});
    let since = saved.get(SCANNER.since, 0);
    for (let page = 0; page < 100; page += 1) {
      const result = await api("GET", `/api/passes/revoked?since=${since}`);
      if (result.status !== 200) break;
      for (const { ticketId, generation } of result.data.revoked) {
        revoked[ticketId] = Math.max(revoked[ticketId] || 0, generation);
      }
      const done = result.data.next === since || !result.data.revoked.length;
      since = result.data.next;
      if (done) break;
    }
    saved.set(SCANNER.revoked, revoked);
    saved.set(SCANNER.since, since);
    const raw = saved.get(SCANNER.key, null);
    if (raw && !this.key) {
      try {
        this.key = await crypto.subtle.importKey("raw", fromBase64Url(raw), { name: "Ed25519" }, false, ["verify"]);
      } catch {
        pageError("This browser cannot check pass signatures (Ed25519), so it can check passes only online.");
      }
    }
  }

  /** The outcome of scanning `secret`: from the server, or from this device when offline. */
  async check(secret) {
    await this.loaded;
    const nonce = crypto.randomUUID();
    if (navigator.onLine) {
      const result = await api("POST", "/api/checkins", { secret, nonce });
      if (result.status === 200) {
        this.remember(result.data);
        this.upload();
        return result.data;
      }
      if (result.status !== 0 && result.status < 500) return { result: "refused", message: messagesOf(result)[0] };
    }
    return this.checkOffline(secret, nonce);
  }

  /** Checks `secret` against the kept key and revocations; a valid pass seen for the first time
   * here is queued to be sent. */
  async checkOffline(secret, nonce) {
    if (!this.key) return { result: "refused", message: "This device has no pass key yet: connect once to check passes offline." };
    const started = performance.now();
    const fields = await verifySecret(this.key, secret);
    scanTimings.add("verify", performance.now() - started);
    const at = new Date().toISOString();
    if (!fields) return { result: "invalid", offline: true };
    const { ticketId, generation } = fields;
    if ((saved.get(SCANNER.revoked, {})[ticketId] || 0) >= generation) return { result: "revoked", ticketId, offline: true };
    // A ticket gets in once, whichever of its passes (as the server rules too).
    const seen = saved.get(SCANNER.seen, {});
    if (seen[ticketId]) return { result: "already_redeemed", ticketId, at: seen[ticketId], offline: true };
    seen[ticketId] = at;
    saved.set(SCANNER.seen, seen);
    saved.set(SCANNER.queue, [...saved.get(SCANNER.queue, []), { secret, nonce, at }]);
    return { result: "ok", ticketId, at, offline: true };
  }

  /** Keeps a server's answer, so the same ticket is amber here when offline later. */
  remember(outcome) {
    if ((outcome.result !== "ok" && outcome.result !== "already_redeemed") || !outcome.ticketId) return;
    const seen = saved.get(SCANNER.seen, {});
    seen[outcome.ticketId] = seen[outcome.ticketId] || outcome.at;
    saved.set(SCANNER.seen, seen);
  }

  /** Sends the scans made offline, oldest first; a duplicate the server found is reported. */
  async upload() {
    if (this.uploading) return;
    this.uploading = true;
    try {
      for (;;) {
        const [scan] = saved.get(SCANNER.queue, []);
        if (!scan || !navigator.onLine) break;
        const result = await api("POST", "/api/checkins", { secret: scan.secret, nonce: scan.nonce });
        if (result.status === 0 || result.status >= 500) break;
        saved.set(SCANNER.queue, saved.get(SCANNER.queue, []).filter((queued) => queued.nonce !== scan.nonce));
        this.report(scan, result);
      }
    } finally {
      this.uploading = false;
      this.render();
    }
  }

  /** One line of the upload log for `scan`, sent with `result`. */
  report(scan, result) {
    const outcome = result.status === 200 ? result.data : { result: "refused", message: messagesOf(result)[0] };
    const title = outcome.title || "A pass";
    const lines = {
      ok: [`${title}: sent, checked in ${formatTime(scan.at)}.`, "ok"],
      already_redeemed: [`Duplicate: ${title} had already been checked in ${formatTime(outcome.at)}, before this device's offline scan at ${formatTime(scan.at)}.`, "warn"],
      revoked: [`${title}: the pass scanned offline ${formatTime(scan.at)} had been replaced by a resale.`, "error"],
      invalid: [`The pass scanned offline ${formatTime(scan.at)} is not valid.`, "error"],
      refused: [`The scan of ${formatTime(scan.at)} was refused: ${outcome.message}`, "error"],
    };
    const [text, kind] = lines[outcome.result] || lines.refused;
    const item = document.createElement("li");
    item.className = `log-${kind}`;
    item.textContent = text;
    $("#sync-log").prepend(item);
  }

  render() {
    const waiting = saved.get(SCANNER.queue, []).length;
    $("#connection").textContent = navigator.onLine
      ? "Online: every scan is checked with the server."
      : "Offline: passes are checked on this device, against the signature and the resales it knows of.";
    $("#queue-state").textContent = waiting === 0 ? "No scan is waiting to be sent." : `${waiting} ${waiting === 1 ? "scan is" : "scans are"} waiting to be sent.`;
  }

  /** Shows `outcome` full screen until dismissed; focus then returns to `returnTo`. */
  show(outcome, returnTo) {
    const verdict = VERDICTS[outcome.result] || VERDICTS.refused;
    const box = $("#verdict");
    box.className = `verdict verdict-${verdict.tone}`;
    box.querySelector(".verdict-icon").textContent = verdict.icon;
    $("#verdict-label").textContent = verdict.label;
    $("#verdict-detail").textContent = verdictDetail(outcome);
    box.dataset.result = outcome.result;
    box.hidden = false;
    this.paused = true;
    this.render();
    const next = $("#next-scan");
    next.focus();
    return new Promise((resolve) => {
      next.addEventListener("click", () => {
        box.hidden = true;
        this.paused = false;
        returnTo.focus();
        resolve();
      }, { once: true });
    });
  }

  /** Reads passes from the camera (jsQR on its frames) until the page is left. */
  async startCamera() {
    const state = $("#camera-state");
    const button = $("#start-camera");
    button.disabled = true;
    let stream;
    try {
      await (window.jsQR ? Promise.resolve() : loadScript("/vendor/jsqr/jsQR.js"));
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      button.disabled = false;
      state.textContent = error && error.name === "NotAllowedError"
        ? "The camera was not allowed. Allow it in the browser's settings, or paste codes below."
        : "No camera can be used here. Paste codes below instead.";
      return;
    }
    const video = $("#camera");
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    button.hidden = true;
    state.textContent = "The camera is on: hold a pass in front of it.";
    const started = performance.now();
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const frame = async () => {
      if (!this.paused && video.readyState >= 2) {
        const scale = Math.min(1, 800 / video.videoWidth);
        canvas.width = Math.round(video.videoWidth * scale);
        canvas.height = Math.round(video.videoHeight * scale);
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        const image = context.getImageData(0, 0, canvas.width, canvas.height);
        const decodeStarted = performance.now();
        const code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        scanTimings.add("decode", performance.now() - decodeStarted);
        if (code && code.data) {
          if (scanTimings.firstRead === null) scanTimings.firstRead = performance.now() - started;
          this.paused = true;
          await this.show(await this.check(code.data), button.hidden ? $("#code") : button);
        }
      }
      setTimeout(frame, 100);
    };
    frame();
  }
}

const pages = {
  home,
  signup: credentialsPage("/api/users/signup"),
  signin: credentialsPage("/api/users/signin"),
  signout,
  sell,
  edit,
  mine,
  ticket: ticketPage,
  orders,
  order: orderPage,
  pass: passPage,
  scan: scanPage,
};

document.addEventListener("DOMContentLoaded", () => {
  renderNav();
  const page = pages[document.body.dataset.page];
  if (page) page();
});
