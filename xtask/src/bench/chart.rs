//! The SVG charts of the bench, drawn with plotters' SVG backend: one horizontal bar per
//! command or path on a log scale, coloured by approach (process, container, VM), for start
//! latency and for network throughput; and the scale section's cost per instance against the
//! number of instances.

use plotters::prelude::*;
use std::path::Path;

/// One bar: label, approach ("process", "container" or "vm") and its value in the chart's
/// [`Axis`] unit.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Shown left of the bar.
    pub label: String,
    /// Chooses the colour.
    pub approach: &'static str,
    /// Bar length.
    pub ms: f64,
}

/// What a bar chart's values are: the axis title and how a bar's value is written at its end.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    pub desc: &'static str,
    pub label: fn(f64) -> String,
}

/// Start to exit, in milliseconds.
pub const START_MS: Axis = Axis {
    desc: "milliseconds, start to exit (median; log scale)",
    label: |ms| {
        if ms >= 1000.0 {
            format!("{:.2} s", ms / 1e3)
        } else {
            format!("{ms:.2} ms")
        }
    },
};

/// TCP throughput, in Mbit/s.
pub const MBIT_S: Axis = Axis {
    desc: "Mbit/s, one TCP stream (median; log scale)",
    label: |v| format!("{v:.0} Mbit/s"),
};

fn colour(approach: &str) -> RGBColor {
    match approach {
        "process" => RGBColor(0x55, 0x88, 0x55),
        "container" => RGBColor(0x33, 0x66, 0xaa),
        _ => RGBColor(0xbb, 0x55, 0x33),
    }
}

fn kind(approach: &str) -> &'static str {
    match approach {
        "process" => "process",
        "container" => "container",
        _ => "VM",
    }
}

/// Writes the chart to `path`.
pub fn write(path: &Path, title: &str, axis: Axis, bars: &[Bar]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    if bars.is_empty() {
        return Err(err(&"no measured bar"));
    }
    let n = bars.len() as u32;
    let max = bars.iter().map(|b| b.ms).fold(0.0f64, f64::max).max(1.0);
    let min = bars
        .iter()
        .map(|b| b.ms)
        .fold(f64::INFINITY, f64::min)
        .clamp(0.01, 1.0);
    let lo = 10f64.powf((min / 2.0).log10().floor());
    let hi = max * 3.0;
    let height = 110 + 34 * n;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(330)
        // A segmented range over 0..n-1 has exactly n bands, one per bar.
        .build_cartesian_2d((lo..hi).log_scale(), (0u32..n - 1).into_segmented())
        .map_err(|e| err(&e))?;
    let labels: Vec<String> = bars
        .iter()
        .map(|b| format!("{}: {}", kind(b.approach), b.label))
        .collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(axis.desc)
        .x_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            }
        })
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_labels(n as usize)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let i = i as u32;
            let mut r = Rectangle::new(
                [
                    (lo, SegmentValue::Exact(i)),
                    (b.ms.max(lo), SegmentValue::Exact(i + 1)),
                ],
                colour(b.approach).filled(),
            );
            r.set_margin(5, 5, 0, 0);
            r
        }))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            Text::new(
                (axis.label)(b.ms),
                (b.ms.max(lo) * 1.08, SegmentValue::CenterOf(i as u32)),
                ("sans-serif", 13).into_font(),
            )
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// One line of a chart against N: a label and its (x, y) points.
#[derive(Debug, Clone)]
pub struct Line {
    /// Shown in the legend.
    pub label: String,
    /// Index into the palette: a line and its peer share a colour.
    pub colour: usize,
    /// Drawn thin with markers (e.g. one after another) rather than thick.
    pub thin: bool,
    /// (x, y) with both above 0 (both axes are log scale).
    pub points: Vec<(f64, f64)>,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(0x33, 0x66, 0xaa),
    RGBColor(0x88, 0x99, 0xcc),
    RGBColor(0xbb, 0x55, 0x33),
    RGBColor(0xdd, 0xaa, 0x66),
    RGBColor(0x33, 0x88, 0x55),
    RGBColor(0x88, 0xcc, 0x99),
];

/// Writes a log-log line chart (x: `x_desc`, y: `y_desc`) of `lines` to `path`.
pub fn write_lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let pts = || lines.iter().flat_map(|l| l.points.iter().copied());
    if pts().next().is_none() {
        return Err(err(&"no measured point"));
    }
    let (xmin, xmax) = pts().fold((f64::INFINITY, 0f64), |(a, b), (x, _)| (a.min(x), b.max(x)));
    let (ymin, ymax) = pts().fold((f64::INFINITY, 0f64), |(a, b), (_, y)| (a.min(y), b.max(y)));
    let xr = (xmin.max(1e-9) / 1.5)..(xmax * 1.5);
    let yr = (10f64.powf(ymin.max(1e-9).log10().floor()))..(10f64.powf(ymax.log10().ceil()) * 1.01);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xr.log_scale(), yr.log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            }
        })
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    for l in lines.iter().filter(|l| !l.points.is_empty()) {
        let c = PALETTE[l.colour % PALETTE.len()];
        let style = c.stroke_width(if l.thin { 1 } else { 3 });
        chart
            .draw_series(LineSeries::new(l.points.iter().copied(), style))
            .map_err(|e| err(&e))?
            .label(l.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        if l.thin {
            chart
                .draw_series(l.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_every_label() {
        let path = std::env::temp_dir().join(format!("mt-chart-{}.svg", std::process::id()));
        let bars = vec![
            Bar {
                label: "/bin/true".into(),
                approach: "process",
                ms: 0.5,
            },
            Bar {
                label: "qemu".into(),
                approach: "vm",
                ms: 60.0,
            },
        ];
        write(&path, "t", START_MS, &bars).expect("chart");
        let svg = std::fs::read_to_string(&path).expect("read");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("/bin/true") && svg.contains("qemu"));
        assert!(svg.contains("60.00 ms") && svg.contains("start to exit"));
        write(&path, "t", MBIT_S, &bars).expect("chart");
        let svg = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert!(
            svg.contains("60 Mbit/s") && svg.contains("one TCP stream"),
            "{svg}"
        );
        assert!(!svg.contains("60.00 ms"));
    }

    #[test]
    fn writes_a_line_chart_with_its_legend() {
        let path = std::env::temp_dir().join(format!("mt-lines-{}.svg", std::process::id()));
        let lines = vec![
            Line {
                label: "tinyvmm, 20 at a time".into(),
                colour: 0,
                thin: false,
                points: vec![(1.0, 2.0), (10.0, 0.5), (1000.0, 0.4)],
            },
            Line {
                label: "QEMU, one after another".into(),
                colour: 1,
                thin: true,
                points: vec![(1.0, 200.0), (10.0, 190.0)],
            },
        ];
        write_lines(&path, "t", "instances", "ms per instance", &lines).expect("chart");
        let svg = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("tinyvmm, 20 at a time") && svg.contains("QEMU, one after another"));
        assert!(write_lines(&path, "t", "x", "y", &[]).is_err());
    }
}
