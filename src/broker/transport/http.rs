//! `http_dir`: static files for plain HTTP requests on a WebSocket listener, as
//! mosquitto serves them: GET (and HEAD) only, a trailing `/` means `index.html`,
//! a directory is redirected to its `/` form, and nothing outside the directory
//! is served, through `..` or a symbolic link. Unlike mosquitto, replies carry a
//! `Content-Type`, so browsers load scripts and modules from it. Only regular
//! files are served, streamed in chunks rather than read whole. [`Site`] puts
//! the directory and the built-in web console together for one listener.

use std::path::{Component, Path, PathBuf};

/// What a WebSocket listener answers to plain HTTP requests: its `http_dir`, its
/// web console, both (the console under `/console/`), or neither.
#[derive(Debug, Clone, Default)]
pub struct Site {
    pub dir: Option<PathBuf>,
    pub console: bool,
}

impl Site {
    /// The answer to `method path`.
    pub fn answer(&self, method: &str, path: &str) -> Response {
        if self.console
            && let Some(response) = crate::broker::console::answer(method, path, self.dir.is_none())
        {
            return response;
        }
        match &self.dir {
            Some(dir) => serve_file(dir, method, path),
            None if self.console => text("404 Not Found", "Not found.\n"),
            None => text(
                "400 Bad Request",
                "This port serves MQTT over WebSockets.\n",
            ),
        }
    }
}

/// Files larger than this are refused.
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// What a response carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    Text(&'static str),
    /// A regular file and its length, sent in chunks.
    File(PathBuf, u64),
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Text(text) => text.len() as u64,
            Body::File(_, len) => *len,
        }
    }
}

/// A response: status line, headers, body.
pub type Response = (&'static str, Vec<(&'static str, String)>, Body);

/// Answers `method path` from the files under `dir`.
pub fn serve_file(dir: &Path, method: &str, path: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return text("405 Method Not Allowed", "Method not allowed.\n");
    }
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let Some(decoded) = percent_decode(path) else {
        return text("400 Bad Request", "Bad request.\n");
    };
    let Some(relative) = relative_path(&decoded) else {
        return text("403 Forbidden", "Forbidden.\n");
    };
    let (Ok(root), Ok(target)) = (dir.canonicalize(), dir.join(&relative).canonicalize()) else {
        return text("404 Not Found", "Not found.\n");
    };
    // A symbolic link may still lead out of the directory.
    if !target.starts_with(&root) {
        return text("403 Forbidden", "Forbidden.\n");
    }
    let Ok(metadata) = target.metadata() else {
        return text("404 Not Found", "Not found.\n");
    };
    if metadata.is_dir() {
        if decoded.ends_with('/') {
            return text("404 Not Found", "Not found.\n");
        }
        return (
            "302 Found",
            vec![("Location", format!("{path}/"))],
            Body::Text(""),
        );
    }
    // Not a FIFO or a device, whose reads could block for ever.
    if !metadata.is_file() || metadata.len() > MAX_FILE {
        return text("403 Forbidden", "Forbidden.\n");
    }
    (
        "200 OK",
        vec![("Content-Type", content_type(&target).to_string())],
        Body::File(target, metadata.len()),
    )
}

fn text(status: &'static str, body: &'static str) -> Response {
    (
        status,
        vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
        Body::Text(body),
    )
}

/// The request path as a path below the directory (`index.html` for a trailing
/// `/`); `None` if it climbs out with `..`.
fn relative_path(decoded: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if decoded.ends_with('/') {
        relative.push("index.html");
    }
    Some(relative)
}

/// `%XX` escapes decoded; `None` for a bad escape, a NUL, or text that is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// The media type of a file, from its extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "<p>hi</p>").expect("write");
        std::fs::create_dir(dir.path().join("js")).expect("mkdir");
        std::fs::write(dir.path().join("js/app.js"), "1").expect("write");
        let outside = tempfile::NamedTempFile::new().expect("tmp");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).expect("link");
        let status = |path: &str| serve_file(dir.path(), "GET", path).0;
        assert_eq!(status("/"), "200 OK");
        assert_eq!(status("/js/app.js?v=1"), "200 OK");
        assert_eq!(status("/js"), "302 Found");
        assert_eq!(status("/missing"), "404 Not Found");
        assert_eq!(status("/../etc/passwd"), "403 Forbidden");
        assert_eq!(status("/%2e%2e/etc/passwd"), "403 Forbidden");
        assert_eq!(status("/escape"), "403 Forbidden");
        assert_eq!(status("/%zz"), "400 Bad Request");
        assert_eq!(
            serve_file(dir.path(), "POST", "/").0,
            "405 Method Not Allowed"
        );
        let (_, headers, body) = serve_file(dir.path(), "GET", "/js/app.js");
        assert_eq!(headers[0].1, "text/javascript; charset=utf-8");
        assert_eq!(body.len(), 1);
        // Only regular files: not a FIFO, whose read would block.
        let fifo =
            std::ffi::CString::new(dir.path().join("fifo").to_str().expect("utf-8")).expect("path");
        // SAFETY: a NUL-terminated path; mkfifo only creates the file.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        assert_eq!(status("/fifo"), "403 Forbidden");
    }
}
