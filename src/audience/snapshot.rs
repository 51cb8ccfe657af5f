//! The audience snapshot file: format, writer, validating reader, lookup.
//!
//! Layout (format 2; all integers little-endian, every section 8-byte
//! aligned):
//!
//! ```text
//! header (64 B)  magic "BEYEAUD\0", version, segment-id width, user count,
//!                segment count, names length, list length, xxh3 checksum of
//!                everything after the header, slot count
//! segments       per segment: key u64, parent index u32 (u32::MAX = root),
//!                name offset u32, name length u32, padding u32   (24 B each)
//! names          segment paths, UTF-8, back to back
//! slots          slot count × u64, an open-addressed table (linear probing,
//!                load ≤ 0.7): fingerprint (low 32 bits of the user key) in
//!                the high half, the user's list offset in the low half;
//!                u64::MAX = empty
//! lists          per user: segment count, then its segment indexes, sorted;
//!                u16 (u32 past 65,536 segments)
//! ```
//!
//! A lookup reads the user's home slot (the key's high bits scaled to the
//! table) and the few after it — one cache line — then the list: two
//! dependent memory reads, which is what keeps a 100 M-user lookup fast. A
//! user costs 8 / 0.7 ≈ 11.4 bytes of table plus 2 per segment and 2 of
//! count.
//!
//! Identity is the home slot plus the 32-bit fingerprint, so an unknown id
//! is taken for a member with probability ≈ probe length / 2³² (about
//! 1.4 × 10⁻⁹ per lookup), and of 100 M members about 0.05 are shadowed by
//! another with the same fingerprint in the same run of slots (the builder
//! counts them). The bidder memory-maps the file ([`Snapshot::open`]; the
//! copy into huge pages, [`Snapshot::load`], was measured against it). The
//! file is validated once at load (checksum, a
//! sequential walk of the lists, a scan of the slots); lookups also check
//! bounds, so no file, however crafted, reads outside itself.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use memmap2::Mmap;

use super::taxonomy::{SegmentKey, SegmentPath};

const MAGIC: &[u8; 8] = b"BEYEAUD\0";
const VERSION: u32 = 2;
const EMPTY: u64 = u64::MAX;
/// Slots per user, at most: the table is at most 70 % full.
const MAX_LOAD_PERCENT: usize = 70;
const HEADER_LEN: usize = 64;
const SEGMENT_ENTRY_LEN: usize = 24;
const ROOT: u32 = u32::MAX;

/// Why a snapshot file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be opened, read or mapped.
    #[error("cannot read snapshot {path}: {source}")]
    Io {
        /// The snapshot file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The file does not start with the snapshot magic.
    #[error("not an audience snapshot (bad magic)")]
    BadMagic,
    /// A format version this build cannot read (the number).
    #[error("unsupported snapshot version {0}")]
    Version(u32),
    /// The file is shorter than its header says, or a section length is wrong (which).
    #[error("snapshot is truncated or has a bad section length ({0})")]
    Truncated(&'static str),
    /// The checksum does not match: the file is corrupt.
    #[error("snapshot checksum mismatch: the file is corrupt")]
    Checksum,
    /// The sections contradict each other (what).
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// Section offsets computed from the header.
#[derive(Clone, Copy, Debug, Default)]
struct Layout {
    seg_width: usize,
    user_count: usize,
    segment_count: usize,
    slot_count: usize,
    segments: usize,
    names: usize,
    names_len: usize,
    slots: usize,
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
        slot_count: usize,
        names_len: usize,
        list_len: usize,
    ) -> Option<Layout> {
        let segments = HEADER_LEN;
        let names = segments.checked_add(segment_count.checked_mul(SEGMENT_ENTRY_LEN)?)?;
        let slots = align8(names.checked_add(names_len)?);
        let lists = slots.checked_add(slot_count.checked_mul(8)?)?;
        let total = align8(lists.checked_add(list_len.checked_mul(seg_width)?)?);
        Some(Layout {
            seg_width,
            user_count,
            segment_count,
            slot_count,
            segments,
            names,
            names_len,
            slots,
            lists,
            list_len,
            total,
        })
    }

    /// The first slot to probe for a key: its high bits scaled to the table.
    fn home(&self, key: u64) -> usize {
        ((key as u128 * self.slot_count as u128) >> 64) as usize
    }
}

/// Slots for a user count: load at most 70 %, and at least one empty slot
/// so that every probe ends.
fn slot_count_for(user_count: usize) -> usize {
    (user_count * 100).div_ceil(MAX_LOAD_PERCENT).max(user_count + 1).max(8)
}

fn fingerprint(key: u64) -> u32 {
    key as u32
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
    /// Number of segments the user holds directly (ancestors not counted).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the user holds no segment.
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

    /// Reads a snapshot into anonymous memory backed by transparent huge
    /// pages (where the kernel allows them), then validates it.
    ///
    /// The alternative to [`Snapshot::open`], measured and not chosen: at
    /// 100 M users a lookup timed on its own takes a median 591 ns this way
    /// against 947 ns memory-mapped (2 MiB pages spare page-table walks),
    /// but loading costs 3–9 s of a core (zeroing and copying 3 GB) against
    /// ~2 s, and a swap under full load then doubles p99 where the mapped
    /// swap keeps it within 1.3× (PERFORMANCE.md). Benchmarks use it with
    /// `BULLSEYE_BENCH_LOAD=memory`.
    pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
        use std::io::Read;
        let io_err = |source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len() as usize;
        if len == 0 {
            return Err(SnapshotError::Truncated("header"));
        }
        let mut memory = memmap2::MmapMut::map_anon(len).map_err(io_err)?;
        // Advice only: without transparent huge pages this is a plain copy.
        #[cfg(target_os = "linux")]
        let _ = memory.advise(memmap2::Advice::HugePage);
        file.read_exact(&mut memory).map_err(io_err)?;
        let map = memory.make_read_only().map_err(io_err)?;
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
        let names_len = read_u64(data, 32) as usize;
        let list_len = read_u64(data, 40) as usize;
        let checksum = read_u64(data, 48);
        let slot_count = read_u64(data, 56) as usize;
        if !matches!(seg_width, 2 | 4) || slot_count <= user_count || list_len >= u32::MAX as usize {
            return Err(SnapshotError::Inconsistent("header fields"));
        }
        let layout = Layout::new(seg_width, user_count, segment_count, slot_count, names_len, list_len)
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
        // The lists, in one sequential walk: counts within bounds, indexes
        // known and ascending.
        let lists_bytes = &data[l.lists..l.lists + l.list_len * l.seg_width];
        let lists = match l.seg_width {
            2 => walk_lists::<2>(lists_bytes, l.segment_count),
            _ => walk_lists::<4>(lists_bytes, l.segment_count),
        }?;
        if lists != l.user_count {
            return Err(SnapshotError::Inconsistent("list count"));
        }
        // The slots: as many occupied as users, offsets inside the lists.
        let mut occupied = 0;
        for slot in 0..l.slot_count {
            let entry = read_u64(data, l.slots + slot * 8);
            if entry == EMPTY {
                continue;
            }
            if (entry as u32) as usize >= l.list_len {
                return Err(SnapshotError::Inconsistent("slot offset"));
            }
            occupied += 1;
        }
        if occupied != l.user_count {
            return Err(SnapshotError::Inconsistent("slot count"));
        }
        self.lineage = lineage;
        self.lineage_len = lineage_len;
        Ok(())
    }

    /// Users in the snapshot.
    pub fn user_count(&self) -> usize {
        self.layout.user_count
    }

    /// Segments in the dictionary, ancestors included.
    pub fn segment_count(&self) -> usize {
        self.layout.segment_count
    }

    /// Size of the snapshot image, bytes.
    pub fn byte_len(&self) -> usize {
        self.layout.total
    }

    /// The segments of the user with this key, if the snapshot has them.
    pub fn lookup(&self, user_key: u64) -> Option<UserSegments<'_>> {
        let l = &self.layout;
        let slots = &self.bytes.as_slice()[l.slots..l.lists];
        let fingerprint = fingerprint(user_key);
        let mut slot = l.home(user_key);
        // Validation guarantees an empty slot, so the probe ends; the step
        // bound is for files validated under `cfg(fuzzing)`.
        for _ in 0..l.slot_count {
            let entry = read_u64(slots, slot * 8);
            if entry == EMPTY {
                return None;
            }
            if (entry >> 32) as u32 == fingerprint {
                let start = (entry as u32) as usize;
                let len = self.list_entry(start) as usize;
                if start + 1 + len > l.list_len {
                    return None;
                }
                return Some(UserSegments {
                    snapshot: self,
                    start: start + 1,
                    len,
                });
            }
            slot += 1;
            if slot == l.slot_count {
                slot = 0;
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

/// Walks `count, index…` lists of `WIDTH`-byte entries; returns how many
/// there are. Branch-free inside a list: this runs over ~900 M entries for a
/// 100 M-user snapshot.
fn walk_lists<const WIDTH: usize>(bytes: &[u8], segment_count: usize) -> Result<usize, SnapshotError> {
    let entry = |at: usize| -> u32 {
        let mut word = [0u8; 4];
        word[..WIDTH].copy_from_slice(&bytes[at * WIDTH..at * WIDTH + WIDTH]);
        u32::from_le_bytes(word)
    };
    let len = bytes.len() / WIDTH;
    let (mut at, mut lists) = (0, 0);
    while at < len {
        let count = entry(at) as usize;
        let end = at + 1 + count;
        if end > len {
            return Err(SnapshotError::Inconsistent("list length"));
        }
        let list = &bytes[(at + 1) * WIDTH..end * WIDTH];
        let mut valid = true;
        let mut previous = -1i64;
        for chunk in list.chunks_exact(WIDTH) {
            let mut word = [0u8; 4];
            word[..WIDTH].copy_from_slice(chunk);
            let index = u32::from_le_bytes(word);
            valid &= (index as usize) < segment_count && i64::from(index) > previous;
            previous = i64::from(index);
        }
        if !valid {
            return Err(SnapshotError::Inconsistent("segment list"));
        }
        lists += 1;
        at = end;
    }
    Ok(lists)
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
    /// An empty writer.
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

    /// Puts the user with key `user_key` in the segment at `segment` (an index from [`SnapshotWriter::segment`]).
    pub fn add(&mut self, user_key: u64, segment: u32) {
        self.memberships.push(user_key, segment);
    }

    /// Segments registered so far, ancestors included.
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
    #[allow(
        clippy::too_many_lines,
        reason = "the file image written section by section, in file order"
    )]
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
        let mut user_count = 0;
        let mut previous = None;
        for (key, _) in self.memberships.iter() {
            if previous != Some(key) {
                user_count += 1;
                previous = Some(key);
            }
        }
        // Each user's list is its count, then its segments.
        let list_len = self.memberships.len() + user_count;
        assert!(
            list_len < u32::MAX as usize,
            "audience too large for one snapshot (32-bit list offsets): split it"
        );

        let slot_count = slot_count_for(user_count);
        let layout = Layout::new(seg_width, user_count, segment_count, slot_count, names.len(), list_len)
            .expect("sizes fit in memory");
        let mut out = vec![0u8; layout.total];
        out[..8].copy_from_slice(MAGIC);
        put_u32(&mut out, 8, VERSION);
        put_u32(&mut out, 12, seg_width as u32);
        put_u64(&mut out, 16, user_count as u64);
        put_u32(&mut out, 24, segment_count as u32);
        put_u64(&mut out, 32, names.len() as u64);
        put_u64(&mut out, 40, list_len as u64);
        put_u64(&mut out, 56, slot_count as u64);
        for (i, (key, parent, off, len)) in entries.iter().enumerate() {
            let at = layout.segments + i * SEGMENT_ENTRY_LEN;
            put_u64(&mut out, at, key.0);
            put_u32(&mut out, at + 8, *parent);
            put_u32(&mut out, at + 12, *off);
            put_u32(&mut out, at + 16, *len);
        }
        out[layout.names..layout.names + names.len()].copy_from_slice(&names);
        out[layout.slots..layout.lists].fill(0xFF);
        let put_entry = |out: &mut [u8], i: usize, value: u32| match seg_width {
            2 => out[layout.lists + i * 2..layout.lists + i * 2 + 2].copy_from_slice(&(value as u16).to_le_bytes()),
            _ => put_u32(out, layout.lists + i * 4, value),
        };
        // Lists in key order, one pass over the sorted memberships; each
        // user's slot is claimed when its list starts.
        let mut cursor = 0;
        let mut list_start = 0;
        let mut previous = None;
        let mut shadowed = 0usize;
        for (key, segment) in self.memberships.iter() {
            if previous != Some(key) {
                if previous.is_some() {
                    put_entry(&mut out, list_start, (cursor - list_start - 1) as u32);
                }
                list_start = cursor;
                cursor += 1;
                previous = Some(key);
                let mut slot = layout.home(key);
                loop {
                    let at = layout.slots + slot * 8;
                    let entry = read_u64(&out, at);
                    if entry == EMPTY {
                        put_u64(&mut out, at, (u64::from(fingerprint(key)) << 32) | list_start as u64);
                        break;
                    }
                    if (entry >> 32) as u32 == fingerprint(key) {
                        shadowed += 1;
                    }
                    slot = if slot + 1 == slot_count { 0 } else { slot + 1 };
                }
            }
            put_entry(&mut out, cursor, segment);
            cursor += 1;
        }
        if previous.is_some() {
            put_entry(&mut out, list_start, (cursor - list_start - 1) as u32);
        }
        debug_assert_eq!(cursor, list_len);
        drop(self.memberships);
        if shadowed > 0 {
            tracing::warn!(
                shadowed,
                "users sharing a fingerprint in the same run of slots: lookups find the first"
            );
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
    fn every_member_is_found_and_strangers_are_not() {
        let mut writer = SnapshotWriter::new();
        let tags: Vec<u32> = (0..40)
            .map(|t| writer.segment(&SegmentPath::parse(&format!("interest/t{}/s{t}", t % 7)).unwrap()))
            .collect();
        for user in 0..20_000u32 {
            for k in 0..(user % 5) {
                writer.add(user_key(&format!("user-{user}")), tags[((user + k * 11) % 40) as usize]);
            }
        }
        let snapshot = Snapshot::from_vec(writer.finish_to_vec()).unwrap();
        // Users with no segments (user % 5 == 0) are not in the snapshot.
        assert_eq!(snapshot.user_count(), 16_000);
        for user in 0..20_000u32 {
            let found = snapshot.lookup(user_key(&format!("user-{user}")));
            assert_eq!(found.map_or(0, |s| s.len()), (user % 5) as usize, "user-{user}");
            if let Some(found) = found {
                let paths: Vec<u32> = found.indexes().collect();
                assert!(paths.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
            }
        }
        for stranger in 0..20_000u32 {
            assert!(snapshot.lookup(user_key(&format!("stranger-{stranger}"))).is_none());
        }
    }

    #[test]
    fn a_table_without_an_empty_slot_is_rejected() {
        let mut bytes = sample();
        // Claim as many users as slots: a probe could never end.
        let slots = read_u64(&bytes, 56);
        put_u64(&mut bytes, 16, slots);
        assert!(matches!(
            Snapshot::from_vec(bytes),
            Err(SnapshotError::Inconsistent(_)) | Err(SnapshotError::Checksum)
        ));
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
