//! PNG charts of a job's metrics over steps, rendered in-process for status updates and the
//! completion report.
//!
//! Each series gets its own panel (loss and a learning rate differ by orders of magnitude, so
//! one shared axis would flatten all but one), with axis labels and a legend. The font is
//! embedded (DejaVu Sans, licence in `assets/fonts/`) so rendering works on a headless server
//! without any system font. Non-finite values break the line and are marked with a red cross
//! at the top of the panel; their count is in the legend.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use thiserror::Error;

use crate::watch::metrics::Series;

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

pub const MIN_WIDTH: u32 = 200;
pub const MIN_HEIGHT: u32 = 120;
pub const MAX_SIDE: u32 = 4096;
/// Below this many points per series, each point is also drawn as a dot.
const DOTS_UP_TO: usize = 60;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];
const NONFINITE_MARK: RGBColor = RGBColor(214, 39, 40);

#[derive(Debug, Error)]
pub enum ChartError {
    #[error(
        "chart size {width}×{height} is out of range ({MIN_WIDTH}×{MIN_HEIGHT} to {MAX_SIDE}×{MAX_SIDE})"
    )]
    BadSize { width: u32, height: u32 },
    #[error("nothing to chart: no series has a finite value")]
    NoData,
    #[error("the embedded chart font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(#[from] png::EncodingError),
}

fn draw_err<E: std::fmt::Display>(e: E) -> ChartError {
    ChartError::Draw(e.to_string())
}

fn ensure_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    ok.then_some(()).ok_or(ChartError::Font)
}

/// Values beyond this are treated like infinities: they would wreck the axis range.
const HUGE: f64 = 1e300;

fn usable(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite() && p.1.abs() < HUGE && p.0.abs() < HUGE
}

/// A range that plotters can draw even when all values are equal.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    }
}

/// Short axis labels: 0.693, 5e-05, 12k.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    }
}

/// A series to draw: its name, the series and its downsampled points.
type Panel<'a> = (&'a str, &'a Series, Vec<(f64, f64)>);

/// Renders `series` (name, data) against their steps as a PNG of `width`×`height` pixels.
pub fn render_chart(
    title: &str,
    series: &[(&str, &Series)],
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ChartError> {
    if !(MIN_WIDTH..=MAX_SIDE).contains(&width) || !(MIN_HEIGHT..=MAX_SIDE).contains(&height) {
        return Err(ChartError::BadSize { width, height });
    }
    let data: Vec<Panel<'_>> = series
        .iter()
        .map(|(name, s)| (*name, *s, s.points()))
        .filter(|(_, _, pts)| pts.iter().any(usable))
        .collect();
    if data.is_empty() {
        return Err(ChartError::NoData);
    }
    ensure_font()?;

    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let title_px = (height / 16).clamp(14, 28);
        let body = root
            .titled(title, (FONT, title_px).into_font().color(&BLACK))
            .map_err(draw_err)?;
        let panels = body.split_evenly((data.len(), 1));
        let last = panels.len() - 1;
        for (i, (panel, (name, s, pts))) in panels.iter().zip(&data).enumerate() {
            draw_panel(panel, name, s, pts, PALETTE[i % PALETTE.len()], i == last, height)?;
        }
        root.present().map_err(draw_err)?;
    }

    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(out)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    name: &str,
    series: &Series,
    pts: &[(f64, f64)],
    color: RGBColor,
    bottom: bool,
    height: u32,
) -> Result<(), ChartError> {
    let fin = pts.iter().filter(|p| usable(p));
    let (x0, x1) = fin.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (y0, y1) = fin.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    let (x0, x1) = if x1 > x0 { (x0, x1) } else { padded(x0, x1) };
    let (y0, y1) = padded(y0, y1);

    let label_px = (height / 28).clamp(11, 18);
    let mut chart = ChartBuilder::on(area)
        .margin(6)
        .margin_right(16)
        .x_label_area_size(if bottom { label_px * 2 + 8 } else { label_px + 8 })
        .y_label_area_size(label_px * 4)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    // Ticks computed near zero come out as 3e-21; call them 0.
    let (x_eps, y_eps) = ((x1 - x0) * 1e-9, (y1 - y0) * 1e-9);
    let x_fmt = move |v: &f64| fmt_num(if v.abs() < x_eps { 0.0 } else { *v });
    let y_fmt = move |v: &f64| fmt_num(if v.abs() < y_eps { 0.0 } else { *v });
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(6)
        .y_labels(4)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, label_px))
        .light_line_style(RGBColor(235, 235, 235));
    if bottom {
        mesh.x_desc("step").axis_desc_style((FONT, label_px));
    }
    mesh.draw().map_err(draw_err)?;

    // Non-finite points split the line into runs.
    let style = color.stroke_width(2);
    for run in pts.split(|p| !usable(p)).filter(|r| !r.is_empty()) {
        // Segment by segment: plotters' wide polylines lose steep spikes at their joins.
        chart
            .draw_series(run.windows(2).map(|w| PathElement::new(vec![w[0], w[1]], style)))
            .map_err(draw_err)?;
        if run.len() == 1 || pts.len() <= DOTS_UP_TO {
            chart
                .draw_series(run.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(draw_err)?;
        }
    }
    let marks: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| !usable(p) && p.0.is_finite() && (x0..=x1).contains(&p.0))
        .map(|p| (p.0, y1))
        .collect();
    chart
        .draw_series(
            marks
                .iter()
                .map(|p| Cross::new(*p, 5, NONFINITE_MARK.stroke_width(2))),
        )
        .map_err(draw_err)?;

    let label = match series.nonfinite() {
        0 => name.to_owned(),
        n => format!("{name} ({n} NaN/inf)"),
    };
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
        .map_err(draw_err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, label_px))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}
