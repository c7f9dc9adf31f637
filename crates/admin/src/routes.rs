//! The admin port's paths, and a JSON body for every refusal.

use crate::Source;
use percent_encoding::percent_decode;
use serde_json::{Value, json};

/// memcached's longest key, in bytes: `/ring?key=` refuses longer ones.
pub const MAX_KEY_LEN: usize = 250;

/// The dashboard: one page, its script inline, nothing fetched from
/// elsewhere.
const DASHBOARD: &str = include_str!("dashboard.html");

/// One answer: status, content type, body.
#[derive(Debug)]
pub(crate) struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Answer {
        let mut body = body.to_string();
        body.push('\n');
        Answer { status, content_type: "application/json", body }
    }

    /// The bytes on the wire: the head, and the body unless `head_only`.
    pub(crate) fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// A refusal: `{"error": …, "detail": …}`.
pub(crate) fn error(status: u16, error: &str, detail: &str) -> Answer {
    Answer::json(status, &json!({ "error": error, "detail": detail }))
}

/// The answer for request target `target` (path and query).
pub(crate) fn route(target: &str, source: &dyn Source) -> Answer {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/" => Answer { status: 200, content_type: "text/html; charset=utf-8", body: DASHBOARD.to_owned() },
        "/metrics" => Answer {
            status: 200,
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body: source.metrics(),
        },
        "/healthz" => Answer::json(200, &json!({ "status": "ok" })),
        "/readyz" => match source.ready() {
            Ok(()) => Answer::json(200, &json!({ "status": "ready" })),
            Err(why) => Answer::json(503, &json!({ "status": "not ready", "detail": why })),
        },
        "/config" => Answer::json(200, &source.config()),
        "/summary.json" => Answer::json(200, &source.summary()),
        "/hotkeys" => match source.hotkeys() {
            Some(v) => Answer::json(200, &v),
            None => error(404, "not found", "this role does not track hot keys"),
        },
        "/ring" => match key_param(query) {
            Err(detail) => error(400, "bad key", &detail),
            Ok(key) => match source.ring(&key) {
                Some(v) => Answer::json(200, &v),
                None => error(404, "not found", "this role has no ring: ask a proxy where a key lives"),
            },
        },
        _ => error(
            404,
            "not found",
            "the admin port serves /, /metrics, /healthz, /readyz, /ring?key=K, /config, /hotkeys and /summary.json",
        ),
    }
}

/// The `key` query parameter, checked as memcached checks keys: present,
/// non-empty, UTF-8 once percent-decoded (JSON carries it as a string), at
/// most 250 bytes, no space or control character. The first `key` wins.
fn key_param(query: &str) -> Result<String, String> {
    let raw = query
        .split('&')
        .find_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name == "key").then_some(value)
        })
        .ok_or_else(|| "missing query parameter 'key'".to_owned())?;
    let spaced = raw.replace('+', " ");
    let key = percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map_err(|_| "the key is not valid UTF-8 once percent-decoded".to_owned())?;
    if key.is_empty() {
        return Err("the key is empty".to_owned());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("the key is {} bytes long; the limit is {MAX_KEY_LEN}", key.len()));
    }
    if let Some(c) = key.chars().find(|c| *c == ' ' || c.is_ascii_control()) {
        return Err(format!("the key contains {c:?}; memcached keys have no spaces or control characters"));
    }
    Ok(key.into_owned())
}

#[cfg(test)]
mod tests {
    use super::key_param;

    #[test]
    fn keys_are_checked_as_memcached_checks_them() {
        assert_eq!(key_param("key=user%3A42").as_deref(), Ok("user:42"));
        assert_eq!(key_param("x=1&key=a&key=b").as_deref(), Ok("a"));
        assert!(key_param("").unwrap_err().contains("missing"));
        assert!(key_param("key=").unwrap_err().contains("empty"));
        assert!(key_param(&format!("key={}", "k".repeat(251))).unwrap_err().contains("251 bytes"));
        assert_eq!(key_param(&format!("key={}", "k".repeat(250))).map(|k| k.len()), Ok(250));
        assert!(key_param("key=%FF%FE").unwrap_err().contains("UTF-8"));
        assert!(key_param("key=a+b").unwrap_err().contains("' '"));
        assert!(key_param("key=a%0Ab").unwrap_err().contains("'\\n'"));
    }
}
