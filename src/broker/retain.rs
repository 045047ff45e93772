//! Retained messages: at most one per topic, kept in a trie of topic levels so that a
//! new subscription finds its matches by walking only the branches its filter allows.

use std::collections::HashMap;
use std::sync::Arc;

use super::message::Message;

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    message: Option<Arc<Message>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

/// Topic → last retained message.
#[derive(Debug, Default)]
pub struct RetainedStore {
    root: Node,
    count: usize,
}

impl RetainedStore {
    pub fn len(&self) -> usize {
        self.count
    }

    /// Stores `message` for its topic, or, when its payload is empty, removes the
    /// topic's retained message [MQTT-3.3.1-10 3.1.1, MQTT-3.3.1-6 5.0] [MQTT-3.3.1-11 3.1.1, MQTT-3.3.1-7 5.0].
    pub fn set(&mut self, message: &Arc<Message>) {
        let topic = message.topic.as_str();
        if message.payload.is_empty() {
            self.remove(topic);
            return;
        }
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        if node.message.replace(Arc::clone(message)).is_none() {
            self.count += 1;
        }
    }

    /// Deletes the retained message of `topic`, if any.
    pub fn remove(&mut self, topic: &str) {
        if Self::remove_from(&mut self.root, topic) {
            self.count -= 1;
        }
    }

    /// Deletes every retained message that expired before `now`.
    pub fn purge_expired(&mut self, now: std::time::Instant) {
        let mut all = Vec::new();
        self.all(&mut all);
        for message in all.iter().filter(|m| m.is_expired(now)) {
            self.remove(message.topic.as_str());
        }
    }

    fn remove_from(node: &mut Node, topic: &str) -> bool {
        let (level, rest) = match topic.split_once('/') {
            Some((level, rest)) => (level, Some(rest)),
            None => (topic, None),
        };
        let Some(child) = node.children.get_mut(level) else {
            return false;
        };
        let removed = match rest {
            Some(rest) => Self::remove_from(child, rest),
            None => child.message.take().is_some(),
        };
        if child.is_empty() {
            node.children.remove(level);
        }
        removed
    }

    /// Appends the retained messages whose topics match `filter` (a plain filter,
    /// without `$share/`).
    pub fn matches(&self, filter: &str, out: &mut Vec<Arc<Message>>) {
        Self::collect(&self.root, filter, true, out);
    }

    fn collect(node: &Node, filter: &str, root: bool, out: &mut Vec<Arc<Message>>) {
        let (level, rest) = match filter.split_once('/') {
            Some((level, rest)) => (level, Some(rest)),
            None => (filter, None),
        };
        // [MQTT-4.7.2-1 3.1.1/5.0]: wildcards in the first level skip `$` topics.
        let visible = |name: &str| !(root && name.starts_with('$'));
        match level {
            "#" => {
                // `a/#` also matches `a` itself: the parent's message, unless this
                // is the root.
                if !root {
                    out.extend(node.message.iter().cloned());
                }
                for (name, child) in &node.children {
                    if visible(name) {
                        Self::collect_all(child, out);
                    }
                }
            }
            "+" => {
                for (name, child) in &node.children {
                    if visible(name) {
                        Self::descend(child, rest, out);
                    }
                }
            }
            literal => {
                if let Some(child) = node.children.get(literal) {
                    Self::descend(child, rest, out);
                }
            }
        }
    }

    fn descend(child: &Node, rest: Option<&str>, out: &mut Vec<Arc<Message>>) {
        match rest {
            Some(rest) => Self::collect(child, rest, false, out),
            None => out.extend(child.message.iter().cloned()),
        }
    }

    fn collect_all(node: &Node, out: &mut Vec<Arc<Message>>) {
        out.extend(node.message.iter().cloned());
        for child in node.children.values() {
            Self::collect_all(child, out);
        }
    }

    /// Every retained message, in no particular order.
    pub fn all(&self, out: &mut Vec<Arc<Message>>) {
        Self::collect_all(&self.root, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::matches as spec_matches;
    use crate::protocol::{QoS, TopicName};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn message(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message::new(
            TopicName::new(topic).expect("valid"),
            Bytes::from_static(payload),
            QoS::AtMostOnce,
            true,
        ))
    }

    fn topics(store: &RetainedStore, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        store.matches(filter, &mut out);
        let mut names: Vec<String> = out.iter().map(|m| m.topic.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn store_replace_and_delete() {
        let mut store = RetainedStore::default();
        store.set(&message("a/b", b"1"));
        store.set(&message("a/b", b"2"));
        store.set(&message("a", b"3"));
        assert_eq!(store.len(), 2);
        let mut out = Vec::new();
        store.matches("a/b", &mut out);
        assert_eq!(&out[0].payload[..], b"2");
        store.set(&message("a/b", b""));
        assert_eq!(store.len(), 1);
        assert_eq!(topics(&store, "#"), vec!["a"]);
        store.set(&message("a", b""));
        assert!(store.len() == 0 && store.root.is_empty());
    }

    #[test]
    fn wildcard_lookups() {
        let mut store = RetainedStore::default();
        for topic in ["a", "a/b", "a/b/c", "x/b", "$SYS/uptime", "/lead"] {
            store.set(&message(topic, b"x"));
        }
        assert_eq!(topics(&store, "a/#"), vec!["a", "a/b", "a/b/c"]);
        assert_eq!(topics(&store, "+/b"), vec!["a/b", "x/b"]);
        assert_eq!(
            topics(&store, "#"),
            vec!["/lead", "a", "a/b", "a/b/c", "x/b"]
        );
        assert_eq!(topics(&store, "$SYS/#"), vec!["$SYS/uptime"]);
        assert_eq!(topics(&store, "+/lead"), vec!["/lead"]);
    }

    proptest! {
        #[test]
        fn agrees_with_the_matching_rules(
            stored in prop::collection::vec(prop::collection::vec("[ab$]{0,2}", 1..4), 1..10),
            filter in (prop::collection::vec(prop_oneof!["[ab$]{0,2}", Just("+".to_string())], 1..4), any::<bool>()),
        ) {
            let mut store = RetainedStore::default();
            let mut names = Vec::new();
            for levels in stored {
                let topic = levels.join("/");
                if let Ok(name) = TopicName::new(topic.clone()) {
                    store.set(&Arc::new(Message::new(name, Bytes::from_static(b"x"), QoS::AtMostOnce, true)));
                    names.push(topic);
                }
            }
            let mut text = filter.0.join("/");
            if filter.1 { text.push_str("/#"); }
            if crate::protocol::TopicFilter::new(text.clone()).is_err() { return Ok(()); }
            let mut expected: Vec<String> = names.into_iter().filter(|t| spec_matches(&text, t)).collect();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(topics(&store, &text), expected);
        }
    }
}
