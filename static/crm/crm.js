/* CRM screens: the agent socket, live queue and conversation, ticking wait times, toasts.
 * The database is the truth: socket frames only say "something changed", and the page re-reads
 * the affected part over HTTP (rendered and escaped by Django). Without a live socket the same
 * reads run on a timer (polling fallback). */
(function () {
  "use strict";

  var body = document.body;
  var socket = null;
  var state = "offline";
  var retries = 0;
  var subscriptions = new Set();
  var serverOffsetMs = 0;

  // --- Time ------------------------------------------------------------------------------
  if (body.dataset.serverNow) {
    var serverNow = Date.parse(body.dataset.serverNow);
    if (!isNaN(serverNow)) serverOffsetMs = serverNow - Date.now();
  }

  function formatWait(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function tick() {
    var now = Date.now() + serverOffsetMs;
    document.querySelectorAll(".wait[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      if (!isNaN(since)) el.textContent = formatWait((now - since) / 1000);
    });
  }

  // --- Toasts ----------------------------------------------------------------------------
  function toast(text, level) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast " + (level || "info");
    el.setAttribute("role", level === "error" ? "alert" : "status");
    el.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Close");
    close.textContent = "\u00d7";
    el.appendChild(close);
    box.appendChild(el);
    expire(el);
  }

  function expire(el) {
    if (el.dataset.expires) return;
    el.dataset.expires = "1";
    setTimeout(function () { el.remove(); }, el.classList.contains("error") ? 12000 : 8000);
  }

  // The Content-Security-Policy allows no inline script: behaviour that used to sit in
  // attributes (onchange, hx-on) lives here, and htmx may not evaluate attribute code either.
  if (window.htmx) {
    htmx.config.allowEval = false;
    // Settle at once: htmx wires up swapped-in forms only when it settles (20 ms later by
    // default), and a click or shortcut in that gap would submit the form as a plain page post.
    htmx.config.defaultSettleDelay = 0;
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-autosubmit]")) event.target.form.submit();
  });
  body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (event.detail.successful && form && form.hasAttribute && form.hasAttribute("data-reset-on-success")) {
      form.reset();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.classList && event.target.classList.contains("toast-close")) {
      event.target.parentElement.remove();
    }
  });

  // --- htmx: errors become toasts, never a broken page -------------------------------------
  body.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    // A 4xx that names its own target (a DomainError toast, a "taken by" panel) is shown.
    if (xhr.status >= 400 && xhr.status < 500 &&
        (xhr.getResponseHeader("HX-Retarget") || xhr.getResponseHeader("X-Swap-On-Error"))) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  body.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var text = status === 403 ? "You are not allowed to do that."
      : status === 404 ? "That no longer exists. Reload the page."
      : "Something went wrong (" + status + "). Please try again.";
    toast(text, "error");
  });
  body.addEventListener("htmx:sendError", function () {
    toast("The server can't be reached. Check your connection and try again.", "error");
  });
  body.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll("#toasts .toast").forEach(expire);
    tick();
    syncReplyBox();
  });

  // --- The agent socket ----------------------------------------------------------------------
  function setState(next) {
    state = next;
    var el = document.getElementById("live-state");
    if (el) {
      el.dataset.state = next;
      el.textContent = next === "live" ? "Live" : next === "degraded" ? "Live updates paused (polling)"
        : next === "connecting" ? "Connecting…" : "Offline (polling)";
    }
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function connect() {
    var path = body.dataset.agentSocket;
    if (!path || !window.WebSocket) return;
    setState("connecting");
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + location.host + path);
    } catch (e) {
      setState("offline");
      return;
    }
    socket.onopen = function () {
      retries = 0;
      setState("live");
      subscriptions.forEach(function (id) { send({ type: "subscribe", conversation: id }); });
      emit("open", {});
    };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (!frame || typeof frame.type !== "string") return;
      if (frame.type === "connection.state") setState(frame.state === "live" ? "live" : "degraded");
      emit(frame.type, frame);
    };
    socket.onclose = function () {
      setState("offline");
      var delay = Math.min(15000, 500 * Math.pow(2, retries++));
      setTimeout(connect, delay);
    };
  }

  var listeners = {};
  function on(type, fn) { (listeners[type] = listeners[type] || []).push(fn); }
  function emit(type, frame) {
    (listeners[type] || []).forEach(function (fn) {
      try { fn(frame); } catch (e) { if (window.console) console.error(e); }
    });
  }
  function isLive() { return state === "live"; }

  on("error", function (frame) {
    if (frame.message) toast(frame.message, "error");
  });

  // --- Header: notifications -------------------------------------------------------------------
  on("notification.created", function (frame) {
    htmx.trigger(body, "le-notifications");
    if (frame.notification && frame.notification.text) toast(frame.notification.text, "info");
  });
  on("notification.updated", function () {
    // An alert's escalation moved on ("Taken by Marina"): the bell and the open list re-read.
    htmx.trigger(body, "le-notifications");
  });
  on("assignment.created", function (frame) {
    toast("A conversation was assigned to you.", "info");
    htmx.trigger(body, "le-notifications");
    refreshQueue();
  });

  // --- The queue ---------------------------------------------------------------------------
  var queueTimer = null;
  function refreshQueue() {
    var results = document.getElementById("queue-results");
    if (!results) return;
    clearTimeout(queueTimer);
    queueTimer = setTimeout(function () {
      htmx.ajax("GET", location.pathname + location.search, {
        target: "#queue-results", swap: "outerHTML", headers: { "HX-Target": "queue-results" }
      });
    }, 150);
  }
  on("queue.added", refreshQueue);
  on("queue.updated", refreshQueue);
  on("queue.removed", refreshQueue);
  on("queue.claimed", function (frame) {
    var row = document.querySelector('.queue-row[data-escalation-id="' + frame.escalation + '"]');
    if (row && frame.agent_name) {
      row.classList.add("claimed");
      var label = row.querySelector(".claimed-by");
      if (label) {
        label.textContent = frame.agent_name + " took this conversation";
        label.hidden = false;
      }
      row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      var contact = row.querySelector(".contact");
      toast(frame.agent_name + " took " + (contact ? contact.textContent.trim() : "a conversation"), "info");
      setTimeout(refreshQueue, 4000);
    } else {
      refreshQueue();
    }
    if (conversationView() && frame.agent_name) refreshPanel();
  });
  on("open", refreshQueue);

  // --- The conversation ----------------------------------------------------------------------
  function conversationView() { return document.getElementById("conversation"); }
  function conversationId() {
    var view = conversationView();
    return view ? parseInt(view.dataset.conversationId, 10) : null;
  }

  var fetching = false, fetchAgain = false;
  function lastMessageId() {
    var max = 0;
    document.querySelectorAll("#messages [data-message-id]").forEach(function (el) {
      max = Math.max(max, parseInt(el.dataset.messageId, 10) || 0);
    });
    return max;
  }

  function fetchMessages() {
    var view = conversationView();
    if (!view) return;
    if (fetching) { fetchAgain = true; return; }
    fetching = true;
    fetch(view.dataset.messagesUrl + "?after=" + lastMessageId(), {
      headers: { "HX-Request": "true" }, credentials: "same-origin"
    }).then(function (response) {
      var redirect = response.headers.get("HX-Redirect");
      if (redirect) { window.location.href = redirect; return ""; }  // the session expired
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      var list = document.getElementById("messages");
      var template = document.createElement("template");
      template.innerHTML = html;
      var added = 0;
      Array.prototype.forEach.call(template.content.querySelectorAll("[data-message-id]"), function (item) {
        if (!list.querySelector('[data-message-id="' + item.dataset.messageId + '"]')) {
          list.appendChild(item);
          added++;
        }
      });
      if (added) {
        list.scrollTop = list.scrollHeight;
        htmx.trigger(body, "le-sentiment");
      }
    }).catch(function () {
      /* the next event or poll retries */
    }).finally(function () {
      fetching = false;
      if (fetchAgain) { fetchAgain = false; fetchMessages(); }
    });
  }

  // The agent is filling in a form on the panel (a hand-back note, a close reason): a live
  // refresh would throw the text away, so it waits until the menu is closed.
  function panelInUse(panel) {
    return panel.querySelector("details[open]") || panel.contains(document.activeElement);
  }

  function refreshPanel() {
    // Never swap the panel under an action in flight: its answer (or error toast) would be
    // delivered to a detached form and lost.
    var panel = document.getElementById("conversation-panel");
    if (!panel) return;
    if (panel.classList.contains("htmx-request") || panel.querySelector(".htmx-request") || panelInUse(panel)) {
      setTimeout(refreshPanel, 500);
      return;
    }
    htmx.trigger(body, "le-panel");
  }

  // A refresh already on its way when the agent opened a menu is not swapped in either.
  body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "conversation-panel" && event.detail.requestConfig &&
        event.detail.requestConfig.verb === "get" && panelInUse(target)) {
      event.detail.shouldSwap = false;
      setTimeout(refreshPanel, 500);
    }
  });

  function syncReplyBox() {
    var panel = document.getElementById("conversation-panel");
    var sendButton = document.getElementById("send-reply");
    if (!panel || !sendButton) return;
    var canReply = panel.dataset.canReply === "1";
    sendButton.disabled = !canReply;
    sendButton.title = canReply ? "" : "Take over this conversation to reply.";
  }

  body.addEventListener("le-messages", function () { fetchMessages(); });

  on("message.created", function (frame) {
    if (frame.message && frame.message.conversation === conversationId()) {
      fetchMessages();
      if (frame.message.sender === "customer") hideTyping();
    }
  });
  on("conversation.mode", function (frame) {
    if (frame.conversation === conversationId()) refreshPanel();
  });
  on("rating.recorded", function (frame) { // the customer rated: the panel shows the score
    if (frame.conversation === conversationId()) refreshPanel();
  });
  on("open", function () {
    if (conversationView()) { fetchMessages(); refreshPanel(); }
  });

  var typingTimer = null;
  function hideTyping() {
    var el = document.getElementById("typing");
    if (el) el.hidden = true;
  }
  on("typing", function (frame) {
    if (frame.conversation !== conversationId()) return;
    if (frame.sender === "agent") return;  // colleagues: workspace.js shows "… is typing a reply"
    var el = document.getElementById("typing");
    if (!el) return;
    var who = frame.sender === "customer" ? "The customer" : (frame.name || "An agent");
    el.textContent = who + " is typing…";
    el.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 4000);
  });

  var lastTypingSent = 0;
  document.addEventListener("input", function (event) {
    if (event.target.id !== "reply-text") return;
    var now = Date.now();
    if (now - lastTypingSent > 2000 && conversationId()) {
      lastTypingSent = now;
      send({ type: "typing", conversation: conversationId() });
    }
  });
  // Enter sends, Shift+Enter is a new line.
  document.addEventListener("keydown", function (event) {
    if (event.target.id === "reply-text" && event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      var sendButton = document.getElementById("send-reply");
      var form = document.getElementById("reply-form");
      if (form && sendButton && !sendButton.disabled) form.requestSubmit(sendButton);
    }
  });

  // --- Polling fallback ----------------------------------------------------------------------
  var polls = 0;
  setInterval(function () {
    if (isLive()) return;
    polls++;
    if (conversationView()) {
      fetchMessages();
      if (polls % 2 === 0) refreshPanel();
    }
    if (polls % 2 === 0) refreshQueue();
    if (polls % 6 === 0) htmx.trigger(body, "le-notifications");
  }, 2500);

  // --- Start ---------------------------------------------------------------------------------
  tick();
  setInterval(tick, 1000);
  syncReplyBox();
  document.querySelectorAll("#toasts .toast").forEach(expire);
  var id = conversationId();
  if (id) subscriptions.add(id);
  if (body.dataset.agentSocket) connect();

  // The inbox swaps the open conversation in place: follow it on the socket.
  function watch(id) {
    subscriptions.forEach(function (old) {
      if (old !== id) {
        send({ type: "unsubscribe", conversation: old });
        subscriptions.delete(old);
      }
    });
    if (id && !subscriptions.has(id)) {
      subscriptions.add(id);
      send({ type: "subscribe", conversation: id });
    }
  }

  window.LiveEscalation = {
    send: send, on: on, state: function () { return state; }, toast: toast, isLive: isLive,
    watch: watch, refreshPanel: refreshPanel, fetchMessages: fetchMessages
  };
})();
