/* The agent's workspace on top of crm.js: the three-pane inbox (lists with live counts, the
 * conversation swapped in place), keyboard shortcuts, canned replies on "/", who else is on the
 * conversation ("Alex is viewing", "Alex is typing a reply") and the reply box's warnings, and
 * the WhatsApp reply window ticking down. Like crm.js, frames only say what changed; the page
 * re-reads the part from the server (rendered and escaped by Django). */
(function () {
  "use strict";

  var LE = window.LiveEscalation;
  if (!LE) return;
  var body = document.body;
  var me = body.dataset.userId || "";

  function csrfToken() {
    try { return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }
  function currentConversation() {
    var view = document.getElementById("conversation");
    return view ? parseInt(view.dataset.conversationId, 10) : null;
  }
  function isTyping(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  // --- The inbox ---------------------------------------------------------------------------
  var inbox = document.getElementById("inbox");

  function listState() {
    var lists = document.getElementById("inbox-lists");
    return {
      list: lists ? lists.dataset.list : "queued",
      selected: currentConversation()
    };
  }

  function inboxUrl(list, selected) {
    return inbox.dataset.inboxUrl + "?list=" + encodeURIComponent(list) + (selected ? "&c=" + selected : "");
  }

  var listsTimer = null;
  function refreshLists() {
    if (!inbox) return;
    clearTimeout(listsTimer);
    listsTimer = setTimeout(function () {
      var s = listState();
      htmx.ajax("GET", inbox.dataset.listsUrl + "?list=" + encodeURIComponent(s.list) + (s.selected ? "&c=" + s.selected : ""),
        { target: "#inbox-lists", swap: "outerHTML" });
    }, 200);
  }

  function markSelected(id) {
    document.querySelectorAll(".inbox-item").forEach(function (item) {
      item.classList.toggle("selected", parseInt(item.dataset.conversationId, 10) === id);
    });
    var lists = document.getElementById("inbox-lists");
    if (lists) lists.dataset.selected = id || "";
  }

  function openConversation(id, push) {
    if (!inbox || !id) return;
    var s = listState();
    markSelected(id);
    var url = inbox.dataset.conversationUrl.replace(/\/0\/$/, "/" + id + "/") + "?list=" + encodeURIComponent(s.list);
    htmx.ajax("GET", url, { target: "#workspace", swap: "innerHTML" }).then(function () {
      if (push !== false) history.pushState({ c: id, list: s.list }, "", inboxUrl(s.list, id));
      followConversation();
    });
  }

  function openList(name) {
    var s = listState();
    history.pushState({ c: s.selected, list: name }, "", inboxUrl(name, s.selected));
    htmx.ajax("GET", inbox.dataset.listsUrl + "?list=" + encodeURIComponent(name) + (s.selected ? "&c=" + s.selected : ""),
      { target: "#inbox-lists", swap: "outerHTML" });
  }

  if (inbox) {
    inbox.addEventListener("click", function (event) {
      var tab = event.target.closest("#inbox-lists [role=tab]");
      if (tab) {
        event.preventDefault();
        openList(tab.dataset.list);
        return;
      }
      var link = event.target.closest(".inbox-link");
      if (link) {
        event.preventDefault();
        openConversation(parseInt(link.closest(".inbox-item").dataset.conversationId, 10));
      }
    });
    window.addEventListener("popstate", function () { location.reload(); });
    ["queue.added", "queue.updated", "queue.claimed", "queue.removed", "assignment.created", "open"].forEach(function (type) {
      LE.on(type, refreshLists);
    });
    LE.on("conversation.mode", refreshLists);
    // A take-over, resolve, hand-back... changes the lists' counts at once.
    body.addEventListener("htmx:afterRequest", function (event) {
      var form = event.detail.elt;
      if (form && form.closest && form.closest("#conversation-panel") && event.detail.requestConfig.verb === "post") refreshLists();
    });
    setInterval(function () { if (!LE.isLive()) refreshLists(); }, 5000);
  }

  // --- Keyboard shortcuts --------------------------------------------------------------------
  function moveSelection(step) {
    var items = Array.prototype.slice.call(document.querySelectorAll("#inbox-items .inbox-item"));
    if (!items.length) return;
    var index = items.findIndex(function (item) { return item.classList.contains("selected"); });
    var next = index < 0 ? 0 : Math.min(items.length - 1, Math.max(0, index + step));
    if (next === index) return;
    items[next].scrollIntoView({ block: "nearest" });
    openConversation(parseInt(items[next].dataset.conversationId, 10));
  }

  function click(id) {
    var el = document.getElementById(id);
    if (el && !el.disabled) el.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) {
      if (event.key === "Escape" && event.target.id === "reply-text" && !cannedOpen()) event.target.blur();
      return;
    }
    var help = document.getElementById("shortcut-help");
    switch (event.key) {
      case "j": if (inbox) { event.preventDefault(); moveSelection(1); } break;
      case "k": if (inbox) { event.preventDefault(); moveSelection(-1); } break;
      case "t": event.preventDefault(); click("take-over"); break;
      case "e": event.preventDefault(); click("resolve"); break;
      case "r": {
        var box = document.getElementById("reply-text");
        if (box) { event.preventDefault(); box.focus(); }
        break;
      }
      case "?":
        if (help) {
          event.preventDefault();
          if (help.open) help.close(); else help.showModal();
        }
        break;
    }
  });

  // --- Canned replies: "/" in the reply box ----------------------------------------------------
  var cannedToken = null;  // {start, end, query} of the "/word" being typed
  var cannedTimer = null;

  function cannedMenu() { return document.getElementById("canned-menu"); }
  function cannedOpen() { var menu = cannedMenu(); return menu && !menu.hidden; }
  function closeCanned() {
    var menu = cannedMenu();
    if (menu) { menu.hidden = true; menu.textContent = ""; }
    cannedToken = null;
  }

  function slashToken(box) {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([\w-]{0,40})$/.exec(before);
    if (!match) return null;
    return { start: before.length - match[2].length - 1, end: box.selectionStart, query: match[2] };
  }

  function searchCanned(box) {
    var token = slashToken(box);
    if (!token) { closeCanned(); return; }
    cannedToken = token;
    clearTimeout(cannedTimer);
    cannedTimer = setTimeout(function () {
      fetch(box.dataset.cannedUrl + "?q=" + encodeURIComponent(token.query), {
        headers: { "HX-Request": "true" }, credentials: "same-origin"
      }).then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      }).then(function (html) {
        var menu = cannedMenu();
        if (!menu || !cannedToken) return;
        var template = document.createElement("template");
        template.innerHTML = html;
        menu.textContent = "";
        menu.appendChild(template.content);
        menu.hidden = false;
      }).catch(function () { closeCanned(); });
    }, 120);
  }

  function moveCanned(step) {
    var options = Array.prototype.slice.call(cannedMenu().querySelectorAll(".canned-option"));
    if (!options.length) return;
    var index = options.findIndex(function (o) { return o.getAttribute("aria-selected") === "true"; });
    var next = (index + step + options.length) % options.length;
    options.forEach(function (o, i) { o.setAttribute("aria-selected", i === next ? "true" : "false"); });
  }

  function insertCanned(option) {
    var box = document.getElementById("reply-text");
    var token = cannedToken;
    if (!box || !option || !token) return;
    var form = new FormData();
    form.append("reply", option.dataset.replyId);
    fetch(box.dataset.cannedUseUrl, {
      method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" }
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
        return data;
      }, function () { throw new Error("HTTP " + response.status); });
    }).then(function (data) {
      box.value = box.value.slice(0, token.start) + data.text + box.value.slice(token.end);
      var caret = token.start + data.text.length;
      box.focus();
      box.setSelectionRange(caret, caret);
      closeCanned();
    }).catch(function (error) {
      closeCanned();
      LE.toast("The canned reply could not be inserted: " + error.message, "error");
    });
  }

  document.addEventListener("input", function (event) {
    if (event.target.id === "reply-text") searchCanned(event.target);
  });
  // Capture phase: runs before crm.js's Enter-sends handler, so Enter picks a canned reply.
  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "reply-text" || !cannedOpen()) return;
    var menu = cannedMenu();
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      moveCanned(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter" || event.key === "Tab") {
      var chosen = menu.querySelector('.canned-option[aria-selected="true"]');
      if (chosen) {
        event.preventDefault();
        event.stopImmediatePropagation();
        insertCanned(chosen);
      }
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeCanned();
    }
  }, true);
  document.addEventListener("mousedown", function (event) {
    var option = event.target.closest && event.target.closest(".canned-option");
    if (option) {
      event.preventDefault();  // keep the caret in the reply box
      insertCanned(option);
    } else if (cannedOpen() && !event.target.closest("#canned-menu")) {
      closeCanned();
    }
  });

  // --- Who else is here ------------------------------------------------------------------------
  var present = {};  // user id → {name, until (viewing), typingUntil}
  var TYPING_MS = 5000;

  function others(filter) {
    var now = Date.now();
    return Object.keys(present).filter(function (id) {
      var p = present[id];
      if (p.until < now && p.typingUntil < now) { delete present[id]; return false; }
      return filter ? filter(p, now) : true;
    }).map(function (id) { return present[id]; });
  }

  function renderPresence() {
    var el = document.getElementById("presence");
    if (!el) return;
    var parts = others().map(function (p) {
      return p.typingUntil > Date.now() ? p.name + " is typing a reply" : p.name + " is viewing";
    });
    var text = parts.join(" · ");
    if (el.textContent !== text) el.textContent = text;
    el.hidden = !text;
    renderWarning();
  }

  function announce(state) {
    var id = currentConversation();
    if (id) LE.send({ type: "presence", conversation: id, state: state });
  }

  var followed = null;
  function followConversation() {
    var id = currentConversation();
    if (id === followed) return;
    followed = id;
    present = {};
    confirmedUntil = 0;
    LE.watch(id);
    renderPresence();
    syncWindow();
  }

  LE.on("presence", function (frame) {
    if (frame.conversation !== currentConversation() || String(frame.user_id) === me) return;
    var id = String(frame.user_id);
    if (frame.state === "left") {
      delete present[id];
    } else {
      var known = !!present[id];
      present[id] = present[id] || { name: frame.name, typingUntil: 0 };
      present[id].name = frame.name;
      present[id].until = Date.now() + (frame.ttl || 30) * 1000;
      if (!known) announce("viewing");  // so the newcomer sees us at once, not at our next beat
    }
    renderPresence();
  });
  LE.on("typing", function (frame) {
    if (frame.sender !== "agent" || frame.conversation !== currentConversation()) return;
    if (frame.user_id === undefined || String(frame.user_id) === me) return;
    var id = String(frame.user_id);
    present[id] = present[id] || { name: frame.name, until: 0 };
    present[id].typingUntil = Date.now() + TYPING_MS;
    renderPresence();
  });
  LE.on("open", function () { present = {}; renderPresence(); });
  setInterval(function () {
    if (LE.isLive()) announce("viewing");
  }, 10000);
  setInterval(renderPresence, 1000);

  // --- The reply box warns before sending into someone else's conversation ----------------------
  var confirmedUntil = 0;

  function replyRisk() {
    var panel = document.getElementById("conversation-panel");
    if (panel && panel.dataset.handledBy) {
      return panel.dataset.handledBy + " is handling this conversation: only they can reply; a private note is fine.";
    }
    if (panel && panel.dataset.windowOpen === "0") {
      return "The 24-hour WhatsApp window has closed: free text can't be sent, an approved template can.";
    }
    var typing = others(function (p, now) { return p.typingUntil > now; });
    if (typing.length) return typing[0].name + " is typing a reply in this conversation too.";
    return "";
  }

  function renderWarning() {
    var box = document.getElementById("reply-warning");
    if (!box) return;
    var risk = replyRisk();
    if (box.dataset.confirming === "1" && risk) return;
    box.dataset.confirming = "";
    if (box.textContent !== risk) box.textContent = risk;
    box.hidden = !risk;
  }

  document.addEventListener("submit", function (event) {
    if (event.target.id !== "reply-form") return;
    var submitter = event.submitter;
    if (!submitter || submitter.id !== "send-reply") return;
    var risk = replyRisk();
    if (!risk || Date.now() < confirmedUntil) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    confirmedUntil = Date.now() + 10000;
    var box = document.getElementById("reply-warning");
    if (box) {
      box.dataset.confirming = "1";
      box.textContent = risk + " Press Send again within 10 seconds to send anyway.";
      box.hidden = false;
    }
  }, true);
  body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "reply-form" && event.detail.successful) {
      confirmedUntil = 0;
      var box = document.getElementById("reply-warning");
      if (box) box.dataset.confirming = "";
      renderWarning();
    }
  });

  // --- The WhatsApp reply window -------------------------------------------------------------------
  var windowRefreshedAt = 0;
  function syncWindow() {
    var left = document.querySelector("#reply-window .window-left[data-until]");
    if (!left) return;
    var until = Date.parse(left.dataset.until);
    if (isNaN(until)) return;
    var seconds = Math.floor((until - Date.now()) / 1000);
    if (seconds <= 0) {
      // Re-read the panel (the server says it closed); again every few seconds until it does,
      // in case this clock ran ahead of the server's.
      left.textContent = "0 min";
      if (Date.now() - windowRefreshedAt > 3000) { windowRefreshedAt = Date.now(); LE.refreshPanel(); }
      return;
    }
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
    left.textContent = h ? h + " h " + m + " min" : m + " min " + (seconds % 60) + " s";
  }
  setInterval(syncWindow, 1000);
  LE.on("message.created", function (frame) {
    // A customer's message reopens the window: re-read the panel that shows it.
    if (frame.message && frame.message.conversation === currentConversation() &&
        frame.message.sender === "customer" && document.getElementById("reply-window")) {
      LE.refreshPanel();
    }
  });

  body.addEventListener("htmx:afterSwap", function () {
    followConversation();
    renderPresence();
    syncWindow();
  });
  followConversation();
})();
