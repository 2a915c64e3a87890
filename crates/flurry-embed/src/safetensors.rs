//! A safetensors reader: an 8-byte little-endian header length, a JSON header mapping
//! tensor names to `dtype`, `shape` and `data_offsets` (relative to the end of the
//! header), then the data. Every offset, length, dtype and shape is checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Error;

/// One tensor entry of the header, validated against the file size.
#[derive(Debug, Clone)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: usize,
    end: usize,
}

/// A parsed safetensors file held in memory.
#[derive(Debug)]
pub(crate) struct SafeTensors {
    path: PathBuf,
    bytes: Vec<u8>,
    entries: HashMap<String, Entry>,
}

/// Bytes per element of a safetensors dtype, `None` for unknown ones.
fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

impl SafeTensors {
    /// Parses `bytes` (the content of `path`) and validates the header.
    pub(crate) fn parse(bytes: Vec<u8>, path: &Path) -> Result<Self, Error> {
        let bad = |msg: String| Error::Safetensors {
            path: path.to_path_buf(),
            msg,
        };
        let Some(len_bytes) = bytes.first_chunk::<8>() else {
            return Err(bad(format!(
                "file is {} bytes, shorter than the 8-byte header length",
                bytes.len()
            )));
        };
        let header_len = u64::from_le_bytes(*len_bytes);
        let available = bytes.len() as u64 - 8;
        if header_len > available {
            return Err(bad(format!(
                "header length {header_len} runs past the end of the file ({available} bytes after the length)"
            )));
        }
        let data_start = 8 + header_len as usize;
        let header: Value = serde_json::from_slice(&bytes[8..data_start])
            .map_err(|e| bad(format!("header is not JSON: {e}")))?;
        let map = header
            .as_object()
            .ok_or_else(|| bad("header is not a JSON object".into()))?;
        let data_len = bytes.len() - data_start;
        let mut entries = HashMap::with_capacity(map.len());
        for (name, v) in map {
            if name == "__metadata__" {
                continue;
            }
            let tbad = |msg: String| Error::Tensor {
                path: path.to_path_buf(),
                name: name.clone(),
                msg,
            };
            let dtype = v
                .get("dtype")
                .and_then(Value::as_str)
                .ok_or_else(|| tbad("no string `dtype`".into()))?;
            let size = dtype_size(dtype).ok_or_else(|| tbad(format!("unknown dtype {dtype}")))?;
            let shape = v
                .get("shape")
                .and_then(Value::as_array)
                .ok_or_else(|| tbad("no `shape` array".into()))?
                .iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| tbad(format!("shape {} is not a list of sizes", v["shape"])))?;
            let offsets = v
                .get("data_offsets")
                .and_then(Value::as_array)
                .filter(|o| o.len() == 2)
                .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
                .ok_or_else(|| tbad("`data_offsets` is not [begin, end]".into()))?;
            let (begin, end) = offsets;
            if begin > end || end > data_len as u64 {
                return Err(tbad(format!(
                    "data_offsets [{begin}, {end}] outside the {data_len} data bytes of the file"
                )));
            }
            let nbytes = shape
                .iter()
                .try_fold(size, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| tbad(format!("shape {shape:?} overflows")))?;
            if (end - begin) as usize != nbytes {
                return Err(tbad(format!(
                    "data_offsets [{begin}, {end}] hold {} bytes, but {dtype} {shape:?} needs {nbytes}",
                    end - begin
                )));
            }
            entries.insert(
                name.clone(),
                Entry {
                    dtype: dtype.to_string(),
                    shape,
                    start: data_start + begin as usize,
                    end: data_start + end as usize,
                },
            );
        }
        Ok(SafeTensors {
            path: path.to_path_buf(),
            bytes,
            entries,
        })
    }

    /// Reads every F32 tensor with its own shape and returns how many values there
    /// were (the fuzz target's way through every read path).
    pub(crate) fn read_all_f32(&self) -> Result<usize, Error> {
        let mut n = 0;
        for (name, e) in &self.entries {
            if e.dtype == "F32" {
                n += self.f32_tensor(name, &e.shape)?.len();
            }
        }
        Ok(n)
    }

    /// The F32 tensor `name`, which must have exactly `shape`, as a vector.
    pub(crate) fn f32_tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, Error> {
        let tbad = |msg: String| Error::Tensor {
            path: self.path.clone(),
            name: name.to_string(),
            msg,
        };
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| tbad("missing tensor".into()))?;
        if e.dtype != "F32" {
            return Err(tbad(format!("dtype {}, expected F32", e.dtype)));
        }
        if e.shape != shape {
            return Err(tbad(format!("shape {:?}, expected {shape:?}", e.shape)));
        }
        Ok(self.bytes[e.start..e.end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}
