//! The small query (aggregate mode, one day of a table held in memory):
//! each leg one client at a time, then many clients at once, in process
//! and over HTTP.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use connector::client::PeerClient;
use connector::engine::GovernedEngine;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use serde_json::Value;

use super::http::Loopback;
use super::inprocess::{self, InProcess, canonical};
use super::queries::{self, BenchQuery, Mode};
use super::report::{SmallQuery, Timing, timed};
use super::throughput::{self, Throughput};
use super::tpch::Table;

/// Sequential runs of each leg of the small query.
const SMALL_RUNS: usize = 30;

/// The legs of the small query over one table.
pub struct SmallLegs<'a> {
    dataset: &'a str,
    query: BenchQuery,
    rows: u64,
    /// Raw DataFusion over the table held in memory.
    raw: SessionContext,
    /// The governed engine over the same table in memory.
    engine: Arc<GovernedEngine>,
    /// Raw and governed on the Parquet files.
    on_parquet: InProcess,
    world: &'a Loopback,
    client: PeerClient,
    body: Value,
}

impl<'a> SmallLegs<'a> {
    /// Reads `table` into memory as `dataset` and prepares each leg, the
    /// HTTP one through `world`.
    pub async fn open(dataset: &'a str, table: &Table, world: &'a Loopback) -> Result<Self> {
        let query = queries::small_query(dataset);
        let in_memory = inprocess::cached_table(&table.dir).await?;
        let engine = Arc::new(inprocess::cached_engine(dataset, Arc::clone(&in_memory))?);
        let raw = SessionContext::new();
        raw.register_table(dataset, in_memory)?;
        let on_parquet = InProcess::open(dataset, &table.dir).await?;
        let body = world.request(dataset, Mode::Aggregate, &query.governed)?;
        Ok(Self {
            dataset,
            query,
            rows: table.rows,
            raw,
            engine,
            on_parquet,
            world,
            client: world.client(),
            body,
        })
    }

    async fn raw(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.raw.sql(sql).await?.collect().await?)
    }

    async fn governed(&self) -> Result<Vec<RecordBatch>> {
        self.engine
            .query(&self.query.governed, chrono::Utc::now())
            .await
            .map(|a| a.batches)
            .map_err(|e| anyhow!("the small query is refused or fails: {e}"))
    }

    async fn plan_and_enforce(&self) -> Result<()> {
        self.engine
            .enforce(&self.query.governed, chrono::Utc::now())
            .await
            .map(drop)
            .map_err(|e| anyhow!("the small query is refused: {e}"))
    }

    async fn governed_parquet(&self) -> Result<Vec<RecordBatch>> {
        self.on_parquet
            .governed(self.query.mode, &self.query.governed)
            .await
    }

    async fn http(&self) -> Result<Vec<RecordBatch>> {
        self.world.query(&self.client, &self.body).await
    }

    /// Whether every leg gives the raw answer.
    async fn answers_match(&self) -> Result<bool> {
        let expected = canonical(&self.raw(&self.query.raw).await?)?;
        Ok(
            canonical(&self.raw(&self.query.raw_filter_first).await?)? == expected
                && canonical(&self.governed().await?)? == expected
                && canonical(&self.governed_parquet().await?)? == expected
                && canonical(&self.http().await?)? == expected,
        )
    }

    /// Each leg one client at a time, `SMALL_RUNS` runs interleaved.
    pub async fn one_client_at_a_time(&self) -> Result<SmallQuery> {
        let answers_match = self.answers_match().await?;
        let q = &self.query;
        let mut samples = [(); 7].map(|()| Vec::new());
        for _ in 0..SMALL_RUNS {
            timed(&mut samples[0], self.raw(&q.raw)).await?;
            timed(&mut samples[1], self.raw(&q.raw_filter_first)).await?;
            timed(&mut samples[2], self.plan_and_enforce()).await?;
            timed(&mut samples[3], self.governed()).await?;
            timed(&mut samples[4], self.governed_parquet()).await?;
            timed(&mut samples[5], self.http()).await?;
            timed(&mut samples[6], self.on_parquet.raw(&q.raw)).await?;
        }
        let [raw, first, plan, governed, parquet, http, raw_parquet] =
            samples.map(|s| Timing::of(&s));
        Ok(SmallQuery {
            sql: q.governed.clone(),
            raw_sql: q.raw.clone(),
            table_rows: self.rows,
            runs: SMALL_RUNS,
            answers_match,
            raw,
            raw_filter_first: first,
            raw_parquet,
            plan_and_enforce: plan,
            governed,
            governed_parquet: parquet,
            http,
        })
    }

    /// Queries per second of `clients` clients for `time` each: in process
    /// on the table in memory, then on Parquet, then over HTTP.
    pub async fn throughput(
        self,
        clients: usize,
        time: Duration,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Vec<Throughput>> {
        let (sql, rows) = (&self.query.governed, self.rows);
        progress(&format!(
            "small-query throughput in process, {clients} clients, table of {rows} rows in memory, then on Parquet"
        ));
        let memory =
            throughput::in_process("in_process_memory", self.engine, sql, rows, clients, time)
                .await?;
        let parquet = throughput::in_process(
            "in_process_parquet",
            Arc::new(self.on_parquet.engine(Mode::Aggregate).clone()),
            sql,
            rows,
            clients,
            time,
        )
        .await?;
        progress(&format!(
            "small-query throughput over HTTP, {clients} clients"
        ));
        let remote =
            throughput::over_http(self.world, self.dataset, sql, rows, clients, time).await?;
        Ok(vec![memory, parquet, remote])
    }
}
