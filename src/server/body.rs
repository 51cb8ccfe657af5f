//! Reading request bodies within limits.
//!
//! hyper sets no body-size limit: `Content-Length` is checked first, then
//! the body is read through `http_body_util::Limited` under a deadline, and
//! gzip bodies are inflated with the same cap on their inflated size.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

/// Oversized bodies up to this size are drained before the 413.
const DRAIN_CAP: u64 = 16 * 1024 * 1024;

/// Why a request body cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (bytes), before or after decompression.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// The body did not arrive within the timeout.
    #[error("body not received in time")]
    Timeout,
    /// The connection failed while reading.
    #[error("could not read body")]
    Read,
    /// `Content-Encoding: gzip` but not valid gzip.
    #[error("invalid gzip body")]
    BadGzip,
    /// A `Content-Encoding` other than gzip or identity.
    #[error("unsupported content encoding {0:?}")]
    UnsupportedEncoding(String),
}

/// Reads a body of at most `limit` bytes (after gunzipping) within `timeout`.
pub async fn read(headers: &HeaderMap, body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > limit as u64) {
        // Read and discard a moderately oversized body so the client gets
        // the 413 instead of a reset; close at once on anything larger.
        if len <= DRAIN_CAP {
            let _ = tokio::time::timeout(timeout, discard(body, DRAIN_CAP)).await;
        }
        return Err(BodyError::TooLarge(limit));
    }
    let gzip = match headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("") | Some("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => true,
        Some(other) => return Err(BodyError::UnsupportedEncoding(other.to_string())),
    };
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| BodyError::Timeout)?;
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(BodyError::TooLarge(limit));
        }
        Err(_) => return Err(BodyError::Read),
    };
    if gzip {
        inflate(&bytes, limit).map(Bytes::from)
    } else {
        Ok(bytes)
    }
}

/// Reads a body and drops each frame as it comes, up to `cap` bytes (then
/// stops; the connection closes). Holds one frame at a time, never the
/// body: forty oversized uploads cost forty frames, not forty bodies.
/// Returns the bytes discarded.
pub async fn discard<B>(mut body: B, cap: u64) -> u64
where
    B: hyper::body::Body + Unpin,
{
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            seen += hyper::body::Buf::remaining(data) as u64;
            if seen > cap {
                break;
            }
        }
    }
    seen
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes.
pub fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(compressed.len() * 4);
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|_| BodyError::BadGzip)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(out)
}

/// Compresses a response body (fast level: bodies are small and hot).
pub fn deflate(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 2), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A chunk that counts how many of its kind are alive.
    struct Counted(Vec<u8>, Arc<AtomicUsize>);

    impl AsRef<[u8]> for Counted {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Issue 17, item 17: the drain collected up to 16 MiB per connection.
    #[tokio::test]
    async fn an_oversized_body_is_discarded_a_frame_at_a_time() {
        let (alive, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let chunks = (0..64).map({
            let (alive, most) = (alive.clone(), most.clone());
            move |_| {
                let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let chunk = Counted(vec![0; 64 * 1024], alive.clone());
                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from_owner(chunk)))
            }
        });
        let body = Chunks(chunks);
        assert_eq!(discard(body, DRAIN_CAP).await, 64 * 64 * 1024);
        assert_eq!(alive.load(Ordering::SeqCst), 0);
        assert_eq!(most.load(Ordering::SeqCst), 1, "one frame held at a time");
    }

    /// A body whose frames come from an iterator, each ready at once.
    struct Chunks<I>(I);

    impl<I> hyper::body::Body for Chunks<I>
    where
        I: Iterator<Item = Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> + Unpin,
    {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.next())
        }
    }

    #[test]
    fn gzip_round_trip_and_bomb_cap() {
        let body = br#"{"id":"1"}"#;
        assert_eq!(inflate(&deflate(body), 1000).unwrap(), body);
        let bomb = deflate(&vec![b' '; 100_000]);
        assert!(bomb.len() < 1000);
        assert_eq!(inflate(&bomb, 50_000), Err(BodyError::TooLarge(50_000)));
        assert_eq!(inflate(b"not gzip", 1000), Err(BodyError::BadGzip));
    }
}
