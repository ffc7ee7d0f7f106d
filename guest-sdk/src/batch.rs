//! [`Batch`]: many IPs in the packed encoding, for hot paths.

use crate::raw::flowd::component::types::PackedIps;
use crate::{Error, Ip, IpKind, IpRef, Result};

/// Many IPs in three flat buffers: the WIT's `packed-ips`.
///
/// IP `i` has kind `kinds[i]` (0 data, 1 open, 2 close) and payload `data[ends[i-1]..ends[i]]`
/// (from 0 for the first). Crossing the host boundary costs three allocations per batch instead
/// of one per IP, which makes [`InPort::recv_packed`](crate::InPort::recv_packed) and
/// [`OutPort::send_packed`](crate::OutPort::send_packed) the fastest way to move many small IPs.
///
/// A `Batch` is always well formed: the constructors validate, and the methods keep the
/// invariants, so reading it never panics. A received batch is used in place: [`Batch::iter`]
/// yields [`IpRef`]s that borrow the buffer, and [`Batch::for_each_data_mut`] edits payloads
/// without copying.
///
/// ```
/// use flowd_guest::{Batch, Ip, IpRef};
/// let mut b = Batch::new();
/// b.push_open("group");
/// b.push_data("a");
/// b.push_data(vec![b'b', b'c']);
/// b.push_close("");
/// assert_eq!(b.len(), 4);
/// assert_eq!(b.get(2), Some(IpRef::Data(b"bc")));
/// b.for_each_data_mut(|d| d.make_ascii_uppercase());
/// assert_eq!(b.to_ips()[1], Ip::data("A"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Batch {
    raw: PackedIps,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch {
            raw: PackedIps {
                kinds: Vec::new(),
                ends: Vec::new(),
                data: Vec::new(),
            },
        }
    }

    /// An empty batch with room for `ips` IPs carrying `bytes` payload bytes in all.
    pub fn with_capacity(ips: usize, bytes: usize) -> Self {
        Batch {
            raw: PackedIps {
                kinds: Vec::with_capacity(ips),
                ends: Vec::with_capacity(ips),
                data: Vec::with_capacity(bytes),
            },
        }
    }

    /// A batch from its three buffers, checked: as many kinds as ends, kinds 0 to 2, ends in
    /// non-decreasing order and within `data`. Bytes after the last end are dropped.
    pub fn from_parts(kinds: Vec<u8>, ends: Vec<u32>, data: Vec<u8>) -> Result<Self> {
        Self::from_raw(PackedIps { kinds, ends, data })
    }

    /// The three buffers: `(kinds, ends, data)`.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u32>, Vec<u8>) {
        (self.raw.kinds, self.raw.ends, self.raw.data)
    }

    pub(crate) fn from_raw(mut raw: PackedIps) -> Result<Self> {
        validate(&raw)?;
        let used = raw.ends.last().map_or(0, |&e| e as usize);
        raw.data.truncate(used);
        Ok(Batch { raw })
    }

    pub(crate) fn as_raw(&self) -> &PackedIps {
        &self.raw
    }

    /// The number of IPs.
    pub fn len(&self) -> usize {
        self.raw.kinds.len()
    }

    /// Whether the batch holds no IP.
    pub fn is_empty(&self) -> bool {
        self.raw.kinds.is_empty()
    }

    /// The payload bytes of all IPs together.
    pub fn payload_len(&self) -> usize {
        self.raw.data.len()
    }

    /// Removes every IP, keeping the buffers' capacity for reuse.
    pub fn clear(&mut self) {
        self.raw.kinds.clear();
        self.raw.ends.clear();
        self.raw.data.clear();
    }

    /// Appends an IP of the given kind, copying its payload.
    ///
    /// # Panics
    ///
    /// If the batch's payload would exceed 4 GiB (the encoding's `u32` ends).
    pub fn push_kind(&mut self, kind: IpKind, payload: &[u8]) {
        self.raw.data.extend_from_slice(payload);
        let end = u32::try_from(self.raw.data.len()).expect("packed batch over 4 GiB");
        self.raw.kinds.push(kind.as_u8());
        self.raw.ends.push(end);
    }

    /// Appends a borrowed IP (for example one from another batch's [`iter`](Batch::iter)).
    pub fn push(&mut self, ip: IpRef<'_>) {
        self.push_kind(ip.kind(), ip.payload());
    }

    /// Appends a copy of an IP.
    pub fn push_ip(&mut self, ip: &Ip) {
        self.push(ip.as_ip_ref());
    }

    /// Appends a data IP.
    pub fn push_data(&mut self, payload: impl AsRef<[u8]>) {
        self.push_kind(IpKind::Data, payload.as_ref());
    }

    /// Appends an opening bracket (`""` for no label).
    pub fn push_open(&mut self, label: impl AsRef<[u8]>) {
        self.push_kind(IpKind::Open, label.as_ref());
    }

    /// Appends a closing bracket (`""` for no label).
    pub fn push_close(&mut self, label: impl AsRef<[u8]>) {
        self.push_kind(IpKind::Close, label.as_ref());
    }

    fn span(&self, i: usize) -> (usize, usize) {
        let start = if i == 0 {
            0
        } else {
            self.raw.ends[i - 1] as usize
        };
        (start, self.raw.ends[i] as usize)
    }

    fn kind_at(&self, i: usize) -> IpKind {
        // Validated on construction and only ever pushed from `IpKind`.
        IpKind::from_u8(self.raw.kinds[i]).unwrap_or(IpKind::Data)
    }

    /// The IP at `index`, borrowed, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<IpRef<'_>> {
        if index >= self.len() {
            return None;
        }
        let (start, end) = self.span(index);
        Some(IpRef::new(self.kind_at(index), &self.raw.data[start..end]))
    }

    /// The IPs, borrowed from the buffer, in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            batch: self,
            front: 0,
            back: self.len(),
        }
    }

    /// Calls `f` on the payload of every data IP, in place. The length cannot change; to
    /// change lengths, build a new batch with [`Batch::push`].
    pub fn for_each_data_mut(&mut self, mut f: impl FnMut(&mut [u8])) {
        let mut start = 0usize;
        for (kind, &end) in self.raw.kinds.iter().zip(&self.raw.ends) {
            let end = end as usize;
            if *kind == IpKind::Data.as_u8() {
                f(&mut self.raw.data[start..end]);
            }
            start = end;
        }
    }

    /// Keeps only the IPs for which `keep` returns `true`, in place.
    pub fn retain(&mut self, mut keep: impl FnMut(IpRef<'_>) -> bool) {
        let mut write_ip = 0usize;
        let mut write_byte = 0usize;
        let mut start = 0usize;
        for read in 0..self.len() {
            let end = self.raw.ends[read] as usize;
            let kind = self.kind_at(read);
            if keep(IpRef::new(kind, &self.raw.data[start..end])) {
                let len = end - start;
                self.raw.data.copy_within(start..end, write_byte);
                write_byte += len;
                self.raw.kinds[write_ip] = kind.as_u8();
                self.raw.ends[write_ip] = write_byte as u32;
                write_ip += 1;
            }
            start = end;
        }
        self.raw.kinds.truncate(write_ip);
        self.raw.ends.truncate(write_ip);
        self.raw.data.truncate(write_byte);
    }

    /// Owned copies of the IPs.
    pub fn to_ips(&self) -> Vec<Ip> {
        self.iter().map(|ip| ip.to_ip()).collect()
    }
}

fn validate(raw: &PackedIps) -> Result<()> {
    let bad = |why: String| Err(Error::InvalidBatch(why));
    if raw.kinds.len() != raw.ends.len() {
        return bad(format!(
            "{} kinds but {} ends",
            raw.kinds.len(),
            raw.ends.len()
        ));
    }
    if let Some(i) = raw.kinds.iter().position(|&k| IpKind::from_u8(k).is_none()) {
        return bad(format!("IP {i} has kind {}, not 0, 1 or 2", raw.kinds[i]));
    }
    let mut previous = 0u32;
    for (i, &end) in raw.ends.iter().enumerate() {
        if end < previous {
            return bad(format!(
                "end {i} ({end}) is before the previous ({previous})"
            ));
        }
        previous = end;
    }
    if previous as usize > raw.data.len() {
        return bad(format!(
            "last end {previous} is past the {} data bytes",
            raw.data.len()
        ));
    }
    Ok(())
}

/// Iterator over a [`Batch`]'s IPs, from [`Batch::iter`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    batch: &'a Batch,
    front: usize,
    back: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = IpRef<'a>;

    fn next(&mut self) -> Option<IpRef<'a>> {
        if self.front == self.back {
            return None;
        }
        let ip = self.batch.get(self.front);
        self.front += 1;
        ip
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        self.batch.get(self.back)
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Batch {
    type Item = IpRef<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> Extend<IpRef<'a>> for Batch {
    fn extend<T: IntoIterator<Item = IpRef<'a>>>(&mut self, iter: T) {
        for ip in iter {
            self.push(ip);
        }
    }
}

impl<'a> Extend<&'a Ip> for Batch {
    fn extend<T: IntoIterator<Item = &'a Ip>>(&mut self, iter: T) {
        for ip in iter {
            self.push_ip(ip);
        }
    }
}

impl Extend<Ip> for Batch {
    fn extend<T: IntoIterator<Item = Ip>>(&mut self, iter: T) {
        for ip in iter {
            self.push_ip(&ip);
        }
    }
}

impl<'a> FromIterator<IpRef<'a>> for Batch {
    fn from_iter<T: IntoIterator<Item = IpRef<'a>>>(iter: T) -> Self {
        let mut b = Batch::new();
        b.extend(iter);
        b
    }
}

impl<'a> FromIterator<&'a Ip> for Batch {
    fn from_iter<T: IntoIterator<Item = &'a Ip>>(iter: T) -> Self {
        let mut b = Batch::new();
        b.extend(iter);
        b
    }
}

impl FromIterator<Ip> for Batch {
    fn from_iter<T: IntoIterator<Item = Ip>>(iter: T) -> Self {
        let mut b = Batch::new();
        b.extend(iter);
        b
    }
}

impl From<&[Ip]> for Batch {
    fn from(ips: &[Ip]) -> Self {
        let bytes = ips.iter().map(|ip| ip.payload().len()).sum();
        let mut b = Batch::with_capacity(ips.len(), bytes);
        b.extend(ips);
        b
    }
}

impl From<Batch> for Vec<Ip> {
    fn from(b: Batch) -> Self {
        b.to_ips()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Ip> {
        vec![
            Ip::open("g"),
            Ip::data(""),
            Ip::data("hello"),
            Ip::Data(vec![0, 255, 7]),
            Ip::close(""),
            Ip::data("z"),
        ]
    }

    #[test]
    fn encodes_the_documented_layout() {
        let b = Batch::from(&sample()[..]);
        let (kinds, ends, data) = b.into_parts();
        assert_eq!(kinds, vec![1, 0, 0, 0, 2, 0]);
        assert_eq!(ends, vec![1, 1, 6, 9, 9, 10]);
        assert_eq!(data, b"ghello\x00\xff\x07z".to_vec());
    }

    #[test]
    fn round_trips() {
        let ips = sample();
        let b: Batch = ips.iter().collect();
        assert_eq!(b.len(), ips.len());
        assert_eq!(b.to_ips(), ips);
        let (k, e, d) = b.clone().into_parts();
        let again = Batch::from_parts(k, e, d).unwrap();
        assert_eq!(again, b);
        let back: Vec<Ip> = again.iter().rev().map(Ip::from).collect();
        assert_eq!(back, ips.into_iter().rev().collect::<Vec<_>>());
        assert!(
            Batch::from_parts(vec![], vec![], vec![])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn rejects_malformed() {
        let e = |k: Vec<u8>, en: Vec<u32>, d: &[u8]| Batch::from_parts(k, en, d.to_vec());
        assert!(matches!(
            e(vec![0], vec![], b""),
            Err(Error::InvalidBatch(_))
        ));
        assert!(e(vec![3], vec![0], b"").is_err());
        assert!(e(vec![0, 0], vec![2, 1], b"ab").is_err());
        assert!(e(vec![0], vec![3], b"ab").is_err());
        let ok = e(vec![0], vec![1], b"ab").unwrap();
        assert_eq!(ok.payload_len(), 1, "bytes past the last end are dropped");
    }

    #[test]
    fn edits_in_place() {
        let mut b = Batch::from(&sample()[..]);
        b.for_each_data_mut(|d| d.make_ascii_uppercase());
        assert_eq!(b.get(2), Some(IpRef::Data(b"HELLO")));
        assert_eq!(b.get(0), Some(IpRef::Open(b"g")), "labels untouched");
        assert_eq!(b.get(6), None);
        b.retain(|ip| ip.is_data() && !ip.payload().is_empty());
        assert_eq!(
            b.to_ips(),
            vec![Ip::data("HELLO"), Ip::Data(vec![0, 255, 7]), Ip::data("Z")]
        );
        assert_eq!(b.clone().into_parts().1, vec![5, 8, 9]);
        b.clear();
        assert!(b.is_empty() && b.payload_len() == 0);
    }
}
