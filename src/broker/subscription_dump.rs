//! The subscription tree as mosquitto prints it on SIGUSR2: one line per topic
//! level, indented two spaces per level below the roots (which are indented
//! four), each followed by ` (client, qos)` for the subscriptions ending there.
//!
//! mosquitto 2.0 keeps a root per first level, printed in this order: `""` for
//! ordinary filters, `$SYS`, any other `$` first level, and `""` for shared
//! subscriptions, whose levels it prints without subscribers. Below a root, a filter
//! is its levels, with an empty first level for filters not starting with `$`:
//!
//! ```text
//!     
//!       
//!         a
//!           b (s1, 1)
//!           # (s1, 1)
//!     $SYS
//!     
//! ```
//!
//! Levels are printed in name order; mosquitto prints them in the order they were
//! created, which rbroker does not keep.

use std::collections::BTreeMap;
use std::fmt::Write;

/// One level of the tree.
#[derive(Default)]
struct Level {
    /// `(client id, qos)` of the subscriptions whose filter ends here.
    subscribers: Vec<(String, u8)>,
    children: BTreeMap<String, Level>,
}

/// The printout for `subscriptions`: `(filter, client id, qos)`.
pub fn render<'a>(subscriptions: impl IntoIterator<Item = (&'a str, &'a str, u8)>) -> String {
    // Roots by first level: "" for ordinary filters, and one per `$` first level,
    // `$SYS` always; shared subscriptions have a tree of their own.
    let mut roots: BTreeMap<String, Level> = BTreeMap::new();
    roots.insert(String::new(), Level::default());
    roots.insert("$SYS".into(), Level::default());
    let mut shared = Level::default();
    for (filter, client_id, qos) in subscriptions {
        let (root, levels, subscriber) = match filter.strip_prefix("$share/") {
            // The filter after the share name, without its subscribers.
            Some(rest) => (
                &mut shared,
                rest.split_once('/').map_or("", |(_, filter)| filter),
                None,
            ),
            None => {
                let first = if filter.starts_with('$') {
                    filter.split('/').next().unwrap_or_default()
                } else {
                    ""
                };
                let root = roots.entry(first.to_string()).or_default();
                (root, filter, Some((client_id, qos)))
            }
        };
        // Below its root, a filter is its levels, with an empty first one unless it
        // starts with `$`.
        let mut node = root;
        if !levels.starts_with('$') {
            node = node.children.entry(String::new()).or_default();
        }
        for name in levels.split('/') {
            node = node.children.entry(name.to_string()).or_default();
        }
        if let Some((client_id, qos)) = subscriber {
            node.subscribers.push((client_id.to_string(), qos));
        }
    }
    let mut out = String::new();
    for (name, level) in roots
        .iter()
        .filter(|(name, _)| name.is_empty() || *name == "$SYS")
    {
        print_level(&mut out, name, level, 0);
    }
    for (name, level) in roots
        .iter()
        .filter(|(name, _)| !name.is_empty() && *name != "$SYS")
    {
        print_level(&mut out, name, level, 0);
    }
    print_level(&mut out, "", &shared, 0);
    out
}

fn print_level(out: &mut String, name: &str, level: &Level, depth: usize) {
    let _ = write!(out, "{:width$}{name}", "", width = (depth + 2) * 2);
    for (client_id, qos) in &level.subscribers {
        let _ = write!(out, " ({client_id}, {qos})");
    }
    out.push('\n');
    for (child, node) in &level.children {
        print_level(out, child, node, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_levels_and_subscribers_as_mosquitto() {
        let text = render([
            ("a/b", "s1", 1),
            ("a/#", "s1", 1),
            ("+/c", "s2", 2),
            ("$share/g/x/y", "s3", 0),
            ("$SYS/broker/#", "s4", 0),
        ]);
        let expected = concat!(
            "    \n",
            "      \n",
            "        +\n",
            "          c (s2, 2)\n",
            "        a\n",
            "          # (s1, 1)\n",
            "          b (s1, 1)\n",
            "    $SYS\n",
            "      $SYS\n",
            "        broker\n",
            "          # (s4, 0)\n",
            "    \n",
            "      \n",
            "        x\n",
            "          y\n",
        );
        assert_eq!(text, expected);
    }
}
