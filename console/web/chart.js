// Charts drawn by hand: a sparkline is one SVG polyline, a gauge one bar.
// Simpler than any charting library, and nothing to keep up to date.

const svgNS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

// sparkline draws values (oldest first) as a line w by h pixels, scaled
// from 0 to their maximum (or opts.max), with the last value as a dot.
export function sparkline(values, { w = 160, h = 32, max, label = "" } = {}) {
  const s = svg("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: "spark", role: "img", "aria-label": label });
  const n = values.length;
  if (n === 0) return s;
  const top = Math.max(max ?? 0, ...values, 1);
  const x = (i) => (n === 1 ? w - 2 : 1 + (i * (w - 3)) / (n - 1));
  const y = (v) => h - 2 - (v / top) * (h - 4);
  const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  s.append(svg("polyline", { points: `1,${h - 1} ${pts} ${x(n - 1).toFixed(1)},${h - 1}`, class: "area" }));
  s.append(svg("polyline", { points: pts, class: "line" }));
  s.append(svg("circle", { cx: x(n - 1), cy: y(values[n - 1]), r: 2, class: "dot" }));
  return s;
}

// gauge is a bar filled to value/limit, red past 90 %.
export function gauge(value, limit, text) {
  const frac = limit > 0 ? Math.min(1, value / limit) : 0;
  const bar = document.createElement("div");
  bar.className = "gauge" + (frac > 0.9 ? " hot" : "");
  const fill = document.createElement("div");
  fill.className = "fill";
  fill.style.width = (frac * 100).toFixed(1) + "%"; // CSSOM, not an inline style attribute: the CSP allows it
  const label = document.createElement("span");
  label.textContent = text;
  bar.append(fill, label);
  return bar;
}
