//! The subscription index: a trie of topic levels, so the cost of routing a PUBLISH
//! grows with the topic's depth and the subscriptions that match, not with the
//! number of unrelated subscriptions.
//!
//! Each node is one level. A node holds the subscriptions whose filter ends there
//! (`exact`) and those whose filter is that path followed by `/#` (`multi`); its
//! children are literal levels and the `+` level. Matching a topic walks the literal
//! and `+` children level by level and collects every `multi` it passes, which is
//! how `a/#` matches `a`, `a/b` and `a/b/c`. At the root, `+` and `#` are skipped for
//! topics beginning with `$` [MQTT-4.7.2-1 3.1.1/5.0].
//!
//! Shared subscriptions (`$share/<group>/<filter>`) are stored under their filter as
//! groups; a match picks one member of each group, round robin.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::protocol::TopicFilter;

/// Identifies the owner of a subscription (a session).
pub type SubscriberId = u64;

#[derive(Debug)]
struct SharedGroup<V> {
    name: Box<str>,
    members: Vec<(SubscriberId, V)>,
    /// Next member to receive a message.
    cursor: AtomicUsize,
}

impl<V> SharedGroup<V> {
    /// The next member in turn that is `available` (and not `excluded`); if none
    /// is, the next member in turn that is not excluded.
    fn next_member(
        &self,
        available: &impl Fn(&V) -> bool,
        excluded: Option<SubscriberId>,
    ) -> Option<&V> {
        let count = self.members.len();
        if count == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let candidates = || {
            (0..count)
                .map(|step| &self.members[(start + step) % count])
                .filter(|(id, _)| Some(*id) != excluded)
        };
        candidates()
            .find(|(_, value)| available(value))
            .or_else(|| candidates().next())
            .map(|(_, value)| value)
    }
}

/// The subscriptions attached to one filter position.
#[derive(Debug)]
struct Slot<V> {
    subscribers: Vec<(SubscriberId, V)>,
    groups: Vec<SharedGroup<V>>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Slot {
            subscribers: Vec::new(),
            groups: Vec::new(),
        }
    }
}

impl<V> Slot<V> {
    fn is_empty(&self) -> bool {
        self.subscribers.is_empty() && self.groups.is_empty()
    }

    /// Inserts or replaces; returns the previous value for this subscriber.
    fn insert(&mut self, group: Option<&str>, id: SubscriberId, value: V) -> Option<V> {
        let list = match group {
            None => &mut self.subscribers,
            Some(name) => {
                let index = match self.groups.iter().position(|g| &*g.name == name) {
                    Some(index) => index,
                    None => {
                        self.groups.push(SharedGroup {
                            name: name.into(),
                            members: Vec::new(),
                            cursor: AtomicUsize::new(0),
                        });
                        self.groups.len() - 1
                    }
                };
                &mut self.groups[index].members
            }
        };
        match list.iter_mut().find(|(existing, _)| *existing == id) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                list.push((id, value));
                None
            }
        }
    }

    fn remove(&mut self, group: Option<&str>, id: SubscriberId) -> Option<V> {
        match group {
            None => remove_member(&mut self.subscribers, id),
            Some(name) => {
                let index = self.groups.iter().position(|g| &*g.name == name)?;
                let removed = remove_member(&mut self.groups[index].members, id);
                if self.groups[index].members.is_empty() {
                    self.groups.swap_remove(index);
                }
                removed
            }
        }
    }

    fn visit(&self, available: &impl Fn(&V) -> bool, visit: &mut impl FnMut(&V)) {
        for (_, value) in &self.subscribers {
            visit(value);
        }
        for group in &self.groups {
            if let Some(member) = group.next_member(available, None) {
                visit(member);
            }
        }
    }
}

fn remove_member<V>(list: &mut Vec<(SubscriberId, V)>, id: SubscriberId) -> Option<V> {
    let index = list.iter().position(|(existing, _)| *existing == id)?;
    Some(list.swap_remove(index).1)
}

#[derive(Debug)]
struct Node<V> {
    literal: HashMap<Box<str>, Node<V>>,
    plus: Option<Box<Node<V>>>,
    exact: Slot<V>,
    multi: Slot<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            literal: HashMap::new(),
            plus: None,
            exact: Slot::default(),
            multi: Slot::default(),
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.plus.is_none()
            && self.exact.is_empty()
            && self.multi.is_empty()
    }
}

/// Subscriptions indexed by filter; `V` is what a match returns for each subscriber.
#[derive(Debug)]
pub struct SubscriptionTree<V> {
    root: Node<V>,
    count: usize,
}

impl<V> Default for SubscriptionTree<V> {
    fn default() -> Self {
        SubscriptionTree {
            root: Node::default(),
            count: 0,
        }
    }
}

/// Splits `rest` into its first level and what follows (`None` after the last).
fn next_level(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((level, tail)) => (level, Some(tail)),
        None => (rest, None),
    }
}

impl<V> SubscriptionTree<V> {
    /// Number of subscriptions (shared ones counted per member).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Adds or replaces `id`'s subscription to `filter`; returns the replaced value.
    pub fn insert(&mut self, filter: &TopicFilter, id: SubscriberId, value: V) -> Option<V> {
        let mut node = &mut self.root;
        let mut rest = Some(filter.filter());
        let slot = loop {
            let Some(text) = rest else {
                break &mut node.exact;
            };
            let (level, tail) = next_level(text);
            if level == "#" {
                break &mut node.multi;
            }
            node = if level == "+" {
                node.plus.get_or_insert_with(Box::default)
            } else {
                node.literal.entry(level.into()).or_default()
            };
            rest = tail;
        };
        let old = slot.insert(filter.share_group(), id, value);
        if old.is_none() {
            self.count += 1;
        }
        old
    }

    /// Removes `id`'s subscription to `filter`, pruning nodes left empty.
    pub fn remove(&mut self, filter: &TopicFilter, id: SubscriberId) -> Option<V> {
        let removed = Self::remove_from(
            &mut self.root,
            Some(filter.filter()),
            filter.share_group(),
            id,
        );
        if removed.is_some() {
            self.count -= 1;
        }
        removed
    }

    fn remove_from(
        node: &mut Node<V>,
        rest: Option<&str>,
        group: Option<&str>,
        id: SubscriberId,
    ) -> Option<V> {
        let Some(text) = rest else {
            return node.exact.remove(group, id);
        };
        let (level, tail) = next_level(text);
        if level == "#" {
            return node.multi.remove(group, id);
        }
        if level == "+" {
            let child = node.plus.as_deref_mut()?;
            let removed = Self::remove_from(child, tail, group, id);
            if child.is_empty() {
                node.plus = None;
            }
            removed
        } else {
            let child = node.literal.get_mut(level)?;
            let removed = Self::remove_from(child, tail, group, id);
            if child.is_empty() {
                node.literal.remove(level);
            }
            removed
        }
    }

    /// Calls `visit` for every subscription matching `topic` (a subscriber with
    /// several matching filters is visited once per filter), and for one member of
    /// each matching shared group: the next in turn that is `available`.
    pub fn for_each_match(
        &self,
        topic: &str,
        available: impl Fn(&V) -> bool,
        mut visit: impl FnMut(&V),
    ) {
        let reserved = topic.starts_with('$');
        Self::walk(
            &self.root,
            Some(topic),
            true,
            reserved,
            &available,
            &mut visit,
        );
    }

    /// The next available member of the shared group of `filter`, other than `excluded`.
    pub fn shared_member(
        &self,
        filter: &TopicFilter,
        available: impl Fn(&V) -> bool,
        excluded: SubscriberId,
    ) -> Option<&V> {
        let group = filter.share_group()?;
        let mut node = &self.root;
        let mut rest = Some(filter.filter());
        let slot = loop {
            let Some(text) = rest else { break &node.exact };
            let (level, tail) = next_level(text);
            if level == "#" {
                break &node.multi;
            }
            node = if level == "+" {
                node.plus.as_deref()?
            } else {
                node.literal.get(level)?
            };
            rest = tail;
        };
        slot.groups
            .iter()
            .find(|g| &*g.name == group)?
            .next_member(&available, Some(excluded))
    }

    fn walk(
        node: &Node<V>,
        rest: Option<&str>,
        root: bool,
        reserved: bool,
        available: &impl Fn(&V) -> bool,
        visit: &mut impl FnMut(&V),
    ) {
        // [MQTT-4.7.2-1 3.1.1/5.0]: `#` and `+` at the first level do not match `$` topics.
        let wildcards = !(root && reserved);
        if wildcards {
            node.multi.visit(available, visit);
        }
        let Some(text) = rest else {
            node.exact.visit(available, visit);
            return;
        };
        let (level, tail) = next_level(text);
        if let Some(child) = node.literal.get(level) {
            Self::walk(child, tail, false, reserved, available, visit);
        }
        if wildcards && let Some(child) = node.plus.as_deref() {
            Self::walk(child, tail, false, reserved, available, visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::matches as spec_matches;
    use proptest::prelude::*;

    fn filter(text: &str) -> TopicFilter {
        TopicFilter::new(text).expect("valid filter")
    }

    fn matched(tree: &SubscriptionTree<String>, topic: &str) -> Vec<String> {
        let mut names = Vec::new();
        tree.for_each_match(topic, |_| true, |name| names.push(name.clone()));
        names.sort();
        names
    }

    #[test]
    fn wildcards_and_reserved_topics() {
        let mut tree = SubscriptionTree::default();
        for (id, f) in ["a/b", "a/+", "a/#", "#", "+/b", "$SYS/#", "+/+"]
            .iter()
            .enumerate()
        {
            tree.insert(&filter(f), id as u64, (*f).to_string());
        }
        assert_eq!(tree.len(), 7);
        assert_eq!(
            matched(&tree, "a/b"),
            vec!["#", "+/+", "+/b", "a/#", "a/+", "a/b"]
        );
        assert_eq!(matched(&tree, "a"), vec!["#", "a/#"]);
        assert_eq!(matched(&tree, "$SYS/x"), vec!["$SYS/#"]);
        assert_eq!(matched(&tree, "c/d/e"), vec!["#"]);
    }

    #[test]
    fn replace_remove_and_prune() {
        let mut tree = SubscriptionTree::default();
        assert_eq!(tree.insert(&filter("a/b/c"), 1, "x".to_string()), None);
        assert_eq!(
            tree.insert(&filter("a/b/c"), 1, "y".to_string()),
            Some("x".to_string())
        );
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.remove(&filter("a/b/c"), 2), None);
        assert_eq!(tree.remove(&filter("a/b/c"), 1), Some("y".to_string()));
        assert_eq!(tree.len(), 0);
        assert!(tree.root.is_empty(), "empty branches are pruned");
    }

    #[test]
    fn shared_groups_take_turns() {
        let mut tree = SubscriptionTree::default();
        tree.insert(&filter("$share/g/t/#"), 1, "m1".to_string());
        tree.insert(&filter("$share/g/t/#"), 2, "m2".to_string());
        tree.insert(&filter("t/x"), 3, "plain".to_string());
        let rounds: Vec<Vec<String>> = (0..4).map(|_| matched(&tree, "t/x")).collect();
        assert_eq!(rounds[0].len(), 2);
        let members: Vec<&String> = rounds
            .iter()
            .flatten()
            .filter(|n| n.starts_with('m'))
            .collect();
        assert_eq!(members.iter().filter(|n| n.as_str() == "m1").count(), 2);
        assert_eq!(members.iter().filter(|n| n.as_str() == "m2").count(), 2);
        // Members that are not available are passed over while another one is.
        let mut picked = Vec::new();
        for _ in 0..3 {
            tree.for_each_match(
                "t/x",
                |name: &String| name != "m1",
                |name| picked.push(name.clone()),
            );
        }
        assert_eq!(picked.iter().filter(|n| n.as_str() == "m1").count(), 0);
        assert_eq!(
            tree.shared_member(&filter("$share/g/t/#"), |_| true, 2)
                .map(String::as_str),
            Some("m1"),
            "another member than the one leaving"
        );
        tree.remove(&filter("$share/g/t/#"), 1);
        tree.remove(&filter("$share/g/t/#"), 2);
        assert_eq!(matched(&tree, "t/x"), vec!["plain"]);
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof!["[ab$]{0,2}", Just("+".to_string())]
    }

    proptest! {
        /// The trie agrees with the spec's matching function on every filter/topic pair.
        #[test]
        fn agrees_with_the_matching_rules(
            filters in prop::collection::vec((prop::collection::vec(level(), 1..4), any::<bool>()), 1..12),
            topics in prop::collection::vec(prop::collection::vec("[ab$]{0,2}", 1..5), 1..12),
        ) {
            let mut tree = SubscriptionTree::default();
            let mut texts = Vec::new();
            for (id, (levels, hash)) in filters.into_iter().enumerate() {
                let mut text = levels.join("/");
                if hash { text.push_str("/#"); }
                if let Ok(f) = TopicFilter::new(text.clone()) {
                    tree.insert(&f, id as u64, text.clone());
                    texts.push(text);
                }
            }
            for levels in topics {
                let topic = levels.join("/");
                if topic.is_empty() { continue; }
                let mut expected: Vec<String> = texts.iter().filter(|f| spec_matches(f, &topic)).cloned().collect();
                expected.sort();
                prop_assert_eq!(matched(&tree, &topic), expected, "topic {}", topic);
            }
        }
    }
}
