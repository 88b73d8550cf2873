//! The demo's generated industrial data, written as Parquet: machine
//! telemetry (large, offered for aggregates only) and supplier quality
//! figures (small, offered row by row). Deterministic: the same row count
//! always gives the same files.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

/// Rows per generated batch (and Parquet row group slice).
const BATCH_ROWS: usize = 65_536;
/// Machines in the telemetry.
pub const MACHINES: usize = 240;
/// Sites, by machine; the last one is a prototype lab the policy filters out.
pub const SITES: [&str; 4] = ["north-plant", "south-plant", "east-plant", "prototype-lab"];
const LINES: [&str; 4] = ["L1", "L2", "L3", "L4"];
const FIRST_NAMES: [&str; 8] = [
    "Amara", "Li", "Anna", "Jonas", "Chen", "Sofia", "Mateo", "Yuki",
];
const LAST_NAMES: [&str; 8] = [
    "Okafor", "Wei", "Schmidt", "Berg", "Jie", "Rossi", "Garcia", "Sato",
];
/// 2026-10-01T00:00:00Z in microseconds.
const START_MICROS: i64 = 1_790_812_800_000_000;
/// The telemetry spans 30 days.
const SPAN_SECS: i64 = 30 * 86_400;

/// A small, fast, deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        // 53 random bits as the mantissa of a float in [0, 1).
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Roughly normal (sum of uniforms), mean 0, deviation 1.
    fn normal(&mut self) -> f64 {
        (0..6).map(|_| self.unit()).sum::<f64>() * std::f64::consts::SQRT_2 - 6.0 / 2.0_f64.sqrt()
    }
}

/// The columns of the telemetry table.
pub fn telemetry_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("site", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, false),
        Field::new("shift", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("temperature", DataType::Float64, false),
        Field::new("vibration", DataType::Float64, false),
        Field::new("energy_kwh", DataType::Float64, false),
        Field::new("defect", DataType::Boolean, false),
        Field::new("operator_name", DataType::Utf8, false),
    ]))
}

fn shift_of(micros: i64) -> &'static str {
    match (micros / 3_600_000_000).rem_euclid(24) {
        6..=13 => "early",
        14..=21 => "late",
        _ => "night",
    }
}

/// Writes `rows` rows of machine telemetry to `path`; calls `progress` with
/// the rows written so far after each batch.
pub fn write_telemetry(path: &Path, rows: usize, mut progress: impl FnMut(usize)) -> Result<()> {
    let schema = telemetry_schema();
    let mut writer = parquet_writer(path, &schema)?;
    let mut rng = Rng(0x5EED_0001);
    let readings_per_machine = rows.div_ceil(MACHINES).max(1) as i64;
    let step_micros = SPAN_SECS * 1_000_000 / readings_per_machine;
    let mut written = 0;
    while written < rows {
        let n = BATCH_ROWS.min(rows - written);
        let mut machine = StringBuilder::with_capacity(n, n * 5);
        let mut site = StringBuilder::with_capacity(n, n * 12);
        let mut line = StringBuilder::with_capacity(n, n * 2);
        let mut shift = StringBuilder::with_capacity(n, n * 5);
        let mut ts = TimestampMicrosecondBuilder::with_capacity(n);
        let mut temperature = Float64Builder::with_capacity(n);
        let mut vibration = Float64Builder::with_capacity(n);
        let mut energy = Float64Builder::with_capacity(n);
        let mut defect = BooleanBuilder::with_capacity(n);
        let mut operator = StringBuilder::with_capacity(n, n * 12);
        for i in written..written + n {
            let m = i % MACHINES;
            let reading = (i / MACHINES) as i64;
            let micros = START_MICROS + reading * step_micros + (m as i64) * 1_000_000;
            let site_index = m % SITES.len();
            let wear = (m % 17) as f64 / 17.0;
            let hot = 70.0 + 4.0 * site_index as f64 + 8.0 * wear + 3.0 * rng.normal();
            let shake = 1.2 + 1.5 * wear + 0.3 * rng.normal().abs();
            machine.append_value(format!("M-{m:03}"));
            site.append_value(SITES[site_index]);
            line.append_value(LINES[(m / SITES.len()) % LINES.len()]);
            shift.append_value(shift_of(micros));
            ts.append_value(micros);
            temperature.append_value((hot * 100.0).round() / 100.0);
            vibration.append_value((shake * 1000.0).round() / 1000.0);
            energy.append_value(((2.0 + 0.04 * hot + 0.5 * rng.unit()) * 100.0).round() / 100.0);
            defect.append_value(rng.unit() < 0.01 + 0.04 * wear + ((hot - 80.0).max(0.0) / 100.0));
            operator.append_value(format!(
                "{} {}",
                FIRST_NAMES[rng.below(FIRST_NAMES.len())],
                LAST_NAMES[rng.below(LAST_NAMES.len())]
            ));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(machine.finish()),
            Arc::new(site.finish()),
            Arc::new(line.finish()),
            Arc::new(shift.finish()),
            Arc::new(ts.finish()),
            Arc::new(temperature.finish()),
            Arc::new(vibration.finish()),
            Arc::new(energy.finish()),
            Arc::new(defect.finish()),
            Arc::new(operator.finish()),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
            .context("building a telemetry batch")?;
        writer.write(&batch).context("writing telemetry")?;
        written += n;
        progress(written);
    }
    writer.close().context("finishing the telemetry file")?;
    Ok(())
}

/// Suppliers in the quality table.
pub const SUPPLIERS: usize = 120;
const REGIONS: [&str; 4] = ["EU", "APAC", "NA", "restricted"];
const PARTS: [&str; 6] = [
    "bearing",
    "gearbox",
    "sensor",
    "cable-harness",
    "pump-seal",
    "controller",
];

/// Writes the supplier quality table (one row per supplier, part and week)
/// to `path`; returns its row count.
pub fn write_supplier_quality(path: &Path) -> Result<usize> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("supplier", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("part", DataType::Utf8, false),
        Field::new("week", DataType::Int64, false),
        Field::new("delivered", DataType::Int64, false),
        Field::new("defects_ppm", DataType::Float64, false),
        Field::new("on_time_rate", DataType::Float64, false),
        Field::new("unit_price", DataType::Float64, false),
        Field::new("contact_email", DataType::Utf8, false),
    ]));
    let mut rng = Rng(0x5EED_0002);
    let mut supplier = StringBuilder::new();
    let mut region = StringBuilder::new();
    let mut part = StringBuilder::new();
    let mut week = Int64Builder::new();
    let mut delivered = Int64Builder::new();
    let mut ppm = Float64Builder::new();
    let mut on_time = Float64Builder::new();
    let mut price = Float64Builder::new();
    let mut email = StringBuilder::new();
    let mut rows = 0;
    for s in 0..SUPPLIERS {
        let quality = rng.unit();
        let p = PARTS[s % PARTS.len()];
        for w in 40..48 {
            supplier.append_value(format!("S-{s:03}"));
            region.append_value(REGIONS[s % REGIONS.len()]);
            part.append_value(p);
            week.append_value(w);
            delivered.append_value(500 + rng.below(4_500) as i64);
            ppm.append_value((20.0 + 900.0 * quality * quality + 40.0 * rng.unit()).round());
            on_time.append_value(
                ((0.80 + 0.2 * (1.0 - quality) * rng.unit()) * 1000.0).round() / 1000.0,
            );
            price.append_value(((5.0 + 95.0 * rng.unit()) * 100.0).round() / 100.0);
            email.append_value(format!("quality@supplier-{s:03}.example"));
            rows += 1;
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(supplier.finish()),
        Arc::new(region.finish()),
        Arc::new(part.finish()),
        Arc::new(week.finish()),
        Arc::new(delivered.finish()),
        Arc::new(ppm.finish()),
        Arc::new(on_time.finish()),
        Arc::new(price.finish()),
        Arc::new(email.finish()),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .context("building the supplier quality table")?;
    let mut writer = parquet_writer(path, &schema)?;
    writer.write(&batch).context("writing supplier quality")?;
    writer
        .close()
        .context("finishing the supplier quality file")?;
    Ok(rows)
}

fn parquet_writer(path: &Path, schema: &Arc<Schema>) -> Result<ArrowWriter<File>> {
    let file = File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    ArrowWriter::try_new(file, Arc::clone(schema), Some(props))
        .with_context(|| format!("cannot write Parquet to `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn read(path: &Path) -> Vec<RecordBatch> {
        let file = File::open(path).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap()
    }

    #[test]
    fn telemetry_has_the_rows_asked_for_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        let mut seen = Vec::new();
        write_telemetry(&a, 70_000, |n| seen.push(n)).unwrap();
        write_telemetry(&b, 70_000, |_| {}).unwrap();
        assert_eq!(seen, vec![65_536, 70_000]);
        let batches = read(&a);
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            70_000
        );
        assert_eq!(batches[0].schema(), telemetry_schema());
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }

    #[test]
    fn supplier_quality_has_a_row_per_supplier_and_week() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.parquet");
        assert_eq!(write_supplier_quality(&path).unwrap(), SUPPLIERS * 8);
        let rows: usize = read(&path).iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, SUPPLIERS * 8);
    }
}
