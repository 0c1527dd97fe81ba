//! The results file (`bench/results.md`) and the token-access chart (`bench/token-access.svg`).

use crate::token_access::Row;
use crate::wrk::WrkResult;
use std::fmt::Write;
use std::path::PathBuf;

pub struct Report {
    dir: PathBuf,
    sections: Vec<String>,
}

impl Report {
    pub fn new(dir: PathBuf) -> Report {
        Report {
            dir,
            sections: Vec::new(),
        }
    }

    pub fn add(&mut self, title: &str, body: String) {
        println!("\n## {title}\n\n{body}");
        self.sections.push(format!("## {title}\n\n{body}"));
    }

    pub fn token_access(
        &mut self,
        rows: &[Row],
        seconds: u32,
        oauth_calls: u64,
        answer_bytes: usize,
    ) -> anyhow::Result<()> {
        let mut t = String::from(
            "| connections | trivial handler req/s | same bytes req/s | same bytes ÷ trivial | cached req/s | ratio | ratio to same bytes | server CPU µs/request: trivial / same bytes / cached | p50 ms | p99 ms | uncached req/s | ratio | p50 ms | p99 ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in rows {
            let _ = writeln!(
                t,
                "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1} / {:.1} / {:.1} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} |",
                r.connections,
                r.trivial.wrk.requests_per_sec,
                r.same_bytes.wrk.requests_per_sec,
                r.ceiling,
                r.cached.wrk.requests_per_sec,
                r.ratio,
                r.ratio_same_bytes,
                r.trivial.cpu_us,
                r.same_bytes.cpu_us,
                r.cached.cpu_us,
                r.cached.wrk.p50_ms,
                r.cached.wrk.p99_ms,
                r.uncached.requests_per_sec,
                r.uncached.requests_per_sec / r.trivial.wrk.requests_per_sec,
                r.uncached.p50_ms,
                r.uncached.p99_ms,
            );
        }
        let rounds = crate::token_access::ROUNDS;
        let _ = write!(
            t,
            "\nwrk, {seconds} s per run. For each connection count, {rounds} rounds of three runs back to back (the trivial \
             handler, the same-bytes handler, the cached read; each round starts with the next of the three); a ratio is the median of the rounds' ratios, and each \
             req/s figure is the median round's. Server CPU is the serving process's user + system time (every \
             thread, from /proc) over the requests it answered. `GET /api/token-access/<id>` \
             with a service JWT; uncached is a second oauth-backend with `TOKEN_CACHE=false` on the same database. \
             HighLevel token calls during the runs: {oauth_calls} (the install's code exchange only). \
             The trivial handler answers `ok` to a bare GET; \"same bytes\" is a trivial handler answering token-access's \
             own answer ({answer_bytes} bytes of JSON) to token-access's own request (the same path and service JWT): \
             beside it, what the kernel and wrk pay to move those bytes is on both sides. \"Same bytes ÷ trivial\" is what \
             moving the answer costs by itself: the most the cached read's ratio could be if it did nothing else.\n\n![token-access](token-access.svg)\n"
        );
        self.chart(rows)?;
        self.add("Token access", t);
        Ok(())
    }

    pub fn memory(
        &mut self,
        oauth_idle: f64,
        oauth_peak: f64,
        api_idle: f64,
        api_peak: f64,
        list: &WrkResult,
        trivial: &WrkResult,
    ) {
        self.add(
            "Memory",
            format!(
                "| service | idle RSS MiB | peak RSS under load MiB | load |\n|---|---:|---:|---|\n\
                 | oauth-backend | {oauth_idle:.1} | {oauth_peak:.1} | the token-access runs above (up to 256 connections) |\n\
                 | api-backend | {api_idle:.1} | {api_peak:.1} | `GET /api/locations/L1/products`, 64 connections: {:.0} req/s ({:.2}× the trivial handler), p99 {:.2} ms |\n",
                list.requests_per_sec,
                list.requests_per_sec / trivial.requests_per_sec,
                list.p99_ms
            ),
        );
    }

    fn chart(&self, rows: &[Row]) -> anyhow::Result<()> {
        use plotters::prelude::*;
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join("token-access.svg");
        let root = SVGBackend::new(&path, (760, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let top = rows
            .iter()
            .map(|r| {
                r.trivial
                    .wrk
                    .requests_per_sec
                    .max(r.cached.wrk.requests_per_sec)
            })
            .fold(1.0, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "GET /api/token-access: requests/s by connections",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0usize..rows.len().saturating_sub(1), 0f64..top)?;
        let labels: Vec<String> = rows.iter().map(|r| r.connections.to_string()).collect();
        chart
            .configure_mesh()
            .x_labels(rows.len())
            .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .x_desc("connections")
            .y_desc("requests/s")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        type Series = (&'static str, RGBColor, fn(&Row) -> f64);
        let series: [Series; 3] = [
            ("trivial actix handler", RGBColor(120, 120, 120), |r| {
                r.trivial.wrk.requests_per_sec
            }),
            ("token-access, cached", RGBColor(31, 119, 180), |r| {
                r.cached.wrk.requests_per_sec
            }),
            ("token-access, uncached", RGBColor(214, 39, 40), |r| {
                r.uncached.requests_per_sec
            }),
        ];
        for (name, color, value) in series {
            let points: Vec<(usize, f64)> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (i, value(r)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        root.present()?;
        Ok(())
    }

    /// Writes `results.md`: the sections of this run, under a header naming the machine and the command.
    pub fn write(&self, command: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let path = self.dir.join("results.md");
        let mut text = format!(
            "# Benchmark results\n\nWritten by `{command}` on a {cpus}-core machine. Every throughput figure is a ratio \
             to a baseline measured in the same run; absolute numbers depend on the machine.\n\n"
        );
        // Sections this run did not measure are kept from the previous results, so one scenario can be rerun.
        let mut sections: Vec<String> = std::fs::read_to_string(&path)
            .map(|old| {
                old.split("\n## ")
                    .skip(1)
                    .map(|s| format!("## {}", s.trim_end()))
                    .collect()
            })
            .unwrap_or_default();
        for new in &self.sections {
            let title = new.lines().next().unwrap_or_default();
            match sections
                .iter_mut()
                .find(|s| s.lines().next() == Some(title))
            {
                Some(old) => *old = new.trim_end().to_owned(),
                None => sections.push(new.trim_end().to_owned()),
            }
        }
        text.push_str(&sections.join("\n\n"));
        text.push('\n');
        std::fs::write(&path, text)?;
        Ok(path)
    }
}
