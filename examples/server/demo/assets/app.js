// Progressive enhancement: with JavaScript the forms talk to the JSON API
// (as a single-page app would) instead of reloading the page. Without it,
// the same forms post to the server-rendered routes.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const card = document.querySelector("main.card");
  if (!card || !window.fetch) return;
  document.documentElement.dataset.js = "on";

  function message(el, text) {
    el.textContent = text || "";
    el.hidden = !text;
  }

  function show(step) {
    card.dataset.step = step;
    for (const s of ["phone", "code", "done"]) $("step-" + s).hidden = s !== step;
    const focus = { phone: "phone", code: "code" }[step];
    if (focus) $(focus).focus();
  }

  // render shows a state answer of the API.
  function render(body) {
    switch (body.state) {
      case "pending":
        $("sent-to").textContent = body.to;
        $("attempts-left").textContent = body.attempts_left;
        $("code").value = "";
        show("code");
        break;
      case "verified":
        $("verified-to").textContent = body.to;
        show("done");
        break;
      default:
        if (body.to) $("phone").value = body.to;
        show("phone");
    }
  }

  // Errors that leave nothing to check send the person back to the number.
  const restart = new Set(["too_many_attempts", "expired", "not_found"]);

  async function submit(form) {
    const api = form.dataset.api;
    const payload = {};
    for (const [k, v] of new FormData(form)) payload[k] = v;
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      const res = await fetch(api, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: api.endsWith("/start") || api.endsWith("/check") ? JSON.stringify(payload) : undefined,
      });
      const body = await res.json().catch(() => ({ message: "Something went wrong. Try again." }));
      if (!res.ok) {
        message($("notice"), "");
        message($("error"), body.message);
        if (body.error === "wrong_code") {
          $("attempts-left").textContent = body.attempts_left;
          $("code").select();
        } else if (restart.has(body.error)) {
          show("phone");
        }
        return;
      }
      message($("error"), "");
      if (api.endsWith("/start")) message($("notice"), "Code sent. It can take a minute to arrive.");
      else if (api.endsWith("/resend")) message($("notice"), "We sent the code again.");
      else message($("notice"), "");
      if (api.endsWith("/cancel")) $("phone").value = "";
      render(body);
    } catch (e) {
      message($("error"), "The server could not be reached. Try again.");
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    ev.preventDefault();
    submit(form);
  });
})();
