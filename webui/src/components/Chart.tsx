// Hand-rolled SVG charts: a sparkline for table cells and a small line chart for the
// monitor tab. They scale to their container's width through viewBox.

export function Sparkline({ data, max, label, width = 80, height = 20 }: { data: number[]; max?: number; label: string; width?: number; height?: number }) {
  const top = Math.max(max ?? 0, ...data, 1e-9);
  const n = data.length;
  const pts = data.map((v, i) => `${n <= 1 ? width : (i / (n - 1)) * width},${height - (Math.max(0, v) / top) * (height - 1) - 0.5}`).join(" ");
  return (
    <svg className="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
      {n > 1 && (
        <>
          <polygon points={`0,${height} ${pts} ${width},${height}`} className="spark-area" />
          <polyline points={pts} className="spark-line" fill="none" />
        </>
      )}
    </svg>
  );
}

export interface Point {
  t: number; // Unix seconds
  v: number;
}

export interface Series {
  name: string;
  points: Point[];
}

/**
 * A line chart over the last `windowSec` seconds up to `now`, with the latest values in
 * the legend. format renders values for people.
 */
export function LineChart({ title, series, format, max, windowSec = 300, now }: { title: string; series: Series[]; format: (v: number) => string; max?: number; windowSec?: number; now: number }) {
  const W = 300;
  const H = 90;
  const from = now - windowSec;
  const visible = series.map((s) => s.points.filter((p) => p.t >= from - 60));
  const top = max ?? niceMax(Math.max(0, ...visible.flat().map((p) => p.v)));
  const x = (t: number) => Math.max(0, ((t - from) / windowSec) * W);
  const y = (v: number) => H - (Math.min(top, Math.max(0, v)) / (top || 1)) * (H - 2) - 1;
  const path = (ps: Point[]) => ps.map((p, i) => `${i === 0 ? "M" : "L"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
  const last = (s: Series) => (s.points.length ? format(s.points[s.points.length - 1].v) : "—");
  return (
    <figure className="chart">
      <figcaption>
        <span className="chart-title">{title}</span>
        <span className="chart-legend">
          {series.map((s, i) => (
            <span key={s.name} className={`legend s${i}`}>
              <span className="swatch" aria-hidden="true" />
              {s.name} <strong>{last(s)}</strong>
            </span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${title}: ${series.map((s) => `${s.name} ${last(s)}`).join(", ")}`}>
        <line x1="0" x2={W} y1={H / 2} y2={H / 2} className="grid" />
        <line x1="0" x2={W} y1="1" y2="1" className="grid" />
        {visible.map((ps, i) =>
          ps.length === 1 ? (
            <line key={series[i].name} x1={x(ps[0].t) - 2} x2={x(ps[0].t)} y1={y(ps[0].v)} y2={y(ps[0].v)} className={`line s${i}`} vectorEffect="non-scaling-stroke" />
          ) : (
            <path key={series[i].name} d={path(ps)} className={`line s${i}`} fill="none" vectorEffect="non-scaling-stroke" />
          ),
        )}
      </svg>
      <div className="chart-scale" aria-hidden="true">
        <span>{format(top)}</span>
        <span>{windowSec >= 120 ? `${Math.round(windowSec / 60)} min` : `${windowSec} s`}</span>
      </div>
    </figure>
  );
}

/** 1, 2 or 5 times a power of ten, at least v. */
export function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
