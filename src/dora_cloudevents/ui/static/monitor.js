// Event monitor: new raw CloudEvents and the CDEvents made from them, live from the stream.
// Everything from an event is put on the page with textContent: event data is untrusted.
"use strict";

const MAX_ROWS = 200;

function cell(row, text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (text !== undefined && text !== null) td.textContent = text;
  row.appendChild(td);
  return td;
}

function link(href, text, className) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  if (className) a.className = className;
  return a;
}

function badge(status, text) {
  const span = document.createElement("span");
  span.className = `badge status-${status.replace(/[^a-z]/g, "")}`;
  span.textContent = text || status;
  return span;
}

function muted(text) {
  const span = document.createElement("span");
  span.className = "muted";
  span.textContent = text;
  return span;
}

function received(value) {
  return (value || "").slice(0, 19).replace("T", " ");
}

function explain(td, event, produced) {
  for (const old of td.querySelectorAll(".error-text, .muted")) old.remove();
  if (event.error) {
    const span = document.createElement("span");
    span.className = "error-text";
    span.textContent = event.error;
    td.appendChild(span);
  } else if (event.status === "unrouted") {
    td.appendChild(muted("no route matches this type"));
  } else if (event.status === "routed" && produced === 0) {
    td.appendChild(muted("none (the transformer found nothing to report)"));
  }
}

function showTable() {
  document.getElementById("monitor").hidden = false;
  document.getElementById("monitor-empty").hidden = true;
}

function prepend(row) {
  const body = document.getElementById("monitor-rows");
  row.classList.add("new");
  body.insertBefore(row, body.firstChild);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  showTable();
}

function addCloudEvent(event) {
  const row = document.createElement("tr");
  row.dataset.seq = event.seq;
  row.dataset.kind = "cloudevent";
  cell(row).appendChild(link(`/events/${event.seq}`, String(event.seq)));
  cell(row, received(event.received_at));
  cell(row, null, "mono").appendChild(link(`/events/${event.seq}`, event.type));
  cell(row, event.source, "mono");
  cell(row).appendChild(badge(event.status));
  explain(cell(row, null, "produced"), event, null);
  prepend(row);
}

function addCDEvent(event) {
  if (event.origin_seq !== null) {
    const row = document.querySelector(`tr[data-kind=cloudevent][data-seq="${event.origin_seq}"]`);
    if (!row) return;
    const td = row.querySelector("td.produced");
    for (const old of td.querySelectorAll(".muted")) old.remove();
    td.insertBefore(link(`/cdevents/${event.seq}`, event.type, "chip"), td.firstChild);
    return;
  }
  const row = document.createElement("tr");
  row.dataset.cdseq = event.seq;
  row.dataset.kind = "cdevent";
  cell(row).appendChild(link(`/cdevents/${event.seq}`, `cd${event.seq}`));
  cell(row, received(event.received_at));
  cell(row, null, "mono").appendChild(link(`/cdevents/${event.seq}`, event.type));
  cell(row, event.source, "mono");
  cell(row).appendChild(badge("native", "native CDEvent"));
  cell(row, null, "produced").appendChild(muted("posted as a CDEvent"));
  prepend(row);
}

function updateStatus(event) {
  const row = document.querySelector(`tr[data-kind=cloudevent][data-seq="${event.seq}"]`);
  if (!row) return;
  const statusCell = row.cells[4];
  statusCell.replaceChildren(badge(event.status));
  const td = row.querySelector("td.produced");
  explain(td, event, td.querySelectorAll("a.chip").length);
}

function connect() {
  const table = document.getElementById("monitor");
  const live = document.getElementById("live");
  const params = new URLSearchParams(table.dataset.streamQuery);
  params.set("after", table.dataset.position);
  const source = new EventSource(`/api/v1/events/stream?${params}`);
  const handle = (handler) => (message) => {
    table.dataset.position = message.lastEventId || table.dataset.position;
    handler(JSON.parse(message.data));
  };
  source.addEventListener("open", () => {
    live.textContent = "live";
    live.className = "live on";
  });
  source.addEventListener("error", () => {
    live.textContent = "disconnected, retrying…";
    live.className = "live off";
  });
  source.addEventListener("cloudevent", handle(addCloudEvent));
  source.addEventListener("cdevent", handle(addCDEvent));
  source.addEventListener("status", handle(updateStatus));
}

function clickableRows() {
  // A click anywhere on a row opens the event it shows (the links stay for the keyboard).
  document.getElementById("monitor-rows").addEventListener("click", (click) => {
    if (click.target.closest("a")) return;
    const row = click.target.closest("tr");
    const first = row && row.querySelector("a");
    if (first) window.location.assign(first.href);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  clickableRows();
  connect();
});
