// Time-series charts with uPlot (vendored: /static/vendor/uplot/, loaded by the shell as the
// global ``uPlot``). The uPlot instance is kept on its element (``el.uplot``), so a test can
// check that the points drawn are the API's.
import { h, lang, t } from "./core.js";

const COLORS = ["#0b6bcb", "#c2410c", "#15803d", "#7c3aed"];

// Draws ``series`` ([{label, points: [[ts_seconds, value], ...]}]) into a new element;
// an empty series gives a sentence instead of an empty frame.
export function timeChart(id, title, unit, series, opts) {
  const box = h("figure", { class: "chart", id: id });
  box.appendChild(h("figcaption", {}, title + (unit ? " (" + unit + ")" : "")));
  const xs = Array.from(new Set(series.flatMap((s) => s.points.map((p) => p[0])))).sort((a, b) => a - b);
  if (!xs.length) {
    box.appendChild(h("p", { class: "muted nodata" }, t("chart.nodata")));
    return box;
  }
  const data = [xs];
  for (const s of series) {
    const byTs = new Map(s.points.map((p) => [p[0], p[1]]));
    data.push(xs.map((x) => (byTs.has(x) ? byTs.get(x) : null)));
  }
  const plotEl = h("div", { class: "plot" });
  box.appendChild(plotEl);
  // drawn once the element is in the page and has its width
  requestAnimationFrame(() => {
    const width = Math.max(260, plotEl.clientWidth || 600);
    const u = new window.uPlot({
      width: width, height: (opts && opts.height) || 180,
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Asia/Ho_Chi_Minh"),
      fmtDate: (tpl) => window.uPlot.fmtDate(tpl, lang() === "vi" ? VI_NAMES : undefined),
      legend: { show: series.length > 1 },
      scales: { y: (opts && opts.yRange) ? { range: opts.yRange } : {} },
      axes: [{}, { size: 50 }],
      series: [{}].concat(series.map((s, i) => ({
        label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5,
        fill: series.length === 1 ? "rgba(11,107,203,.08)" : undefined, spanGaps: false,
      }))),
    }, data, plotEl);
    box.uplot = u;
    box.dataset.points = String(xs.length);
  });
  return box;
}

const VI_NAMES = {
  MMMM: ["Tháng 1", "Tháng 2", "Tháng 3", "Tháng 4", "Tháng 5", "Tháng 6", "Tháng 7", "Tháng 8", "Tháng 9", "Tháng 10", "Tháng 11", "Tháng 12"],
  MMM: ["Th1", "Th2", "Th3", "Th4", "Th5", "Th6", "Th7", "Th8", "Th9", "Th10", "Th11", "Th12"],
  WWWW: ["Chủ nhật", "Thứ hai", "Thứ ba", "Thứ tư", "Thứ năm", "Thứ sáu", "Thứ bảy"],
  WWW: ["CN", "T2", "T3", "T4", "T5", "T6", "T7"],
};
