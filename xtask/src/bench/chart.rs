//! The SVG chart of start latency per approach (process, container, VM), drawn with plotters'
//! SVG backend: one horizontal bar per command, log-scale milliseconds, coloured by approach.

use plotters::prelude::*;
use std::path::Path;

/// One bar: label, approach ("process", "container" or "vm") and median milliseconds.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Shown left of the bar.
    pub label: String,
    /// Chooses the colour.
    pub approach: &'static str,
    /// Bar length.
    pub ms: f64,
}

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
pub fn write(path: &Path, title: &str, bars: &[Bar]) -> Result<(), String> {
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
        .x_desc("milliseconds, start to exit (median; log scale)")
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
                if b.ms >= 1000.0 {
                    format!("{:.2} s", b.ms / 1e3)
                } else {
                    format!("{:.2} ms", b.ms)
                },
                (b.ms.max(lo) * 1.08, SegmentValue::CenterOf(i as u32)),
                ("sans-serif", 13).into_font(),
            )
        }))
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
        write(&path, "t", &bars).expect("chart");
        let svg = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("/bin/true") && svg.contains("qemu"));
        assert!(svg.contains("60.00 ms"));
    }
}
