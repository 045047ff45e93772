//! The web console (`web_console true` on a `protocol websockets` listener): a
//! page, a script and a style sheet built into the binary, so it works with no
//! network beyond the broker. The page connects back to the listener that served
//! it with MQTT 5 over WebSockets, as any browser client does, so it sees what the
//! broker's rules let its user see: a password file or ACL applies to it too.
//!
//! The script carries its own small MQTT 5 client rather than a packaged one
//! (mqtt.js is 340 KB minified): the console needs CONNECT, SUBSCRIBE, PUBLISH
//! with properties at each QoS and the pings, about 300 lines that a learner can
//! read next to the specification.
//!
//! Every reply carries a Content-Security-Policy that allows only the console's
//! own script and style: a payload that slipped into the page as markup still
//! could not run. The script itself only ever writes payloads as text.

use super::transport::http::{Body, Response};

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// Where the console lives on its listener.
pub const PATH: &str = "/console/";

/// Scripts, styles and connections from this listener only; no frames, no forms
/// sent elsewhere, no plugins.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console's answer to `method path`, or `None` when the path is not the
/// console's. `at_root`: whether `/` leads to the console (a listener without
/// `http_dir`).
pub fn answer(method: &str, path: &str, at_root: bool) -> Option<Response> {
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let (content_type, body) = match path {
        "/" if at_root => return Some(redirect(PATH)),
        "/console" => return Some(redirect(PATH)),
        "/console/" | "/console/index.html" => ("text/html; charset=utf-8", PAGE),
        "/console/console.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/console/console.css" => ("text/css; charset=utf-8", STYLE),
        _ => return None,
    };
    if method != "GET" && method != "HEAD" {
        return Some((
            "405 Method Not Allowed",
            vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
            Body::Text("Method not allowed.\n"),
        ));
    }
    Some((
        "200 OK",
        vec![
            ("Content-Type", content_type.to_string()),
            ("Content-Security-Policy", POLICY.to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
            ("Referrer-Policy", "no-referrer".to_string()),
            ("Cache-Control", "no-cache".to_string()),
        ],
        Body::Text(body),
    ))
}

fn redirect(to: &str) -> Response {
    (
        "302 Found",
        vec![("Location", to.to_string())],
        Body::Text(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_served_with_its_policy_and_only_on_its_paths() {
        let (status, headers, body) = answer("GET", "/console/?x=1", false).expect("page");
        assert_eq!(status, "200 OK");
        assert_eq!(body, Body::Text(PAGE));
        let policy = headers
            .iter()
            .find(|(name, _)| *name == "Content-Security-Policy")
            .map(|(_, value)| value.as_str());
        assert_eq!(policy, Some(POLICY));
        // The page loads exactly the assets served here, and nothing from elsewhere.
        for asset in ["console.js", "console.css"] {
            assert!(PAGE.contains(&format!("\"{asset}\"")), "{asset}");
            let (status, _, _) = answer("GET", &format!("/console/{asset}"), false).expect(asset);
            assert_eq!(status, "200 OK");
        }
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
        assert!(
            !SCRIPT.contains("innerHTML"),
            "payloads are written as text"
        );
        assert_eq!(answer("GET", "/", true).expect("root").0, "302 Found");
        assert!(answer("GET", "/", false).is_none());
        assert!(answer("GET", "/console/other.js", false).is_none());
        assert_eq!(
            answer("POST", "/console/", false).expect("post").0,
            "405 Method Not Allowed"
        );
    }
}
