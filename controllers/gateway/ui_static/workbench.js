// The reviewer's workbench (/ui/review): reserve a pair, show it blind, judge it by button or key.
// Hand-written, no library. Talks only to the gateway's own /ui/review calls (same origin: the
// HttpOnly session cookie goes along, and the browser sends the Origin the gateway checks). Pair text
// is set with textContent, never as markup; the figures come back as HTML the server wrote (escaped).
"use strict";
(function () {
  var bench, pair, current = null, busy = false;
  var VERDICT_KEYS = { "1": "left", "a": "left", "2": "right", "b": "right", "t": "tie", "x": "bothBad" };
  var SAID = { left: "Answer A is better", right: "Answer B is better", tie: "Tie", bothBad: "Both bad" };

  function byId(id) { return document.getElementById(id); }
  function namespace() { return bench.getAttribute("data-namespace"); }
  function policy() { return bench.getAttribute("data-policy") || null; }

  function announce(message) { byId("announce").textContent = message; }
  function problem(message) { byId("problem").textContent = message; }

  // One call to /ui/review: resolves with the JSON body, rejects with the gateway's own words.
  function call(method, path, body, key) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    if (key) { headers["Idempotency-Key"] = key; }
    return window.fetch(path, {
      method: method, headers: headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (answer) {
      return answer.json().catch(function () { return {}; }).then(function (found) {
        if (answer.ok) { return found; }
        var error = new Error(found.error || ("HTTP " + answer.status));
        error.status = answer.status;
        throw error;
      });
    });
  }

  function setBusy(state) {
    busy = state;
    pair.setAttribute("aria-busy", String(state));
  }

  function showExpiry() {
    if (!current) { return; }
    var seconds = Math.round((Date.parse(current.expiresAt) - Date.now()) / 1000);
    var expiry = byId("expiry");
    if (seconds > 0) {
      var minutes = Math.floor(seconds / 60);
      expiry.textContent = "Reserved for you: " + (minutes ? minutes + " min " : "") + (seconds % 60) +
        " s left.";
      expiry.removeAttribute("data-expired");
      return;
    }
    if (expiry.getAttribute("data-expired") !== "true") {
      expiry.setAttribute("data-expired", "true");
      expiry.textContent = "Your reservation expired: this pair went back to the queue. Press n for the next pair.";
      announce("Your reservation expired.");
    }
  }

  function clearDetails() {
    byId("correction").value = "";
    byId("note").value = "";
    Array.prototype.forEach.call(bench.querySelectorAll("input[name=tag]"), function (box) { box.checked = false; });
  }

  function render(reservation) {
    current = reservation;
    var empty = byId("empty");
    if (!reservation) {
      pair.hidden = true;
      empty.hidden = false;
      pair.setAttribute("data-state", "empty");
      pair.removeAttribute("data-pair-id");
      announce("Nothing left for you in this queue.");
      return;
    }
    empty.hidden = true;
    pair.hidden = false;
    byId("prompt").textContent = reservation.prompt;
    byId("answer-a").textContent = reservation.left;
    byId("answer-b").textContent = reservation.right;
    byId("guidelines-policy").textContent = reservation.policy ? "Policy " + reservation.policy + "." : "No policy matches this pair: the defaults apply.";
    byId("guidelines").textContent = reservation.guidelines || "This policy has no guidelines.";
    pair.setAttribute("data-pair-id", reservation.pairId);
    pair.setAttribute("data-state", "ready");
    showExpiry();
  }

  function refreshFigures() {
    var query = "?namespace=" + encodeURIComponent(namespace()) + (policy() ? "&policy=" + encodeURIComponent(policy()) : "");
    return window.fetch("/ui/review/figures" + query, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) { if (html !== null) { byId("figures").innerHTML = html; } })
      .catch(function () { /* the figures stay as they were; the next refresh tries again */ });
  }

  function failed(error) {
    if (error.status === 401) {
      problem("Your sign-in has ended: sign in again (/ui/sign-in).");
    } else {
      problem("Not saved: " + error.message + (error.status === 409 || error.status === 404 ? ". Press n for the next pair." : ""));
    }
    announce("Error: " + error.message);
  }

  function next(focusPair) {
    if (busy) { return; }
    setBusy(true);
    pair.setAttribute("data-state", "loading");
    call("POST", "/ui/review/reservations", { namespace: namespace(), policy: policy() })
      .then(function (found) {
        render(found.reservation);
        refreshFigures(); // the reservation just made counts as reserved
        if (focusPair && found.reservation) { pair.focus(); }
        if (!found.reservation && focusPair) { byId("again").focus(); }
      })
      .catch(failed)
      .then(function () { setBusy(false); });
  }

  function tags() {
    return Array.prototype.filter.call(bench.querySelectorAll("input[name=tag]"), function (box) { return box.checked; })
      .map(function (box) { return box.value; });
  }

  function judge(verdict) {
    if (busy || !current) { return; }
    var correction = byId("correction").value;
    var body = { namespace: namespace(), pairId: current.pairId, verdict: verdict, tags: tags(), note: byId("note").value };
    if (correction.trim()) { body.correction = correction; }
    var key = "ui-" + current.pairId + "-" + Date.now().toString(36) + Math.random().toString(36).slice(2);
    setBusy(true);
    problem("");
    call("POST", "/ui/review/verdicts", body, key)
      .then(function (saved) {
        var extra = saved.correctionPairs && saved.correctionPairs.length ? " Your correction was saved as a new pair." : "";
        announce("Saved: " + SAID[verdict] + "." + extra);
        clearDetails();
        current = null;
        setBusy(false);
        refreshFigures();
        next(true);
      })
      .catch(function (error) { failed(error); setBusy(false); });
  }

  function skip() {
    if (busy || !current) { return; }
    var path = "/ui/review/reservations/" + encodeURIComponent(current.pairId) + "?namespace=" + encodeURIComponent(namespace());
    setBusy(true);
    problem("");
    call("DELETE", path)
      .then(function () { announce("Skipped."); })
      .catch(failed)
      .then(function () { current = null; clearDetails(); setBusy(false); refreshFigures(); next(true); });
  }

  function typing(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName.toLowerCase();
    return tag === "textarea" || (tag === "input" && target.type === "text") || target.isContentEditable;
  }

  function openHelp() {
    var dialog = byId("help");
    if (!dialog.open) { dialog.showModal(); byId("help-close").focus(); }
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (byId("help").open) { return; } // the dialog closes itself on Escape
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); pair.focus(); }
      return;
    }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === "?") { event.preventDefault(); openHelp(); return; }
    if (VERDICT_KEYS[key] && !pair.hidden) { event.preventDefault(); judge(VERDICT_KEYS[key]); return; }
    if (key === "s") { event.preventDefault(); skip(); return; }
    if (key === "n") { event.preventDefault(); problem(""); next(true); return; }
    if (key === "c" && !pair.hidden) { event.preventDefault(); byId("correction").focus(); }
  }

  function wire() {
    Array.prototype.forEach.call(bench.querySelectorAll("[data-verdict]"), function (button) {
      button.addEventListener("click", function () { judge(button.getAttribute("data-verdict")); });
    });
    byId("skip").addEventListener("click", skip);
    byId("again").addEventListener("click", function () { next(true); });
    byId("help-open").addEventListener("click", openHelp);
    byId("help-close").addEventListener("click", function () { byId("help").close(); });
    byId("help").addEventListener("close", function () { byId("help-open").focus(); });
    document.addEventListener("keydown", onKey);
  }

  document.addEventListener("DOMContentLoaded", function () {
    bench = byId("workbench");
    pair = byId("pair");
    if (!bench || !pair) { return; }
    wire();
    window.setInterval(showExpiry, 1000);
    // Others' verdicts move the queue and the agreement: refresh the figures now and then too.
    window.setInterval(function () { if (!document.hidden) { refreshFigures(); } }, 10000);
    next(false);
  });
})();
