// The sandbox page: who you are, which channel and thread are open, and
// fragments fetched again when the server's event stream says they changed.
// The server renders every fragment (escaped); this file only places them.
"use strict";

(() => {
  const body = document.body;
  const $ = (sel) => document.querySelector(sel);
  const state = { user: body.dataset.user, channel: body.dataset.channel, thread: "" };

  // ---- fragments ----

  const sources = {
    messages: () => "/fragment/messages?" + params({ user: state.user, channel: state.channel }),
    thread: () => state.thread &&
      "/fragment/thread?" + params({ user: state.user, channel: state.channel, ts: state.thread }),
    deployments: () => "/fragment/deployments",
    log: () => "/fragment/log",
  };
  const targets = { messages: "#messages", thread: "#thread", deployments: "#deployments", log: "#log" };
  const busy = {};
  const again = {};
  const shown = {}; // the HTML each target shows, so an unchanged fragment is not replaced

  function params(o) {
    return new URLSearchParams(o).toString();
  }

  // refresh fetches a fragment; calls while one is in flight fold into one more.
  async function refresh(kind) {
    if (busy[kind]) {
      again[kind] = true;
      return;
    }
    busy[kind] = true;
    try {
      do {
        again[kind] = false;
        const url = sources[kind]();
        if (!url) break;
        const res = await fetch(url, { cache: "no-store" });
        if (url !== sources[kind]()) { again[kind] = true; continue; } // the view changed meanwhile
        if (res.status === 404 && kind === "thread") { closeThread(); break; }
        if (!res.ok) { notice(await errorText(res)); break; }
        place(kind, await res.text());
      } while (again[kind]);
    } catch (err) {
      notice("Lost contact with the sandbox (" + err.message + "). Is `go run . sandbox` still running?");
    } finally {
      busy[kind] = false;
    }
  }

  function refreshAll() {
    Object.keys(sources).forEach(refresh);
  }

  function place(kind, html) {
    if (shown[kind] === html) return; // keeps the nodes, and a click under way
    shown[kind] = html;
    $(targets[kind]).innerHTML = html;
    if (pinned[kind]) toBottom(kind);
  }

  // ---- following the newest message ----

  // A list scrolled to its bottom stays there as messages come in and as the
  // window changes size, as in Slack; a list the user scrolled up stays put
  // until they scroll back down or send a message.
  const pinned = { messages: true, thread: true };

  function atBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }

  function toBottom(kind) {
    const el = $(targets[kind]);
    el.scrollTop = el.scrollHeight;
  }

  for (const kind of Object.keys(pinned)) {
    const el = $(targets[kind]);
    el.addEventListener("scroll", () => { pinned[kind] = atBottom(el); }, { passive: true });
    new ResizeObserver(() => { if (pinned[kind]) toBottom(kind); }).observe(el);
  }

  async function errorText(res) {
    try {
      const j = await res.json();
      return j.error || res.statusText;
    } catch {
      return res.status + " " + res.statusText;
    }
  }

  function notice(text) {
    $("#notice").textContent = text;
  }

  // ---- who, where ----

  function remember() {
    history.replaceState(null, "", "?" + params({ user: state.user, channel: state.channel }));
  }

  function switchUser(id) {
    const who = document.querySelector(`.who[data-user="${CSS.escape(id)}"]`);
    if (!who) return;
    state.user = id;
    body.dataset.user = id;
    document.querySelectorAll(".who").forEach((b) => b.classList.toggle("current", b === who));
    updateComposer();
    notice("");
    remember();
    pinned.messages = pinned.thread = true;
    refresh("messages");
    refresh("thread");
  }

  function switchChannel(id) {
    const link = document.querySelector(`.channel[data-channel="${CSS.escape(id)}"]`);
    if (!link) return;
    state.channel = id;
    body.dataset.channel = id;
    document.querySelectorAll(".channel").forEach((a) => a.classList.toggle("current", a === link));
    $("#channel-name").textContent = "# " + link.dataset.name;
    document.title = "#" + link.dataset.name + " · stopdeploy sandbox";
    closeThread();
    updateComposer();
    remember();
    pinned.messages = true;
    refresh("messages");
  }

  function updateComposer() {
    const who = $(".who.current");
    const channel = $(".channel.current");
    $("#composer-input").placeholder = "Message #" + channel.dataset.name + " as " + who.dataset.name;
  }

  function openThread(ts) {
    state.thread = ts;
    $("#thread-channel").textContent = "# " + $(".channel.current").dataset.name;
    $("#thread-pane").hidden = false;
    body.classList.add("with-thread");
    pinned.thread = true;
    refresh("thread");
  }

  function closeThread() {
    state.thread = "";
    $("#thread-pane").hidden = true;
    $("#thread").textContent = "";
    shown.thread = "";
    body.classList.remove("with-thread");
  }

  // ---- acting ----

  async function post(url, fields) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: params({ user: state.user, channel: state.channel, ...fields }),
    });
    if (!res.ok) throw new Error(await errorText(res));
  }

  // send empties the composer at once, so the next message can be typed
  // while this one is on its way, and posts the messages in the order they
  // were sent, as who and where they were typed. A message that fails comes
  // back into an empty composer.
  let sending = Promise.resolve();
  function send(event) {
    event.preventDefault();
    const input = $("#composer-input");
    const text = input.value.trim();
    if (!text) return;
    const fields = { user: state.user, channel: state.channel, text };
    input.value = "";
    notice("");
    pinned.messages = true; // your own message shows, wherever you had scrolled
    toBottom("messages");
    sending = sending.then(async () => {
      try {
        await post("/api/command", fields);
      } catch (err) {
        notice(err.message);
        if (!input.value) input.value = text;
      }
    });
  }

  async function press(button) {
    const msg = button.closest("[data-ts]");
    button.disabled = true;
    notice("");
    try {
      await post("/api/click", { ts: msg.dataset.ts, action: button.dataset.actionId });
    } catch (err) {
      notice(err.message);
      button.disabled = false;
    }
  }

  // confirm shows Slack's confirmation dialog of a button, then presses it.
  let pending = null;
  function confirmThenPress(button, tpl) {
    const c = tpl.content;
    const dialog = $("#confirm-dialog");
    $("#confirm-title").textContent = c.querySelector(".sk-confirm-title").textContent;
    $("#confirm-text").replaceChildren(...c.querySelector(".sk-confirm-text").cloneNode(true).childNodes);
    $("#confirm-ok").textContent = c.querySelector(".sk-confirm-ok").textContent;
    $("#confirm-deny").textContent = c.querySelector(".sk-confirm-deny").textContent;
    $("#confirm-ok").className = tpl.dataset.style === "danger" ? "sk-danger" : "sk-primary";
    pending = button;
    dialog.returnValue = "";
    dialog.showModal();
  }

  $("#confirm-dialog").addEventListener("close", () => {
    const button = pending;
    pending = null;
    if (button && $("#confirm-dialog").returnValue === "ok") press(button);
  });

  document.addEventListener("click", (event) => {
    const t = event.target;
    if (!(t instanceof Element)) return;
    const button = t.closest("button.sk-button");
    const replies = t.closest(".replies");
    const who = t.closest(".who");
    const channel = t.closest("a[data-channel]");
    const tryIt = t.closest(".try");
    if (button) {
      const tpl = button.parentElement.querySelector("template.sk-confirm");
      if (tpl) confirmThenPress(button, tpl);
      else press(button);
    } else if (replies) {
      openThread(replies.dataset.thread);
    } else if (who) {
      switchUser(who.dataset.user);
    } else if (channel) {
      event.preventDefault();
      switchChannel(channel.dataset.channel);
    } else if (tryIt) {
      const input = $("#composer-input");
      input.value = tryIt.dataset.text;
      input.focus();
    } else if (t.closest("#thread-close")) {
      closeThread();
    }
  });

  $("#composer").addEventListener("submit", send);
  $("#all-lines").addEventListener("change", (e) => $("#log").classList.toggle("all", e.target.checked));

  // ---- live ----

  function setStatus(s) {
    const el = $("#bot-status");
    el.classList.toggle("online", !!s.online);
    el.querySelector(".label").textContent = s.online ? "stopdeploy is connected" :
      s.lost ? "sandbox unreachable, retrying…" : "stopdeploy is connecting…";
  }

  const events = new EventSource("/events");
  events.addEventListener("hello", (e) => { setStatus(JSON.parse(e.data)); refreshAll(); });
  events.addEventListener("status", (e) => setStatus(JSON.parse(e.data)));
  events.addEventListener("messages", (e) => {
    const where = JSON.parse(e.data).channel;
    if (where && where !== state.channel) return; // another channel changed
    refresh("messages");
    refresh("thread");
  });
  events.addEventListener("deployments", () => refresh("deployments"));
  events.addEventListener("log", () => refresh("log"));
  events.addEventListener("error", () => setStatus({ online: false, lost: true }));

  toBottom("messages");
})();
