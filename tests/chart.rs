//! Chart rendering: the PNG decodes, has the requested size and shows something — with real
//! log data, one point, NaN values and a million points.

use std::collections::HashSet;

use chrono::{TimeZone, Utc};
use trainwatch::chart::{render_chart, ChartError};
use trainwatch::watch::metrics::{MetricsConfig, MetricsTracker, Series};

/// The first series' colour and the non-finite marker's colour in the chart palette.
const SERIES_BLUE: [u8; 3] = [31, 119, 180];
const SERIES_ORANGE: [u8; 3] = [255, 127, 14];
const MARK_RED: [u8; 3] = [214, 39, 40];

struct Image {
    width: u32,
    height: u32,
    rgb: Vec<[u8; 3]>,
}

fn decode(png_bytes: &[u8]) -> Image {
    let decoder = png::Decoder::new(png_bytes);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let rgb = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    Image {
        width: info.width,
        height: info.height,
        rgb,
    }
}

impl Image {
    fn count(&self, colour: [u8; 3]) -> usize {
        self.rgb.iter().filter(|p| **p == colour).count()
    }
    /// A real chart: axes, anti-aliased text and lines give many colours and plenty of ink.
    fn assert_not_blank(&self) {
        let colours: HashSet<[u8; 3]> = self.rgb.iter().copied().collect();
        assert!(colours.len() >= 20, "only {} colours", colours.len());
        let ink = self.rgb.iter().filter(|p| **p != [255, 255, 255]).count();
        assert!(ink * 100 >= self.rgb.len(), "only {ink} non-white pixels");
    }
}

fn series(points: impl IntoIterator<Item = (f64, f64)>) -> Series {
    let mut s = Series::new();
    for (x, y) in points {
        s.push(x, y);
    }
    s
}

#[test]
fn loss_chart_from_a_real_log_is_a_phone_sized_png() {
    let path = format!(
        "{}/tests/fixtures/metrics/hf_trainer_style.log",
        env!("CARGO_MANIFEST_DIR")
    );
    let log = std::fs::read_to_string(path).unwrap();
    let cfg = MetricsConfig {
        chart: vec!["loss".into(), "learning_rate".into()],
        ..MetricsConfig::default()
    };
    let mut tracker = MetricsTracker::new(cfg);
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for line in log.lines() {
        tracker.push_line(line, t);
    }
    let loss = tracker.series("loss").unwrap();
    let lr = tracker.series("learning_rate").unwrap();
    let png = render_chart(
        "bert-finetune run 3",
        &[("loss", loss), ("learning_rate", lr)],
        800,
        400,
    )
    .unwrap();
    let img = decode(&png);
    assert_eq!((img.width, img.height), (800, 400));
    img.assert_not_blank();
    assert!(img.count(SERIES_BLUE) > 200, "the loss line is drawn");
    assert!(img.count(SERIES_ORANGE) > 200, "the learning-rate line is drawn");
    assert!(img.count(MARK_RED) > 0, "the NaN loss at the end is marked");
}

#[test]
fn one_point_still_charts() {
    let s = series([(0.0, 0.69)]);
    let img = decode(&render_chart("first step", &[("loss", &s)], 640, 320).unwrap());
    assert_eq!((img.width, img.height), (640, 320));
    img.assert_not_blank();
    assert!(img.count(SERIES_BLUE) > 10, "the lone point is drawn as a dot");
}

#[test]
fn nan_values_break_the_line_and_are_marked() {
    let s = series((0..100).map(|i| {
        let y = if i % 10 == 5 {
            f64::NAN
        } else {
            1.0 / (1.0 + i as f64)
        };
        (i as f64, y)
    }));
    assert_eq!(s.nonfinite(), 10);
    let img = decode(&render_chart("with NaNs", &[("loss", &s)], 800, 400).unwrap());
    img.assert_not_blank();
    assert!(img.count(SERIES_BLUE) > 100);
    assert!(img.count(MARK_RED) > 10);
}

#[test]
fn a_million_points_are_downsampled_keeping_spikes() {
    let mut s = Series::new();
    for i in 0..1_000_000u64 {
        let y = if i == 654_321 {
            100.0
        } else {
            2.0 + (i as f64 / 5000.0).sin()
        };
        s.push(i as f64, y);
    }
    assert_eq!(s.raw_len(), 1_000_000);
    let pts = s.points();
    assert!(pts.len() <= Series::MAX_POINTS && Series::MAX_POINTS <= 4096);
    assert_eq!(pts.len(), s.len());
    assert!(pts.iter().any(|p| p.1 == 100.0), "the spike survives");
    assert!(pts.iter().any(|p| p.1 < 1.01), "the troughs survive");
    assert_eq!(
        pts.last().unwrap().0,
        999_999.0,
        "the last bucket reaches the end"
    );
    assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0), "points stay in order");

    let img = decode(&render_chart("long run", &[("loss", &s)], 800, 400).unwrap());
    assert_eq!((img.width, img.height), (800, 400));
    img.assert_not_blank();
    // Everything but the spike sits near the bottom of a 0–100 axis: line pixels in the top
    // half of the image can only be the spike.
    let top_half_line = img.rgb[..img.rgb.len() / 2]
        .iter()
        .filter(|p| **p == SERIES_BLUE)
        .count();
    assert!(top_half_line > 50, "the spike is drawn ({top_half_line} px)");
}

#[test]
fn nothing_to_draw_and_bad_sizes_are_errors() {
    let empty = Series::new();
    assert!(matches!(
        render_chart("t", &[("loss", &empty)], 800, 400),
        Err(ChartError::NoData)
    ));
    let all_nan = series([(0.0, f64::NAN), (1.0, f64::INFINITY)]);
    assert!(matches!(
        render_chart("t", &[("loss", &all_nan)], 800, 400),
        Err(ChartError::NoData)
    ));
    let s = series([(0.0, 1.0)]);
    assert!(matches!(
        render_chart("t", &[("loss", &s)], 0, 400),
        Err(ChartError::BadSize { .. })
    ));
    assert!(matches!(
        render_chart("t", &[("loss", &s)], 100_000, 400),
        Err(ChartError::BadSize { .. })
    ));
}
