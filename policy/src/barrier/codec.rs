//! datafusion-proto codecs for the barrier nodes, so that an enforced plan
//! (logical or physical) can be serialised and run elsewhere, e.g. on a
//! Ballista cluster, with its barriers intact.
//!
//! - [`BarrierLogicalCodec`]: the [`ThresholdNode`] and the [`GovernedTable`]
//!   (its policy, its planned row filter and its table underneath, which
//!   datafusion-proto encodes itself: listing tables of Parquet, CSV or Arrow
//!   files; tables held in memory cannot be serialised).
//! - [`BarrierPhysicalCodec`]: the [`ThresholdExec`] and the
//!   [`GovernedScanExec`] (its table scan, admitted predicates, row filter,
//!   projection and fetch).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference, internal_err};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::{LogicalExprNode, PhysicalExprNode};
use prost::Message;

use super::scan::{GovernedScanExec, ScanParts};
use super::table::GovernedTable;
use super::threshold::{ThresholdExec, ThresholdNode, ThresholdSpec};
use crate::model::UsagePolicy;

#[derive(Clone, PartialEq, prost::Message)]
struct ThresholdProto {
    #[prost(string, tag = "1")]
    dataset: String,
    #[prost(uint64, tag = "2")]
    min_rows: u64,
    #[prost(uint64, tag = "3")]
    min_entities: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScanProto {
    #[prost(string, tag = "1")]
    dataset: String,
    #[prost(bool, tag = "2")]
    aggregate_only: bool,
    #[prost(bytes = "vec", tag = "3")]
    scan: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "4")]
    admitted: Vec<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    row_filter: Option<Vec<u8>>,
    #[prost(bool, tag = "6")]
    projected: bool,
    #[prost(uint64, repeated, tag = "7")]
    projection: Vec<u64>,
    #[prost(uint64, optional, tag = "8")]
    fetch: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TableProto {
    #[prost(string, tag = "1")]
    policy: String,
    #[prost(bytes = "vec", tag = "2")]
    inner: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "3")]
    row_filter: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BarrierProto {
    #[prost(oneof = "Kind", tags = "1, 2")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(message, tag = "1")]
    Threshold(ThresholdProto),
    #[prost(message, tag = "2")]
    Scan(ScanProto),
}

fn decode<M: Message + Default>(buf: &[u8]) -> Result<M> {
    M::decode(buf)
        .map_err(|e| DataFusionError::Plan(format!("a barrier node cannot be decoded: {e}")))
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| DataFusionError::Plan("an index is out of range".to_owned()))
}

impl From<&ThresholdSpec> for ThresholdProto {
    fn from(spec: &ThresholdSpec) -> Self {
        Self {
            dataset: spec.dataset.clone(),
            min_rows: spec.min_rows,
            min_entities: spec.min_entities,
        }
    }
}

impl From<ThresholdProto> for ThresholdSpec {
    fn from(proto: ThresholdProto) -> Self {
        Self {
            dataset: proto.dataset,
            min_rows: proto.min_rows,
            min_entities: proto.min_entities,
        }
    }
}

/// Encodes and decodes the logical barrier nodes and governed tables.
#[derive(Debug, Default)]
pub struct BarrierLogicalCodec;

impl LogicalExtensionCodec for BarrierLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        _ctx: &TaskContext,
    ) -> Result<Extension> {
        let Some(Kind::Threshold(spec)) = decode::<BarrierProto>(buf)?.kind else {
            return internal_err!("not a logical barrier node");
        };
        let [input] = inputs else {
            return internal_err!("a threshold has one input");
        };
        let node = ThresholdNode::try_new(spec.into(), input.clone())?;
        Ok(Extension {
            node: Arc::new(node),
        })
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        let Some(threshold) = node.node.as_any().downcast_ref::<ThresholdNode>() else {
            return internal_err!("`{}` is not a barrier node", node.node.name());
        };
        let proto = BarrierProto {
            kind: Some(Kind::Threshold(threshold.spec().into())),
        };
        proto
            .encode(buf)
            .map_err(|e| DataFusionError::Plan(e.to_string()))
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        _table_ref: &TableReference,
        _schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let proto: TableProto = decode(buf)?;
        let policy = UsagePolicy::from_json_str(&proto.policy)
            .map_err(|e| DataFusionError::Plan(e.to_string()))?;
        let plan = logical_plan_from_bytes_with_extension_codec(
            &proto.inner,
            ctx,
            &DefaultLogicalExtensionCodec {},
        )?;
        let LogicalPlan::TableScan(scan) = plan else {
            return internal_err!("a governed table's table must decode to a scan");
        };
        let inner = source_as_provider(&scan.source)?;
        let row_filter = match proto.row_filter {
            Some(bytes) => {
                let node: LogicalExprNode = decode(&bytes)?;
                Some(parse_expr(&node, ctx, self)?)
            }
            None => None,
        };
        Ok(Arc::new(GovernedTable::new(
            Arc::new(policy),
            inner,
            row_filter,
        )))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let Some(table) = node.downcast_ref::<GovernedTable>() else {
            return internal_err!("`{table_ref}` is not a governed table");
        };
        let scan = LogicalPlanBuilder::scan(
            table_ref.clone(),
            provider_as_source(Arc::clone(table.inner())),
            None,
        )?
        .build()?;
        let inner =
            logical_plan_to_bytes_with_extension_codec(&scan, &DefaultLogicalExtensionCodec {})?;
        let row_filter = table
            .row_filter()
            .map(|e| serialize_expr(e, self).map(|n| n.encode_to_vec()))
            .transpose()?;
        let proto = TableProto {
            policy: serde_json::to_string(table.policy().as_ref())
                .map_err(|e| DataFusionError::Plan(e.to_string()))?,
            inner: inner.to_vec(),
            row_filter,
        };
        proto
            .encode(buf)
            .map_err(|e| DataFusionError::Plan(e.to_string()))
    }
}

/// Encodes and decodes the physical barrier nodes.
#[derive(Debug, Default)]
pub struct BarrierPhysicalCodec;

impl BarrierPhysicalCodec {
    fn encode_expr(&self, expr: &Arc<dyn PhysicalExpr>) -> Result<Vec<u8>> {
        Ok(serialize_physical_expr(expr, self)?.encode_to_vec())
    }

    fn decode_expr(
        &self,
        bytes: &[u8],
        ctx: &TaskContext,
        schema: &SchemaRef,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let node: PhysicalExprNode = decode(bytes)?;
        parse_physical_expr(&node, ctx, schema, self)
    }
}

impl PhysicalExtensionCodec for BarrierPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match decode::<BarrierProto>(buf)?.kind {
            Some(Kind::Threshold(spec)) => {
                let [input] = inputs else {
                    return internal_err!("a threshold has one input");
                };
                Ok(Arc::new(ThresholdExec::try_new(
                    spec.into(),
                    Arc::clone(input),
                )?))
            }
            Some(Kind::Scan(proto)) => {
                let scan = physical_plan_from_bytes_with_extension_codec(&proto.scan, ctx, self)?;
                let schema = scan.schema();
                let admitted = proto
                    .admitted
                    .iter()
                    .map(|b| self.decode_expr(b, ctx, &schema))
                    .collect::<Result<Vec<_>>>()?;
                let row_filter = proto
                    .row_filter
                    .as_deref()
                    .map(|b| self.decode_expr(b, ctx, &schema))
                    .transpose()?;
                let projection = if proto.projected {
                    Some(
                        proto
                            .projection
                            .iter()
                            .map(|&i| to_usize(i))
                            .collect::<Result<Vec<_>>>()?,
                    )
                } else {
                    None
                };
                let parts = ScanParts {
                    dataset: proto.dataset,
                    aggregate_only: proto.aggregate_only,
                    scan,
                    admitted,
                    row_filter,
                    projection,
                    fetch: proto.fetch.map(to_usize).transpose()?,
                };
                Ok(Arc::new(GovernedScanExec::try_new(parts)?))
            }
            None => internal_err!("an empty barrier node"),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let kind = if let Some(threshold) = node.downcast_ref::<ThresholdExec>() {
            Kind::Threshold(threshold.spec().into())
        } else if let Some(scan) = node.downcast_ref::<GovernedScanExec>() {
            let parts = scan.parts();
            Kind::Scan(ScanProto {
                dataset: parts.dataset.clone(),
                aggregate_only: parts.aggregate_only,
                scan: physical_plan_to_bytes_with_extension_codec(Arc::clone(&parts.scan), self)?
                    .to_vec(),
                admitted: parts
                    .admitted
                    .iter()
                    .map(|e| self.encode_expr(e))
                    .collect::<Result<_>>()?,
                row_filter: parts
                    .row_filter
                    .as_ref()
                    .map(|e| self.encode_expr(e))
                    .transpose()?,
                projected: parts.projection.is_some(),
                projection: parts
                    .projection
                    .iter()
                    .flatten()
                    .map(|&i| to_u64(i))
                    .collect(),
                fetch: parts.fetch.map(to_u64),
            })
        } else {
            return internal_err!("`{}` is not a barrier node", node.name());
        };
        BarrierProto { kind: Some(kind) }
            .encode(buf)
            .map_err(|e| DataFusionError::Plan(e.to_string()))
    }
}
