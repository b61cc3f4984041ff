/* Routing on the queue screen: each row's SLA time left ticks down and turns amber (a quarter
 * of the target left) then red (breached); an offer shows the seconds left to accept. The
 * server renders the same text without JavaScript; this only keeps it current. */
(function () {
  "use strict";

  var offsetMs = 0;
  var serverNow = Date.parse(document.body.dataset.serverNow || "");
  if (!isNaN(serverNow)) offsetMs = serverNow - Date.now();

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function tick() {
    var now = Date.now() + offsetMs;
    document.querySelectorAll(".sla[data-sla-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.slaDue), since = Date.parse(el.dataset.slaSince);
      if (isNaN(due) || isNaN(since)) return;
      var left = (due - now) / 1000;
      var amber = (due - since) / 4000;
      el.classList.toggle("sla-red", left <= 0);
      el.classList.toggle("sla-amber", left > 0 && left <= amber);
      el.textContent = left > 0 ? clock(left) + " left" : "SLA breached " + clock(-left) + " ago";
    });
    document.querySelectorAll(".offer[data-offer-expires]").forEach(function (el) {
      var expires = Date.parse(el.dataset.offerExpires);
      var label = el.querySelector(".offer-left");
      if (isNaN(expires) || !label) return;
      var left = (expires - now) / 1000;
      label.textContent = left > 0 ? Math.ceil(left) + " s to accept" : "expiring…";
      // Past the timeout the server refuses both answers; the sweep moves the offer on.
      el.querySelectorAll("button").forEach(function (button) { button.disabled = left <= 0; });
    });
  }

  tick();
  setInterval(tick, 1000);
})();
