//! A set of sites as a bit set over their indexes: the routing decision is a
//! handful of word-wise ANDs, whatever the number of rules.

/// Sites, by their index in the [`crate::Topology`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteSet {
    words: Vec<u64>,
}

impl SiteSet {
    /// No site, out of `len`.
    pub fn none(len: usize) -> Self {
        Self { words: vec![0; len.div_ceil(64)] }
    }

    /// Adds site `index`.
    pub fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
    }

    /// Whether site `index` is in the set.
    pub fn contains(&self, index: usize) -> bool {
        self.words.get(index / 64).is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// Keeps only the sites also in `other`.
    pub fn intersect(&mut self, other: &SiteSet) {
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word &= other;
        }
    }

    /// Adds the sites in `other`.
    pub fn union(&mut self, other: &SiteSet) {
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word |= other;
        }
    }

    /// Removes the sites in `other`.
    pub fn remove_all(&mut self, other: &SiteSet) {
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word &= !other;
        }
    }

    /// Whether no site is in the set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&word| word == 0)
    }

    /// The indexes in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(n, &word)| (0..64).filter(move |bit| word & (1 << bit) != 0).map(move |bit| n * 64 + bit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_over_word_boundaries() {
        let mut set = SiteSet::none(130);
        for index in [0, 63, 64, 129] {
            set.insert(index);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 63, 64, 129]);
        let mut other = SiteSet::none(130);
        other.insert(65);
        other.union(&set);
        assert_eq!(other.iter().collect::<Vec<_>>(), [0, 63, 64, 65, 129]);
        other.remove_all(&set);
        assert_eq!(other.iter().collect::<Vec<_>>(), [65]);
        set.intersect(&other);
        assert!(set.is_empty());
        assert!(!SiteSet::none(3).contains(200));
    }
}
