//! A guest's standard output and standard error: each line becomes an output line of its
//! process, and the last lines are kept to explain a trap.

use std::sync::{Arc, Mutex};

use crate::engine::OutputSink;

/// A guest's standard output or error, turned into output lines of its process.
#[derive(Clone)]
pub(crate) struct OutputCapture {
    inner: Arc<Mutex<CaptureState>>,
}

struct CaptureState {
    sink: Option<OutputSink>,
    stream: &'static str,
    node: String,
    partial: Vec<u8>,
    /// The last lines, to explain a trap: at most [`RECENT_LINES`], each cut to
    /// [`RECENT_LINE_BYTES`].
    recent: std::collections::VecDeque<String>,
}

/// Lines of a stream kept to explain a trap. A JavaScript guest's error message sits above a
/// stack trace of several lines; a Rust panic's above a `note:`.
const RECENT_LINES: usize = 16;

/// The longest line kept to explain a trap (the start of a longer one is kept).
const RECENT_LINE_BYTES: usize = 512;

/// At most this much of a stream's tail goes into an error message.
const LAST_WORDS_BYTES: usize = 2048;

/// A line longer than this is emitted in pieces, so a guest cannot grow host memory without
/// bound by never ending a line.
const MAX_LINE: usize = 64 * 1024;

impl OutputCapture {
    pub(crate) fn new(sink: Option<OutputSink>, node: &str, stream: &'static str) -> Self {
        OutputCapture {
            inner: Arc::new(Mutex::new(CaptureState {
                sink,
                stream,
                node: node.to_string(),
                partial: Vec::new(),
                recent: std::collections::VecDeque::new(),
            })),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let Ok(mut state) = self.inner.lock() else {
            return;
        };
        state.partial.extend_from_slice(bytes);
        while let Some(end) = state.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = state.partial.drain(..=end).collect();
            state.emit(&line[..line.len() - 1]);
        }
        if state.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut state.partial);
            state.emit(&line);
        }
    }

    /// Emits what is left of an unfinished last line.
    pub(crate) fn finish(&self) {
        if let Ok(mut state) = self.inner.lock()
            && !state.partial.is_empty()
        {
            let line = std::mem::take(&mut state.partial);
            state.emit(&line);
        }
    }

    /// The tail of what was written, as one line (lines joined by ` | `): the last lines up
    /// to [`LAST_WORDS_BYTES`], skipping blank ones and hints such as Rust's `note: run with
    /// RUST_BACKTRACE=1`. A panic's message, or an exception's above its stack trace, is in
    /// there.
    pub(crate) fn last_words(&self) -> Option<String> {
        let state = self.inner.lock().ok()?;
        let mut kept = Vec::new();
        let mut size = 0;
        for line in state.recent.iter().rev().map(|l| l.trim()) {
            if line.is_empty() || line.starts_with("note: ") {
                continue;
            }
            size += line.len() + 3;
            if size > LAST_WORDS_BYTES && !kept.is_empty() {
                break;
            }
            kept.push(line);
        }
        kept.reverse();
        let words = kept.join(" | ");
        (!words.is_empty()).then_some(words)
    }
}

impl CaptureState {
    fn emit(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line)
            .trim_end_matches('\r')
            .to_string();
        tracing::info!(node = %self.node, stream = self.stream, "{text}");
        if let Some(sink) = &self.sink {
            sink.line(text.clone());
        }
        if self.recent.len() == RECENT_LINES {
            self.recent.pop_front();
        }
        let mut kept = text;
        if kept.len() > RECENT_LINE_BYTES {
            let mut cut = RECENT_LINE_BYTES;
            while !kept.is_char_boundary(cut) {
                cut -= 1;
            }
            kept.truncate(cut);
            kept.push_str("...");
        }
        self.recent.push_back(kept);
    }
}

impl wasmtime_wasi::cli::IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for OutputCapture {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl wasmtime_wasi::p2::OutputStream for OutputCapture {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), wasmtime_wasi::p2::StreamError> {
        OutputCapture::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), wasmtime_wasi::p2::StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, wasmtime_wasi::p2::StreamError> {
        Ok(MAX_LINE)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for OutputCapture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        OutputCapture::write(&self, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.finish();
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_words_keep_the_tail_within_a_bound() {
        let capture = OutputCapture::new(None, "node", "stderr");
        capture.write(b"the cause\n");
        for line in 0..4 {
            capture.write(format!("  at frame {line}\n").as_bytes());
        }
        capture.write(b"note: a hint\n\n");
        assert_eq!(
            capture.last_words().as_deref(),
            Some("the cause | at frame 0 | at frame 1 | at frame 2 | at frame 3")
        );

        for line in 0..100 {
            capture.write(format!("{line}: {}\n", "x".repeat(5_000)).as_bytes());
        }
        let words = capture.last_words().expect("words");
        assert!(words.len() <= LAST_WORDS_BYTES + 8, "{} bytes", words.len());
        assert!(words.ends_with("..."), "the newest line is kept");
        assert!(words.starts_with("9"), "{}", &words[..20]);
    }
}
