//! Content negotiation for `/memcache`: JSON unless the client prefers text.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT;

/// Whether the `Accept` header prefers `text/plain` over JSON. Quality values
/// count; a tie (`*/*`, as curl sends, or no header) goes to JSON.
pub(crate) fn wants_text(headers: &HeaderMap) -> bool {
    let mut text = 0.0_f32;
    let mut json = 0.0_f32;
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0);
            match media.as_str() {
                "text/plain" | "text/*" => text = text.max(q),
                "application/json" | "application/*" => json = json.max(q),
                "*/*" => {
                    text = text.max(q);
                    json = json.max(q);
                }
                _ => {}
            }
        }
    }
    text > json
}

#[cfg(test)]
mod tests {
    use super::wants_text;
    use axum::http::{HeaderMap, HeaderValue, header::ACCEPT};

    fn accept(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(v).expect("header"));
        wants_text(&h)
    }

    #[test]
    fn text_only_when_preferred() {
        assert!(!wants_text(&HeaderMap::new()));
        assert!(!accept("*/*"));
        assert!(!accept("application/json"));
        assert!(accept("text/plain"));
        assert!(accept("text/plain, */*;q=0.5"));
        assert!(accept("text/*"));
        assert!(!accept("text/plain;q=0.4, application/json"));
        assert!(accept("application/json;q=0.2, text/plain;q=0.9"));
        assert!(!accept("text/html"));
    }
}
