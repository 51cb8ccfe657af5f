//! The audience snapshot file: format, writer, validating reader, lookup.
//!
//! Layout (all integers little-endian, every section 8-byte aligned):
//!
//! ```text
//! header (64 B)  magic "BEYEAUD\0", version, segment-id width, user count,
//!                segment count, bucket bits, names length, list length,
//!                xxh3 checksum of everything after the header
//! segments       per segment: key u64, parent index u32 (u32::MAX = root),
//!                name offset u32, name length u32, padding u32   (24 B each)
//! names          segment paths, UTF-8, back to back
//! buckets        (2^bits + 1) × u32: first user index of each hash bucket
//! user keys      user count × u64, sorted (xxh3 of the user id)
//! list offsets   (user count + 1) × u32 into the segment lists
//! lists          segment indexes, u16 (or u32 past 65,535 segments), sorted
//! ```
//!
//! A user costs 8 (key) + 4 (offset) + 2 per segment + ~1 (bucket) bytes.
//! The file is memory-mapped and validated (checksum, bounds, ordering) once
//! at load; lookups then do no allocation: one bucket read, a short binary
//! search, and a slice of segment indexes.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use memmap2::Mmap;

use super::taxonomy::{SegmentKey, SegmentPath};

const MAGIC: &[u8; 8] = b"BEYEAUD\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 64;
const SEGMENT_ENTRY_LEN: usize = 24;
const ROOT: u32 = u32::MAX;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read snapshot {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("not an audience snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot version {0}")]
    Version(u32),
    #[error("snapshot is truncated or has a bad section length ({0})")]
    Truncated(&'static str),
    #[error("snapshot checksum mismatch: the file is corrupt")]
    Checksum,
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// Section offsets computed from the header.
#[derive(Clone, Copy, Debug, Default)]
struct Layout {
    seg_width: usize,
    user_count: usize,
    segment_count: usize,
    bucket_bits: u32,
    segments: usize,
    names: usize,
    names_len: usize,
    buckets: usize,
    keys: usize,
    offsets: usize,
    lists: usize,
    list_len: usize,
    total: usize,
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

impl Layout {
    fn new(
        seg_width: usize,
        user_count: usize,
        segment_count: usize,
        bucket_bits: u32,
        names_len: usize,
        list_len: usize,
    ) -> Option<Layout> {
        let segments = HEADER_LEN;
        let names = segments.checked_add(segment_count.checked_mul(SEGMENT_ENTRY_LEN)?)?;
        let buckets = align8(names.checked_add(names_len)?);
        let bucket_count = 1usize.checked_shl(bucket_bits)?.checked_add(1)?;
        let keys = align8(buckets.checked_add(bucket_count.checked_mul(4)?)?);
        let offsets = keys.checked_add(user_count.checked_mul(8)?)?;
        let lists = align8(offsets.checked_add(user_count.checked_add(1)?.checked_mul(4)?)?);
        let total = align8(lists.checked_add(list_len.checked_mul(seg_width)?)?);
        Some(Layout {
            seg_width,
            user_count,
            segment_count,
            bucket_bits,
            segments,
            names,
            names_len,
            buckets,
            keys,
            offsets,
            lists,
            list_len,
            total,
        })
    }
}

/// Bucket bits for a user count: about four users per bucket.
fn bucket_bits_for(user_count: usize) -> u32 {
    let target = (user_count / 4).max(1);
    (usize::BITS - target.leading_zeros()).clamp(1, 30)
}

enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Owned(vec) => vec,
        }
    }
}

/// A loaded, validated audience snapshot. Immutable; shared behind `ArcSwap`.
pub struct Snapshot {
    bytes: Bytes,
    layout: Layout,
    /// Per segment index, its key and its ancestors' keys (self first).
    lineage: Vec<[SegmentKey; 4]>,
    lineage_len: Vec<u8>,
}

/// A user's segments in one snapshot: indexes into its dictionary.
#[derive(Clone, Copy)]
pub struct UserSegments<'s> {
    snapshot: &'s Snapshot,
    start: usize,
    len: usize,
}

impl<'s> UserSegments<'s> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Segment indexes, in ascending order.
    pub fn indexes(&self) -> impl Iterator<Item = u32> + 's {
        let snapshot = self.snapshot;
        (self.start..self.start + self.len).map(move |i| snapshot.list_entry(i))
    }

    /// Keys of the user's segments and of all their ancestors.
    pub fn keys_with_ancestors(&self) -> impl Iterator<Item = SegmentKey> + 's {
        let snapshot = self.snapshot;
        self.indexes()
            .flat_map(move |index| snapshot.lineage(index).iter().copied())
    }
}

impl Snapshot {
    /// A snapshot with no users and no segments.
    pub fn empty() -> Snapshot {
        let bytes = SnapshotWriter::new().finish_to_vec();
        Snapshot::from_bytes(Bytes::Owned(bytes)).expect("the empty snapshot is valid")
    }

    /// Maps and validates a snapshot file.
    pub fn open(path: &Path) -> Result<Snapshot, SnapshotError> {
        let io_err = |source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: snapshot files are never modified in place; writers create a
        // new file and rename it over the old one (documented in the README),
        // so the mapped pages cannot change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        Snapshot::from_bytes(Bytes::Mapped(map))
    }

    /// Validates a snapshot held in memory.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Snapshot, SnapshotError> {
        Snapshot::from_bytes(Bytes::Owned(bytes))
    }

    fn from_bytes(bytes: Bytes) -> Result<Snapshot, SnapshotError> {
        let data = bytes.as_slice();
        if data.len() < HEADER_LEN {
            return Err(SnapshotError::Truncated("header"));
        }
        if &data[..8] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = read_u32(data, 8);
        if version != VERSION {
            return Err(SnapshotError::Version(version));
        }
        let seg_width = read_u32(data, 12) as usize;
        let user_count = read_u64(data, 16) as usize;
        let segment_count = read_u32(data, 24) as usize;
        let bucket_bits = read_u32(data, 28);
        let names_len = read_u64(data, 32) as usize;
        let list_len = read_u64(data, 40) as usize;
        let checksum = read_u64(data, 48);
        if !matches!(seg_width, 2 | 4) || bucket_bits > 30 {
            return Err(SnapshotError::Inconsistent("header fields"));
        }
        let layout = Layout::new(seg_width, user_count, segment_count, bucket_bits, names_len, list_len)
            .ok_or(SnapshotError::Truncated("sizes overflow"))?;
        if layout.total != data.len() {
            return Err(SnapshotError::Truncated("file length"));
        }
        // Fuzzing skips the checksum so that mutations reach the structural checks.
        if xxhash_rust::xxh3::xxh3_64(&data[HEADER_LEN..]) != checksum && !cfg!(fuzzing) {
            return Err(SnapshotError::Checksum);
        }
        let mut snapshot = Snapshot {
            bytes,
            layout,
            lineage: Vec::new(),
            lineage_len: Vec::new(),
        };
        snapshot.validate_and_index()?;
        Ok(snapshot)
    }

    /// Checks ordering and bounds once, so that lookups need no checks, and
    /// builds the ancestor table.
    fn validate_and_index(&mut self) -> Result<(), SnapshotError> {
        let l = self.layout;
        let data = self.bytes.as_slice();
        let mut lineage = Vec::with_capacity(l.segment_count);
        let mut lineage_len = Vec::with_capacity(l.segment_count);
        for index in 0..l.segment_count {
            let entry = l.segments + index * SEGMENT_ENTRY_LEN;
            let (name_off, name_len) = (read_u32(data, entry + 12) as usize, read_u32(data, entry + 16) as usize);
            if name_off.checked_add(name_len).is_none_or(|end| end > l.names_len) {
                return Err(SnapshotError::Inconsistent("segment name out of bounds"));
            }
            let mut keys = [SegmentKey(0); 4];
            let mut depth = 0;
            let mut cursor = index as u32;
            while cursor != ROOT {
                if depth == 4 || cursor as usize >= l.segment_count {
                    return Err(SnapshotError::Inconsistent("segment hierarchy"));
                }
                let at = l.segments + cursor as usize * SEGMENT_ENTRY_LEN;
                keys[depth] = SegmentKey(read_u64(data, at));
                depth += 1;
                cursor = read_u32(data, at + 8);
            }
            lineage.push(keys);
            lineage_len.push(depth as u8);
        }
        let bucket_count = 1usize << l.bucket_bits;
        let mut previous = 0;
        for b in 0..=bucket_count {
            let start = read_u32(data, l.buckets + b * 4) as usize;
            if start < previous || start > l.user_count {
                return Err(SnapshotError::Inconsistent("bucket table"));
            }
            previous = start;
        }
        if read_u32(data, l.buckets + bucket_count * 4) as usize != l.user_count {
            return Err(SnapshotError::Inconsistent("bucket table end"));
        }
        let mut previous_key = None;
        let mut previous_offset = 0;
        for user in 0..l.user_count {
            let key = read_u64(data, l.keys + user * 8);
            if previous_key.is_some_and(|p| p >= key) {
                return Err(SnapshotError::Inconsistent("user keys not sorted"));
            }
            let bucket = (key >> (64 - l.bucket_bits)) as usize;
            let (lo, hi) = (
                read_u32(data, l.buckets + bucket * 4) as usize,
                read_u32(data, l.buckets + bucket * 4 + 4) as usize,
            );
            if !(lo..hi).contains(&user) {
                return Err(SnapshotError::Inconsistent("user in wrong bucket"));
            }
            previous_key = Some(key);
            let offset = read_u32(data, l.offsets + user * 4) as usize;
            if offset != previous_offset {
                return Err(SnapshotError::Inconsistent("list offsets"));
            }
            previous_offset = read_u32(data, l.offsets + user * 4 + 4) as usize;
            if previous_offset < offset || previous_offset > l.list_len {
                return Err(SnapshotError::Inconsistent("list offsets"));
            }
        }
        if previous_offset != l.list_len {
            return Err(SnapshotError::Inconsistent("list length"));
        }
        self.lineage = lineage;
        self.lineage_len = lineage_len;
        for i in 0..l.list_len {
            if self.list_entry(i) as usize >= l.segment_count {
                return Err(SnapshotError::Inconsistent("segment index out of range"));
            }
        }
        Ok(())
    }

    pub fn user_count(&self) -> usize {
        self.layout.user_count
    }

    pub fn segment_count(&self) -> usize {
        self.layout.segment_count
    }

    pub fn byte_len(&self) -> usize {
        self.layout.total
    }

    /// The segments of the user with this key, if the snapshot has them.
    pub fn lookup(&self, user_key: u64) -> Option<UserSegments<'_>> {
        let l = &self.layout;
        if l.user_count == 0 {
            return None;
        }
        let data = self.bytes.as_slice();
        let bucket = (user_key >> (64 - l.bucket_bits)) as usize;
        let mut lo = read_u32(data, l.buckets + bucket * 4) as usize;
        let mut hi = read_u32(data, l.buckets + bucket * 4 + 4) as usize;
        while lo < hi {
            let mid = (lo + hi) / 2;
            let key = read_u64(data, l.keys + mid * 8);
            match key.cmp(&user_key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let start = read_u32(data, l.offsets + mid * 4) as usize;
                    let end = read_u32(data, l.offsets + mid * 4 + 4) as usize;
                    return Some(UserSegments {
                        snapshot: self,
                        start,
                        len: end - start,
                    });
                }
            }
        }
        None
    }

    /// The path of a segment index.
    pub fn segment_path(&self, index: u32) -> &str {
        let l = &self.layout;
        let data = self.bytes.as_slice();
        let entry = l.segments + index as usize * SEGMENT_ENTRY_LEN;
        let (off, len) = (read_u32(data, entry + 12) as usize, read_u32(data, entry + 16) as usize);
        std::str::from_utf8(&data[l.names + off..l.names + off + len]).unwrap_or("")
    }

    /// The key of a segment and those of its ancestors, self first.
    pub fn lineage(&self, index: u32) -> &[SegmentKey] {
        let i = index as usize;
        &self.lineage[i][..self.lineage_len[i] as usize]
    }

    fn list_entry(&self, i: usize) -> u32 {
        let l = &self.layout;
        let data = self.bytes.as_slice();
        match l.seg_width {
            2 => u16::from_le_bytes([data[l.lists + i * 2], data[l.lists + i * 2 + 1]]) as u32,
            _ => read_u32(data, l.lists + i * 4),
        }
    }
}

fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

/// (user key, segment) memberships, packed for 100 M-user builds.
///
/// While segment indexes fit in 16 bits, a membership is one `u64` in one of
/// 65,536 buckets chosen by the key's top 16 bits: the key's other 48 bits
/// and the segment index (8 bytes instead of 16 for a `(u64, u32)` pair).
/// Past 65,536 segments the writer falls back to pairs.
enum Memberships {
    Packed(Vec<Vec<u64>>),
    Wide(Vec<(u64, u32)>),
}

const PACK_BUCKETS: usize = 1 << 16;

impl Memberships {
    fn new() -> Memberships {
        Memberships::Packed(vec![Vec::new(); PACK_BUCKETS])
    }

    fn push(&mut self, key: u64, segment: u32) {
        if segment > u16::MAX as u32
            && let Memberships::Packed(buckets) = self
        {
            let wide = buckets
                .iter()
                .enumerate()
                .flat_map(|(b, bucket)| bucket.iter().map(move |&v| unpack(b, v)))
                .collect();
            *self = Memberships::Wide(wide);
        }
        match self {
            Memberships::Packed(buckets) => buckets[(key >> 48) as usize].push((key << 16) | segment as u64),
            Memberships::Wide(pairs) => pairs.push((key, segment)),
        }
    }

    /// Renumbers segments, sorts by (key, segment), drops duplicates.
    fn finish(&mut self, renumber: &[u32]) {
        match self {
            Memberships::Packed(buckets) => {
                for bucket in buckets.iter_mut() {
                    for v in bucket.iter_mut() {
                        *v = (*v & !0xFFFF) | renumber[(*v & 0xFFFF) as usize] as u64;
                    }
                    bucket.sort_unstable();
                    bucket.dedup();
                    bucket.shrink_to_fit();
                }
            }
            Memberships::Wide(pairs) => {
                for m in pairs.iter_mut() {
                    m.1 = renumber[m.1 as usize];
                }
                pairs.sort_unstable();
                pairs.dedup();
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Memberships::Packed(buckets) => buckets.iter().map(Vec::len).sum(),
            Memberships::Wide(pairs) => pairs.len(),
        }
    }

    /// (key, segment) in ascending order (after `finish`).
    fn iter(&self) -> Box<dyn Iterator<Item = (u64, u32)> + '_> {
        match self {
            Memberships::Packed(buckets) => Box::new(
                buckets
                    .iter()
                    .enumerate()
                    .flat_map(|(b, bucket)| bucket.iter().map(move |&v| unpack(b, v))),
            ),
            Memberships::Wide(pairs) => Box::new(pairs.iter().copied()),
        }
    }
}

fn unpack(bucket: usize, value: u64) -> (u64, u32) {
    (((bucket as u64) << 48) | (value >> 16), (value & 0xFFFF) as u32)
}

/// Collects users and segments, then writes a snapshot in one pass.
///
/// Users are added as (key, segment index) pairs; the writer sorts and
/// merges them, so the same user may appear in several inputs.
pub struct SnapshotWriter {
    segments: Vec<SegmentPath>,
    segment_index: std::collections::HashMap<SegmentPath, u32>,
    memberships: Memberships,
}

impl Default for SnapshotWriter {
    fn default() -> Self {
        SnapshotWriter {
            segments: Vec::new(),
            segment_index: Default::default(),
            memberships: Memberships::new(),
        }
    }
}

impl SnapshotWriter {
    pub fn new() -> SnapshotWriter {
        SnapshotWriter::default()
    }

    /// Registers a segment and its ancestors; returns its provisional index.
    pub fn segment(&mut self, path: &SegmentPath) -> u32 {
        if let Some(&index) = self.segment_index.get(path) {
            return index;
        }
        if let Some(parent) = path.parent() {
            self.segment(&parent);
        }
        let index = self.segments.len() as u32;
        self.segments.push(path.clone());
        self.segment_index.insert(path.clone(), index);
        index
    }

    pub fn add(&mut self, user_key: u64, segment: u32) {
        self.memberships.push(user_key, segment);
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Writes the snapshot to `out`; returns (users, segments, bytes).
    pub fn finish(self, out: &mut impl Write) -> io::Result<(usize, usize, usize)> {
        let bytes = self.finish_to_vec();
        let (users, segments) = (read_u64(&bytes, 16) as usize, read_u32(&bytes, 24) as usize);
        out.write_all(&bytes)?;
        Ok((users, segments, bytes.len()))
    }

    /// Builds the file image in memory.
    pub fn finish_to_vec(mut self) -> Vec<u8> {
        // Final segment order: sorted by path, so the file is deterministic.
        let mut order: Vec<u32> = (0..self.segments.len() as u32).collect();
        order.sort_by(|&a, &b| self.segments[a as usize].cmp(&self.segments[b as usize]));
        let mut renumber = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        self.memberships.finish(&renumber);

        let segment_count = order.len();
        let seg_width = if segment_count <= u16::MAX as usize + 1 { 2 } else { 4 };
        let mut names = Vec::new();
        let mut entries = Vec::with_capacity(segment_count);
        for &old in &order {
            let path = &self.segments[old as usize];
            let parent = path
                .parent()
                .map_or(ROOT, |p| renumber[self.segment_index[&p] as usize]);
            entries.push((path.key(), parent, names.len() as u32, path.as_str().len() as u32));
            names.extend_from_slice(path.as_str().as_bytes());
        }
        let list_len = self.memberships.len();
        let mut user_count = 0;
        let mut previous = None;
        for (key, _) in self.memberships.iter() {
            if previous != Some(key) {
                user_count += 1;
                previous = Some(key);
            }
        }

        let bucket_bits = bucket_bits_for(user_count);
        let layout = Layout::new(seg_width, user_count, segment_count, bucket_bits, names.len(), list_len)
            .expect("sizes fit in memory");
        let mut out = vec![0u8; layout.total];
        out[..8].copy_from_slice(MAGIC);
        put_u32(&mut out, 8, VERSION);
        put_u32(&mut out, 12, seg_width as u32);
        put_u64(&mut out, 16, user_count as u64);
        put_u32(&mut out, 24, segment_count as u32);
        put_u32(&mut out, 28, bucket_bits);
        put_u64(&mut out, 32, names.len() as u64);
        put_u64(&mut out, 40, list_len as u64);
        for (i, (key, parent, off, len)) in entries.iter().enumerate() {
            let at = layout.segments + i * SEGMENT_ENTRY_LEN;
            put_u64(&mut out, at, key.0);
            put_u32(&mut out, at + 8, *parent);
            put_u32(&mut out, at + 12, *off);
            put_u32(&mut out, at + 16, *len);
        }
        out[layout.names..layout.names + names.len()].copy_from_slice(&names);
        // Keys, list offsets and lists in one pass over the sorted memberships.
        let mut user = 0;
        let mut previous = None;
        for (i, (key, segment)) in self.memberships.iter().enumerate() {
            if previous != Some(key) {
                put_u64(&mut out, layout.keys + user * 8, key);
                put_u32(&mut out, layout.offsets + user * 4, i as u32);
                user += 1;
                previous = Some(key);
            }
            match seg_width {
                2 => {
                    out[layout.lists + i * 2..layout.lists + i * 2 + 2].copy_from_slice(&(segment as u16).to_le_bytes())
                }
                _ => put_u32(&mut out, layout.lists + i * 4, segment),
            }
        }
        put_u32(&mut out, layout.offsets + user_count * 4, list_len as u32);
        drop(self.memberships);
        let bucket_count = 1usize << bucket_bits;
        let mut user = 0;
        for b in 0..=bucket_count {
            while user < user_count && ((read_u64(&out, layout.keys + user * 8) >> (64 - bucket_bits)) as usize) < b {
                user += 1;
            }
            put_u32(&mut out, layout.buckets + b * 4, user as u32);
        }
        let checksum = xxhash_rust::xxh3::xxh3_64(&out[HEADER_LEN..]);
        put_u64(&mut out, 48, checksum);
        out
    }
}

fn put_u32(out: &mut [u8], at: usize, value: u32) {
    out[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut [u8], at: usize, value: u64) {
    out[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::user_key;

    fn sample() -> Vec<u8> {
        let mut writer = SnapshotWriter::new();
        let funds = writer.segment(&SegmentPath::parse("interest/finance/investment/funds").unwrap());
        let sports = writer.segment(&SegmentPath::parse("interest/sports").unwrap());
        let gold = writer.segment(&SegmentPath::parse("rfm/gold").unwrap());
        writer.add(user_key("alice"), funds);
        writer.add(user_key("alice"), gold);
        writer.add(user_key("bob"), sports);
        writer.add(user_key("alice"), funds);
        writer.finish_to_vec()
    }

    fn paths(snapshot: &Snapshot, user: &str) -> Vec<String> {
        let segments = snapshot.lookup(user_key(user)).unwrap();
        segments
            .indexes()
            .map(|i| snapshot.segment_path(i).to_string())
            .collect()
    }

    #[test]
    fn round_trips_users_and_segments() {
        let snapshot = Snapshot::from_vec(sample()).unwrap();
        assert_eq!(snapshot.user_count(), 2);
        assert_eq!(
            paths(&snapshot, "alice"),
            ["interest/finance/investment/funds", "rfm/gold"]
        );
        assert_eq!(paths(&snapshot, "bob"), ["interest/sports"]);
        assert!(snapshot.lookup(user_key("carol")).is_none());
    }

    #[test]
    fn ancestors_are_in_the_key_set() {
        let snapshot = Snapshot::from_vec(sample()).unwrap();
        let keys: Vec<SegmentKey> = snapshot
            .lookup(user_key("alice"))
            .unwrap()
            .keys_with_ancestors()
            .collect();
        for path in [
            "interest",
            "interest/finance",
            "interest/finance/investment",
            "rfm",
            "rfm/gold",
        ] {
            assert!(keys.contains(&SegmentPath::parse(path).unwrap().key()), "{path}");
        }
        assert!(!keys.contains(&SegmentPath::parse("interest/sports").unwrap().key()));
    }

    #[test]
    fn rejects_corruption_and_truncation() {
        let good = sample();
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last - 3] ^= 1;
        assert!(matches!(Snapshot::from_vec(flipped), Err(SnapshotError::Checksum)));
        assert!(matches!(
            Snapshot::from_vec(good[..good.len() - 8].to_vec()),
            Err(SnapshotError::Truncated(_))
        ));
        assert!(matches!(
            Snapshot::from_vec(b"hello".to_vec()),
            Err(SnapshotError::Truncated(_))
        ));
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(matches!(Snapshot::from_vec(magic), Err(SnapshotError::BadMagic)));
    }

    #[test]
    fn more_than_65536_segments_fall_back_to_wide_entries() {
        let mut writer = SnapshotWriter::new();
        let first = writer.segment(&SegmentPath::parse("s/first").unwrap());
        writer.add(user_key("early"), first);
        for i in 0..70_000 {
            let index = writer.segment(&SegmentPath::parse(&format!("s/x{i}")).unwrap());
            writer.add(user_key(&format!("u{}", i % 10)), index);
        }
        let snapshot = Snapshot::from_vec(writer.finish_to_vec()).unwrap();
        assert_eq!(snapshot.segment_count(), 70_002);
        assert_eq!(paths(&snapshot, "early"), ["s/first"]);
        assert_eq!(snapshot.lookup(user_key("u3")).unwrap().len(), 7_000);
    }

    #[test]
    fn many_users_land_in_their_buckets() {
        let mut writer = SnapshotWriter::new();
        let seg = writer.segment(&SegmentPath::parse("a/b").unwrap());
        for i in 0..5000 {
            writer.add(user_key(&format!("user-{i}")), seg);
        }
        let snapshot = Snapshot::from_vec(writer.finish_to_vec()).unwrap();
        for i in 0..5000 {
            assert_eq!(snapshot.lookup(user_key(&format!("user-{i}"))).unwrap().len(), 1);
        }
        assert!(Snapshot::empty().lookup(user_key("x")).is_none());
    }
}
