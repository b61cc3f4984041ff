/*
 * Live Escalation chat widget. Embed on any page with one tag:
 *
 *   <script src="https://support.example.com/widget.js" data-channel="CHANNEL_KEY" async></script>
 *
 * Optional attributes: data-title (header text), data-color (#rrggbb accent), data-language
 * (en, es, pt, fr, de or it; by default the browser's preferred language, else English).
 * No dependencies. Every text from the server is shown with textContent, never as HTML.
 * The conversation id and its customer token are kept in localStorage per channel key, so a
 * reload resumes the conversation. The socket reconnects by itself (exponential back-off with
 * jitter) and asks the server for what it missed (?after=<last message id>); while the socket
 * is down or the server says "degraded", the widget polls the messages endpoint instead.
 *
 * Before the first message the widget asks the server how to start (GET /widget/config/): a
 * channel with a pre-chat form shows it (name and email; "optional" may be skipped), the server
 * checks it (POST /widget/prechat/, nothing stored) and its refusal of a field (a bad email) is
 * shown under that field; the answers go with the first message, which starts the conversation
 * (a form filled in and then left behind leaves nothing on the server). Every start also reports
 * the page address, the referrer, the browser language and the time zone: context for the agent,
 * checked by the server; if it refuses one of them, the chat starts without that context.
 *
 * Nothing typed is lost: every message gets a client id and stays in an "unacknowledged" list
 * (localStorage, per conversation; shown as "Sending…") until the server's echo carrying that
 * client id arrives. On every (re)connect the whole list is sent again with the same ids; the
 * server stores a client id once, so a resend of a message that was stored is only
 * acknowledged. Messages typed while offline simply wait in the same list.
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector("script[data-channel]");
  if (!script || window.__liveEscalationWidget) return;
  window.__liveEscalationWidget = true;

  var channelKey = script.getAttribute("data-channel");
  if (!channelKey) {
    console.error("Live Escalation widget: the script tag needs data-channel=\"<channel key>\".");
    return;
  }
  var server = new URL(script.src, window.location.href).origin;
  var storageKey = "live-escalation:" + channelKey;
  var color = script.getAttribute("data-color") || "";
  if (!/^#[0-9a-fA-F]{3,8}$/.test(color)) color = "#2563eb";

  // The widget's own words, in the six languages of the server's customer texts
  // (crm/customer_texts.py), picked from data-language or the browser's languages; English
  // for any other. What the server says (handoff, queue place, closing) comes in the language
  // of the conversation.
  var LABELS = {
    en: {
      title: "Chat with us", placeholder: "Type your message…", send: "Send", open: "Chat",
      close: "Close", ai: "Our assistant", awaiting_agent: "Waiting for an agent…",
      queue_place: "You are number {position} — about {minutes}", minute: "1 minute",
      minutes: "{n} minutes", agent: "Now speaking with ",
      resolved: "Resolved — write here if you need anything else",
      closed: "This conversation is closed. Write to start again.",
      connecting: "Connecting…", offline: "Reconnecting…",
      degraded: "Live updates paused; checking for new messages…", typing: " is typing…",
      failed: "Could not start the chat. Please try again.", sending: "Sending…",
      not_sent: "Not sent", prechat_intro: "Before we start, tell us who you are.",
      prechat_name: "Your name", prechat_email: "Your email", prechat_start: "Start chat",
      prechat_skip: "Skip", rating_comment: "Anything to add? (optional)",
      rating_send: "Send rating", rating_choose: "Choose a number from 1 to 5.",
      rating_thanks: "Thank you for your feedback!", rating_again: "Start a new conversation",
      rating_stay: "Or just write below to keep chatting.",
    },
    es: {
      title: "Chatea con nosotros", placeholder: "Escribe tu mensaje…", send: "Enviar",
      open: "Chat", close: "Cerrar", ai: "Nuestro asistente",
      awaiting_agent: "Esperando a una persona del equipo…",
      queue_place: "Eres el número {position} — unos {minutes}", minute: "1 minuto",
      minutes: "{n} minutos", agent: "Ahora hablas con ",
      resolved: "Resuelto — escribe aquí si necesitas algo más",
      closed: "Esta conversación está cerrada. Escribe para empezar de nuevo.",
      connecting: "Conectando…", offline: "Reconectando…",
      degraded: "Actualizaciones en pausa; buscando mensajes nuevos…",
      typing: " está escribiendo…", failed: "No se pudo iniciar el chat. Inténtalo de nuevo.",
      sending: "Enviando…", not_sent: "No enviado",
      prechat_intro: "Antes de empezar, dinos quién eres.", prechat_name: "Tu nombre",
      prechat_email: "Tu correo electrónico", prechat_start: "Empezar el chat",
      prechat_skip: "Omitir", rating_comment: "¿Algo que añadir? (opcional)",
      rating_send: "Enviar valoración", rating_choose: "Elige un número del 1 al 5.",
      rating_thanks: "¡Gracias por tu opinión!", rating_again: "Empezar una nueva conversación",
      rating_stay: "O escribe abajo para seguir hablando.",
    },
    pt: {
      title: "Fale connosco", placeholder: "Escreva a sua mensagem…", send: "Enviar",
      open: "Chat", close: "Fechar", ai: "O nosso assistente",
      awaiting_agent: "À espera de uma pessoa da equipa…",
      queue_place: "Você é o número {position} — cerca de {minutes}", minute: "1 minuto",
      minutes: "{n} minutos", agent: "Agora está a falar com ",
      resolved: "Resolvido — escreva aqui se precisar de mais alguma coisa",
      closed: "Esta conversa está encerrada. Escreva para começar de novo.",
      connecting: "A ligar…", offline: "A restabelecer a ligação…",
      degraded: "Atualizações em pausa; a procurar mensagens novas…",
      typing: " está a escrever…", failed: "Não foi possível iniciar o chat. Tente novamente.",
      sending: "A enviar…", not_sent: "Não enviada",
      prechat_intro: "Antes de começar, diga-nos quem é.", prechat_name: "O seu nome",
      prechat_email: "O seu e-mail", prechat_start: "Iniciar chat", prechat_skip: "Saltar",
      rating_comment: "Algo a acrescentar? (opcional)", rating_send: "Enviar avaliação",
      rating_choose: "Escolha um número de 1 a 5.", rating_thanks: "Obrigado pela sua opinião!",
      rating_again: "Iniciar uma nova conversa",
      rating_stay: "Ou escreva abaixo para continuar a conversa.",
    },
    fr: {
      title: "Discutez avec nous", placeholder: "Écrivez votre message…", send: "Envoyer",
      open: "Chat", close: "Fermer", ai: "Notre assistant",
      awaiting_agent: "En attente d'un membre de l'équipe…",
      queue_place: "Vous êtes numéro {position} — environ {minutes}", minute: "1 minute",
      minutes: "{n} minutes", agent: "Vous parlez maintenant avec ",
      resolved: "Résolu — écrivez ici si vous avez besoin d'autre chose",
      closed: "Cette conversation est terminée. Écrivez pour en commencer une autre.",
      connecting: "Connexion…", offline: "Reconnexion…",
      degraded: "Mises à jour en pause ; recherche de nouveaux messages…",
      typing: " écrit…", failed: "Impossible de démarrer le chat. Veuillez réessayer.",
      sending: "Envoi…", not_sent: "Non envoyé",
      prechat_intro: "Avant de commencer, dites-nous qui vous êtes.", prechat_name: "Votre nom",
      prechat_email: "Votre e-mail", prechat_start: "Démarrer le chat", prechat_skip: "Passer",
      rating_comment: "Quelque chose à ajouter ? (facultatif)", rating_send: "Envoyer la note",
      rating_choose: "Choisissez un chiffre de 1 à 5.",
      rating_thanks: "Merci pour votre avis !", rating_again: "Commencer une nouvelle conversation",
      rating_stay: "Ou écrivez ci-dessous pour continuer la discussion.",
    },
    de: {
      title: "Chatten Sie mit uns", placeholder: "Ihre Nachricht…", send: "Senden",
      open: "Chat", close: "Schließen", ai: "Unser Assistent",
      awaiting_agent: "Warten auf eine Person aus dem Team…",
      queue_place: "Sie sind Nummer {position} — etwa {minutes}", minute: "1 Minute",
      minutes: "{n} Minuten", agent: "Sie sprechen jetzt mit ",
      resolved: "Gelöst — schreiben Sie hier, wenn Sie noch etwas brauchen",
      closed: "Dieses Gespräch ist beendet. Schreiben Sie, um ein neues zu beginnen.",
      connecting: "Verbinden…", offline: "Verbindung wird wiederhergestellt…",
      degraded: "Live-Aktualisierung pausiert; neue Nachrichten werden abgerufen…",
      typing: " schreibt…", failed: "Der Chat konnte nicht starten. Bitte versuchen Sie es erneut.",
      sending: "Wird gesendet…", not_sent: "Nicht gesendet",
      prechat_intro: "Bevor wir beginnen: Wer sind Sie?", prechat_name: "Ihr Name",
      prechat_email: "Ihre E-Mail-Adresse", prechat_start: "Chat starten",
      prechat_skip: "Überspringen", rating_comment: "Möchten Sie etwas ergänzen? (optional)",
      rating_send: "Bewertung senden", rating_choose: "Wählen Sie eine Zahl von 1 bis 5.",
      rating_thanks: "Danke für Ihre Rückmeldung!", rating_again: "Neues Gespräch beginnen",
      rating_stay: "Oder schreiben Sie unten weiter.",
    },
    it: {
      title: "Chatta con noi", placeholder: "Scrivi il tuo messaggio…", send: "Invia",
      open: "Chat", close: "Chiudi", ai: "Il nostro assistente",
      awaiting_agent: "In attesa di una persona del team…",
      queue_place: "Sei il numero {position} — circa {minutes}", minute: "1 minuto",
      minutes: "{n} minuti", agent: "Ora stai parlando con ",
      resolved: "Risolto — scrivi qui se ti serve altro",
      closed: "Questa conversazione è chiusa. Scrivi per iniziarne una nuova.",
      connecting: "Connessione…", offline: "Riconnessione…",
      degraded: "Aggiornamenti in pausa; controllo dei nuovi messaggi…",
      typing: " sta scrivendo…", failed: "Impossibile avviare la chat. Riprova.",
      sending: "Invio…", not_sent: "Non inviato",
      prechat_intro: "Prima di iniziare, dicci chi sei.", prechat_name: "Il tuo nome",
      prechat_email: "La tua email", prechat_start: "Inizia la chat", prechat_skip: "Salta",
      rating_comment: "Qualcosa da aggiungere? (facoltativo)", rating_send: "Invia valutazione",
      rating_choose: "Scegli un numero da 1 a 5.", rating_thanks: "Grazie per il tuo parere!",
      rating_again: "Inizia una nuova conversazione",
      rating_stay: "Oppure scrivi qui sotto per continuare.",
    },
  };

  // data-language="de" first, then the browser's preferred languages in order: "pt-BR" → "pt".
  function widgetLanguage() {
    var wanted = [script.getAttribute("data-language") || ""].concat(
      navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""]);
    for (var i = 0; i < wanted.length; i++) {
      var primary = String(wanted[i] || "").toLowerCase().split(/[-_]/)[0];
      if (Object.prototype.hasOwnProperty.call(LABELS, primary)) return primary;
    }
    return "en";
  }
  var language = widgetLanguage();
  var TEXT = {};
  Object.keys(LABELS.en).forEach(function (key) {
    TEXT[key] = LABELS[language][key] || LABELS.en[key];
  });
  TEXT.title = script.getAttribute("data-title") || TEXT.title;

  var RECONNECT_MIN_MS = 1000;
  var RECONNECT_MAX_MS = 30000;
  var POLL_MS = 5000;
  var TYPING_EVERY_MS = 3000;
  var RESEND_MS = 10000; // after "busy" / "rate_limited" / "server_error": send the list again
  var RETRYABLE = { busy: true, rate_limited: true, server_error: true };

  var conversation = loadConversation(); // {id, token} or null
  var socket = null;
  var attempt = 0;
  var reconnectTimer = null;
  var pollTimer = null;
  var lastId = 0;
  var seen = {};
  var unacked = []; // [{client_id, text}] in the order typed; persisted per conversation
  var pendingBubbles = {}; // client_id -> its "Sending…" bubble
  var resendTimer = null;
  var lastTypingSent = 0;
  var typingTimer = null;
  var connection = "idle"; // idle | connecting | live | degraded | offline
  var prechatMode = null; // "off" | "optional" | "required" once the server said; null before
  var prechatSkipped = false;
  // The form's answers once the server checked them: sent with the first message, so a form
  // filled in and then left behind stores nothing.
  var prechatFields = null;
  var CONTEXT_FIELDS = { page_url: true, referrer: true, language: true, time_zone: true };

  // --- storage ---------------------------------------------------------------------------
  function loadConversation() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(storageKey) || "null");
      if (saved && typeof saved.id === "number" && typeof saved.token === "string") return saved;
    } catch (e) { /* storage disabled or corrupt: start fresh */ }
    return null;
  }
  function saveConversation(value) {
    conversation = value;
    try {
      if (value) window.localStorage.setItem(storageKey, JSON.stringify(value));
      else window.localStorage.removeItem(storageKey);
    } catch (e) { /* the chat still works for this page view */ }
  }

  function unackedKey() {
    return storageKey + ":unacked:" + conversation.id;
  }
  function loadUnacked() {
    unacked = [];
    if (!conversation) return;
    try {
      var saved = JSON.parse(window.localStorage.getItem(unackedKey()) || "[]");
      if (Array.isArray(saved)) {
        unacked = saved.filter(function (item) {
          return item && typeof item.text === "string" && typeof item.client_id === "string" &&
            /^[A-Za-z0-9_-]{1,64}$/.test(item.client_id);
        });
      }
    } catch (e) { /* storage disabled or corrupt */ }
  }
  function saveUnacked() {
    if (!conversation) return;
    try {
      if (unacked.length) window.localStorage.setItem(unackedKey(), JSON.stringify(unacked));
      else window.localStorage.removeItem(unackedKey());
    } catch (e) { /* kept in memory for this page view */ }
  }
  function newClientId() {
    var cryptoApi = window.crypto;
    if (cryptoApi && cryptoApi.randomUUID) return cryptoApi.randomUUID();
    var bytes = new Uint8Array(16);
    if (cryptoApi && cryptoApi.getRandomValues) cryptoApi.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  // --- UI ----------------------------------------------------------------------------------
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  var host = el("div");
  host.setAttribute("data-live-escalation", "");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var css =
    ":host{all:initial}" +
    ".le{position:fixed;right:20px;bottom:20px;z-index:2147483000;font:14px/1.4 system-ui,sans-serif;color:#111}" +
    ".le-launch{background:" + color + ";color:#fff;border:0;border-radius:24px;padding:12px 18px;cursor:pointer;font:inherit;box-shadow:0 4px 12px rgba(0,0,0,.2)}" +
    ".le-panel{display:none;flex-direction:column;width:340px;max-width:calc(100vw - 40px);height:480px;max-height:calc(100vh - 100px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden}" +
    ".le.open .le-panel{display:flex}.le.open .le-launch{display:none}" +
    ".le-head{background:" + color + ";color:#fff;padding:10px 14px;display:flex;align-items:center;gap:8px}" +
    ".le-head b{flex:1}.le-x{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}" +
    ".le-status{font-size:12px;padding:6px 14px;background:#f3f4f6;color:#374151}" +
    ".le-list{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px}" +
    ".le-msg{max-width:80%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}" +
    ".le-customer{align-self:flex-end;background:" + color + ";color:#fff}" +
    ".le-ai,.le-agent{align-self:flex-start;background:#f3f4f6}" +
    ".le-system{align-self:center;background:none;color:#6b7280;font-size:12px;text-align:center}" +
    ".le-author{display:block;font-size:11px;color:#6b7280;margin-bottom:2px}" +
    ".le-note{font-size:12px;color:#6b7280;padding:0 14px;min-height:16px}" +
    ".le-error{color:#b91c1c}" +
    ".le-state{display:block;font-size:11px;opacity:.8;margin-top:2px}" +
    ".le-pending{opacity:.7}.le-failed{background:#fee2e2;color:#7f1d1d}" +
    ".le-form{display:flex;border-top:1px solid #e5e7eb}" +
    ".le-prechat{flex:1;overflow-y:auto;padding:16px 14px;display:flex;flex-direction:column;gap:6px}" +
    ".le-prechat label{font-size:12px;color:#374151;margin-top:6px}" +
    ".le-prechat input{border:1px solid #d1d5db;border-radius:6px;padding:8px;font:inherit}" +
    ".le-prechat input[aria-invalid=true]{border-color:#b91c1c}" +
    ".le-field-error{font-size:12px;color:#b91c1c;min-height:0}" +
    ".le-prechat-actions{display:flex;gap:8px;margin-top:10px}" +
    ".le-prechat-start{background:" + color + ";color:#fff;border:0;border-radius:6px;padding:8px 14px;font:inherit;cursor:pointer}" +
    ".le-prechat-skip{background:none;border:0;color:#374151;font:inherit;cursor:pointer;text-decoration:underline}" +
    ".le-hidden{display:none!important}" +
    ".le-input{flex:1;border:0;padding:12px;font:inherit;resize:none;outline:none}" +
    ".le-send{background:none;border:0;color:" + color + ";font:inherit;font-weight:600;padding:0 14px;cursor:pointer}";
  // Constructed stylesheets rather than <style> elements: a Content-Security-Policy without
  // 'unsafe-inline' for styles (ours, and many a host page's) refuses the element, not these.
  function addStyles(text) {
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet &&
        "replaceSync" in CSSStyleSheet.prototype) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(text);
      root.adoptedStyleSheets = root.adoptedStyleSheets.concat([sheet]);
    } else {
      var style = el("style");
      style.textContent = text;
      root.appendChild(style);
    }
  }
  addStyles(css);

  var frame = el("div", "le");
  frame.lang = language;
  var launch = el("button", "le-launch", TEXT.open);
  launch.type = "button";
  var panel = el("div", "le-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", TEXT.title);
  var head = el("div", "le-head");
  head.appendChild(el("b", "", TEXT.title));
  var closeButton = el("button", "le-x", "×");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", TEXT.close);
  head.appendChild(closeButton);
  var status = el("div", "le-status", TEXT.ai);
  var list = el("div", "le-list");
  list.setAttribute("aria-live", "polite");
  var note = el("div", "le-note");
  var form = el("form", "le-form");
  var input = el("textarea", "le-input");
  input.rows = 1;
  input.placeholder = TEXT.placeholder;
  input.setAttribute("aria-label", TEXT.placeholder);
  var sendButton = el("button", "le-send", TEXT.send);
  sendButton.type = "submit";
  form.appendChild(input);
  form.appendChild(sendButton);

  // The pre-chat form (hidden unless the channel asks for it).
  var prechat = el("form", "le-prechat le-hidden");
  prechat.noValidate = true; // the server checks the fields and says what is wrong
  prechat.appendChild(el("p", "le-prechat-intro", TEXT.prechat_intro));
  function prechatField(name, label, type, autocomplete) {
    var id = "le-prechat-" + name;
    var labelNode = el("label", "", label);
    labelNode.setAttribute("for", id);
    var field = el("input", "le-prechat-" + name);
    field.id = id;
    field.type = type;
    field.name = name;
    field.maxLength = name === "email" ? 254 : 200;
    field.autocomplete = autocomplete;
    var problem = el("div", "le-field-error le-prechat-" + name + "-error");
    problem.id = id + "-error";
    problem.setAttribute("role", "alert");
    field.setAttribute("aria-describedby", problem.id);
    prechat.appendChild(labelNode);
    prechat.appendChild(field);
    prechat.appendChild(problem);
    return { input: field, error: problem };
  }
  var prechatName = prechatField("name", TEXT.prechat_name, "text", "name");
  var prechatEmail = prechatField("email", TEXT.prechat_email, "email", "email");
  var prechatActions = el("div", "le-prechat-actions");
  var prechatStart = el("button", "le-prechat-start", TEXT.prechat_start);
  prechatStart.type = "submit";
  var prechatSkip = el("button", "le-prechat-skip", TEXT.prechat_skip);
  prechatSkip.type = "button";
  prechatActions.appendChild(prechatStart);
  prechatActions.appendChild(prechatSkip);
  prechat.appendChild(prechatActions);

  panel.appendChild(head);
  panel.appendChild(status);
  panel.appendChild(prechat);
  panel.appendChild(list);
  panel.appendChild(note);
  panel.appendChild(form);
  frame.appendChild(launch);
  frame.appendChild(panel);
  root.appendChild(frame);

  launch.addEventListener("click", function () {
    frame.classList.add("open");
    input.focus();
    askPrechatIfNeeded();
  });
  prechat.addEventListener("submit", function (event) {
    event.preventDefault();
    submitPrechat();
  });
  prechatSkip.addEventListener("click", function () {
    prechatSkipped = true;
    showPrechat(false);
  });
  closeButton.addEventListener("click", function () { frame.classList.remove("open"); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", sendTyping);

  var noteTimer = null;
  function showNote(text, isError) {
    note.textContent = text || "";
    note.className = "le-note" + (isError ? " le-error" : "");
    clearTimeout(noteTimer);
    if (text) noteTimer = setTimeout(function () { showNote(""); }, 6000);
  }

  function renderMessage(message) {
    if (!message || typeof message.id !== "number" || seen[message.id]) return;
    if (message.is_private_note) return;
    seen[message.id] = true;
    if (message.id > lastId) lastId = message.id;
    var bubble = el("div", "le-msg le-" + (message.sender || "system"));
    if (message.sender === "agent" && message.author_name) {
      bubble.appendChild(el("span", "le-author", message.author_name));
    }
    bubble.appendChild(document.createTextNode(String(message.text || "")));
    // Replayed frames arrive in id order; a late live frame is put in its place. Messages not
    // yet stored (no id: sending or not sent) stay below every stored one.
    var after = null;
    for (var i = list.children.length - 1; i >= 0; i--) {
      var child = list.children[i];
      if (child.hasAttribute("data-id") && Number(child.getAttribute("data-id")) < message.id) break;
      after = child;
    }
    bubble.setAttribute("data-id", String(message.id));
    list.insertBefore(bubble, after);
    if (!after) list.scrollTop = list.scrollHeight;
  }

  function renderPending(item) {
    var bubble = el("div", "le-msg le-customer le-pending");
    bubble.appendChild(document.createTextNode(item.text));
    bubble.appendChild(el("span", "le-state", TEXT.sending));
    bubble.setAttribute("data-client-id", item.client_id);
    pendingBubbles[item.client_id] = bubble;
    list.appendChild(bubble);
    list.scrollTop = list.scrollHeight;
  }

  function dropPending(clientId) {
    var kept = unacked.filter(function (item) { return item.client_id !== clientId; });
    var found = kept.length !== unacked.length;
    unacked = kept;
    if (found) saveUnacked();
    return found;
  }

  // The server's echo of a message it stored (or had stored): the message is sent.
  function acknowledge(clientId, message) {
    dropPending(clientId);
    var bubble = pendingBubbles[clientId];
    delete pendingBubbles[clientId];
    if (bubble && bubble.parentNode) bubble.parentNode.removeChild(bubble);
    renderMessage(message);
  }

  // A refusal that a resend would not change (too long, conversation gone, …).
  function markNotSent(clientId, reason) {
    dropPending(clientId);
    var bubble = pendingBubbles[clientId];
    delete pendingBubbles[clientId];
    if (!bubble) return;
    bubble.className = "le-msg le-customer le-failed";
    bubble.lastChild.textContent = TEXT.not_sent + (reason ? ": " + reason : "");
  }

  var currentMode = "ai";
  // resolved: the agent resolved the conversation (they may still write), so it no longer
  // says "Now speaking with …". statusText: the server's line in the customer's language.
  function showMode(mode, agentName, resolved, statusText) {
    if (mode === currentMode && mode === "awaiting_agent" && status.dataset.position) return;
    currentMode = mode;
    delete status.dataset.position;
    if (mode === "agent" && typeof statusText === "string" && statusText) status.textContent = statusText;
    else if (mode === "agent" && resolved) status.textContent = TEXT.resolved;
    else if (mode === "agent") status.textContent = TEXT.agent + (agentName || "");
    else status.textContent = TEXT[mode] || TEXT.ai;
  }

  // "You are number 3 — about 4 minutes", while waiting for an agent (queue.position frames).
  function showQueuePlace(place) {
    if (currentMode !== "awaiting_agent" || !place) return;
    var position = parseInt(place.position, 10), minutes = parseInt(place.wait_minutes, 10);
    if (!(position > 0) || !(minutes > 0)) return;
    status.dataset.position = String(position);
    // The server's sentence is in the customer's language with its plural form; the English
    // fallback is for a server that sends none.
    status.textContent = typeof place.text === "string" && place.text ? place.text :
      TEXT.queue_place.replace("{position}", position).replace(
        "{minutes}", minutes === 1 ? TEXT.minute : TEXT.minutes.replace("{n}", minutes));
  }

  function showConnection(state) {
    connection = state;
    if (state === "degraded") showNote(TEXT.degraded);
    else if (state === "offline") showNote(TEXT.offline);
    else if (state === "live") showNote("");
  }

  // --- the end of a conversation: rate it 1–5 (and a comment), then go on or start anew ----
  var rating = (function () {
    addStyles(
      ".le-rating{display:none;border-top:1px solid #e5e7eb;padding:10px 14px;background:#f9fafb}" +
      ".le-rating.shown{display:block}.le-rating p{margin:0 0 6px}" +
      ".le-stars{display:flex;gap:6px;margin-bottom:6px}" +
      ".le-star{flex:1;border:1px solid #d1d5db;background:#fff;border-radius:8px;padding:6px 0;font:inherit;cursor:pointer}" +
      ".le-star[aria-pressed=true]{background:" + color + ";border-color:" + color + ";color:#fff}" +
      ".le-comment{width:100%;box-sizing:border-box;border:1px solid #d1d5db;border-radius:8px;padding:6px;font:inherit;resize:none}" +
      ".le-rate,.le-again{margin-top:6px;background:" + color + ";color:#fff;border:0;border-radius:8px;padding:6px 12px;font:inherit;cursor:pointer}"
    );
    var card = el("div", "le-rating");
    card.setAttribute("role", "group");
    var prompt = el("p", "le-rating-prompt");
    var stars = el("div", "le-stars");
    var comment = el("textarea", "le-comment");
    comment.rows = 2;
    comment.maxLength = 1000;
    comment.placeholder = TEXT.rating_comment;
    comment.setAttribute("aria-label", TEXT.rating_comment);
    var send = el("button", "le-rate", TEXT.rating_send);
    send.type = "button";
    var thanks = el("p", "le-thanks", TEXT.rating_thanks);
    var stay = el("p", "le-stay", TEXT.rating_stay);
    var again = el("button", "le-again", TEXT.rating_again);
    again.type = "button";
    var escalation = null, score = 0, rated = {};
    for (var n = 1; n <= 5; n++) {
      var star = el("button", "le-star", String(n));
      star.type = "button";
      star.setAttribute("aria-pressed", "false");
      star.setAttribute("data-score", String(n));
      stars.appendChild(star);
    }
    stars.addEventListener("click", function (event) {
      var chosen = parseInt(event.target.getAttribute("data-score"), 10);
      if (!(chosen >= 1 && chosen <= 5)) return;
      score = chosen;
      Array.prototype.forEach.call(stars.children, function (button) {
        button.setAttribute("aria-pressed", String(button.getAttribute("data-score") === String(chosen)));
      });
    });
    function fill(nodes) {
      while (card.firstChild) card.removeChild(card.firstChild);
      nodes.forEach(function (node) { card.appendChild(node); });
    }
    function show(request) {
      var id = parseInt(request && request.escalation, 10);
      if (!(id > 0) || rated[id] || escalation === id) return;
      escalation = id;
      score = 0;
      comment.value = "";
      prompt.textContent = String(request.prompt || "");
      Array.prototype.forEach.call(stars.children, function (b) { b.setAttribute("aria-pressed", "false"); });
      fill([prompt, stars, comment, send]);
      card.className = "le-rating shown";
      card.setAttribute("aria-label", prompt.textContent);
    }
    function done(id) {
      rated[id] = true;
      if (escalation !== id && escalation !== null) return;
      escalation = id;
      fill([thanks, stay, again]);
      card.className = "le-rating shown";
    }
    function hide() {
      card.className = "le-rating";
      escalation = null;
    }
    send.addEventListener("click", function () {
      if (!conversation || !escalation) return;
      if (!score) { showNote(TEXT.rating_choose, true); return; }
      var id = escalation;
      send.disabled = true;
      fetch(server + "/widget/conversations/" + conversation.id + "/rating/", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Customer-Token": conversation.token },
        body: JSON.stringify({ escalation: id, score: score, comment: comment.value.trim() }),
      })
        .then(function (response) {
          return response.json().then(function (body) { return { status: response.status, body: body }; });
        })
        .then(function (result) {
          if (result.status === 201 || (result.body && result.body.code === "already_rated")) done(id);
          else showNote((result.body && result.body.message) || TEXT.failed, true);
        })
        .catch(function () { showNote(TEXT.offline, true); })
        .then(function () { send.disabled = false; });
    });
    again.addEventListener("click", function () { // the next message starts a new conversation
      var old = socket;
      socket = null;
      if (old) old.close();
      forget();
      input.focus();
      prechatSkipped = false; // a new conversation: the channel's pre-chat form, if any, again
      prechatFields = null;
      askPrechatIfNeeded();
    });
    panel.insertBefore(card, note);
    return { show: show, done: done, hide: hide };
  })();

  // --- the pre-chat form ------------------------------------------------------------------
  function askPrechatIfNeeded() {
    if (conversation || prechatSkipped || prechatFields) return;
    if (prechatMode !== null) {
      showPrechat(prechatMode !== "off");
      return;
    }
    fetch(server + "/widget/config/?channel=" + encodeURIComponent(channelKey))
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        var mode = body && body.prechat && body.prechat.mode;
        prechatMode = mode === "optional" || mode === "required" ? mode : "off";
        if (!conversation && !prechatSkipped && !prechatFields) showPrechat(prechatMode !== "off");
      })
      .catch(function () { /* no form: the first message starts the chat as before */ });
  }

  function showPrechat(show) {
    prechat.classList.toggle("le-hidden", !show);
    list.classList.toggle("le-hidden", show);
    form.classList.toggle("le-hidden", show);
    prechatSkip.classList.toggle("le-hidden", prechatMode !== "optional");
    if (show) prechatName.input.focus();
    else input.focus();
  }

  function showFieldError(field, message) {
    [prechatName, prechatEmail].forEach(function (item) {
      var bad = item === field;
      item.error.textContent = bad ? message : "";
      item.input.setAttribute("aria-invalid", bad ? "true" : "false");
    });
    if (field) field.input.focus();
  }

  // The server checks the form (POST /widget/prechat/, nothing stored); the conversation
  // starts with the first message, carrying the answers.
  function submitPrechat() {
    showFieldError(null, "");
    prechatStart.disabled = true;
    var fields = { name: prechatName.input.value.trim(), email: prechatEmail.input.value.trim() };
    fetch(server + "/widget/prechat/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ channel: channelKey, name: fields.name, email: fields.email }),
    })
      .then(function (response) {
        if (response.ok) {
          prechatFields = fields;
          showPrechat(false);
          return;
        }
        return response.json().then(function (body) { showStartRefusal(body || {}); });
      })
      .catch(function () { showNote(TEXT.failed, true); })
      .then(function () { prechatStart.disabled = false; });
  }

  // What the page tells the agent about the visit (the server checks and bounds each value).
  function visitContext() {
    var context = {};
    try {
      var page = window.location.href.split("#")[0];
      if (/^https?:/.test(page)) context.page_url = page.slice(0, 2000);
      if (/^https?:/.test(document.referrer)) context.referrer = document.referrer.slice(0, 2000);
      if (navigator.language) context.language = String(navigator.language).slice(0, 35);
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) context.time_zone = String(zone).slice(0, 64);
    } catch (e) { /* an old browser: start without context */ }
    return context;
  }

  // POST /widget/conversations/ with the visit's context; if the server refuses a context
  // value, start again without the context (it must never stand between a customer and a chat).
  function postStart(fields, withoutContext) {
    var body = { channel: channelKey };
    var context = withoutContext ? {} : visitContext();
    Object.keys(context).forEach(function (key) { body[key] = context[key]; });
    Object.keys(fields).forEach(function (key) { body[key] = fields[key]; });
    return fetch(server + "/widget/conversations/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    })
      .then(function (response) {
        return response.json().then(function (json) {
          return { ok: response.ok, status: response.status, body: json };
        });
      })
      .then(function (result) {
        if (!result.ok && !withoutContext && result.body && CONTEXT_FIELDS[result.body.field]) {
          return postStart(fields, true);
        }
        return result;
      });
  }

  function began(body) {
    saveConversation({ id: body.id, token: body.customer_token });
    loadUnacked();
    showMode(body.mode, "");
    connect();
  }

  // --- sending -------------------------------------------------------------------------
  function submit() {
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    if (!conversation) {
      startConversation(text);
      return;
    }
    var item = { client_id: newClientId(), text: text };
    unacked.push(item);
    saveUnacked();
    renderPending(item);
    if (!sendMessage(item)) showNote(TEXT.offline);
  }

  function sendMessage(item) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify({ type: "message", text: item.text, client_id: item.client_id }));
    return true;
  }

  function resendUnacked() {
    clearTimeout(resendTimer);
    resendTimer = null;
    unacked.slice().forEach(sendMessage);
  }

  function scheduleResend() {
    if (resendTimer || !unacked.length) return;
    resendTimer = setTimeout(resendUnacked, RESEND_MS * (0.75 + Math.random() / 2));
  }

  function sendTyping() {
    var now = Date.now();
    if (!socket || socket.readyState !== WebSocket.OPEN || now - lastTypingSent < TYPING_EVERY_MS) return;
    lastTypingSent = now;
    socket.send(JSON.stringify({ type: "typing" }));
  }

  // A refusal of the form's fields shows under the field; anything else as a note.
  function showStartRefusal(body) {
    var field = body.field === "name" ? prechatName : body.field === "email" ? prechatEmail : null;
    if (field) showFieldError(field, body.message || TEXT.failed);
    else showNote(body.message || TEXT.failed, true);
  }

  function startConversation(text) {
    sendButton.disabled = true;
    var fields = { text: text };
    if (prechatFields) {
      fields.name = prechatFields.name;
      fields.email = prechatFields.email;
    }
    postStart(fields)
      .then(function (result) {
        var body = result.body || {};
        if (!result.ok && (body.code === "prechat_required" || body.field === "name" || body.field === "email")) {
          // the channel changed its mind since the form (or the page) was shown: ask again
          if (body.code === "prechat_required") prechatMode = "required";
          prechatSkipped = false;
          prechatFields = null;
          input.value = text;
          showPrechat(true);
          showStartRefusal(body);
          return;
        }
        if (!result.ok) throw { shown: (result.body && result.body.message) || TEXT.failed };
        began(result.body);
      })
      .catch(function (error) { // a refusal says why; a network or CORS failure cannot
        input.value = text;
        showNote((error && error.shown) || TEXT.failed, true);
      })
      .then(function () { sendButton.disabled = false; });
  }

  // --- the socket ------------------------------------------------------------------------
  function socketUrl() {
    return server.replace(/^http/, "ws") + "/ws/conversations/" + conversation.id +
      "/?token=" + encodeURIComponent(conversation.token) + "&after=" + lastId;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (!conversation) return;
    if (socket && socket.readyState <= WebSocket.OPEN) return;
    showConnection("connecting");
    var ws = new WebSocket(socketUrl());
    socket = ws;
    var ready = false;
    ws.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (!ready) { // the first frame, not "open": a refusal is accepted, then closed with its code
        ready = true;
        attempt = 0;
        resendUnacked(); // the server stores each client id once: resending is safe
      }
      handle(data);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      if (event.code === 4403 || event.code === 4404) { // the conversation is not ours any more
        forget();
        return;
      }
      if (event.code === 4400) lastId = 0;
      // 4429 (too many sockets) and the rest: try again with the growing back-off.
      showConnection("offline");
      startPolling();
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    var ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * Math.pow(2, attempt));
    var delay = ceiling / 2 + Math.random() * ceiling / 2; // jitter: no reconnect stampede
    attempt += 1;
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  function handle(data) {
    switch (data && data.type) {
      case "message.created":
        if (typeof data.client_id === "string") acknowledge(data.client_id, data.message);
        else renderMessage(data.message);
        break;
      case "conversation.mode":
        showMode(data.mode, data.agent_name, data.resolved === true, data.status);
        break;
      case "rating.requested":
        rating.show(data);
        break;
      case "rating.recorded":
        rating.done(data.escalation);
        break;
      case "queue.position":
        showQueuePlace(data);
        break;
      case "typing":
        note.className = "le-note";
        note.textContent = (data.name || "") + TEXT.typing;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { note.textContent = ""; }, 4000);
        break;
      case "connection.state":
        showConnection(data.state);
        if (data.state === "degraded") startPolling();
        else stopPolling();
        break;
      case "error":
        if (typeof data.client_id === "string" && !RETRYABLE[data.code]) {
          markNotSent(data.client_id, data.message || data.code);
        } else if (RETRYABLE[data.code]) {
          scheduleResend(); // "busy" and "rate_limited" do not say which message: resend all
        }
        showNote(data.message || data.code, true);
        break;
    }
  }

  function forget() {
    if (conversation) {
      unacked = [];
      saveUnacked(); // the conversation is not ours any more: nothing to send to it
    }
    pendingBubbles = {};
    clearTimeout(resendTimer);
    resendTimer = null;
    saveConversation(null);
    stopPolling();
    clearTimeout(reconnectTimer);
    lastId = 0;
    seen = {};
    while (list.firstChild) list.removeChild(list.firstChild);
    rating.hide();
    showMode("ai", "");
    showConnection("idle");
  }

  // --- polling fallback -------------------------------------------------------------------
  function startPolling() {
    if (pollTimer || !conversation) return;
    pollTimer = setTimeout(poll, POLL_MS * (0.75 + Math.random() / 2));
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  function poll() {
    pollTimer = null;
    if (!conversation || connection === "live") return;
    fetch(server + "/widget/conversations/" + conversation.id + "/messages/?after=" + lastId, {
      headers: { "X-Customer-Token": conversation.token },
    })
      .then(function (response) {
        if (response.status === 403) { forget(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        if (!body) return;
        body.messages.forEach(renderMessage);
        showMode(body.mode, body.agent_name, body.resolved === true, body.status);
        showQueuePlace(body.queue);
        if (body.rating) rating.show(body.rating);
        if (body.has_more) pollTimer = setTimeout(poll, 0);
      })
      .catch(function () { /* offline: try again on the next tick */ })
      .then(function () { if (connection !== "live") startPolling(); });
  }

  window.addEventListener("online", function () {
    attempt = 0;
    connect();
  });

  function mount() {
    document.body.appendChild(host);
    if (conversation) {
      loadUnacked();
      unacked.forEach(renderPending);
      connect();
    }
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
