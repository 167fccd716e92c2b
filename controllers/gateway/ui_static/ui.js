// Kaizen's pages: the theme toggle (remembered in localStorage) and the dashboard's live panel.
// Hand-written, no library. Runs in <head> so the remembered theme applies before the first paint;
// everything that needs the page waits for DOMContentLoaded. Nothing here reads or stores a token:
// the session cookie is HttpOnly and every request simply carries it (same origin).
"use strict";
(function () {
  var KEY = "kaizen-theme";
  var root = document.documentElement;

  function remembered() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }

  function effective() {
    var chosen = root.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") { return chosen; }
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  var saved = remembered();
  if (saved === "light" || saved === "dark") { root.setAttribute("data-theme", saved); }

  function setUpToggle() {
    var button = document.getElementById("theme-toggle");
    if (!button) { return; }
    var show = function () { button.setAttribute("aria-pressed", String(effective() === "dark")); };
    show();
    button.addEventListener("click", function () {
      var next = effective() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { window.localStorage.setItem(KEY, next); } catch (e) { /* private mode: not remembered */ }
      show();
    });
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function setUpLive() {
    var status = document.getElementById("live");
    var target = document.getElementById("panel");
    if (!status || !target) { return; }
    var source = status.getAttribute("data-live");
    var last = target.innerHTML;
    var poll = function () {
      if (document.hidden) { window.setTimeout(poll, 2000); return; }
      window.fetch(source, { credentials: "same-origin", cache: "no-store" })
        .then(function (answer) {
          if (answer.status === 401) { throw new Error("signed-out"); }
          if (!answer.ok) { throw new Error("HTTP " + answer.status); }
          return answer.text();
        })
        .then(function (html) {
          if (html !== last) {
            target.innerHTML = html;
            last = html;
            status.textContent = "Live: updated at " + clock() + ".";
          }
          window.setTimeout(poll, 2000);
        })
        .catch(function (error) {
          if (error.message === "signed-out") {
            status.textContent = "Your sign-in has ended. ";
            var link = document.createElement("a");
            link.href = "/ui/sign-in";
            link.textContent = "Sign in again";
            status.appendChild(link);
            return;
          }
          status.textContent = "Live updates paused (" + error.message + "); retrying.";
          window.setTimeout(poll, 5000);
        });
    };
    window.setTimeout(poll, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpToggle();
    setUpLive();
  });
})();
