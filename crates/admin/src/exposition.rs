//! A scrape's metrics, gathered from the role's live counters and encoded by
//! `prometheus-client` (OpenMetrics text, which Prometheus reads as is).
//!
//! The counters live where the data path keeps them (relaxed atomics); a
//! scrape reads them once and hands them over as constant values, so the
//! data path carries no registry of its own.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt::{self, Write as _};

type Labels = Vec<(String, String)>;

#[derive(Debug)]
enum Sample {
    Counter(Labels, u64),
    Gauge(Labels, f64),
    /// Sum and cumulative `(upper bound, count)` buckets, the last `+Inf`.
    Histogram(Labels, f64, Vec<(f64, u64)>),
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricType,
    samples: Vec<Sample>,
}

/// The metrics of one scrape. Counter names are given without `_total`:
/// the encoder adds it.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

/// Labels, their values escaped as the text format wants (the encoder
/// writes them as given, and a hot key may hold a quote or a backslash).
fn labels(l: &[(&str, &str)]) -> Labels {
    l.iter().map(|(k, v)| ((*k).to_owned(), escape(v))).collect()
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut Family {
        // Families are few (tens): a scan keeps them in the order added. One
        // name is one family: a second kind under it would be invalid.
        debug_assert!(
            self.families
                .iter()
                .all(|f| f.name != name || std::mem::discriminant(&f.kind) == std::mem::discriminant(&kind)),
            "{name} has two kinds"
        );
        let at = match self.families.iter().position(|f| f.name == name) {
            Some(at) => at,
            None => {
                self.families.push(Family { name: name.to_owned(), help: help.to_owned(), kind, samples: Vec::new() });
                self.families.len() - 1
            }
        };
        &mut self.families[at]
    }

    /// One sample of the counter `name` (`_total` is added).
    pub fn counter(&mut self, name: &str, help: &str, l: &[(&str, &str)], value: u64) {
        self.family(name, help, MetricType::Counter).samples.push(Sample::Counter(labels(l), value));
    }

    /// One sample of the gauge `name`.
    pub fn gauge(&mut self, name: &str, help: &str, l: &[(&str, &str)], value: f64) {
        self.family(name, help, MetricType::Gauge).samples.push(Sample::Gauge(labels(l), value));
    }

    /// One histogram of `name`: cumulative counts per upper bound (the
    /// `+Inf` bucket is `count`).
    pub fn histogram(&mut self, name: &str, help: &str, l: &[(&str, &str)], sum: f64, cumulative: Vec<(f64, u64)>) {
        let mut buckets = cumulative;
        let count = buckets.last().map_or(0, |b| b.1);
        if buckets.last().is_none_or(|b| b.0.is_finite()) {
            buckets.push((f64::INFINITY, count));
        }
        self.family(name, help, MetricType::Histogram).samples.push(Sample::Histogram(labels(l), sum, buckets));
    }

    /// The text exposition.
    ///
    /// Histograms are written here rather than by the encoder, which would
    /// write the last bucket's bound as `inf` (or `f64::MAX`) where
    /// Prometheus's queries and dashboards look for `le="+Inf"`.
    pub fn render(self) -> String {
        let histograms: Vec<Family> = self.families.iter().filter(|f| is_histogram(f)).map(Family::take_copy).collect();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        let eof = out.rfind("# EOF\n").unwrap_or(out.len());
        out.truncate(eof);
        for f in &histograms {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} histogram", f.name);
            for s in &f.samples {
                let Sample::Histogram(l, sum, buckets) = s else { continue };
                let labels: String = l.iter().map(|(k, v)| format!("{k}=\"{v}\",")).collect();
                for (bound, n) in buckets {
                    let le = if bound.is_finite() { bound.to_string() } else { "+Inf".to_owned() };
                    let _ = writeln!(out, "{}_bucket{{{labels}le=\"{le}\"}} {n}", f.name);
                }
                let bare = labels.trim_end_matches(',');
                let count = buckets.last().map_or(0, |b| b.1);
                let _ = writeln!(out, "{}_sum{{{bare}}} {sum}", f.name);
                let _ = writeln!(out, "{}_count{{{bare}}} {count}", f.name);
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

fn is_histogram(f: &Family) -> bool {
    matches!(f.kind, MetricType::Histogram)
}

impl Family {
    fn take_copy(&self) -> Family {
        let samples = self
            .samples
            .iter()
            .filter_map(|s| match s {
                Sample::Histogram(l, sum, b) => Some(Sample::Histogram(l.clone(), *sum, b.clone())),
                _ => None,
            })
            .collect();
        Family { name: self.name.clone(), help: self.help.clone(), kind: self.kind, samples }
    }
}

impl prometheus_client::collector::Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        for f in self.families.iter().filter(|f| !is_histogram(f)) {
            let mut family = encoder.encode_descriptor(&f.name, &f.help, None, f.kind)?;
            // A lone sample without labels is written as `name value`, not `name{} value`.
            if let [Sample::Counter(l, v)] = f.samples.as_slice() {
                if l.is_empty() {
                    ConstCounter::new(*v).encode(family)?;
                    continue;
                }
            }
            if let [Sample::Gauge(l, v)] = f.samples.as_slice() {
                if l.is_empty() {
                    ConstGauge::new(*v).encode(family)?;
                    continue;
                }
            }
            for s in &f.samples {
                match s {
                    Sample::Counter(l, v) => ConstCounter::new(*v).encode(family.encode_family(l)?)?,
                    Sample::Gauge(l, v) => ConstGauge::new(*v).encode(family.encode_family(l)?)?,
                    // Written by `render`.
                    Sample::Histogram(..) => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_their_labels_escaped() {
        let mut e = Exposition::default();
        e.counter("memshard_x_requests", "Requests.", &[("server", "a:1")], 7);
        e.counter("memshard_x_requests", "Requests.", &[("server", "b\"2\\")], 8);
        e.gauge("memshard_x_up", "Up.", &[], 1.0);
        e.histogram("memshard_x_latency_seconds", "Latency.", &[("server", "a:1")], 0.5, vec![(0.001, 3), (0.01, 4)]);
        let text = e.render();
        assert!(text.contains("# TYPE memshard_x_requests counter\n"), "{text}");
        assert!(text.contains("memshard_x_requests_total{server=\"a:1\"} 7\n"), "{text}");
        assert!(text.contains("memshard_x_requests_total{server=\"b\\\"2\\\\\"} 8\n"), "{text}");
        assert!(text.contains("\nmemshard_x_up 1"), "{text}");
        assert!(!text.contains("{}"), "{text}");
        assert!(text.contains("memshard_x_latency_seconds_bucket{server=\"a:1\",le=\"0.001\"} 3\n"), "{text}");
        assert!(text.contains("memshard_x_latency_seconds_bucket{server=\"a:1\",le=\"0.01\"} 4\n"), "{text}");
        assert!(text.contains("memshard_x_latency_seconds_bucket{server=\"a:1\",le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("memshard_x_latency_seconds_count{server=\"a:1\"} 4\n"), "{text}");
        assert_eq!(text.matches("# TYPE memshard_x_requests counter").count(), 1);
    }
}
