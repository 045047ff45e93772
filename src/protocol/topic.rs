//! Topic names and topic filters as validated types, wildcard matching, and
//! `$share/<group>/<filter>` parsing (§4.7, §4.8.2).
//!
//! Rules, as the matcher reads them:
//! * `/` separates levels; empty levels are legal (`a//b`, `/a`).
//! * `+` matches exactly one level and must fill its level (`a/+/c`, not `a+`).
//! * `#` matches the remaining levels, including none, and must be last (`a/#`, not
//!   `a/#/b`); `a/#` also matches `a`.
//! * Names beginning with `$` are not matched by a filter beginning with `+` or `#`
//!   [MQTT-4.7.2-1 3.1.1/5.0], so `#` does not see `$SYS/...` but `$SYS/#` does.
//!
//! How many levels a topic may have is not the codec's business: it is a server's
//! policy (rbroker's `max_topic_levels`), checked where the broker answers with a
//! reason code. The codec's only bound is the 65,535-byte string.

use std::fmt;

/// Why a string is not a valid topic name or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("[MQTT-4.7.3-1 3.1.1/5.0] topic must be at least one character long")]
    Empty,
    #[error("[MQTT-4.7.3-3 3.1.1/5.0] topic is longer than 65535 bytes")]
    TooLong,
    #[error("[MQTT-4.7.3-2 3.1.1/5.0] topic contains U+0000")]
    NullCharacter,
    #[error("[MQTT-3.3.2-2 3.1.1/5.0] topic name contains a wildcard")]
    WildcardInName,
    #[error(
        "[MQTT-4.7.1-1 5.0, MQTT-4.7.1-2 3.1.1] '#' must be the last character and fill its level"
    )]
    MisplacedMultiLevelWildcard,
    #[error("[MQTT-4.7.1-2 5.0, MQTT-4.7.1-3 3.1.1] '+' must fill its level")]
    MisplacedSingleLevelWildcard,
    #[error(
        "[MQTT-4.8.2-1 5.0] shared subscription needs a share name without '+', '#' or '/' and a filter"
    )]
    InvalidSharedSubscription,
}

fn check_common(text: &str) -> Result<(), TopicError> {
    if text.is_empty() {
        return Err(TopicError::Empty);
    }
    if text.len() > usize::from(u16::MAX) {
        return Err(TopicError::TooLong);
    }
    if text.contains('\0') {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// A topic name: what a PUBLISH is sent to. No wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    pub fn new(text: impl Into<String>) -> Result<Self, TopicError> {
        let text = text.into();
        check_common(&text)?;
        if text.contains(['+', '#']) {
            return Err(TopicError::WildcardInName);
        }
        Ok(TopicName(text))
    }

    /// The zero-length name an MQTT 5 PUBLISH uses when a Topic Alias stands in for
    /// it (§3.3.2.3.4). Only the codec and alias handling create one.
    pub fn alias_placeholder() -> Self {
        TopicName(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Topics beginning with `$` are reserved for the server (§4.7.2).
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with('$')
    }

    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A topic filter: what a SUBSCRIBE asks for. May contain `+` and `#`, and may be a
/// shared subscription `$share/<group>/<filter>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter {
    text: String,
    /// For `$share/<group>/<filter>`, the byte offset where `<filter>` starts.
    filter_start: usize,
}

const SHARE_PREFIX: &str = "$share/";

impl TopicFilter {
    pub fn new(text: impl Into<String>) -> Result<Self, TopicError> {
        let text = text.into();
        check_common(&text)?;
        let filter_start = match text.strip_prefix(SHARE_PREFIX) {
            Some(rest) => {
                // [MQTT-4.8.2-1 5.0] [MQTT-4.8.2-2 5.0]
                let (group, filter) = rest
                    .split_once('/')
                    .ok_or(TopicError::InvalidSharedSubscription)?;
                if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
                    return Err(TopicError::InvalidSharedSubscription);
                }
                SHARE_PREFIX.len() + group.len() + 1
            }
            None => 0,
        };
        check_wildcards(&text[filter_start..])?;
        Ok(TopicFilter { text, filter_start })
    }

    /// The whole filter as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The share name of a shared subscription.
    pub fn share_group(&self) -> Option<&str> {
        if self.filter_start == 0 {
            return None;
        }
        Some(&self.text[SHARE_PREFIX.len()..self.filter_start - 1])
    }

    /// The filter that is matched against topic names (without `$share/<group>/`).
    pub fn filter(&self) -> &str {
        &self.text[self.filter_start..]
    }

    pub fn has_wildcards(&self) -> bool {
        self.filter().contains(['+', '#'])
    }

    pub fn matches(&self, topic: &TopicName) -> bool {
        matches(self.filter(), topic.as_str())
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn check_wildcards(filter: &str) -> Result<(), TopicError> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') {
            // [MQTT-4.7.1-1 5.0, MQTT-4.7.1-2 3.1.1]: '#' alone in its level, and the last level.
            if level != "#" || levels.peek().is_some() {
                return Err(TopicError::MisplacedMultiLevelWildcard);
            }
        } else if level.contains('+') && level != "+" {
            // [MQTT-4.7.1-2 5.0, MQTT-4.7.1-3 3.1.1]
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Whether a (valid, non-shared) filter matches a (valid) topic name.
pub fn matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1 3.1.1/5.0]
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        if filter_level == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(level) if filter_level == "+" || filter_level == level => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// Why a filter matches a topic, or why not: the reasoning of [`matches()`], one
/// level at a time, for people learning wildcards (`rsub --match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Level for level the same, each `+` standing for the level given.
    Same { plus: Vec<String> },
    /// `#` at level `at` (from 0) stands for the levels `rest` (none: the
    /// parent level, the topic itself), the levels before it matched, each `+`
    /// standing for the level given.
    Hash {
        at: usize,
        rest: Vec<String>,
        plus: Vec<String>,
    },
    /// A topic starting with `$` against a filter starting with a wildcard.
    Reserved,
    /// Level `at` (from 0) differs.
    Differs {
        at: usize,
        topic: String,
        filter: String,
    },
    /// The topic has fewer levels than the filter needs (`at_least`: the
    /// filter ends in `#`, which may stand for more).
    Shorter {
        topic: usize,
        filter: usize,
        at_least: bool,
    },
    /// The topic has levels after the filter's last.
    Longer { filter: usize, extra: String },
}

impl Verdict {
    pub fn is_match(&self) -> bool {
        matches!(self, Verdict::Same { .. } | Verdict::Hash { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = |levels: &[String]| {
            levels
                .iter()
                .map(|level| format!("'{level}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Verdict::Same { plus } if plus.is_empty() => write!(f, "the same levels"),
            Verdict::Same { plus } => write!(f, "each + stands for one level: {}", quoted(plus)),
            Verdict::Hash { at: 0, rest, .. } => {
                write!(f, "# stands for any topic, here '{}'", rest.join("/"))
            }
            Verdict::Hash { rest, plus, .. } => {
                if !plus.is_empty() {
                    write!(f, "each + stands for one level: {}; ", quoted(plus))?;
                }
                match rest.as_slice() {
                    [] => write!(
                        f,
                        "# also stands for no level at all: the parent topic itself"
                    ),
                    [level] if level.is_empty() => {
                        write!(f, "# stands for the rest, one empty level")
                    }
                    _ => write!(f, "# stands for the rest, '{}'", rest.join("/")),
                }
            }
            Verdict::Reserved => write!(
                f,
                "a topic starting with $ is not matched by a filter starting with a wildcard"
            ),
            Verdict::Differs { at, topic, filter } => write!(
                f,
                "level {} is '{topic}', the filter wants '{filter}'",
                at + 1
            ),
            Verdict::Shorter {
                topic,
                filter,
                at_least,
            } => write!(
                f,
                "the topic has {topic} level{}, the filter needs {}{filter}",
                if *topic == 1 { "" } else { "s" },
                if *at_least { "at least " } else { "" }
            ),
            Verdict::Longer { filter, extra } => write!(
                f,
                "the topic goes on after the filter's {filter} level{} ('{extra}'); only # covers more levels",
                if *filter == 1 { "" } else { "s" }
            ),
        }
    }
}

/// [`matches()`], with its reason.
pub fn explain(filter: &str, topic: &str) -> Verdict {
    // [MQTT-4.7.2-1 3.1.1/5.0]
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return Verdict::Reserved;
    }
    let topic_levels: Vec<&str> = topic.split('/').collect();
    let mut plus = Vec::new();
    for (at, filter_level) in filter.split('/').enumerate() {
        if filter_level == "#" {
            let rest = topic_levels
                .get(at..)
                .unwrap_or_default()
                .iter()
                .map(|level| (*level).to_string())
                .collect();
            return Verdict::Hash { at, rest, plus };
        }
        match topic_levels.get(at) {
            Some(level) if filter_level == "+" => plus.push((*level).to_string()),
            Some(level) if filter_level == *level => {}
            Some(level) => {
                return Verdict::Differs {
                    at,
                    topic: (*level).to_string(),
                    filter: filter_level.to_string(),
                };
            }
            None => {
                let at_least = filter.ends_with('#');
                return Verdict::Shorter {
                    topic: topic_levels.len(),
                    filter: filter.split('/').count() - usize::from(at_least),
                    at_least,
                };
            }
        }
    }
    let levels = filter.split('/').count();
    if topic_levels.len() > levels {
        return Verdict::Longer {
            filter: levels,
            extra: topic_levels[levels..].join("/"),
        };
    }
    Verdict::Same { plus }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> TopicName {
        TopicName::new(text).expect("valid name")
    }

    /// Every string of 1 to `depth` levels taken from `levels`, joined by `/`.
    fn joined(levels: &[&str], depth: usize) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let mut last: Vec<String> = levels.iter().map(|l| (*l).to_string()).collect();
        for _ in 1..depth {
            let next = last
                .iter()
                .flat_map(|prefix| levels.iter().map(move |l| format!("{prefix}/{l}")))
                .collect();
            all.append(&mut last);
            last = next;
        }
        all.append(&mut last);
        all
    }

    #[test]
    fn the_explanation_agrees_with_the_matcher_everywhere() {
        // Every filter and topic of up to 3 levels over a small alphabet.
        let filters: Vec<String> = joined(&["a", "b", "", "+", "#"], 3)
            .into_iter()
            .filter(|f| TopicFilter::new(f.clone()).is_ok())
            .collect();
        let topics: Vec<String> = joined(&["a", "b", "", "$S"], 3)
            .into_iter()
            .filter(|t| TopicName::new(t.clone()).is_ok())
            .collect();
        assert!(filters.len() > 50 && topics.len() > 50);
        for filter in &filters {
            for topic in &topics {
                assert_eq!(
                    explain(filter, topic).is_match(),
                    matches(filter, topic),
                    "{filter} against {topic}"
                );
            }
        }
    }

    #[test]
    fn the_fifteen_filter_exercise_is_explained() {
        let verdict = |filter: &str| explain(filter, "a/b/c/d");
        assert_eq!(
            verdict("a/b/c").to_string(),
            "the topic goes on after the filter's 3 levels ('d'); only # covers more levels"
        );
        assert_eq!(
            verdict("b/+/c/d").to_string(),
            "level 1 is 'a', the filter wants 'b'"
        );
        assert_eq!(
            verdict("a/b/c/d/#").to_string(),
            "# also stands for no level at all: the parent topic itself"
        );
        assert_eq!(
            verdict("a/b/c/d/+").to_string(),
            "the topic has 4 levels, the filter needs 5"
        );
        // `#` may stand for no level, so a filter ending in it needs one fewer.
        assert_eq!(
            explain("a/b/#", "a").to_string(),
            "the topic has 1 level, the filter needs at least 2"
        );
        // An empty last level is a level: `a/#` covers it.
        assert_eq!(
            explain("a/#", "a/").to_string(),
            "# stands for the rest, one empty level"
        );
        assert_eq!(
            explain("a/#", "a").to_string(),
            "# also stands for no level at all: the parent topic itself"
        );
        let matching = [
            "#",
            "+/+/+",
            "+/+/+/+",
            "+/b/c/#",
            "+/b/c/d",
            "a/#",
            "a/+/+/d",
            "a/+/c/d",
            "a/b/#",
            "a/b/c",
            "a/b/c/#",
            "a/b/c/d/#",
            "a/b/c/d",
            "b/+/c/d",
            "a/b/c/d/+",
        ]
        .into_iter()
        .filter(|f| verdict(f).is_match())
        .collect::<Vec<_>>();
        assert_eq!(
            matching,
            [
                "#",
                "+/+/+/+",
                "+/b/c/#",
                "+/b/c/d",
                "a/#",
                "a/+/+/d",
                "a/+/c/d",
                "a/b/#",
                "a/b/c/#",
                "a/b/c/d/#",
                "a/b/c/d"
            ]
        );
    }

    #[test]
    fn names_refuse_wildcards_and_emptiness() {
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("#"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicName::new("a\0b"), Err(TopicError::NullCharacter));
        assert!(TopicName::new("/").is_ok());
        assert!(TopicName::new("a//b").is_ok());
        assert!(TopicName::new("$SYS/x").is_ok_and(|t| t.is_reserved()));
    }

    #[test]
    fn filters_follow_the_wildcard_rules() {
        for valid in [
            "#",
            "+",
            "a/#",
            "a/+/c",
            "+/+",
            "/+",
            "a//#",
            "sport/tennis/+",
        ] {
            assert!(TopicFilter::new(valid).is_ok(), "{valid}");
        }
        assert_eq!(
            TopicFilter::new("a/#/b"),
            Err(TopicError::MisplacedMultiLevelWildcard)
        );
        assert_eq!(
            TopicFilter::new("a#"),
            Err(TopicError::MisplacedMultiLevelWildcard)
        );
        assert_eq!(
            TopicFilter::new("a+"),
            Err(TopicError::MisplacedSingleLevelWildcard)
        );
        assert_eq!(
            TopicFilter::new("a/b+/c"),
            Err(TopicError::MisplacedSingleLevelWildcard)
        );
    }

    #[test]
    fn depth_is_left_to_the_server() {
        let deep = "a/".repeat(5000);
        assert!(TopicName::new(deep.clone() + "a").is_ok());
        assert!(TopicFilter::new(deep + "#").is_ok());
        assert!(TopicName::new("/".repeat(65_535)).is_ok());
        assert_eq!(TopicName::new("/".repeat(65_536)), Err(TopicError::TooLong));
    }

    #[test]
    fn shared_subscriptions_parse() {
        let shared = TopicFilter::new("$share/group/a/+").expect("valid");
        assert_eq!(shared.share_group(), Some("group"));
        assert_eq!(shared.filter(), "a/+");
        assert!(shared.matches(&name("a/b")));
        for invalid in [
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share/g#/a",
            "$share/g/",
            "$share/g/a/#/b",
        ] {
            assert!(TopicFilter::new(invalid).is_err(), "{invalid}");
        }
        assert_eq!(
            TopicFilter::new("$shared/g/a")
                .expect("plain")
                .share_group(),
            None
        );
    }

    #[test]
    fn matching_examples_from_section_4_7() {
        let cases = [
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/#", "sport", true),
            ("#", "anything/at/all", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("#", "$SYS/broker/uptime", false),
            ("$SYS/#", "$SYS/broker/uptime", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(matches(filter, topic), expected, "{filter} vs {topic}");
        }
    }
}
