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

async function sell() {
  // Before anything is awaited, so a price typed while the page still loads is reformatted too.
  const form = $("#form");
  const price = priceField(form.price);
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
    return item;
  }, "You have not listed any tickets yet.");
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
    if (order.status === "complete") finish("Paid. The ticket is yours.", "ok");
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
};

document.addEventListener("DOMContentLoaded", () => {
  renderNav();
  const page = pages[document.body.dataset.page];
  if (page) page();
});
