// Progressive enhancement: with JavaScript the forms talk to the JSON API
// (as a single-page app would) instead of reloading the page. Without it,
// the same forms post to the server-rendered routes.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const card = document.querySelector("main.card");
  if (!card || !window.fetch) return;
  document.documentElement.dataset.js = "on";

  // The live regions stay in the page; only their text changes, so that
  // screen readers announce it.
  function message(el, text) {
    el.textContent = text || "";
  }

  // invalid marks field as the one an error is about, or clears the mark.
  function invalid(field, on) {
    const hint = field.id + "-hint";
    if (on) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", "error " + hint);
    } else {
      field.removeAttribute("aria-invalid");
      field.setAttribute("aria-describedby", hint);
    }
  }

  // show moves to a step and puts focus on its first field, or on its
  // heading when it has none.
  function show(step) {
    card.dataset.step = step;
    for (const s of ["phone", "code", "done"]) $("step-" + s).hidden = s !== step;
    const target = { phone: "phone", code: "code", done: "h-done" }[step];
    $(target).focus();
  }

  function challenge(on) {
    $("challenge").hidden = !on;
    const box = $("challenge-box");
    box.checked = false;
    box.value = "";
  }

  // Ticking the stand-in box fetches its token, as a CAPTCHA widget does.
  $("challenge-box").addEventListener("change", async (ev) => {
    const box = ev.target;
    if (!box.checked) return;
    try {
      const res = await fetch("/api/challenge", { method: "POST", credentials: "same-origin" });
      box.value = (await res.json()).token || "";
    } catch (e) {
      box.checked = false;
    }
  });

  // render shows a state answer of the API.
  function render(body) {
    switch (body.state) {
      case "pending":
        $("sent-to").textContent = body.display;
        $("attempts-left").textContent = body.attempts_left;
        $("code").value = "";
        show("code");
        break;
      case "verified":
        $("verified-to").textContent = body.display;
        show("done");
        break;
      default:
        if (body.to) $("phone").value = body.to;
        show("phone");
    }
  }

  // Errors that leave nothing to check send the person back to the number.
  const restart = new Set(["too_many_attempts", "expired", "not_found"]);
  const fieldErrors = new Set(["invalid_input", "refused_destination", "wrong_code"]);

  async function submit(form) {
    const api = form.dataset.api;
    const payload = {};
    for (const [k, v] of new FormData(form)) if (v !== "") payload[k] = v;
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    const field = form.querySelector("input[type=tel], input.code");
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
        if (body.error === "wrong_code") $("attempts-left").textContent = body.attempts_left;
        if (restart.has(body.error)) {
          show("phone");
        } else if (body.challenge) {
          challenge(true);
          $("challenge-box").focus();
        } else if (field && fieldErrors.has(body.error)) {
          invalid(field, true);
          field.focus();
          field.select();
        }
        return;
      }
      message($("error"), "");
      if (field) invalid(field, false);
      challenge(false);
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
