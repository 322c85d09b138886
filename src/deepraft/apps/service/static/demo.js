// The demo messenger page. Everything that comes from users (file names, reasons, account
// names) is put in the page as text (textContent), never as markup; the page's
// Content-Security-Policy allows no inline script either.
"use strict";
const $ = (id) => document.getElementById(id);
const ACCOUNTS = ["alice", "bob", "carol"];
let me = null;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "className") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function notice(text, kind, id = "notice") {
  const n = $(id);
  n.textContent = text;
  n.className = "notice " + kind;
}

// What a status means when its body could not be read: a 413 closes the connection while the
// browser may still be sending, and the answer's body can then be lost on the way.
const STATUS_MEANING = { 413: "request body larger than the server accepts" };

class RequestError extends Error {
  constructor(body, status) {
    const meaning = STATUS_MEANING[status] ? `${STATUS_MEANING[status]} (${status})` : `request failed (${status})`;
    super(typeof body.error === "string" ? body.error : meaning);
    this.blocked = body.blocked === true;
    this.status = status;
  }
}

async function call(url, options = {}) {
  let r;
  try {
    r = await fetch(url, { credentials: "same-origin", ...options });
  } catch (e) {  // the connection failed or was closed before an answer came
    throw new RequestError({ error: "the server did not answer (is the picture too large?)" }, 0);
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new RequestError(body, r.status);
  return body;
}

// A blocked picture (it carries the stamp) says "Blocked"; anything else (not an image, too
// large, over the quota) says what went wrong, without the word.
function failure(e, action) {
  if (e.blocked) notice(`Blocked: ${e.message}`, "blocked");
  else notice(`Not ${action}: ${e.message}`, "error");
}

function showSignIn(open) {
  $("signin").className = "signin" + (open ? " open" : "");
  $("app").style.display = open ? "none" : "";
}

async function whoAmI() {
  try {
    me = (await call("/demo/api/me")).account;
    $("me").textContent = me;
    showSignIn(false);
    await refresh();
  } catch (e) {
    me = null;
    $("me").textContent = "nobody";
    showSignIn(true);
  }
}

async function refresh() {
  if (!me) return;
  const user = me;
  const { messages } = await call("/demo/api/messages");
  const box = $("messages");
  box.replaceChildren();
  for (const m of messages) {
    const meta = el("div", { className: "meta", text: `#${m.id} ` + (m.recipient === user ? `from ${m.sender}` : `to ${m.recipient}`) });
    if (m.only_for_you) meta.append(el("span", { className: "tag", text: "only for you" }));
    if (m.forwarded_from) meta.append(" (forwarded)");
    const src = `/demo/api/pictures/${Number(m.id)}`;
    const select = el("select", { className: "fwd-to" }, ...ACCOUNTS.filter((a) => a !== user).map((a) => el("option", { text: a })));
    const button = el("button", { className: "secondary fwd", type: "button", text: "Forward" });
    const div = el("div", { className: "msg" }, meta, el("img", { alt: `picture ${m.id}`, src }), select, " ", button, " ",
      el("a", { href: src, download: `picture-${Number(m.id)}`, text: "save" }));
    div.dataset.id = m.id;
    button.addEventListener("click", async () => {
      const f = new FormData();
      f.append("recipient", select.value);
      f.append("message_id", m.id);
      try { await call("/demo/api/forward", { method: "POST", body: f }); notice(`Forwarded #${m.id}.`, "ok"); }
      catch (e) { failure(e, "forwarded"); }
      refresh();
    });
    box.append(div);
  }
  const { audit } = await call("/demo/api/audit");
  $("audit").replaceChildren(...audit.map((a) => el("tr", {},
    el("td", { text: new Date(a.created * 1000).toLocaleTimeString() }), el("td", { text: a.user }),
    el("td", { text: `${a.action} ${a.target}` }), el("td", { text: a.score === null ? "" : a.score.toFixed(2) }))));
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData();
    f.append("account", $("account").value);
    const headers = $("key").value ? { "X-API-Key": $("key").value } : {};
    try {
      await call("/demo/api/session", { method: "POST", body: f, headers });
      notice("", "", "signin-notice");
      await whoAmI();
    } catch (e) {
      notice(`Not signed in: ${e.message}`, "error", "signin-notice");
    }
  });
  $("switch").addEventListener("click", () => showSignIn(true));
  $("send-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData();
    const to = $("to").value;
    f.append("recipient", to);
    f.append("only_for_you", $("only").checked ? "true" : "false");
    f.append("image", $("file").files[0]);
    $("send").disabled = true;
    try {
      const r = await call("/demo/api/send", { method: "POST", body: f });
      notice(r.only_for_you ? `Sent #${r.message_id} only for ${to}: stamped.` : `Sent #${r.message_id}.`, "ok");
    } catch (e) {
      failure(e, "sent");
    } finally {
      $("send").disabled = false;
      refresh();
    }
  });
  whoAmI();
});
