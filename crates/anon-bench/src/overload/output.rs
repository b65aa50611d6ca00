//! What the suite prints and draws: the report's rows, the detail tables, the charts.

use super::{
    Args, GeneratorCheck, Part, Point, Results, Scenario, GENERATOR_BOUND, IO_PATH, IO_RATE,
    MIX_CHEAP, MIX_EXPENSIVE, MIX_FACTOR,
};
use crate::overload::watch::LimitSample;
use crate::report::Row;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// `""` for 1 worker, else `"N workers, "`: the prefix of a row's metric.
fn wprefix(workers: usize) -> String {
    if workers == 1 {
        String::new()
    } else {
        format!("{workers} workers, ")
    }
}

/// `""` for 1 worker, else `"-Nw"`: the suffix of a chart's file name.
fn wsuffix(workers: usize) -> String {
    if workers == 1 {
        String::new()
    } else {
        format!("-{workers}w")
    }
}

/// A flat row's unit, marked when the generator was the bottleneck of the run measured.
fn unit_of(unit: &str, generator_bound: bool) -> String {
    if generator_bound {
        format!("{unit} — generator-bound: understates the server")
    } else {
        unit.to_string()
    }
}

/// The "generator CPU" cell of the detail tables.
fn gen_cell<L>(g: &GeneratorCheck<L>) -> String {
    let pct = g.generator_cpu_pct;
    if g.generator_bound {
        format!("{pct:.0} %: generator-bound")
    } else {
        format!("{pct:.0} %")
    }
}

/// The report's note on the generator's ceiling as this run measured it.
pub(super) fn generator_ceiling(res: &Results) -> String {
    // (offered req/s, generator busy %) of every run that has both.
    let runs: Vec<(f64, f64)> = res
        .points
        .iter()
        .map(|p| (p.offered_rps, p.generator.generator_cpu_pct))
        .chain(
            res.io
                .iter()
                .map(|r| (r.offered_rps, r.generator.generator_cpu_pct)),
        )
        .chain(
            res.mix
                .iter()
                .map(|r| (r.offered_rps, r.generator.generator_cpu_pct)),
        )
        .collect();
    ceiling_note(&runs)
}

/// [`generator_ceiling`] of the (offered req/s, generator busy %) of the runs.
fn ceiling_note(runs: &[(f64, f64)]) -> String {
    let runs: Vec<(f64, f64)> = runs
        .iter()
        .copied()
        .filter(|(rate, pct)| *rate > 0.0 && pct.is_finite())
        .collect();
    let bound = GENERATOR_BOUND * 100.0;
    let mut parts = Vec::new();
    let below = runs
        .iter()
        .filter(|r| r.1 < bound)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((rate, pct)) = below {
        parts.push(format!(
            "highest offered rate with the generator under {bound:.0} % busy: {rate:.0} req/s \
             ({pct:.0} %)"
        ));
    }
    let above = runs
        .iter()
        .filter(|r| r.1 >= bound)
        .min_by(|a, b| a.0.total_cmp(&b.0));
    match above {
        Some((rate, pct)) => parts.push(format!(
            "lowest generator-bound one: {rate:.0} req/s ({pct:.0} %)"
        )),
        None => parts.push("no run was generator-bound".into()),
    }
    let mut est: Vec<f64> = runs
        .iter()
        .filter(|r| (10.0..bound).contains(&r.1))
        .map(|(rate, pct)| rate * 100.0 / pct)
        .collect();
    if !est.is_empty() {
        est.sort_by(f64::total_cmp);
        parts.push(format!(
            "ceiling estimated as offered rate ÷ busy share (median over the {} runs 10–{bound:.0} \
             % busy): ≈ {:.0} req/s",
            est.len(),
            est[est.len() / 2]
        ));
    }
    if runs.is_empty() {
        "generator ceiling: no run measured".into()
    } else {
        format!(
            "generator ceiling in this run (sweep points, io, mix): {}",
            parts.join("; ")
        )
    }
}

fn row(metric: String, contender: &str, v: f64, unit: &str, goal: Option<&str>) -> Row {
    Row {
        metric,
        contender: contender.to_string(),
        median: v,
        rounds: vec![v],
        unit: unit.to_string(),
        goal: goal.map(str::to_string),
    }
}

/// The flat rows of the report, goals from issue 10's acceptance.
pub(super) fn rows(rows: &mut Vec<Row>, res: &Results) {
    for c in &res.capacities {
        let unit = if c.met {
            "req/s".to_string()
        } else if c.probes > 0 && c.generator_bound_probes == c.probes {
            "req/s (never met: lowest probe; every probe generator-bound)".to_string()
        } else {
            "req/s (never met: lowest probe)".to_string()
        };
        let what = if c.workload == "mix" {
            "mix: capacity C_mix".to_string()
        } else {
            format!("{}: capacity C", c.workload)
        };
        rows.push(row(
            format!("{}{what}", wprefix(c.workers)),
            &c.contender,
            c.rps,
            &unit,
            None,
        ));
    }
    for p in &res.points {
        let u = |unit: &str| unit_of(unit, p.generator.generator_bound);
        let goal = [(2.0, "≥ 0.97 C"), (4.0, "≥ 0.95 C"), (10.0, "≥ 0.90 C")]
            .iter()
            .find(|(f, _)| *f == p.factor)
            .map(|(_, g)| *g);
        let m = |what: &str| {
            format!(
                "{}{} µs: {what} at {}×C",
                wprefix(p.workers),
                p.service_us,
                p.factor
            )
        };
        rows.push(row(
            m("goodput"),
            &p.contender,
            p.goodput_over_c,
            &u("× C"),
            goal,
        ));
        rows.push(row(
            m("p99 of successes"),
            &p.contender,
            p.p99_us as f64,
            &u("µs"),
            Some(&format!("≤ {} µs (SLO)", 10 * p.service_us)),
        ));
        if p.try_again > 0 {
            rows.push(row(
                m("rejection p99"),
                &p.contender,
                p.reject_p99_us as f64,
                &u("µs"),
                Some("≤ 1000 µs"),
            ));
        }
        rows.push(row(
            m("no answer"),
            &p.contender,
            p.no_answer as f64,
            &u("requests"),
            Some("0"),
        ));
        rows.push(row(
            m("ListenOverflows"),
            &p.contender,
            p.listen_overflows as f64,
            &u("connections"),
            Some("0"),
        ));
    }
    // Memory: peak RSS at 10 × C minus at 1 × C.
    for p10 in res.points.iter().filter(|p| p.factor == 10.0) {
        let p1 = res.points.iter().find(|p| {
            p.factor == 1.0
                && p.contender == p10.contender
                && p.workers == p10.workers
                && p.service_us == p10.service_us
        });
        if let Some(p1) = p1 {
            let diff = (p10.rss_kib as f64 - p1.rss_kib as f64) / 1024.0;
            rows.push(row(
                format!(
                    "{}{} µs: server RSS at 10×C − at 1×C",
                    wprefix(p10.workers),
                    p10.service_us
                ),
                &p10.contender,
                diff,
                "MiB (peak during each point)",
                Some("≤ 16 MiB"),
            ));
        }
    }
    for s in &res.scenarios {
        rows.push(row(
            format!(
                "{}{} µs: {} — back within SLO after",
                wprefix(s.workers),
                s.service_us,
                s.name
            ),
            &s.contender,
            s.settle_ms.map_or(f64::NAN, |v| v as f64),
            &unit_of(
                if s.settle_ms.is_some() {
                    "ms (100 ms buckets)"
                } else {
                    "never (NaN)"
                },
                s.generator.generator_bound,
            ),
            s.name.starts_with("step").then_some("≤ 100 ms"),
        ));
    }
    for r in &res.io {
        let m = |what: &str| format!("{}io {IO_PATH} at {IO_RATE}/s: {what}", wprefix(r.workers));
        let u = |unit: &str| unit_of(unit, r.generator.generator_bound);
        rows.push(row(
            m("answered 200"),
            &r.contender,
            r.success_pct,
            &u("%"),
            Some("≥ 99 %"),
        ));
        rows.push(row(
            m("p99 of 200s"),
            &r.contender,
            r.p99_us as f64,
            &u("µs"),
            Some("≤ 60000 µs"),
        ));
        rows.push(row(
            m("no answer"),
            &r.contender,
            (r.no_answer + r.listen_overflows) as f64,
            &u("requests + ListenOverflows"),
            Some("0"),
        ));
    }
    for r in &res.mix {
        let m = |what: &str| format!("{}mix at {}×C_mix: {what}", wprefix(r.workers), r.factor);
        let u = |unit: &str| unit_of(unit, r.generator.generator_bound);
        rows.push(row(
            m(&format!("{} answered 200 within 10 ms", MIX_CHEAP.0)),
            &r.contender,
            r.cheap_ok_pct,
            &u("% of cheap requests"),
            Some("≥ 95 %"),
        ));
        rows.push(row(
            m("no answer"),
            &r.contender,
            (r.no_answer + r.listen_overflows) as f64,
            &u("requests + ListenOverflows"),
            Some("0"),
        ));
        let e = &r.expensive.outcomes;
        rows.push(row(
            m(&format!("{} 200 / 503 / no answer", MIX_EXPENSIVE.0)),
            &r.contender,
            e.success as f64,
            &u(&format!(
                "200s (503s {}, no answer {}, of {})",
                e.try_again,
                e.no_answer(),
                r.expensive.requests
            )),
            None,
        ));
    }
}

/// `v`, or `–` when there is none.
pub(super) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("–".into(), |v| v.to_string())
}

/// The wide tables of `target/bench/overload*-detail.md`.
pub(super) fn detail_table(res: &Results, anon_missing: bool) -> String {
    let mut s = String::new();
    if anon_missing {
        s.push_str("Anon (hello): missing, not built yet — no figures.\n\n");
    }
    if !res.capacities.is_empty() {
        s.push_str(
            "| workers | workload | contender | capacity (req/s) | generator-bound probes |\n\
             |---:|---|---|---:|---:|\n",
        );
    }
    for c in &res.capacities {
        s.push_str(&format!(
            "| {} | {} | {} | {:.0}{} | {} of {} |\n",
            c.workers,
            c.workload,
            c.contender,
            c.rps,
            if c.met { "" } else { " (never met)" },
            c.generator_bound_probes,
            c.probes
        ));
    }
    if !res.points.is_empty() {
        s.push_str(
            "\n| workers | service | load | contender | goodput (× C) | p50 ok (µs) | p99 ok (µs) | 503s | 503 p99 (µs) | no answer | ListenOverflows | peak RSS (KiB) | limit p50 | server CPU per success (µs) | sent on time | generator on time | generator CPU |\n\
             |---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|\n",
        );
    }
    let mut sorted: Vec<&Point> = res.points.iter().collect();
    sorted.sort_by(|a, b| {
        a.workers
            .cmp(&b.workers)
            .then(b.service_us.cmp(&a.service_us))
            .then(a.factor.total_cmp(&b.factor))
            .then(a.contender.cmp(&b.contender))
    });
    for p in sorted {
        s.push_str(&format!(
            "| {} | {} µs | {}×C | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |\n",
            p.workers,
            p.service_us,
            p.factor,
            p.contender,
            p.goodput_over_c,
            p.p50_us,
            p.p99_us,
            p.try_again,
            opt((p.try_again > 0).then_some(p.reject_p99_us)),
            p.no_answer,
            p.listen_overflows,
            p.rss_kib,
            opt(p.limit_p50),
            p.cpu_us_per_success,
            if p.generator.schedule_kept { "yes" } else { "no" },
            if p.generator.lateness.generator_on_time {
                format!("{:.1} % late", p.generator.lateness.generator_late_pct)
            } else {
                format!("NO ({:.1} % late): invalid", p.generator.lateness.generator_late_pct)
            },
            gen_cell(&p.generator)
        ));
    }
    for p in res.points.iter().filter(|p| p.generator.generator_bound) {
        s.push_str(&format!(
            "\n**Generator-bound:** {} ({} workers) at {}×C of the {} µs handler ({:.0} req/s \
             offered): generator-bound ({:.0} % CPU): latency and goodput understate the \
             server.\n",
            p.contender,
            p.workers,
            p.factor,
            p.service_us,
            p.offered_rps,
            p.generator.generator_cpu_pct
        ));
    }
    // Sanity check: a served /work?us=N request must cost about N µs of server CPU. A
    // handler that spins by the wall clock while yielding to others costs less under
    // concurrency, and its figures then describe a cheaper workload than the others'.
    let mut flagged: Vec<(&str, usize, u64)> = Vec::new();
    for p in &res.points {
        let cheap = p.success > 100 && p.cpu_us_per_success < 0.8 * p.service_us as f64;
        let key = (p.contender.as_str(), p.workers, p.service_us);
        if cheap && !flagged.contains(&key) {
            flagged.push(key);
            s.push_str(&format!(
                "\n**Not comparable:** {} ({} workers) served {}×C at {:.0} µs of server CPU per \
                 success for a {} µs handler: its `/work` does not burn the full service time \
                 per request under concurrency, so its capacity and goodput are inflated.\n",
                p.contender, p.workers, p.factor, p.cpu_us_per_success, p.service_us
            ));
        }
    }
    if !res.scenarios.is_empty() {
        s.push_str("\n| workers | service | scenario | contender | back within SLO after | no answer | retries | requests | generator CPU |\n|---:|---|---|---|---:|---:|---:|---:|---:|\n");
    }
    for sc in &res.scenarios {
        s.push_str(&format!(
            "| {} | {} µs | {} | {} | {} | {} | {} | {} | {} |\n",
            sc.workers,
            sc.service_us,
            sc.name,
            sc.contender,
            sc.settled(),
            sc.no_answer,
            sc.retries,
            sc.requests,
            gen_cell(&sc.generator)
        ));
    }
    if !res.io.is_empty() {
        s.push_str(&format!(
            "\nio: GET {IO_PATH} at {IO_RATE} req/s\n\n| workers | contender | 200 (%) | 200 from 1 s on (%) | 200 within 60 ms (%) | p50 200 (µs) | p99 200 (µs) | 503s | 503 p99 (µs) | no answer | ListenOverflows | peak RSS (KiB) | sent on time | generator on time | generator CPU |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|\n"
        ));
    }
    for r in &res.io {
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} % late{} | {} |\n",
            r.workers,
            r.contender,
            r.success_pct,
            r.success_pct_after_1s,
            r.in_slo_pct,
            r.p50_us,
            r.p99_us,
            r.try_again,
            opt((r.try_again > 0).then_some(r.reject_p99_us)),
            r.no_answer,
            r.listen_overflows,
            r.rss_kib,
            if r.generator.schedule_kept { "yes" } else { "no" },
            r.generator.lateness.generator_late_pct,
            if r.generator.lateness.generator_on_time { "" } else { ": invalid" },
            gen_cell(&r.generator)
        ));
    }
    if !res.mix.is_empty() {
        s.push_str(&format!(
            "\nmix: {} × {}, {} × {}, at {MIX_FACTOR} × C_mix\n\n| workers | contender | C_mix (req/s) | cheap 200 within 10 ms (%) | cheap p99 200 (µs) | cheap 503s | expensive 200s | expensive p99 200 (µs) | expensive 503s | no answer | ListenOverflows | generator on time | generator CPU |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n",
            MIX_CHEAP.1, MIX_CHEAP.0, MIX_EXPENSIVE.1, MIX_EXPENSIVE.0
        ));
    }
    for r in &res.mix {
        s.push_str(&format!(
            "| {} | {} | {:.0}{} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {:.1} % late{} | {} |\n",
            r.workers,
            r.contender,
            r.capacity,
            if r.capacity_met { "" } else { " (never met)" },
            r.cheap_ok_pct,
            r.cheap.success.p99_us,
            r.cheap.outcomes.try_again,
            r.expensive.outcomes.success,
            r.expensive.success.p99_us,
            r.expensive.outcomes.try_again,
            r.no_answer,
            r.listen_overflows,
            r.generator.lateness.generator_late_pct,
            if r.generator.lateness.generator_on_time { "" } else { ": invalid" },
            gen_cell(&r.generator)
        ));
    }
    s
}

/// Every chart the results allow, per worker count.
pub(super) fn draw_all(dir: &Path, res: &Results, a: &Args, missing: &str) -> Result<(), String> {
    for &n in &a.workers {
        let points: Vec<Point> = res
            .points
            .iter()
            .filter(|p| p.workers == n)
            .cloned()
            .collect();
        let scenarios: Vec<Scenario> = res
            .scenarios
            .iter()
            .filter(|s| s.workers == n)
            .cloned()
            .collect();
        let suffix = wsuffix(n);
        let title_w = if n == 1 {
            missing.to_string()
        } else {
            format!(", {n} workers{missing}")
        };
        for &us in &a.services_us {
            draw_charts(dir, us, &suffix, &title_w, &points, &scenarios)?;
        }
        // The limit in the `io` and `mix` runs: (part, what ran, (workers, contender,
        // limit) of each run).
        let parts = [
            (
                Part::Io,
                format!("GET {IO_PATH} at {IO_RATE}/s"),
                res.io
                    .iter()
                    .map(|r| (r.workers, &r.contender, &r.limit))
                    .collect::<Vec<_>>(),
            ),
            (
                Part::Mix,
                format!("mix at {MIX_FACTOR}×C_mix"),
                res.mix
                    .iter()
                    .map(|r| (r.workers, &r.contender, &r.limit))
                    .collect(),
            ),
        ];
        for (part, what, runs) in parts {
            if !a.has(part) {
                continue;
            }
            let series: Vec<(String, &[LimitSample])> = runs
                .into_iter()
                .filter(|(w, _, _)| *w == n)
                .map(|(_, c, l)| (c.clone(), l.as_slice()))
                .collect();
            limit_chart(
                &dir.join(format!("overload-limit-{}{suffix}.svg", part.name())),
                &format!("Admission limit over time, {what}{title_w}"),
                &series,
            )?;
        }
    }
    Ok(())
}
const COLORS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

type Series = Vec<(String, Vec<(f64, f64)>)>;

/// The largest x and y of the series' points, at least `floor`.
fn max_xy(series: &Series, floor: (f64, f64)) -> (f64, f64) {
    series
        .iter()
        .flat_map(|(_, v)| v.iter())
        .fold(floor, |(x, y), p| (x.max(p.0), y.max(p.1)))
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("chart: {e:?}")
}

/// Draws one chart; `log_x` / `log_y` pick logarithmic axes.
fn chart(
    path: &Path,
    title: &str,
    labels: (&str, &str),
    ranges: ((f64, f64), (f64, f64)),
    logs: (bool, bool),
    series: &Series,
) -> Result<(), String> {
    let root = SVGBackend::new(path, (860, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let ((x0, x1), (y0, y1)) = ranges;
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(labels.0)
                .y_desc(labels.1)
                .draw()
                .map_err(err)?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let pts: Vec<(f64, f64)> = pts
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .map(|(x, y)| (x.clamp(x0, x1), y.clamp(y0, y1)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                if pts.len() <= 40 {
                    chart
                        .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                        .map_err(err)?;
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }};
    }
    let mut b = ChartBuilder::on(&root);
    b.caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70);
    match logs {
        (true, true) => body!(b
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(err)?),
        (true, false) => body!(b
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(err)?),
        (false, true) => body!(b
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(err)?),
        (false, false) => body!(b.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?),
    }
    root.present().map_err(err)?;
    Ok(())
}

fn by_contender(points: &[Point], us: u64, f: impl Fn(&Point) -> Option<f64>) -> Series {
    let mut names: Vec<String> = Vec::new();
    for p in points.iter().filter(|p| p.service_us == us) {
        if !names.contains(&p.contender) {
            names.push(p.contender.clone());
        }
    }
    names
        .into_iter()
        .map(|n| {
            let mut pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.service_us == us && p.contender == n)
                .filter_map(|p| f(p).map(|y| (p.factor, y)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (n, pts)
        })
        .collect()
}

/// The limit scraped over time, one line per run (runs without a limit left out); no
/// file when none has one.
fn limit_chart(path: &Path, title: &str, runs: &[(String, &[LimitSample])]) -> Result<(), String> {
    let series: Series = runs
        .iter()
        .map(|(name, samples)| {
            (
                name.clone(),
                samples
                    .iter()
                    .filter_map(|s| s.limit.map(|l| (s.t_ms as f64 / 1000.0, l.max(1) as f64)))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if series.is_empty() {
        return Ok(());
    }
    let (xmax, ymax) = max_xy(&series, (1.0, 10.0));
    chart(
        path,
        title,
        ("time (s)", "limit, requests (sum over workers, log)"),
        ((0.0, xmax), (1.0, 2.0 * ymax)),
        (false, true),
        &series,
    )
}

fn draw_charts(
    dir: &Path,
    us: u64,
    suffix: &str,
    missing: &str,
    points: &[Point],
    scenarios: &[Scenario],
) -> Result<(), String> {
    let p = |name: &str| -> PathBuf { dir.join(format!("overload-{name}-{us}us{suffix}.svg")) };
    let slo = (10 * us) as f64;
    let x = (0.4, 12.0);
    if points.iter().any(|p| p.service_us == us) {
        let goodput = by_contender(points, us, |p| Some(p.goodput_over_c));
        let gmax = max_xy(&goodput, (0.0, 1.2)).1 * 1.1;
        chart(
            &p("goodput"),
            &format!("Goodput within SLO ({slo} µs) vs offered load, {us} µs handler{missing}"),
            ("offered load (× C, log)", "goodput (× C)"),
            (x, (0.0, gmax)),
            (true, false),
            &goodput,
        )?;
        let mut p99 = by_contender(points, us, |p| (p.success > 0).then_some(p.p99_us as f64));
        p99.push((format!("SLO {slo} µs"), vec![(x.0, slo), (x.1, slo)]));
        chart(
            &p("p99"),
            &format!("p99 latency of successes vs offered load, {us} µs handler{missing}"),
            ("offered load (× C, log)", "p99 (µs, log)"),
            (x, (10.0, 5e6)),
            (true, true),
            &p99,
        )?;
        let reject = by_contender(points, us, |p| {
            (p.try_again > 0).then_some(p.reject_p99_us as f64)
        });
        let mut reject: Series = reject.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        reject.push(("goal 1 ms".into(), vec![(x.0, 1000.0), (x.1, 1000.0)]));
        chart(
            &p("reject"),
            &format!("Rejection (503) latency p99 vs offered load, {us} µs handler{missing}"),
            ("offered load (× C, log)", "503 p99 (µs, log)"),
            (x, (10.0, 5e6)),
            (true, true),
            &reject,
        )?;
    }
    for (key, prefix) in [
        ("step", "step 0.8→4×C"),
        ("step14", "step 0.8→1.4×C"),
        ("stall", "stall"),
    ] {
        let sel: Vec<&Scenario> = scenarios
            .iter()
            .filter(|s| s.service_us == us && s.name.starts_with(prefix))
            .collect();
        if sel.is_empty() {
            continue;
        }
        let series: Series = sel
            .iter()
            .map(|s| {
                (
                    s.contender.clone(),
                    s.series
                        .iter()
                        .map(|b| (b.t_ms as f64 / 1000.0, b.completed_in_slo as f64 * 10.0))
                        .collect(),
                )
            })
            .collect();
        let (xmax, ymax) = max_xy(&series, (1.0, 1.0));
        chart(
            &p(key),
            &format!(
                "{}: goodput within SLO per 100 ms, {us} µs handler{missing}",
                sel[0].name
            ),
            ("time (s)", "goodput (req/s)"),
            ((0.0, xmax), (0.0, 1.2 * ymax)),
            (false, false),
            &series,
        )?;
    }
    // The admission limit during both steps, one line per contender and step.
    let steps: Vec<(String, &[LimitSample])> = scenarios
        .iter()
        .filter(|s| s.service_us == us && s.name.starts_with("step"))
        .map(|s| (format!("{}, {}", s.contender, s.name), s.limit.as_slice()))
        .collect();
    limit_chart(
        &p("limit"),
        &format!(
            "Admission limit over time in the steps (at {:.1} s), {us} µs handler{missing}",
            scenarios
                .iter()
                .find(|s| s.name.starts_with("step"))
                .map_or(0.0, |s| s.event_ms as f64 / 1000.0)
        ),
        &steps,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_ceiling_note() {
        let n = ceiling_note(&[(2000.0, 10.0), (8000.0, 50.0), (16000.0, 95.0), (0.0, 5.0)]);
        assert!(n.contains("under 90 % busy: 8000 req/s (50 %)"), "{n}");
        assert!(
            n.contains("lowest generator-bound one: 16000 req/s (95 %)"),
            "{n}"
        );
        // 2000 / 0.10 = 20 000 and 8000 / 0.5 = 16 000: the median of two is the upper.
        assert!(
            n.contains("median over the 2 runs") && n.contains("≈ 20000 req/s"),
            "{n}"
        );
        let n = ceiling_note(&[(500.0, 3.0)]);
        assert!(
            n.contains("no run was generator-bound") && !n.contains("≈"),
            "{n}"
        );
        assert_eq!(ceiling_note(&[]), "generator ceiling: no run measured");
    }

    #[test]
    fn largest_point_at_least_the_floor() {
        let series: Series = vec![
            ("a".into(), vec![(0.5, 3.0), (2.0, f64::NAN)]),
            ("b".into(), vec![(1.5, 7.0)]),
        ];
        assert_eq!(max_xy(&series, (1.0, 10.0)), (2.0, 10.0));
        assert_eq!(max_xy(&series, (0.0, 1.0)), (2.0, 7.0));
        assert_eq!(max_xy(&Vec::new(), (1.0, 1.2)), (1.0, 1.2));
    }

    #[test]
    fn generator_bound_marks() {
        assert_eq!(unit_of("µs", false), "µs");
        assert!(unit_of("µs", true).contains("generator-bound"));
        let check = |generator_cpu_pct, generator_bound| GeneratorCheck {
            schedule_kept: true,
            lateness: (),
            generator_cpu_pct,
            generator_thread_cpu_pct: None,
            generator_bound,
            verdict: String::new(),
        };
        assert_eq!(gen_cell(&check(42.4, false)), "42 %");
        assert_eq!(gen_cell(&check(97.0, true)), "97 %: generator-bound");
    }
}
