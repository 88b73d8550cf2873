// The data officer's dashboard. Every value from the audit log is put on
// the page with textContent or as an SVG attribute value, never as markup:
// consumers choose SQL text and details, so nothing they wrote is parsed as
// HTML. The page's CSP allows this script and this origin only.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const FILTERS = ["counterparty", "dataset", "agreement", "purpose", "decision", "rule", "kind"];
  const state = { cursor: null };

  function auth() {
    const token = sessionStorage.getItem("officer-token") || "";
    const credential = sessionStorage.getItem("officer-credential") || "";
    const headers = { authorization: "Bearer " + token };
    if (credential) headers["x-dataspace-credential"] = credential;
    return headers;
  }

  async function call(path, options) {
    const init = Object.assign({ headers: auth() }, options || {});
    if (init.body) init.headers["content-type"] = "application/json";
    const reply = await fetch(path, init);
    let body = null;
    try { body = await reply.json(); } catch (e) { body = null; }
    if (!reply.ok) {
      const message = body && typeof body.error === "string" ? body.error : "HTTP " + reply.status;
      const error = new Error(message);
      error.status = reply.status;
      throw error;
    }
    return body;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function setStatus(node, text, ok) {
    node.textContent = text;
    node.className = "status " + (ok === true ? "ok" : ok === false ? "bad" : "");
  }

  function filterQuery() {
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = $("f-" + name).value.trim();
      if (value) params.set(name, value);
    }
    for (const name of ["from", "to"]) {
      const value = $("f-" + name).value;
      if (value) {
        const date = new Date(value);
        if (!isNaN(date.getTime())) params.set(name, date.toISOString());
      }
    }
    return params;
  }

  function shortTime(iso) {
    return typeof iso === "string" ? iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", "") : "";
  }

  function recordRow(r) {
    const tr = el("tr", null, r.decision === "refused" ? "refused" : r.decision === "failed" ? "failed" : "");
    tr.dataset.seq = String(r.seq);
    const cells = [r.seq, shortTime(r.time), r.kind, r.counterparty, r.dataset, r.purpose,
      r.decision, r.rule, r.rows];
    cells.forEach((value, i) => {
      const td = el("td", value === undefined ? "" : value);
      td.dataset.col = ["seq", "time", "kind", "counterparty", "dataset", "purpose", "decision", "rule", "rows"][i];
      tr.appendChild(td);
    });
    const detail = [r.sql, r.detail].filter((x) => typeof x === "string" && x).join("\n— ");
    const td = el("td", detail, "sql");
    td.dataset.col = "sql";
    tr.appendChild(td);
    return tr;
  }

  async function loadRecords(more) {
    const body = $("records").tBodies[0];
    const params = filterQuery();
    params.set("limit", "100");
    if (more && state.cursor !== null) params.set("cursor", String(state.cursor));
    if (!more) body.replaceChildren();
    setStatus($("records-status"), "loading…");
    try {
      const page = await call("/audit/records?" + params.toString());
      for (const r of page.records) body.appendChild(recordRow(r));
      state.cursor = page.next_cursor === null || page.next_cursor === undefined ? null : page.next_cursor;
      $("more").hidden = state.cursor === null;
      const shown = body.rows.length;
      setStatus($("records-status"), shown + (shown === 1 ? " record" : " records") + " shown" +
        (state.cursor === null ? "" : " (more below)"));
      $("records").dataset.loaded = String(Date.now());
    } catch (e) {
      setStatus($("records-status"), "cannot list records: " + e.message, false);
    }
  }

  async function verifyChain() {
    setStatus($("chain-status"), "verifying…");
    try {
      const report = await call("/audit/verify");
      setStatus($("chain-status"), report.summary, report.intact === true);
      $("chain-status").dataset.intact = String(report.intact === true);
    } catch (e) {
      setStatus($("chain-status"), "cannot verify: " + e.message, false);
    }
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function timelineChart(buckets) {
    const width = 560, height = 200, left = 40, bottom = 40, top = 10;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    root.appendChild(svg("title", {}, "Answered and refused queries per hour"));
    if (!buckets.length) {
      root.appendChild(svg("text", { x: left, y: height / 2 }, "no queries yet"));
      return root;
    }
    const max = Math.max(1, ...buckets.map((b) => b.answered + b.refused + b.failed));
    const slot = (width - left - 10) / buckets.length;
    const bar = Math.max(2, Math.min(40, slot * 0.7));
    const scale = (height - top - bottom) / max;
    root.appendChild(svg("text", { x: 4, y: top + 10 }, max));
    root.appendChild(svg("text", { x: 4, y: height - bottom }, 0));
    buckets.forEach((b, i) => {
      const x = left + i * slot + (slot - bar) / 2;
      let y = height - bottom;
      for (const [key, color] of [["answered", "#3a8f5c"], ["refused", "#c0392b"], ["failed", "#d89b2b"]]) {
        const h = b[key] * scale;
        if (h > 0) {
          y -= h;
          const rect = svg("rect", { x, y, width: bar, height: h, fill: color, "data-kind": key });
          rect.appendChild(svg("title", {}, `${shortTime(b.start)}: ${b[key]} ${key}`));
          root.appendChild(rect);
        }
      }
      if (buckets.length <= 12 || i % Math.ceil(buckets.length / 12) === 0) {
        root.appendChild(svg("text", { x, y: height - bottom + 14 }, shortTime(b.start).slice(5, 13)));
      }
    });
    const legend = [["answered", "#3a8f5c"], ["refused", "#c0392b"], ["failed", "#d89b2b"]];
    legend.forEach(([name, color], i) => {
      root.appendChild(svg("rect", { x: left + i * 90, y: height - 14, width: 10, height: 10, fill: color }));
      root.appendChild(svg("text", { x: left + i * 90 + 14, y: height - 5 }, name));
    });
    return root;
  }

  function rulesChart(byRule) {
    const entries = Object.entries(byRule).sort((a, b) => b[1] - a[1]);
    const row = 22, left = 150, width = 420;
    const height = Math.max(40, entries.length * row + 10);
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    root.appendChild(svg("title", {}, "Refused queries by rule"));
    if (!entries.length) {
      root.appendChild(svg("text", { x: 4, y: 20 }, "no refusals"));
      return root;
    }
    const max = Math.max(...entries.map((e) => e[1]));
    entries.forEach(([rule, count], i) => {
      const y = 5 + i * row;
      const w = Math.max(2, (width - left - 40) * count / max);
      root.appendChild(svg("text", { x: 4, y: y + 14 }, rule));
      const rect = svg("rect", { x: left, y, width: w, height: row - 6, fill: "#c0392b", "data-rule": rule });
      rect.appendChild(svg("title", {}, `${rule}: ${count}`));
      root.appendChild(rect);
      root.appendChild(svg("text", { x: left + w + 4, y: y + 14 }, count));
    });
    return root;
  }

  async function loadUsage() {
    try {
      const params = filterQuery();
      params.set("bucket", "hour");
      const report = await call("/audit/usage?" + params.toString());
      $("chart-timeline").replaceChildren(timelineChart(report.timeline));
      $("chart-rules").replaceChildren(rulesChart(report.refusals_by_rule));
      const body = $("usage").tBodies[0];
      body.replaceChildren();
      for (const d of report.datasets) {
        for (const c of d.consumers) {
          const tr = el("tr");
          for (const v of [d.dataset || "(none)", c.consumer, c.purpose || "", c.answered, c.refused,
            c.failed, c.rows_released, shortTime(c.last_use)]) tr.appendChild(el("td", v));
          body.appendChild(tr);
        }
        const total = el("tr", null, "total");
        for (const v of [d.dataset || "(none)", d.distinct_consumers + " consumers answered", "all",
          d.answered, d.refused, d.failed, d.rows_released, shortTime(d.last_use)]) total.appendChild(el("th", v));
        body.appendChild(total);
      }
    } catch (e) {
      $("chart-timeline").replaceChildren(el("p", "cannot load usage: " + e.message, "bad"));
    }
  }

  async function runSql(event) {
    event.preventDefault();
    const table = $("sql-result");
    setStatus($("sql-status"), "running…");
    try {
      const answer = await call("/audit/sql", { method: "POST", body: JSON.stringify({ sql: $("sql").value }) });
      const head = el("tr");
      for (const c of answer.columns) head.appendChild(el("th", c));
      table.tHead.replaceChildren(head);
      table.tBodies[0].replaceChildren();
      for (const row of answer.rows) {
        const tr = el("tr");
        for (const c of answer.columns) {
          const v = row[c];
          tr.appendChild(el("td", v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : v));
        }
        table.tBodies[0].appendChild(tr);
      }
      setStatus($("sql-status"), answer.rows.length + " rows" + (answer.truncated ? " (cut)" : "") +
        " over " + answer.records + " records", true);
    } catch (e) {
      setStatus($("sql-status"), e.message, false);
    }
  }

  async function open() {
    try {
      await call("/audit/records?limit=1");
    } catch (e) {
      setStatus($("signin-status"), e.status === 403 ? "this credential is not a data officer's of this connector"
        : "not signed in: " + e.message, false);
      $("officer").hidden = true;
      return;
    }
    setStatus($("signin-status"), "signed in", true);
    $("officer").hidden = false;
    await Promise.all([verifyChain(), loadRecords(false), loadUsage()]);
  }

  async function identify() {
    try {
      const reply = await fetch("/healthz");
      const body = await reply.json();
      if (body && typeof body.id === "string") $("participant").textContent = "— " + body.id;
    } catch (e) { /* the heading stays generic */ }
  }

  document.addEventListener("DOMContentLoaded", () => {
    identify();
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem("officer-token", $("token").value.trim());
      sessionStorage.setItem("officer-credential", $("credential").value.trim());
      open();
    });
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      loadRecords(false);
      loadUsage();
    });
    $("reset").addEventListener("click", () => {
      $("filters").reset();
      loadRecords(false);
      loadUsage();
    });
    $("more").addEventListener("click", () => loadRecords(true));
    $("verify").addEventListener("click", verifyChain);
    $("sql-form").addEventListener("submit", runSql);
    if (sessionStorage.getItem("officer-token")) open();
  });
})();
