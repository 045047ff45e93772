//! mosquitto's ACL file, and the three questions the broker asks of it: may this
//! client publish to a topic, read a topic, subscribe to a filter.
//!
//! Syntax (mosquitto.conf(5)): `topic [read|write|readwrite|deny] TOPIC` (before any
//! `user` line: for anonymous clients; after `user NAME`: for that user), and
//! `pattern [read|write|readwrite|deny] TOPIC` for everyone, where a level that is
//! exactly `%c` or `%u` stands for the client id or the username. The access defaults
//! to readwrite; a topic may contain spaces. `#` starts a comment line.
//!
//! Order of evaluation, as mosquitto's `acl_check_default`: the client's own `deny`
//! lines, its grants, then `deny` patterns, then pattern grants; nothing granted is
//! denied, and an ACL with no lines denies everything (CVE-2018-12550). A client id or
//! username holding `+`, `#` or `/` never matches a pattern that substitutes it
//! (CVE-2017-7650), and patterns with `%u` never match a client without a username.
//!
//! SUBSCRIBE is checked too, which mosquitto's acl_file does not do: a filter is
//! refused when a `deny` line covers every topic it could match, or when no read
//! grant overlaps it. A granted filter may still be wider than what the client may
//! read (`#` for a client allowed `lab/#`); every delivery is checked, so it receives
//! only what it may read.

use std::collections::HashMap;

use super::password::{LineError, lines};
use crate::broker::config::MAX_TOPIC_LEVELS_LIMIT;

/// What a client asks to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What one ACL line gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Grant {
    fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Grant::ReadWrite, _) | (Grant::Read, Access::Read) | (Grant::Write, Access::Write)
        )
    }
}

/// One level of an ACL topic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Exact(String),
    /// `+`
    Any,
    /// `#`: this level and every one after it, or none.
    Rest,
    /// `%c` in a pattern.
    ClientId,
    /// `%u` in a pattern.
    Username,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    grant: Grant,
    levels: Vec<Level>,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub username: Option<&'a str>,
    pub client_id: &'a str,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

impl Acl {
    pub fn parse(text: &str) -> Result<Acl, LineError> {
        let mut acl = Acl::default();
        let mut user: Option<String> = None;
        for (line, content) in lines(text) {
            let at = |reason: String| LineError { line, reason };
            let content = content.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let (keyword, rest) = content
                .split_once([' ', '\t'])
                .map_or((content, ""), |(k, r)| (k, r.trim()));
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(at("\"user\" needs a username".into()));
                    }
                    acl.users.entry(rest.to_string()).or_default();
                    user = Some(rest.to_string());
                }
                "topic" | "pattern" => {
                    let pattern = keyword == "pattern";
                    let rule = parse_rule(rest, pattern).map_err(at)?;
                    match (pattern, &user) {
                        (true, _) => acl.patterns.push(rule),
                        (false, Some(user)) => {
                            acl.users.entry(user.clone()).or_default().push(rule)
                        }
                        (false, None) => acl.anonymous.push(rule),
                    }
                }
                other => {
                    return Err(at(format!(
                        "unknown ACL keyword \"{other}\" (expected topic, pattern or user)"
                    )));
                }
            }
        }
        Ok(acl)
    }

    /// Whether `who` may read or write `topic` (a valid topic name).
    pub fn allows(&self, who: Identity<'_>, topic: &str, access: Access) -> bool {
        let matches = |rule: &Rule| matches_topic(&rule.levels, topic, who);
        self.decide(who, matches, |rule| {
            rule.grant.allows(access) && matches(rule)
        })
    }

    /// Whether `who` may subscribe to `filter` (a valid filter, without `$share/`):
    /// refused when a `deny` line covers every topic it matches, granted when a read
    /// grant overlaps it, in the same order as [`Acl::allows`].
    pub fn allows_subscription(&self, who: Identity<'_>, filter: &str) -> bool {
        self.decide(
            who,
            |rule| covers(&rule.levels, filter, who),
            |rule| rule.grant.allows(Access::Read) && overlaps(&rule.levels, filter, who),
        )
    }

    fn own_rules(&self, who: Identity<'_>) -> &[Rule] {
        match who.username {
            Some(username) => self.users.get(username).map_or(&[], Vec::as_slice),
            None => &self.anonymous,
        }
    }

    /// The patterns that apply to `who`, or `None` when its client id or username
    /// holds `+`, `#` or `/`: substituted, it could widen a pattern, so the whole
    /// pattern stage denies, as mosquitto does for `+` and `#` (CVE-2017-7650).
    /// Patterns with `%u` do not apply to a client without a username.
    fn patterns_for<'a>(
        &'a self,
        who: Identity<'a>,
    ) -> Option<impl Iterator<Item = &'a Rule> + Clone + 'a> {
        let unsafe_value = |value: &str| value.contains(['+', '#', '/']);
        if unsafe_value(who.client_id) || who.username.is_some_and(unsafe_value) {
            return None;
        }
        Some(
            self.patterns.iter().filter(move |rule| {
                who.username.is_some() || !rule.levels.contains(&Level::Username)
            }),
        )
    }

    /// mosquitto's order: the client's own `deny` lines, its grants, then `deny`
    /// patterns, then pattern grants; nothing granted is denied.
    fn decide(
        &self,
        who: Identity<'_>,
        denies: impl Fn(&Rule) -> bool + Copy,
        grants: impl Fn(&Rule) -> bool + Copy,
    ) -> bool {
        if let Some(verdict) = verdict(self.own_rules(who).iter(), denies, grants) {
            return verdict;
        }
        self.patterns_for(who)
            .and_then(|patterns| verdict(patterns, denies, grants))
            .unwrap_or(false)
    }
}

/// `Some(false)` when a `deny` rule applies, `Some(true)` when a grant does.
fn verdict<'r>(
    mut rules: impl Iterator<Item = &'r Rule> + Clone,
    denies: impl Fn(&Rule) -> bool,
    grants: impl Fn(&Rule) -> bool,
) -> Option<bool> {
    if rules
        .clone()
        .any(|rule| rule.grant == Grant::Deny && denies(rule))
    {
        return Some(false);
    }
    rules.any(grants).then_some(true)
}

/// `[read|write|readwrite|deny] TOPIC`.
fn parse_rule(rest: &str, pattern: bool) -> Result<Rule, String> {
    let (first, after) = rest
        .split_once([' ', '\t'])
        .map_or((rest, ""), |(f, a)| (f, a.trim()));
    let (grant, topic) = match first {
        "read" => (Grant::Read, after),
        "write" => (Grant::Write, after),
        "readwrite" => (Grant::ReadWrite, after),
        "deny" => (Grant::Deny, after),
        _ => (Grant::ReadWrite, rest),
    };
    if topic.is_empty() {
        return Err("the line names no topic".into());
    }
    if topic.len() > usize::from(u16::MAX) {
        return Err("the topic is longer than 65535 bytes".into());
    }
    let parts: Vec<&str> = topic.split('/').collect();
    if parts.len() > MAX_TOPIC_LEVELS_LIMIT {
        return Err(format!(
            "the topic has more than {MAX_TOPIC_LEVELS_LIMIT} levels"
        ));
    }
    let mut levels = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let level = match *part {
            "#" if index + 1 == parts.len() => Level::Rest,
            "+" => Level::Any,
            "%c" if pattern => Level::ClientId,
            "%u" if pattern => Level::Username,
            other if pattern && (other.contains("%c") || other.contains("%u")) => {
                return Err(format!(
                    "invalid pattern \"{topic}\": %c and %u must fill a level"
                ));
            }
            other if other.contains(['+', '#']) => {
                return Err(format!(
                    "invalid topic \"{topic}\": '+' and '#' must fill a level, and '#' must be last"
                ));
            }
            other => Level::Exact(other.to_string()),
        };
        levels.push(level);
    }
    Ok(Rule { grant, levels })
}

/// What one ACL level stands for, for `who`: `None` for a wildcard.
fn literal<'a>(level: &'a Level, who: Identity<'a>) -> Option<&'a str> {
    match level {
        Level::Exact(text) => Some(text),
        Level::ClientId => Some(who.client_id),
        Level::Username => who.username,
        Level::Any | Level::Rest => None,
    }
}

/// [MQTT-4.7.2-1 3.1.1/5.0]: a wildcard in the first level never matches a `$` level.
fn reserved_first(levels: &[Level], first: &str, who: Identity<'_>) -> bool {
    first.starts_with('$') && levels.first().is_some_and(|l| literal(l, who).is_none())
}

/// Whether the rule matches a topic name.
fn matches_topic(rule: &[Level], topic: &str, who: Identity<'_>) -> bool {
    if reserved_first(rule, topic.split('/').next().unwrap_or(""), who) {
        return false;
    }
    let mut names = topic.split('/');
    for level in rule {
        match level {
            Level::Rest => return true,
            Level::Any => {
                if names.next().is_none() {
                    return false;
                }
            }
            _ => match names.next() {
                Some(name) if literal(level, who) == Some(name) => {}
                _ => return false,
            },
        }
    }
    names.next().is_none()
}

/// Whether some topic name matches both the rule and the filter.
fn overlaps(rule: &[Level], filter: &str, who: Identity<'_>) -> bool {
    let filter: Vec<&str> = filter.split('/').collect();
    let first = filter[0];
    // A `$` topic is matched only by literal first levels on both sides.
    if reserved_first(rule, first, who) {
        return false;
    }
    if let (Some(level), true) = (rule.first(), first == "+" || first == "#")
        && literal(level, who).is_some_and(|text| text.starts_with('$'))
    {
        return false;
    }
    overlap_levels(rule, &filter, who)
}

fn overlap_levels(rule: &[Level], filter: &[&str], who: Identity<'_>) -> bool {
    match (rule.first(), filter.first()) {
        (Some(Level::Rest), _) | (_, Some(&"#")) => true,
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some(level), Some(&name)) => {
            let compatible = match literal(level, who) {
                None => true,
                Some(text) => name == "+" || name == text,
            };
            compatible && overlap_levels(&rule[1..], &filter[1..], who)
        }
    }
}

/// Whether every topic name the filter matches is matched by the rule.
fn covers(rule: &[Level], filter: &str, who: Identity<'_>) -> bool {
    let filter: Vec<&str> = filter.split('/').collect();
    // A rule starting with a wildcard misses `$` topics, which a filter starting
    // with a `$` literal matches.
    if reserved_first(rule, filter[0], who) {
        return false;
    }
    cover_levels(rule, &filter, who)
}

fn cover_levels(rule: &[Level], filter: &[&str], who: Identity<'_>) -> bool {
    match (rule.first(), filter.first()) {
        (Some(Level::Rest), _) => true,
        (None, None) => true,
        (_, Some(&"#")) | (None, Some(_)) | (Some(_), None) => false,
        (Some(level), Some(&name)) => {
            let covered = match literal(level, who) {
                None => true,
                Some(text) => name == text,
            };
            covered && cover_levels(&rule[1..], &filter[1..], who)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# anonymous
topic read public/#

user alice
topic readwrite lab/#
topic deny lab/secret
topic write alice/out
topic read with space/x y

user bob
topic lab/#

pattern readwrite clients/%c/#
pattern read users/%u/#
";

    fn who<'a>(username: Option<&'a str>, client_id: &'a str) -> Identity<'a> {
        Identity {
            username,
            client_id,
        }
    }

    #[test]
    fn users_anonymous_and_patterns_follow_mosquittos_order() {
        let acl = Acl::parse(FILE).expect("valid");
        let alice = who(Some("alice"), "c1");
        assert!(acl.allows(alice, "lab/a", Access::Write));
        assert!(acl.allows(alice, "lab/a", Access::Read));
        assert!(!acl.allows(alice, "lab/secret", Access::Read));
        assert!(acl.allows(alice, "alice/out", Access::Write));
        assert!(!acl.allows(alice, "alice/out", Access::Read));
        assert!(acl.allows(alice, "with space/x y", Access::Read));
        assert!(!acl.allows(alice, "public/x", Access::Read));
        assert!(acl.allows(alice, "clients/c1/x", Access::Write));
        assert!(!acl.allows(alice, "clients/c2/x", Access::Write));
        assert!(acl.allows(alice, "users/alice/x", Access::Read));
        assert!(!acl.allows(alice, "users/alice/x", Access::Write));
        let anonymous = who(None, "c3");
        assert!(acl.allows(anonymous, "public/x", Access::Read));
        assert!(!acl.allows(anonymous, "public/x", Access::Write));
        assert!(acl.allows(anonymous, "clients/c3", Access::Read));
        assert!(!acl.allows(anonymous, "users//x", Access::Read));
        let carol = who(Some("carol"), "c4");
        assert!(!acl.allows(carol, "lab/a", Access::Read));
        assert!(acl.allows(carol, "users/carol/a", Access::Read));
    }

    #[test]
    fn wildcards_in_identities_never_match_patterns() {
        let acl = Acl::parse(FILE).expect("valid");
        for id in ["+", "#", "a/b"] {
            let client = who(Some(id), id);
            assert!(!acl.allows(client, &format!("clients/{id}/x"), Access::Read));
            assert!(!acl.allows(client, "clients/x/x", Access::Read));
            assert!(!acl.allows(client, &format!("users/{id}/x"), Access::Read));
        }
    }

    #[test]
    fn a_users_own_lines_decide_before_patterns_for_subscriptions_too() {
        let acl =
            Acl::parse("pattern deny $SYS/#\nuser admin\ntopic read $SYS/#\n").expect("valid");
        let admin = who(Some("admin"), "a");
        assert!(acl.allows(admin, "$SYS/broker/uptime", Access::Read));
        assert!(acl.allows_subscription(admin, "$SYS/#"));
        assert!(!acl.allows_subscription(who(Some("other"), "b"), "$SYS/#"));
    }

    #[test]
    fn an_empty_acl_denies_everything() {
        let acl = Acl::parse("# nothing\n\n").expect("valid");
        assert!(!acl.allows(who(Some("a"), "c"), "a", Access::Read));
        assert!(!acl.allows(who(None, "c"), "a", Access::Write));
        assert!(!acl.allows_subscription(who(None, "c"), "#"));
    }

    #[test]
    fn reserved_topics_need_literal_rules() {
        let acl = Acl::parse("topic #\ntopic $SYS/broker/#\n").expect("valid");
        let anonymous = who(None, "c");
        assert!(acl.allows(anonymous, "a/b", Access::Read));
        assert!(acl.allows(anonymous, "$SYS/broker/uptime", Access::Read));
        assert!(!acl.allows(anonymous, "$other/x", Access::Read));
        assert!(acl.allows_subscription(anonymous, "$SYS/#"));
        assert!(!acl.allows_subscription(anonymous, "$other/#"));
    }

    #[test]
    fn subscriptions_are_granted_when_they_overlap_a_read_grant() {
        let acl = Acl::parse(FILE).expect("valid");
        let alice = who(Some("alice"), "c1");
        for granted in ["lab/#", "#", "+/x", "lab/+", "clients/c1/#", "users/+/a"] {
            assert!(acl.allows_subscription(alice, granted), "{granted}");
        }
        for refused in ["lab/secret", "other/x", "$SYS/#", "alice/out", "public/#"] {
            assert!(!acl.allows_subscription(alice, refused), "{refused}");
        }
        let anonymous = who(None, "c3");
        assert!(acl.allows_subscription(anonymous, "public/#"));
        assert!(!acl.allows_subscription(anonymous, "lab/#"));
    }

    #[test]
    fn bad_lines_name_their_number() {
        for (text, line) in [
            ("topic read a\npattern deny dev-%c/#\n", 2),
            ("topic read a\nuser\n", 2),
            ("topic read\n", 1),
            ("topic\n", 1),
            ("topic read a/#/b\n", 1),
            ("topic read a+\n", 1),
            ("# c\nallow a\n", 2),
        ] {
            assert_eq!(Acl::parse(text).map_err(|e| e.line), Err(line), "{text}");
        }
        let deep = format!("topic {}\n", "a/".repeat(1000));
        assert!(Acl::parse(&deep).is_err());
    }
}
