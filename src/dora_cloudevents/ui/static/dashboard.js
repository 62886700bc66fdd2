// Dashboard: draw each tile's trend from the series API, and apply filters as they change.
// Data is put on the page with textContent and plotly's own text handling, never as HTML.
"use strict";

const AXES = {
  "deployment-frequency": { title: "deployments", scale: (v) => v, kind: "bar" },
  "lead-time": { title: "hours (median)", scale: (v) => v / 3600, kind: "line" },
  "change-failure-rate": { title: "% failed", scale: (v) => v * 100, kind: "line" },
  "failed-deployment-recovery-time": { title: "hours (median)", scale: (v) => v / 3600, kind: "line" },
  "rework-rate": { title: "% rework", scale: (v) => v * 100, kind: "line" },
};

function chartMessage(element, text) {
  element.classList.add("failed");
  element.textContent = text;
}

async function drawChart(element) {
  const metric = element.dataset.series;
  const axis = AXES[metric];
  const params = new URLSearchParams(element.dataset.query);
  params.set("bucket", element.dataset.bucket || "week");
  let body;
  try {
    const response = await fetch(`/api/v1/metrics/${encodeURIComponent(metric)}?${params}`,
                                 { headers: { Accept: "application/json" } });
    body = await response.json();
    if (!response.ok) {
      chartMessage(element, `Trend unavailable: ${body.detail || response.status}`);
      return;
    }
  } catch (error) {
    chartMessage(element, "Trend unavailable: the server did not answer. Reload to retry.");
    return;
  }
  const points = body.series || [];
  if (!points.some((point) => point.value !== null && point.value !== 0)) {
    chartMessage(element, "No data to chart in this selection.");
    return;
  }
  const trace = {
    x: points.map((point) => point.time),
    y: points.map((point) => (point.value === null ? null : axis.scale(point.value))),
    type: axis.kind === "bar" ? "bar" : "scatter",
    mode: "lines+markers",
    connectgaps: false,
    marker: { color: "#0969da" },
    hovertemplate: "%{x|%Y-%m-%d}: %{y:.1f}<extra></extra>",
  };
  const layout = {
    margin: { l: 42, r: 8, t: 6, b: 28 },
    height: element.clientHeight || 170,
    xaxis: { type: "date", fixedrange: true },
    yaxis: { title: { text: axis.title, font: { size: 11 } }, fixedrange: true, rangemode: "tozero" },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    showlegend: false,
  };
  await Plotly.newPlot(element, [trace], layout, { displayModeBar: false, responsive: true });
  element.dataset.drawn = String(points.length);
}

function autoApplyFilters() {
  const form = document.getElementById("filters");
  if (!form) return;
  for (const field of form.querySelectorAll("select, input[type=date]")) {
    field.addEventListener("change", () => form.requestSubmit());
  }
  // Empty fields stay out of the URL, so a shared link says only what was chosen.
  form.addEventListener("submit", () => {
    for (const field of form.elements) {
      if (field.name && !field.value) field.disabled = true;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  autoApplyFilters();
  const charts = document.querySelectorAll(".chart[data-series]");
  if (typeof Plotly === "undefined") {
    for (const element of charts) chartMessage(element, "Charts could not load (plotly.min.js).");
    return;
  }
  Promise.all(Array.from(charts, drawChart)).then(() => {
    document.body.dataset.charts = "ready";
  });
});
