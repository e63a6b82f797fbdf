// Time-series charts with uPlot (vendored: /static/vendor/uplot/, loaded by the shell as the
// global ``uPlot``). The uPlot instance is kept on its element (``el.uplot``), so a test can
// check that the points drawn are the API's.
import { h, lang, t } from "./core.js";

// six, so a chart of five lines (the speed chart: down, up, contract, two baselines) never
// draws two in one colour
const COLORS = ["#0b6bcb", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#57534e"];
// The y steps of a chart of counts (opts.integer): whole numbers only.
const INTEGER_STEPS = [1, 2, 3, 4, 5, 10, 15, 20, 25, 50, 100, 150, 200, 250, 500, 1000, 2000,
  2500, 5000, 10000, 20000, 25000, 50000, 100000, 200000, 500000, 1000000];

// Draws ``series`` ([{label, points: [[ts_seconds, value], ...]}]) into a new element;
// an empty series gives a sentence instead of an empty frame. ``opts``: height, xRange,
// yRange, integer (a count: whole-number ticks), joined (no breaks in long gaps). The y ticks drawn are kept on the element
// (``data-yticks``).
export function timeChart(id, title, unit, series, opts) {
  const box = h("figure", { class: "chart", id: id });
  box.appendChild(h("figcaption", {}, title + (unit ? " (" + unit + ")" : "")));
  const xs = Array.from(new Set(series.flatMap((s) => s.points.map((p) => p[0])))).sort((a, b) => a - b);
  if (!xs.length) {
    box.appendChild(h("p", { class: "muted nodata" }, t("chart.nodata")));
    return box;
  }
  // Where nothing was reported for more than twice the usual step (a lab PC off at night),
  // a break: an x with no values, so the line stops instead of joining across the gap.
  const steps = xs.slice(1).map((x, i) => x - xs[i]).sort((a, b) => a - b);
  const step = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
  // (not for a state drawn as steps, opts.joined: its points are its changes, far apart)
  const withBreaks = [];
  xs.forEach((x, i) => {
    if (i && step && !(opts && opts.joined) && x - xs[i - 1] > 2 * step) { withBreaks.push(xs[i - 1] + step); }
    withBreaks.push(x);
  });
  const data = [withBreaks];
  for (const s of series) {
    const byTs = new Map(s.points.map((p) => [p[0], p[1]]));
    data.push(withBreaks.map((x) => (byTs.has(x) ? byTs.get(x) : null)));
  }
  const plotEl = h("div", { class: "plot" });
  box.appendChild(plotEl);
  // drawn once the element is in the page and has its width
  requestAnimationFrame(() => {
    const width = Math.max(260, plotEl.clientWidth || 600);
    const xRange = opts && opts.xRange;
    const u = new window.uPlot({
      width: width, height: (opts && opts.height) || 180,
      legend: { show: series.length > 1 },
      cursor: { points: { size: 6 } },
      scales: {
        x: { time: true, range: xRange ? () => xRange : undefined },
        y: (opts && opts.yRange) ? { range: opts.yRange } : {},
      },
      axes: [
        { values: (self, ticks) => {
          const span = self.scales.x.max - self.scales.x.min;
          // a day shown once, however many ticks fall inside it
          return ticks.map((x) => tick(x, span)).map((l, i, all) => (i > 0 && l === all[i - 1] ? "" : l));
        } },
        { size: 56,
          // a count (devices) has whole ticks: 0, 2, 4 ..., never 2,5
          incrs: opts && opts.integer ? INTEGER_STEPS : undefined,
          values: (self, ticks) => {
            box.dataset.yticks = ticks.join(" ");
            return ticks.map((v) => number(v));
          } },
      ],
      series: [{ label: t("chart.time"), value: (self, x) => (x === null ? "—" : when(x)) }].concat(series.map((s, i) => ({
        label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5,
        value: (self, v) => (v === null ? "—" : number(v)),
        fill: series.length === 1 ? "rgba(11,107,203,.08)" : undefined, spanGaps: false,
        points: { show: s.points.length < 60, size: 5 },
      }))),
    }, data, plotEl);
    box.uplot = u;
    box.dataset.points = String(xs.length);
  });
  return box;
}

// Times on the axis in the province's zone: hours within two days, day/month beyond.
const ZONE = "Asia/Ho_Chi_Minh";
function parts(x) {
  const f = new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return Object.fromEntries(f.formatToParts(new Date(x * 1000)).map((p) => [p.type, p.value]));
}
function tick(x, span) {
  const p = parts(x);
  return span <= 2 * 86400 ? p.hour + ":" + p.minute : p.day + "/" + p.month;
}
function when(x) { const p = parts(x); return p.hour + ":" + p.minute + " " + p.day + "/" + p.month; }
function number(v) { return Number(v).toLocaleString(lang() === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: 1 }); }
