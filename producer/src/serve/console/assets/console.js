// onboard console: the only script. It keeps a page current without a reload by following
// the server-sent events stream named in <main data-events>: the overview's counters, or a
// job's state and timeline. Everything else works without it.
"use strict";
(function () {
  const main = document.querySelector("main[data-events]");
  if (!main || !window.EventSource) return;
  const source = new EventSource(main.dataset.events);

  // Overview: one `overview` event a second with every kind's row.
  source.addEventListener("overview", (e) => {
    for (const row of JSON.parse(e.data)) {
      const tr = document.querySelector(`tr[data-kind="${row.kind}"]`);
      if (!tr) continue;
      for (const [field, value] of Object.entries(row)) {
        const td = tr.querySelector(`td[data-field="${field}"]`);
        if (!td) continue;
        const target = td.querySelector("a") || td;
        if (target.textContent !== String(value)) target.textContent = String(value);
      }
    }
  });

  // A job: `status` first, then one event named by each state it enters.
  const state = document.getElementById("job-state");
  const timeline = document.getElementById("timeline");
  const show = (e) => {
    const data = JSON.parse(e.data);
    const name = typeof data.state === "string" ? data.state : e.type;
    if (state) state.textContent = name;
    if (timeline && e.type !== "status") {
      const li = document.createElement("li");
      const at = new Date(data.at_ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
      li.textContent = `${at} ${name}` +
        (data.attempt ? ` attempt ${data.attempt}` : "") +
        (data.error ? ` · ${data.error.code} (${data.error.class}) ${data.error.message}` : "") +
        (data.reason ? ` · ${data.reason}` : "");
      timeline.appendChild(li);
    }
  };
  for (const name of ["status", "waiting", "scheduled", "queued", "running", "retry_scheduled",
    "awaiting_code", "succeeded", "expired", "dead", "cancelled", "purged"]) {
    source.addEventListener(name, show);
  }
})();
