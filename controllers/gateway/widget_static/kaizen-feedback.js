/* <kaizen-feedback>: the feedback widget an agent's own page embeds under each answer (Kaizen gateway).

   <script src="https://GATEWAY/widget/kaizen-feedback.js" defer></script>
   <kaizen-feedback namespace="team-a" request-id="REQUEST ID" token="FEEDBACK TOKEN"></kaizen-feedback>

   Attributes: gateway (default: the origin this script came from), namespace, request-id (the router's
   x-kaizen-request-id) or run-id, token (`kaizen token create --role feedback ...`: it can only post
   feedback, since anyone who opens the page can read it), author (optional). It posts one
   /v1/feedback/batch with an Idempotency-Key hashed from the target and the content, so a double click
   or a retry writes once. Themable from outside with the --kaizen-feedback-* custom properties below.
   No dependencies and no build step: it is served as written. */
(() => {
  "use strict";

  // Read now: document.currentScript is only set while this script's top level runs.
  const SCRIPT_ORIGIN = document.currentScript
    ? new URL(document.currentScript.src, location.href).origin
    : location.origin;

  const STYLE = `
:host { display: block; font: var(--kaizen-feedback-font, inherit);
  --fg: var(--kaizen-feedback-fg, #1b1f24); --bg: var(--kaizen-feedback-bg, #ffffff);
  --muted: var(--kaizen-feedback-muted, #4a5360); --border: var(--kaizen-feedback-border, #8a94a0);
  --accent: var(--kaizen-feedback-accent, #0b5cad); --on-accent: var(--kaizen-feedback-on-accent, #ffffff);
  --error: var(--kaizen-feedback-error, #a4161a); --radius: var(--kaizen-feedback-radius, 6px); }
@media (prefers-color-scheme: dark) {
  :host { --fg: var(--kaizen-feedback-fg, #e8eaed); --bg: var(--kaizen-feedback-bg, #1d2127);
    --muted: var(--kaizen-feedback-muted, #b3bac4); --border: var(--kaizen-feedback-border, #7d8794);
    --accent: var(--kaizen-feedback-accent, #8cc4ff); --on-accent: var(--kaizen-feedback-on-accent, #0d1117);
    --error: var(--kaizen-feedback-error, #ff9b9b); } }
form { color: var(--fg); background: var(--bg); border: 1px solid var(--border); border-radius: var(--radius);
  padding: .75rem; display: grid; gap: .6rem; max-width: 36rem; }
fieldset { border: 0; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
legend { padding: 0 0 .3rem; font-weight: 600; }
button, textarea { font: inherit; color: var(--fg); background: var(--bg); border: 1px solid var(--border);
  border-radius: var(--radius); }
button { padding: .3rem .7rem; cursor: pointer; }
button svg { vertical-align: -3px; }
button[aria-pressed="true"], button[type="submit"] { background: var(--accent); color: var(--on-accent);
  border-color: var(--accent); }
button:disabled { opacity: .75; cursor: progress; }
.stars label { display: inline-flex; align-items: center; gap: .2rem; margin-right: .5rem; }
label.block { display: grid; gap: .3rem; color: var(--fg); }
textarea { min-height: 4rem; padding: .4rem; resize: vertical; }
.hint { color: var(--muted); font-size: .9em; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
[role="status"] { min-height: 1.3em; margin: 0; }
[role="status"].error { color: var(--error); }`;

  // Drawn here rather than an emoji: a system without an emoji font shows an empty box instead.
  const THUMB = (turn) => `<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">` +
    `<path fill="currentColor" transform="rotate(${turn} 12 12)" d="M3 10h4v11H3z` +
    `M9 10l4-8c1.5 0 2.5 1 2.2 2.6L14.6 9H20a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.6 21H9z"/></svg>`;

  const TEMPLATE = `<style>${STYLE}</style>
<form novalidate>
  <fieldset class="thumbs"><legend>Was this answer helpful?</legend>
    <button type="button" data-thumbs="1" aria-pressed="false">${THUMB(0)} Helpful</button>
    <button type="button" data-thumbs="-1" aria-pressed="false">${THUMB(180)} Not helpful</button>
  </fieldset>
  <fieldset class="stars"><legend>Rating</legend>
    ${[1, 2, 3, 4, 5].map((n) => `<label><input type="radio" name="rating" value="${n}">${n}</label>`).join("")}
    <span class="hint">1 poor, 5 excellent</span>
  </fieldset>
  <label class="block">Correction (optional): what the answer should have been
    <textarea name="correction" maxlength="20000"></textarea></label>
  <div><button type="submit">Send feedback</button></div>
  <p role="status" aria-live="polite"></p>
</form>`;

  // A deterministic 4 x 53-bit hash (cyrb53-style mixing with four seeds): the Idempotency-Key must be
  // the same for the same content on every click, in every context. crypto.subtle would do, but it only
  // exists in secure contexts, and an agent's page on plain http must work too. Not a security hash.
  function hashHex(text) {
    const part = (seed) => {
      let h1 = 0xdeadbeef ^ seed;
      let h2 = 0x41c6ce57 ^ seed;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        h1 = Math.imul(h1 ^ c, 2654435761);
        h2 = Math.imul(h2 ^ c, 1597334677);
      }
      h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
      h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
      return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
    };
    return [1, 2, 3, 4].map(part).join("");
  }

  // The gateway's error body is {"error": "...", "problems": [...]}; say its sentence, whatever the status.
  async function failure(response) {
    if (response.status === 503 || response.status === 429) {
      return "The feedback service is busy right now; please try again later.";
    }
    let said = "";
    try {
      const body = await response.json();
      said = typeof body.error === "string" ? body.error : (body.error && body.error.message) || "";
    } catch (_) {
      said = "";
    }
    return `Not recorded (${response.status}): ${said || response.statusText || "the gateway refused it"}`;
  }

  class KaizenFeedback extends HTMLElement {
    constructor() {
      super();
      this.thumbs = null;
      this.busy = false;
      this.attachShadow({ mode: "open" }).innerHTML = TEMPLATE;
      const root = this.shadowRoot;
      this.form = root.querySelector("form");
      this.status = root.querySelector('[role="status"]');
      for (const button of root.querySelectorAll("[data-thumbs]")) {
        button.addEventListener("click", () => this.choose(Number(button.dataset.thumbs)));
      }
      this.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.submit();
      });
    }

    // A page that reuses the element for the next answer changes its id: start over, nothing carried.
    static get observedAttributes() {
      return ["request-id", "run-id"];
    }

    attributeChangedCallback(_name, before, after) {
      if (before === null || before === after) return;
      this.form.reset();
      if (this.thumbs !== null) this.choose(this.thumbs);
      this.say("", false);
    }

    choose(value) {
      this.thumbs = this.thumbs === value ? null : value; // a second press takes the vote back
      for (const button of this.shadowRoot.querySelectorAll("[data-thumbs]")) {
        button.setAttribute("aria-pressed", String(Number(button.dataset.thumbs) === this.thumbs));
      }
    }

    record() {
      const checked = this.form.querySelector('input[name="rating"]:checked');
      const correction = this.form.querySelector("textarea").value.trim();
      const record = {};
      if (this.getAttribute("run-id")) record.runId = this.getAttribute("run-id");
      else record.requestId = this.getAttribute("request-id") || "";
      if (this.thumbs !== null) record.thumbs = this.thumbs;
      if (checked) record.rating = Number(checked.value);
      if (correction) record.correction = correction;
      if (this.getAttribute("author")) record.author = this.getAttribute("author");
      return record;
    }

    say(text, isError) {
      this.status.textContent = text;
      this.status.classList.toggle("error", Boolean(isError));
    }

    async submit() {
      if (this.busy) return; // the key below makes a repeat harmless; this spares the request too
      const record = this.record();
      if (!record.runId && !record.requestId) return this.say("Not recorded: this widget names no answer.", true);
      if (record.thumbs === undefined && !record.rating && !record.correction) {
        return this.say("Choose thumbs up or down, a rating, or write a correction first.", true);
      }
      const body = { namespace: this.getAttribute("namespace") || undefined, feedback: [record] };
      const text = JSON.stringify(body);
      this.busy = true;
      this.form.querySelector('button[type="submit"]').disabled = true;
      this.say("Sending…", false);
      try {
        const response = await fetch(`${this.getAttribute("gateway") || SCRIPT_ORIGIN}/v1/feedback/batch`, {
          method: "POST",
          mode: "cors",
          credentials: "omit", // the token is the only credential; no cookies ever cross
          headers: {
            "Content-Type": "application/json",
            Authorization: `Bearer ${this.getAttribute("token") || ""}`,
            "Idempotency-Key": `kaizen-widget-${hashHex(text)}`,
          },
          body: text,
        });
        if (response.ok) this.say("Thanks — recorded.", false);
        else this.say(await failure(response), true);
      } catch (_) {
        // A CORS refusal and a network failure look the same to a page: the browser hides which it was.
        this.say("Not recorded: the feedback service could not be reached from this page. Please try again later.", true);
      } finally {
        this.busy = false;
        this.form.querySelector('button[type="submit"]').disabled = false;
      }
    }
  }

  if (!customElements.get("kaizen-feedback")) customElements.define("kaizen-feedback", KaizenFeedback);
})();
