//! TPC-H `lineitem` generated with `tpchgen` and written as Parquet: one
//! file per part of about a million rows, parts generated in parallel. A
//! folder that already holds a complete table of the same scale is reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

/// Rows of `lineitem` per unit of scale factor (about; TPC-H's own count is
/// 6,001,215 at scale factor 1).
pub const LINEITEM_ROWS_PER_SCALE: f64 = 6_000_000.0;

/// Rows per Parquet row group: small enough that a 0.1 scale table still
/// spreads over both cores.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A generated (or reused) `lineitem` table.
#[derive(Debug, Clone)]
pub struct Table {
    /// The folder of Parquet files.
    pub dir: PathBuf,
    /// Rows in the table.
    pub rows: u64,
    /// Whether the files were already there.
    pub reused: bool,
}

/// How the rows of a table are laid out in its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// In generation order (by order key), one file per part.
    Generated,
    /// Sorted by `l_shipdate` in one file of small row groups, so that a
    /// query on a few days reads a few row groups (Parquet statistics).
    ByShipDate,
}

/// Writes `lineitem` at scale factor `scale` into `dir` (a folder of
/// `part-N.parquet` files), or reuses what a previous run wrote there.
/// `progress` is told about each finished part.
pub fn lineitem(
    dir: &Path,
    scale: f64,
    layout: Layout,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Table> {
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(anyhow!("the scale factor must be positive, not `{scale}`"));
    }
    let marker = dir.with_extension("complete");
    let wanted = format!("{scale}/{layout:?}");
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Some((done_scale, rows)) = text.trim().split_once(' ')
        && done_scale == wanted
        && let Ok(rows) = rows.parse()
    {
        return Ok(Table {
            dir: dir.to_owned(),
            rows,
            reused: true,
        });
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot clear the incomplete `{}`", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let parts = (scale * LINEITEM_ROWS_PER_SCALE / 1_000_000.0)
        .ceil()
        .max(1.0);
    // A float count of parts in [1, scale * 6]: exact in i32 for any scale we can store.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a small positive whole number"
    )]
    let parts = parts as i32;
    let rows = match layout {
        Layout::Generated => write_parts(dir, scale, parts, progress)?,
        Layout::ByShipDate => write_sorted(dir, scale, progress)?,
    };
    std::fs::write(&marker, format!("{wanted} {rows}\n"))
        .with_context(|| format!("cannot write `{}`", marker.display()))?;
    Ok(Table {
        dir: dir.to_owned(),
        rows,
        reused: false,
    })
}

/// Generates parts `1..=parts` on all cores; returns the rows written.
fn write_parts(
    dir: &Path,
    scale: f64,
    parts: i32,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<u64> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = Arc::new(AtomicUsize::new(1));
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let next = Arc::clone(&next);
                let done = &done;
                scope.spawn(move || -> Result<u64> {
                    let mut rows = 0;
                    loop {
                        let part = next.fetch_add(1, Ordering::Relaxed);
                        let Ok(part) = i32::try_from(part) else { break };
                        if part > parts {
                            break;
                        }
                        let file = dir.join(format!("part-{part}.parquet"));
                        let written = write_part(&file, scale, part, parts)?;
                        rows += written;
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        progress(&format!(
                            "lineitem at scale {scale}: part {finished} of {parts} written ({written} rows)"
                        ));
                    }
                    Ok(rows)
                })
            })
            .collect();
        let mut total = 0;
        for worker in workers {
            total += worker
                .join()
                .map_err(|_| anyhow!("a generator thread failed"))??;
        }
        Ok(total)
    })
}

/// Generates the whole table in memory, sorts it by `l_shipdate` and writes
/// it as one file of row groups of 16,384 rows.
fn write_sorted(dir: &Path, scale: f64, progress: &(dyn Fn(&str) + Sync)) -> Result<u64> {
    use datafusion::arrow::compute::{
        SortOptions, concat_batches, sort_to_indices, take_record_batch,
    };
    let schema = LineItemArrow::schema_ref();
    let batches = LineItemArrow::new(LineItemGenerator::new(scale, 1, 1))
        .with_batch_size(8192)
        .collect::<Result<Vec<_>, _>>()
        .context("cannot generate lineitem rows")?;
    let all = concat_batches(&schema, &batches).context("cannot gather lineitem rows")?;
    drop(batches);
    let column = all
        .column_by_name("l_shipdate")
        .ok_or_else(|| anyhow!("lineitem has no `l_shipdate`"))?;
    let order = sort_to_indices(column, Some(SortOptions::default()), None)
        .context("cannot sort lineitem")?;
    let sorted = take_record_batch(&all, &order).context("cannot sort lineitem")?;
    drop(all);
    let file = dir.join("part-1.parquet");
    let out = std::fs::File::create(&file)
        .with_context(|| format!("cannot create `{}`", file.display()))?;
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(16 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(out, schema, Some(properties))
        .context("cannot start a Parquet writer")?;
    let mut offset = 0;
    while offset < sorted.num_rows() {
        let length = 8192.min(sorted.num_rows() - offset);
        writer
            .write(&sorted.slice(offset, length))
            .with_context(|| format!("cannot write `{}`", file.display()))?;
        offset += length;
    }
    writer
        .close()
        .with_context(|| format!("cannot finish `{}`", file.display()))?;
    let rows = sorted.num_rows() as u64;
    progress(&format!(
        "lineitem at scale {scale}: {rows} rows sorted by l_shipdate written"
    ));
    Ok(rows)
}

fn write_part(file: &Path, scale: f64, part: i32, parts: i32) -> Result<u64> {
    let generator = LineItemGenerator::new(scale, part, parts);
    let batches = LineItemArrow::new(generator).with_batch_size(8192);
    let out = std::fs::File::create(file)
        .with_context(|| format!("cannot create `{}`", file.display()))?;
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(out, LineItemArrow::schema_ref(), Some(properties))
        .context("cannot start a Parquet writer")?;
    let mut rows = 0;
    for batch in batches {
        let batch = batch.context("cannot generate lineitem rows")?;
        rows += batch.num_rows() as u64;
        writer
            .write(&batch)
            .with_context(|| format!("cannot write `{}`", file.display()))?;
    }
    writer
        .close()
        .with_context(|| format!("cannot finish `{}`", file.display()))?;
    Ok(rows)
}
