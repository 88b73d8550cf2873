//! Rules `denied_column` and `entity_column`: which references to governed
//! columns an expression may make.

use datafusion::logical_expr::Expr;

use super::lineage::{Col, Scopes, Source, classify, direct_children};
use crate::model::ColumnClass;
use crate::refusal::{Decision, Refusal, Rule};

/// Where a reference stands, which decides whether an entity column may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A projection item that passes a column through unchanged, or the
    /// argument of `count(DISTINCT ...)` in an enforced aggregate: an entity
    /// column of an aggregate-mode dataset may appear here.
    EntityAllowed,
    /// Anywhere else.
    Other,
}

/// Refuses `expr` if it references a denied column, or an entity column
/// where `usage` does not allow it. `entity_ok` says whether the entity's
/// dataset is in aggregate mode (in rows mode entities are unreferencable).
pub fn check_references(
    expr: &Expr,
    scopes: &Scopes<'_>,
    usage: Use,
    entity_ok: &dyn Fn(&Source) -> bool,
) -> Decision<()> {
    let expr = strip_alias(expr);
    let bare = matches!(expr, Expr::Column(_) | Expr::OuterReferenceColumn(..));
    match expr {
        Expr::Column(_) | Expr::OuterReferenceColumn(..) => {
            let col = classify(expr, scopes)?;
            for source in col.sources() {
                check_source(
                    source,
                    bare && usage == Use::EntityAllowed && entity_ok(source),
                )?;
            }
            Ok(())
        }
        _ => {
            for child in direct_children(expr) {
                check_references(child, scopes, Use::Other, entity_ok)?;
            }
            Ok(())
        }
    }
}

/// Refuses `expr` if it references a denied column anywhere (checked first,
/// so that a denied column is named before any other rule speaks).
pub fn check_denied(expr: &Expr, scopes: &Scopes<'_>) -> Decision<()> {
    match strip_alias(expr) {
        e @ (Expr::Column(_) | Expr::OuterReferenceColumn(..)) => {
            for source in classify(e, scopes)?.sources() {
                if source.class == ColumnClass::Denied {
                    return Err(denied(source));
                }
            }
            Ok(())
        }
        e => {
            for child in direct_children(e) {
                check_denied(child, scopes)?;
            }
            Ok(())
        }
    }
}

/// Refuses a governed source that may not be referenced here.
pub fn check_source(source: &Source, entity_allowed: bool) -> Decision<()> {
    match source.class {
        ColumnClass::Denied => Err(denied(source)),
        ColumnClass::Entity if !entity_allowed => Err(Refusal::new(
            Rule::EntityColumn,
            format!(
                "the column `{}` of `{}` identifies entities: it may not be output, filtered or grouped on, only counted with `count(DISTINCT {})`",
                source.column, source.table, source.column
            ),
        )),
        _ => Ok(()),
    }
}

/// The refusal for a denied column.
pub fn denied(source: &Source) -> Refusal {
    Refusal::new(
        Rule::DeniedColumn,
        format!(
            "the column `{}` of `{}` is denied by its usage policy and may not be referenced (also not through `*`)",
            source.column, source.table
        ),
    )
}

/// Refuses every denied or entity column among `cols` (for nodes such as
/// `DISTINCT` or `UNION` that compare whole rows, and for the final output).
pub fn check_columns(cols: &[Col]) -> Decision<()> {
    for col in cols {
        for source in col.sources() {
            check_source(source, false)?;
        }
    }
    Ok(())
}

/// `expr` without its outer aliases.
pub fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{accepted, enforce_with, refusal, rows_policy};
    use super::*;

    #[test]
    fn denied_columns_are_unreferencable_everywhere() {
        for sql in [
            "SELECT * FROM telemetry",
            "SELECT t.* FROM telemetry t",
            "SELECT count(*) FROM (SELECT * FROM telemetry) x",
            "SELECT site, count(*) FROM telemetry WHERE operator_name = 'x' GROUP BY site",
            "SELECT site, count(*) FROM telemetry GROUP BY site ORDER BY max(length(operator_name))",
            "SELECT count(DISTINCT operator_name) FROM telemetry",
            "SELECT site, count(*) FROM telemetry WHERE site IN (SELECT operator_name FROM telemetry) GROUP BY site",
        ] {
            let r = refusal(sql);
            assert_eq!(r.rule, Rule::DeniedColumn, "{sql}: {r}");
            assert!(r.message.contains("operator_name"), "{r}");
        }
    }

    #[test]
    fn entity_only_as_count_distinct() {
        for sql in [
            "SELECT machine_id FROM telemetry",
            "SELECT machine_id, count(*) FROM telemetry GROUP BY machine_id",
            "SELECT count(*) FROM telemetry WHERE machine_id = 'x'",
            "SELECT count(machine_id) FROM telemetry",
            "SELECT count(DISTINCT upper(machine_id)) FROM telemetry",
        ] {
            assert_eq!(refusal(sql).rule, Rule::EntityColumn, "{sql}");
        }
        accepted(
            "SELECT site, count(DISTINCT machine_id) AS machines FROM telemetry GROUP BY site",
        );
        accepted(
            "WITH x AS (SELECT site, machine_id FROM telemetry) SELECT site, count(DISTINCT machine_id) FROM x GROUP BY site",
        );
    }

    #[test]
    fn rows_mode_refuses_entity_and_denied_but_allows_the_rest() {
        let refused = |sql: &str| enforce_with(rows_policy(), sql).err().map(|r| r.rule);
        assert_eq!(
            refused("SELECT count(DISTINCT machine_id) FROM telemetry"),
            Some(Rule::EntityColumn)
        );
        assert_eq!(
            refused("SELECT machine_id FROM telemetry"),
            Some(Rule::EntityColumn)
        );
        assert_eq!(refused("SELECT * FROM telemetry"), Some(Rule::DeniedColumn));
        assert_eq!(
            refused(
                "SELECT site, temperature FROM telemetry WHERE temperature > 80 ORDER BY ts LIMIT 3"
            ),
            None
        );
    }
}
