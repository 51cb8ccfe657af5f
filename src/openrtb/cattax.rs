//! Content categories in IAB Content Taxonomy 1.0 and 2.x (`cattax`).
//!
//! Campaigns, and most exchanges, speak 1.0 (`IAB2-1`); OpenRTB 2.6 lets a
//! request say its `bcat` (and `site.cat`, `app.cat`) are in another
//! taxonomy (`cattax`: 1 is 1.0, 2 is 2.0, 5 is 2.1, 6 is 2.2, 7 is 3.0).
//! Lists in 2.x are translated to 1.0 codes once per request, only when a
//! request says so, with the IAB Tech Lab's published mapping
//! (`resources/iab/`, CC BY 3.0): a 2.x block covers every 1.0 category mapped
//! to it or to a category under it, so a blocked category never gets
//! through; a 2.x site category stands for the 1.0 categories mapped to it
//! (or to its nearest mapped ancestor).

use std::collections::HashMap;
use std::sync::LazyLock;

/// The published 1.0 → 2.0 mapping (CC BY 3.0, IAB Tech Lab).
const MAPPING: &str = include_str!("../../resources/iab/content-1.0-to-2.0.tsv");
/// The 2.2 tree: each category's id and parent (CC BY 3.0, IAB Tech Lab).
const TREE: &str = include_str!("../../resources/iab/content-taxonomy-2.2.tsv");

/// Which taxonomy a request's category list is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taxonomy {
    /// IAB Content Taxonomy 1.0 (`cattax` 1, or absent): read as sent.
    V1,
    /// IAB Content Taxonomy 2.0, 2.1, 2.2 or 3.0 (`cattax` 2, 5, 6, 7):
    /// translated to 1.0.
    V2,
    /// A taxonomy the bidder cannot read (ad product, audience, or a code
    /// it does not know).
    Unknown,
}

impl Taxonomy {
    /// The taxonomy of a `cattax` value.
    pub fn of(cattax: Option<i32>) -> Taxonomy {
        match cattax {
            None | Some(1) => Taxonomy::V1,
            Some(2 | 5 | 6 | 7) => Taxonomy::V2,
            Some(_) => Taxonomy::Unknown,
        }
    }
}

/// The tables, read once.
struct Tables {
    /// 2.x id → the 1.0 codes mapped to exactly it.
    mapped: HashMap<&'static str, Vec<&'static str>>,
    /// 2.x id → its parent.
    parent: HashMap<&'static str, &'static str>,
    /// 2.x id → the 1.0 codes mapped to it or to any category under it.
    covered: HashMap<&'static str, Vec<&'static str>>,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut mapped: HashMap<&str, Vec<&str>> = HashMap::new();
    for line in MAPPING.lines().skip(1) {
        let columns: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
        let (Some(v1), Some(v2)) = (columns.first(), columns.get(3)) else {
            continue;
        };
        let (v1, v2) = (v1.trim(), v2.trim());
        // The published file has one slip: `AB7` for `IAB7`.
        let v1 = if v1 == "AB7" { "IAB7" } else { v1 };
        if v1.starts_with("IAB") && !v2.is_empty() {
            mapped.entry(v2).or_default().push(v1);
        }
    }
    let mut parent = HashMap::new();
    for line in TREE.lines().skip(2) {
        let mut columns = line.trim_end_matches('\r').split('\t');
        let (Some(id), Some(up)) = (columns.next(), columns.next()) else {
            continue;
        };
        let (id, up) = (id.trim(), up.trim());
        if !id.is_empty() && !up.is_empty() {
            parent.insert(id, up);
        }
    }
    let mut covered: HashMap<&str, Vec<&str>> = HashMap::new();
    for (&id, codes) in &mapped {
        // Every ancestor of `id` (itself included) covers its codes.
        let mut at = Some(id);
        let mut hops = 0;
        while let Some(node) = at {
            covered.entry(node).or_default().extend(codes.iter().copied());
            at = parent.get(node).copied();
            hops += 1;
            if hops > 16 {
                break;
            }
        }
    }
    for codes in covered.values_mut() {
        codes.sort_unstable();
        codes.dedup();
    }
    Tables {
        mapped,
        parent,
        covered,
    }
});

/// The 1.0 categories a block of 2.x category `id` covers: those mapped to
/// it or to a category under it. `None` when the id is not in the tables
/// (a block that cannot be read).
pub fn blocked_v1(id: &str) -> Option<&'static [&'static str]> {
    let tables = &*TABLES;
    let id = id.trim();
    match tables.covered.get(id) {
        Some(codes) => Some(codes),
        None => tables.parent.contains_key(id).then_some(&[][..]).or_else(|| {
            // A top-level category without a mapping covers nothing mapped.
            tables.parent.values().any(|p| *p == id).then_some(&[][..])
        }),
    }
}

/// The 1.0 categories that 2.x site or app category `id` stands for: those
/// mapped to it, else to its nearest mapped ancestor; empty when unknown.
pub fn content_v1(id: &str) -> &'static [&'static str] {
    let tables = &*TABLES;
    let mut at = Some(id.trim());
    let mut hops = 0;
    while let Some(node) = at {
        if let Some(codes) = tables.mapped.get(node) {
            return codes;
        }
        at = tables.parent.get(node).copied();
        hops += 1;
        if hops > 16 {
            break;
        }
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taxonomies_by_cattax() {
        assert_eq!(Taxonomy::of(None), Taxonomy::V1);
        assert_eq!(Taxonomy::of(Some(1)), Taxonomy::V1);
        assert_eq!(Taxonomy::of(Some(6)), Taxonomy::V2);
        assert_eq!(Taxonomy::of(Some(3)), Taxonomy::Unknown, "ad product taxonomy");
        assert_eq!(Taxonomy::of(Some(500)), Taxonomy::Unknown);
    }

    #[test]
    fn a_block_covers_what_is_mapped_under_it() {
        // 2.x 1 is Automotive: IAB2 maps to it, IAB2-1 (Auto Parts) to 32
        // under it, IAB2-6 (Convertible) to 8 under 2 under 1.
        let automotive = blocked_v1("1").unwrap();
        for code in ["IAB2", "IAB2-1", "IAB2-6", "IAB2-9"] {
            assert!(automotive.contains(&code), "{code} in {automotive:?}");
        }
        assert!(!automotive.contains(&"IAB3"));
        assert_eq!(blocked_v1("32").unwrap(), ["IAB2-1"]);
        assert!(blocked_v1("IAB2").is_none() && blocked_v1("999999").is_none());
        // The slip in the published file is read as meant.
        assert!(blocked_v1("223").unwrap().contains(&"IAB7"));
    }

    #[test]
    fn a_site_category_stands_for_its_mapping_or_its_ancestors() {
        assert_eq!(content_v1("32"), ["IAB2-1"]);
        // 2 (Auto Body Styles) has no 1.0 category of its own: Automotive's.
        assert!(content_v1("2").contains(&"IAB2"));
        assert!(content_v1("nonsense").is_empty());
    }
}
