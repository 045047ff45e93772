//! How a bridge renames topics, by mosquitto's rules: a message going out takes
//! the first `out`/`both` line whose local filter matches it, loses that line's
//! local prefix and gains its remote prefix; a message coming in takes the first
//! `in`/`both` line whose remote filter matches, the other way round. A message
//! no line matches keeps its topic.

use crate::broker::config::bridge::BridgeTopic;
use crate::protocol::topic::matches;

/// The remote topic of local message `topic`.
pub fn to_remote(topics: &[BridgeTopic], topic: &str) -> String {
    topics
        .iter()
        .filter(|line| line.direction.outgoing())
        .find(|line| matches(line.local.as_str(), topic))
        .map_or_else(
            || topic.to_string(),
            |line| swap_prefix(topic, &line.local_prefix, &line.remote_prefix),
        )
}

/// The local topic of remote message `topic`.
pub fn to_local(topics: &[BridgeTopic], topic: &str) -> String {
    topics
        .iter()
        .filter(|line| line.direction.incoming())
        .find(|line| matches(line.remote.as_str(), topic))
        .map_or_else(
            || topic.to_string(),
            |line| swap_prefix(topic, &line.remote_prefix, &line.local_prefix),
        )
}

fn swap_prefix(topic: &str, from: &str, to: &str) -> String {
    let rest = topic.strip_prefix(from).unwrap_or(topic);
    format!("{to}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::config::bridge::Bridges;

    fn topics(lines: &[&str]) -> Vec<BridgeTopic> {
        let mut bridges = Bridges::default();
        bridges
            .apply("connection", &["b"], "c:1")
            .expect("connection");
        bridges.apply("address", &["h"], "c:2").expect("address");
        for line in lines {
            let values: Vec<&str> = line.split_whitespace().collect();
            bridges.apply("topic", &values, "c:3").expect("topic");
        }
        bridges.list.remove(0).topics
    }

    #[test]
    fn prefixes_are_swapped_as_mosquitto_does() {
        // The cases mosquitto 2.0.11 was run with.
        let out = topics(&["sensors/# out 1 local/ remote/"]);
        assert_eq!(to_remote(&out, "local/sensors/t1"), "remote/sensors/t1");
        let incoming = topics(&["cmd/# in 2 loc/ rem/"]);
        assert_eq!(to_local(&incoming, "rem/cmd/x"), "loc/cmd/x");
        let both = topics(&["# both 1 \"\" remote/"]);
        assert_eq!(to_remote(&both, "a/b"), "remote/a/b");
        assert_eq!(to_local(&both, "remote/x/y"), "x/y");
        // An empty pattern: one topic, renamed whole.
        let single = topics(&["\"\" both 0 here/x there/y"]);
        assert_eq!(to_remote(&single, "here/x"), "there/y");
        assert_eq!(to_local(&single, "there/y"), "here/x");
    }

    #[test]
    fn the_first_matching_line_of_the_direction_wins() {
        let lines = topics(&["a/# in 0 in/ r1/", "a/# out 0 l/ r2/", "a/# both 0 l/ r3/"]);
        assert_eq!(to_remote(&lines, "l/a/b"), "r2/a/b");
        assert_eq!(to_local(&lines, "r1/a/b"), "in/a/b");
        assert_eq!(to_local(&lines, "r3/a/b"), "l/a/b");
        // No line: the topic is kept.
        assert_eq!(to_local(&lines, "other"), "other");
    }
}
