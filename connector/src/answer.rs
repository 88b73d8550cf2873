//! Encoding query answers: Arrow IPC stream (the default, for programs) or
//! JSON rows (for people and small results).

use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;

use crate::{Error, Result};

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// How a result is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerFormat {
    /// Arrow IPC stream.
    #[default]
    Arrow,
    /// A JSON array of row objects.
    Json,
}

/// Encodes batches as an Arrow IPC stream.
pub fn to_arrow_stream(
    schema: &datafusion::arrow::datatypes::Schema,
    batches: &[RecordBatch],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let fail = crate::engine::execution_error;
    let mut writer = StreamWriter::try_new(&mut out, schema).map_err(fail)?;
    for batch in batches {
        writer.write(batch).map_err(fail)?;
    }
    writer.finish().map_err(fail)?;
    drop(writer);
    Ok(out)
}

/// Encodes batches as a JSON array of objects.
pub fn to_json_rows(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer
        .write_batches(&refs)
        .map_err(crate::engine::execution_error)?;
    writer.finish().map_err(crate::engine::execution_error)?;
    let bytes = writer.into_inner();
    Ok(if bytes.is_empty() {
        b"[]".to_vec()
    } else {
        bytes
    })
}

/// Decodes an Arrow IPC stream.
pub fn from_arrow_stream(bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| Error::Peer(format!("the answer is not an Arrow IPC stream: {e}")))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Peer(format!("the answer is not an Arrow IPC stream: {e}")))
}
