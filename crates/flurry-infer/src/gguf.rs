//! A validating GGUF reader.
//!
//! GGUF (llama.cpp's model format) is a header, a list of typed key/value metadata, a
//! tensor table (name, shape, type, offset) and the aligned tensor data. Everything in
//! a file is untrusted: every length and offset is bounds-checked against the file
//! size before use, and every failure becomes one [`Error::Gguf`] naming the file and
//! the problem. The parser never panics on any input (property-tested in
//! `tests/it/gguf.rs` and fuzzed by `fuzz/fuzz_targets/gguf.rs`).
//!
//! The file is memory-mapped; tensors are borrowed slices of the map, so loading a
//! model copies nothing and the OS pages weights in on demand.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Error, GgmlType, Result};

const MAGIC: &[u8; 4] = b"GGUF";
/// Upper bounds that no real model comes near; they keep hostile files from making
/// the parser allocate or loop without end.
const MAX_TENSORS: u64 = 1 << 16;
const MAX_KV: u64 = 1 << 16;
const MAX_STRING: u64 = 16 << 20;
const MAX_DIMS: u32 = 4;
const MAX_ARRAY_DEPTH: usize = 2;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Unsigned 8-bit.
    U8(u8),
    /// Signed 8-bit.
    I8(i8),
    /// Unsigned 16-bit.
    U16(u16),
    /// Signed 16-bit.
    I16(i16),
    /// Unsigned 32-bit.
    U32(u32),
    /// Signed 32-bit.
    I32(i32),
    /// 32-bit float.
    F32(f32),
    /// Boolean.
    Bool(bool),
    /// UTF-8 string.
    String(String),
    /// Homogeneous array.
    Array(Vec<Value>),
    /// Unsigned 64-bit.
    U64(u64),
    /// Signed 64-bit.
    I64(i64),
    /// 64-bit float.
    F64(f64),
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// A short description of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
        }
    }
}

/// One entry of the tensor table.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Shape in GGML order: `dims[0]` is the contiguous (innermost) dimension.
    pub dims: Vec<u64>,
    /// Element type.
    pub dtype: GgmlType,
    /// Byte range inside the file.
    pub range: Range<usize>,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Longest metadata array kept by [`Gguf::release_large_arrays`].
pub const KEPT_ARRAY_ITEMS: usize = 1024;

/// A parsed, validated GGUF file backed by a memory map.
pub struct Gguf {
    path: PathBuf,
    map: Arc<memmap2::Mmap>,
    version: u32,
    metadata: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Gguf {
    /// Opens, maps and validates a GGUF file.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(Error::Gguf {
                path: path.into(),
                message: "not a regular file".into(),
            });
        }
        // SAFETY-free: memmap2's `map` is unsafe only for the file changing underneath;
        // the model store never rewrites a model file in place (imports write a new file
        // and rename it), so the mapping stays valid.
        let map = map_file(&file).map_err(io)?;
        Self::parse(path, Arc::new(map))
    }

    fn parse(path: &Path, map: Arc<memmap2::Mmap>) -> Result<Self> {
        let parsed = parse_bytes(&map).map_err(|message| Error::Gguf {
            path: path.to_path_buf(),
            message: format!(
                "{message} (is this a complete GGUF model file? re-download or re-import it)"
            ),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            map,
            version: parsed.version,
            index: parsed
                .metadata
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect(),
            metadata: parsed.metadata,
            tensor_index: parsed
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect(),
            tensors: parsed.tensors,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> usize {
        self.map.len()
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// One metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// Frees metadata arrays of more than [`KEPT_ARRAY_ITEMS`] items (a tokenizer's
    /// vocabulary, scores, types and merges: tens of MiB for a 262k vocabulary) once
    /// they have been read; they read as empty arrays afterwards.
    pub fn release_large_arrays(&mut self) {
        for (_, v) in &mut self.metadata {
            if let Value::Array(items) = v
                && items.len() > KEPT_ARRAY_ITEMS
            {
                *items = Vec::new();
            }
        }
    }

    /// The tensor table.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// One tensor's table entry.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of a tensor (bounds were validated when the file was opened).
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        &self.map[info.range.clone()]
    }

    /// The shared memory map, for holding tensor data beyond this struct's lifetime.
    pub fn map(&self) -> Arc<memmap2::Mmap> {
        self.map.clone()
    }

    /// An error about this file.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Gguf {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// A required string value.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.error(format!(
                "metadata {key} is {}, expected string",
                v.type_name()
            ))),
            None => Err(self.error(format!("missing metadata {key}"))),
        }
    }

    /// An optional string value.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.get_str(key).map(Some),
        }
    }

    /// A required non-negative integer value.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        match self.get(key) {
            Some(v) => v.as_u64().ok_or_else(|| {
                self.error(format!(
                    "metadata {key} is {}, expected an unsigned integer",
                    v.type_name()
                ))
            }),
            None => Err(self.error(format!("missing metadata {key}"))),
        }
    }

    /// An optional non-negative integer value.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.get_u64(key).map(Some),
        }
    }

    /// An optional float value.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                self.error(format!(
                    "metadata {key} is {}, expected a number",
                    v.type_name()
                ))
            }),
        }
    }

    /// An optional boolean value.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.error(format!(
                "metadata {key} is {}, expected bool",
                v.type_name()
            ))),
        }
    }

    /// A required array value.
    pub fn get_array(&self, key: &str) -> Result<&[Value]> {
        match self.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(self.error(format!(
                "metadata {key} is {}, expected array",
                v.type_name()
            ))),
            None => Err(self.error(format!("missing metadata {key}"))),
        }
    }

    /// A required array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>> {
        self.get_array(key)?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(self.error(format!(
                    "metadata {key} holds {}, expected strings",
                    other.type_name()
                ))),
            })
            .collect()
    }

    /// A required array of numbers, as f32.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>> {
        self.get_array(key)?
            .iter()
            .map(|v| {
                v.as_f64().map(|f| f as f32).ok_or_else(|| {
                    self.error(format!(
                        "metadata {key} holds {}, expected numbers",
                        v.type_name()
                    ))
                })
            })
            .collect()
    }

    /// A required array of integers, as i64.
    pub fn get_i64_array(&self, key: &str) -> Result<Vec<i64>> {
        self.get_array(key)?
            .iter()
            .map(|v| {
                v.as_i64().ok_or_else(|| {
                    self.error(format!(
                        "metadata {key} holds {}, expected integers",
                        v.type_name()
                    ))
                })
            })
            .collect()
    }
}

/// Drops this process's page-table entries for every page of `map`, keeping the data:
/// later reads fault the pages back in from the page cache (or the file). Loading reads
/// a few small tensors through the map, and the kernel maps whole large page-cache
/// folios (up to 2 MiB) around each such read; without this, megabytes of weights that
/// are only ever read through their packed copies would stay in the resident set.
#[allow(unsafe_code)]
pub(crate) fn unmap_resident_pages(map: &memmap2::Mmap) {
    // SAFETY: the mapping is read-only and shared with the file, so MADV_DONTNEED loses
    // nothing: the next access reads the same bytes again. No reference into the map is
    // invalidated (the addresses stay mapped).
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
}

#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only, and model files are never modified in place
    // (the store writes new files under a temporary name and renames them).
    unsafe { memmap2::Mmap::map(file) }
}

/// The result of parsing GGUF bytes.
#[derive(Debug)]
pub struct Parsed {
    /// Format version.
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor table.
    pub tensors: Vec<TensorInfo>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        let end = (self.pos as u64)
            .checked_add(n)
            .filter(|&e| e <= self.buf.len() as u64);
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end as usize];
                self.pos = end as usize;
                Ok(s)
            }
            None => Err(format!(
                "file is truncated: {what} needs {n} bytes at offset {} but the file is {} bytes",
                self.pos,
                self.buf.len()
            )),
        }
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        Ok(self
            .take(N as u64, what)?
            .try_into()
            .expect("length checked"))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let len = self.u64(what)?;
        if len > MAX_STRING {
            return Err(format!(
                "{what} claims a length of {len} bytes (limit {MAX_STRING})"
            ));
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not valid UTF-8"))
    }
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }
}

fn read_value(c: &mut Cursor<'_>, ty: u32, key: &str, depth: usize) -> Result<Value, String> {
    let what = format!("value of {key}");
    Ok(match ty {
        0 => Value::U8(c.array::<1>(&what)?[0]),
        1 => Value::I8(c.array::<1>(&what)?[0] as i8),
        2 => Value::U16(u16::from_le_bytes(c.array(&what)?)),
        3 => Value::I16(i16::from_le_bytes(c.array(&what)?)),
        4 => Value::U32(u32::from_le_bytes(c.array(&what)?)),
        5 => Value::I32(i32::from_le_bytes(c.array(&what)?)),
        6 => Value::F32(f32::from_le_bytes(c.array(&what)?)),
        7 => match c.array::<1>(&what)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return Err(format!("{what} is a bool with invalid byte {b}")),
        },
        8 => Value::String(c.string(&what)?),
        9 => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(format!("{what} nests arrays deeper than {MAX_ARRAY_DEPTH}"));
            }
            let item_ty = c.u32(&what)?;
            let len = c.u64(&what)?;
            // Every item takes at least one byte, so a length beyond the rest of the
            // file is a lie; checking first keeps hostile lengths from allocating.
            if len > c.remaining() {
                return Err(format!(
                    "{what} claims {len} items but only {} bytes remain",
                    c.remaining()
                ));
            }
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(read_value(c, item_ty, key, depth + 1)?);
            }
            Value::Array(items)
        }
        10 => Value::U64(c.u64(&what)?),
        11 => Value::I64(i64::from_le_bytes(c.array(&what)?)),
        12 => Value::F64(f64::from_le_bytes(c.array(&what)?)),
        other => return Err(format!("{what} has unknown value type {other}")),
    })
}

/// Parses and validates GGUF bytes. Errors are plain messages; [`Gguf::open`] adds
/// the file name.
pub fn parse_bytes(buf: &[u8]) -> Result<Parsed, String> {
    let mut c = Cursor { buf, pos: 0 };
    let magic = c.take(4, "magic")?;
    if magic != MAGIC {
        return Err(format!(
            "not a GGUF file: magic bytes are {magic:02x?}, expected \"GGUF\""
        ));
    }
    let version = c.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "unsupported GGUF version {version} (Flurry reads versions 2 and 3)"
        ));
    }
    let n_tensors = c.u64("tensor count")?;
    let n_kv = c.u64("metadata count")?;
    if n_tensors > MAX_TENSORS {
        return Err(format!(
            "tensor count {n_tensors} exceeds the limit of {MAX_TENSORS}"
        ));
    }
    if n_kv > MAX_KV {
        return Err(format!(
            "metadata count {n_kv} exceeds the limit of {MAX_KV}"
        ));
    }

    let mut metadata: Vec<(String, Value)> = Vec::with_capacity(n_kv as usize);
    let mut seen = std::collections::HashSet::new();
    for i in 0..n_kv {
        let key = c.string(&format!("metadata key #{i}"))?;
        let ty = c.u32(&format!("type of {key}"))?;
        let value = read_value(&mut c, ty, &key, 0)?;
        if !seen.insert(key.clone()) {
            return Err(format!("metadata key {key} appears twice"));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => 32,
        Some((_, v)) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 16 => a,
            _ => {
                return Err(format!(
                    "general.alignment must be a power of two, found {v:?}"
                ));
            }
        },
    };

    struct Raw {
        name: String,
        dims: Vec<u64>,
        dtype: GgmlType,
        offset: u64,
    }
    let mut raw = Vec::with_capacity(n_tensors as usize);
    let mut names = std::collections::HashSet::new();
    for i in 0..n_tensors {
        let name = c.string(&format!("name of tensor #{i}"))?;
        let n_dims = c.u32(&format!("rank of tensor {name}"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(format!(
                "tensor {name} has rank {n_dims}; expected 1 to {MAX_DIMS}"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d = c.u64(&format!("shape of tensor {name}"))?;
            if d == 0 {
                return Err(format!("tensor {name} has a zero dimension"));
            }
            dims.push(d);
        }
        let type_id = c.u32(&format!("type of tensor {name}"))?;
        let dtype = GgmlType::from_id(type_id).ok_or_else(|| {
            format!("tensor {name} has unsupported GGML type {type_id} (Flurry supports F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K)")
        })?;
        let offset = c.u64(&format!("offset of tensor {name}"))?;
        if !names.insert(name.clone()) {
            return Err(format!("tensor {name} appears twice"));
        }
        raw.push(Raw {
            name,
            dims,
            dtype,
            offset,
        });
    }

    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
    let file_len = buf.len() as u64;
    let mut tensors = Vec::with_capacity(raw.len());
    for r in raw {
        let elements = r
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("tensor {} has a shape whose size overflows", r.name))?;
        if r.dims[0] % r.dtype.block_len() as u64 != 0 {
            return Err(format!(
                "tensor {} has row length {} which is not a multiple of the {} block size {}",
                r.name,
                r.dims[0],
                r.dtype,
                r.dtype.block_len()
            ));
        }
        let size = r
            .dtype
            .bytes_for(elements)
            .ok_or_else(|| format!("tensor {} has a size that overflows", r.name))?;
        if r.offset % alignment != 0 {
            return Err(format!(
                "tensor {} offset {} is not aligned to {alignment}",
                r.name, r.offset
            ));
        }
        let start = data_start
            .checked_add(r.offset)
            .ok_or_else(|| format!("tensor {} offset overflows", r.name))?;
        let end = start.checked_add(size).filter(|&e| e <= file_len).ok_or_else(|| {
            format!(
                "file is truncated: tensor {} ({} bytes at offset {start}) runs past the end of the {file_len}-byte file",
                r.name, size
            )
        })?;
        tensors.push(TensorInfo {
            name: r.name,
            dims: r.dims,
            dtype: r.dtype,
            range: start as usize..end as usize,
        });
    }
    // Overlapping tensors mean a corrupted table (or a file crafted to alias weights).
    let mut by_start: Vec<&TensorInfo> = tensors.iter().collect();
    by_start.sort_by_key(|t| t.range.start);
    for w in by_start.windows(2) {
        if w[0].range.end > w[1].range.start {
            return Err(format!("tensors {} and {} overlap", w[0].name, w[1].name));
        }
    }
    Ok(Parsed {
        version,
        metadata,
        tensors,
    })
}

/// Writes a GGUF file from metadata and tensors (used to build tiny test models and
/// to exercise the parser). Tensor data must already be in the tensor's block format.
pub fn write_gguf(
    out: &mut impl std::io::Write,
    metadata: &[(String, Value)],
    tensors: &[(String, Vec<u64>, GgmlType, Vec<u8>)],
) -> std::io::Result<()> {
    fn w_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn type_id(v: &Value) -> u32 {
        match v {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }
    fn w_val(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.push(*x as u8),
            Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => out.push(u8::from(*x)),
            Value::String(s) => w_str(out, s),
            Value::Array(items) => {
                let item_ty = items.first().map(type_id).unwrap_or(4);
                out.extend_from_slice(&item_ty.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for i in items {
                    w_val(out, i);
                }
            }
            Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
    const ALIGN: u64 = 32;
    let mut head = Vec::new();
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&3u32.to_le_bytes());
    head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    head.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        w_str(&mut head, k);
        head.extend_from_slice(&type_id(v).to_le_bytes());
        w_val(&mut head, v);
    }
    let mut offset = 0u64;
    for (name, dims, dtype, data) in tensors {
        w_str(&mut head, name);
        head.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            head.extend_from_slice(&d.to_le_bytes());
        }
        head.extend_from_slice(&dtype.id().to_le_bytes());
        head.extend_from_slice(&offset.to_le_bytes());
        offset += (data.len() as u64).div_ceil(ALIGN) * ALIGN;
    }
    head.resize(
        (head.len() as u64).div_ceil(ALIGN) as usize * ALIGN as usize,
        0,
    );
    for (_, _, _, data) in tensors {
        head.extend_from_slice(data);
        head.resize(
            (head.len() as u64).div_ceil(ALIGN) as usize * ALIGN as usize,
            0,
        );
    }
    out.write_all(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        write_gguf(
            &mut out,
            &[
                ("general.architecture".into(), Value::String("llama".into())),
                (
                    "a.list".into(),
                    Value::Array(vec![Value::U32(1), Value::U32(2)]),
                ),
            ],
            &[("t".into(), vec![4, 2], GgmlType::F32, vec![0u8; 32])],
        )
        .unwrap();
        out
    }

    #[test]
    fn roundtrip() {
        let p = parse_bytes(&sample()).unwrap();
        assert_eq!(p.version, 3);
        assert_eq!(p.metadata.len(), 2);
        assert_eq!(p.tensors[0].dims, vec![4, 2]);
        assert_eq!(p.tensors[0].range.len(), 32);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = sample();
        for n in 0..b.len() {
            let r = parse_bytes(&b[..n]);
            assert!(r.is_err(), "prefix of {n} bytes parsed");
        }
    }

    #[test]
    fn bad_magic_and_version() {
        let mut b = sample();
        b[0] = b'X';
        assert!(parse_bytes(&b).unwrap_err().contains("not a GGUF file"));
        let mut b = sample();
        b[4] = 9;
        assert!(
            parse_bytes(&b)
                .unwrap_err()
                .contains("unsupported GGUF version 9")
        );
    }
}
