//! The enforcer's node rules, one per file, each a [`NodeRule`] for some
//! kinds of plan node. [`ALL`] is the list the walker runs.

mod aggregate;
mod distinct;
mod filter;
mod join;
mod limit;
mod pass_through;
mod projection;
mod recursive;
mod scan;
mod sort;
mod union;
mod unnest;
mod window;

use super::rule::NodeRule;

/// Every node rule; the walker runs the first that handles a node's kind
/// (each handles kinds no other does).
pub const ALL: &[&dyn NodeRule] = &[
    &scan::Scan,
    &projection::Projection,
    &filter::Filter,
    &aggregate::Aggregate,
    &window::Window,
    &sort::Sort,
    &limit::Limit,
    &distinct::Distinct,
    &union::Union,
    &join::Join,
    &pass_through::PassThrough,
    &unnest::Unnest,
    &recursive::Recursive,
];

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn rule_names_are_distinct() {
        let mut names: Vec<&str> = ALL.iter().map(|r| r.name()).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
    }
}
