//! The seed's `BlobStore` trait for tokio code: blobs streamed in through a
//! [`tokio::io::AsyncWrite`] and out through [`tokio::io::AsyncRead`] +
//! [`tokio::io::AsyncSeek`], over the blocking [`crate::BlobWriter`] and
//! [`crate::BlobReader`].
//!
//! Each open stream has one task on tokio's blocking pool that owns the
//! blocking writer or reader for its whole life (they borrow the store, and
//! a blob write hashes, compresses, seals and syncs: nothing a worker should
//! do). The async side and that task exchange chunks of at most
//! [`STREAM_CHUNK_BYTES`] through a channel of [`STREAM_QUEUE_CHUNKS`]
//! places, so a stream holds at most a few MiB whatever the blob's size, on
//! top of what the blocking writer or reader holds itself, and a writer
//! faster than the disk waits (its `poll_write` is pending) instead of
//! buffering.

use std::future::Future;
use std::io::{Seek, SeekFrom, Write};
use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::AsyncDb;
use crate::error::{Error, Result};

/// Largest piece of a blob an async stream hands to its blocking task (or
/// gets from it) at once: 256 KiB.
pub const STREAM_CHUNK_BYTES: usize = 256 * 1024;

/// Pieces queued between an async stream and its blocking task: a writer's
/// or reader's memory beyond the blocking side's own is at most
/// `(STREAM_QUEUE_CHUNKS + 2) * STREAM_CHUNK_BYTES` (1.5 MiB).
pub const STREAM_QUEUE_CHUNKS: usize = 4;

/// Blobs streamed in and out without blocking the runtime: the blob-store
/// trait of the original specification, with the engine's [`Error`]. The
/// blocking counterpart is [`crate::BlobStore`] (`Db::blobs`).
///
/// ```
/// use synapsed_storage::{AsyncBlobStore, AsyncDb, Credential, Db, Options};
/// use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
///
/// # let tmp = std::env::temp_dir().join(format!("synapsed-async-blob-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&tmp);
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// runtime.block_on(async {
///     let store = AsyncDb::new(Db::create(&tmp, &Credential::passphrase("pw"), Options::tiny_for_tests())?);
///     let mut writer = store.stream_write(b"video.mp4").await?;
///     writer.write_all(b"frames...").await.unwrap();
///     assert_eq!(writer.finish().await?, 9);
///
///     let mut reader = store.stream_read(b"video.mp4").await?.expect("just written");
///     reader.seek(std::io::SeekFrom::Start(7)).await.unwrap();
///     let mut tail = String::new();
///     reader.read_to_string(&mut tail).await.unwrap();
///     assert_eq!(tail, "..");
///     reader.close().await;
///     store.close().await
/// })?;
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok::<(), synapsed_storage::Error>(())
/// ```
pub trait BlobStore: Send + Sync {
    /// A writer for blob `key` ([`AsyncWrite`]): write the bytes, then
    /// [`AsyncBlobWriter::finish`] commits the blob atomically, replacing any
    /// blob under `key`. Dropped without `finish` (or after a failed write),
    /// nothing of it is visible and the next `BlobStore::gc` reclaims its
    /// chunks. Fails at once on a read-only store or a bad key.
    fn stream_write(&self, key: &[u8]) -> impl Future<Output = Result<AsyncBlobWriter>> + Send;
    /// A writer like [`BlobStore::stream_write`] whose upload can be
    /// continued by [`BlobStore::stream_resume`] after it is dropped
    /// unfinished or the process dies (see `crate::BlobStore::resumable_writer`).
    fn stream_write_resumable(&self, key: &[u8]) -> impl Future<Output = Result<AsyncBlobWriter>> + Send;
    /// Reopens the unfinished resumable upload of blob `key`, or `None`: its
    /// [`AsyncBlobWriter::bytes_written`] is the offset of the source to
    /// continue from (see [`crate::BlobWriter::resume`]). Right after a
    /// writer of the upload is dropped, its task may still hold it for a
    /// moment: that is [`Error::InvalidArgument`], and a retry succeeds.
    fn stream_resume(&self, key: &[u8]) -> impl Future<Output = Result<Option<AsyncBlobWriter>>> + Send;
    /// A reader of blob `key` as it is now ([`AsyncRead`] + [`AsyncSeek`]),
    /// or `None`: it reads a snapshot, unchanged by later overwrites or
    /// deletes.
    fn stream_read(&self, key: &[u8]) -> impl Future<Output = Result<Option<AsyncBlobReader>>> + Send;
    /// The length of blob `key`, or `None`.
    fn blob_len(&self, key: &[u8]) -> impl Future<Output = Result<Option<u64>>> + Send;
    /// Deletes blob `key`; whether it existed (its space comes back at the
    /// next `BlobStore::gc`).
    fn delete_blob(&self, key: &[u8]) -> impl Future<Output = Result<bool>> + Send;
    /// Every blob as `(key, length)`, in key order.
    fn list_blobs(&self) -> impl Future<Output = Result<Vec<(Vec<u8>, u64)>>> + Send;
}

impl BlobStore for AsyncDb {
    async fn stream_write(&self, key: &[u8]) -> Result<AsyncBlobWriter> {
        let writer = self.spawn_writer(key, WriterMode::New).await?;
        writer.ok_or_else(|| Error::Internal("a new blob writer was not made".into()))
    }

    async fn stream_write_resumable(&self, key: &[u8]) -> Result<AsyncBlobWriter> {
        let writer = self.spawn_writer(key, WriterMode::Resumable).await?;
        writer.ok_or_else(|| Error::Internal("a new blob writer was not made".into()))
    }

    async fn stream_resume(&self, key: &[u8]) -> Result<Option<AsyncBlobWriter>> {
        self.spawn_writer(key, WriterMode::Resume).await
    }

    async fn stream_read(&self, key: &[u8]) -> Result<Option<AsyncBlobReader>> {
        let (db, key) = (std::sync::Arc::clone(&self.db), key.to_vec());
        let (reply_tx, replies) = mpsc::channel::<Piece>(STREAM_QUEUE_CHUNKS);
        let (control, control_rx) = std_mpsc::channel::<SeekTo>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<Option<u64>>>();
        let task = tokio::task::spawn_blocking(move || {
            let blobs = match db.blobs() {
                Ok(b) => b,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            let reader = match blobs.reader(&key) {
                Ok(Some(r)) => r,
                other => return drop(ready_tx.send(other.map(|_| None))),
            };
            if ready_tx.send(Ok(Some(reader.len()))).is_ok() {
                serve_reads(reader, &control_rx, &reply_tx);
            }
        });
        let len = match ready_rx.await {
            Ok(Ok(Some(len))) => len,
            Ok(Ok(None)) => return Ok(None),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::Closed),
        };
        Ok(Some(AsyncBlobReader {
            len,
            pos: 0,
            buf: Vec::new(),
            buf_at: 0,
            generation: 0,
            broken: false,
            control,
            replies,
            seeking: None,
            task,
        }))
    }

    async fn blob_len(&self, key: &[u8]) -> Result<Option<u64>> {
        let key = key.to_vec();
        self.run(move |db| db.blobs()?.len(&key)).await
    }

    async fn delete_blob(&self, key: &[u8]) -> Result<bool> {
        let key = key.to_vec();
        self.run(move |db| db.blobs()?.delete(&key)).await
    }

    async fn list_blobs(&self) -> Result<Vec<(Vec<u8>, u64)>> {
        self.run(|db| db.blobs()?.list()).await
    }
}

/// Which blocking writer a stream writer's task opens.
#[derive(Clone, Copy)]
enum WriterMode {
    New,
    Resumable,
    Resume,
}

impl AsyncDb {
    /// Starts the blocking task of a stream writer; `None` when `mode` is
    /// `Resume` and there is no upload to resume.
    async fn spawn_writer(&self, key: &[u8], mode: WriterMode) -> Result<Option<AsyncBlobWriter>> {
        let (db, key) = (std::sync::Arc::clone(&self.db), key.to_vec());
        let (tx, mut rx) = mpsc::channel::<WriterMsg>(STREAM_QUEUE_CHUNKS);
        // The writer's starting length, or `None` for no upload to resume.
        let (ready_tx, ready_rx) = oneshot::channel::<Result<Option<u64>>>();
        let task = tokio::task::spawn_blocking(move || -> Result<u64> {
            let blobs = match db.blobs() {
                Ok(b) => b,
                Err(e) => return refuse(ready_tx, Err(e)),
            };
            let opened = match mode {
                WriterMode::New => blobs.writer(&key).map(Some),
                WriterMode::Resumable => blobs.resumable_writer(&key).map(Some),
                WriterMode::Resume => crate::BlobWriter::resume(&blobs, &key),
            };
            let mut writer = match opened {
                Ok(Some(w)) => w,
                Ok(None) => return refuse(ready_tx, Ok(None)),
                Err(e) => return refuse(ready_tx, Err(e)),
            };
            if ready_tx.send(Ok(Some(writer.bytes_written()))).is_err() {
                // The caller went away before the writer was handed out.
                return Err(Error::Closed);
            }
            while let Some(msg) = rx.blocking_recv() {
                match msg {
                    WriterMsg::Data(bytes) => {
                        writer.write_all(&bytes).map_err(|e| crate::blob::unwrap_io(e, "async blob stream"))?;
                    }
                    WriterMsg::Flush(ack) => {
                        let _ = ack.send(());
                    }
                    WriterMsg::Finish => return writer.finish(),
                }
            }
            // Dropped without finish: the writer's own drop leaves nothing visible.
            Err(Error::Closed)
        });
        let written = match ready_rx.await {
            Ok(Ok(Some(written))) => written,
            Ok(Ok(None)) => return Ok(None),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(super::joined(task.await).err().unwrap_or(Error::Closed)),
        };
        Ok(Some(AsyncBlobWriter { pending: Vec::new(), sender: Some(tx), reserving: None, flush_ack: None, task: Some(task), written, failed: false }))
    }
}

/// Tells the caller of `spawn_writer` why there is no writer.
fn refuse(ready: oneshot::Sender<Result<Option<u64>>>, answer: Result<Option<u64>>) -> Result<u64> {
    let _ = ready.send(answer);
    Err(Error::Closed)
}

/// What an [`AsyncBlobWriter`] hands its blocking task.
enum WriterMsg {
    Data(Vec<u8>),
    /// Answered once every earlier piece is in the blocking writer.
    Flush(oneshot::Sender<()>),
    Finish,
}

type Reservation = Pin<Box<dyn Future<Output = std::result::Result<mpsc::OwnedPermit<WriterMsg>, mpsc::error::SendError<()>>> + Send>>;

/// A blob being written from async code ([`BlobStore::stream_write`]). Bytes
/// go to a blocking [`crate::BlobWriter`] on tokio's blocking pool, at most
/// [`STREAM_QUEUE_CHUNKS`] pieces of [`STREAM_CHUNK_BYTES`] ahead of it.
///
/// `poll_flush` completes once every byte written so far has reached the
/// blocking writer; `poll_shutdown` is the same. Neither commits: only
/// [`AsyncBlobWriter::finish`] does, and a writer dropped without it leaves
/// nothing visible.
pub struct AsyncBlobWriter {
    /// Bytes not yet handed to the task (at most one piece).
    pending: Vec<u8>,
    sender: Option<mpsc::Sender<WriterMsg>>,
    reserving: Option<Reservation>,
    flush_ack: Option<oneshot::Receiver<()>>,
    task: Option<JoinHandle<Result<u64>>>,
    written: u64,
    failed: bool,
}

impl std::fmt::Debug for AsyncBlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncBlobWriter").field("written", &self.written).finish_non_exhaustive()
    }
}

impl AsyncBlobWriter {
    /// Bytes accepted so far (for a resumed upload, counting those it
    /// resumed after).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Hands every byte written to the blocking writer and commits the blob
    /// atomically; returns its length. After a failed write, it returns
    /// that failure and commits nothing.
    pub async fn finish(mut self) -> Result<u64> {
        if let Err(e) = std::future::poll_fn(|cx| self.poll_hand_over(cx)).await {
            return Err(crate::blob::unwrap_io(e, "async blob stream"));
        }
        let sent = match self.sender.take() {
            Some(sender) if !self.failed => sender.send(WriterMsg::Finish).await.is_ok(),
            _ => false,
        };
        if !sent {
            return Err(self.task_error().await);
        }
        match self.task.take() {
            Some(task) => super::joined(task.await),
            None => Err(Error::InvalidArgument("the blob writer failed earlier".into())),
        }
    }

    /// The error the blocking task ended with (it ends early only on one).
    async fn task_error(&mut self) -> Error {
        self.failed = true;
        match self.task.take() {
            Some(task) => super::joined(task.await).err().unwrap_or(Error::Closed),
            None => Error::InvalidArgument("the blob writer failed earlier".into()),
        }
    }

    /// The task's error as an I/O error, once it has ended.
    fn poll_task_error(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        self.failed = true;
        self.sender = None;
        self.reserving = None;
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(std::io::Error::other(Error::InvalidArgument("the blob writer failed earlier".into())));
        };
        let result = ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(std::io::Error::other(super::joined(result).err().unwrap_or(Error::Closed)))
    }

    /// Sends `msg()` to the task once the queue has room.
    fn poll_send(&mut self, cx: &mut Context<'_>, msg: impl FnOnce(&mut Self) -> WriterMsg) -> Poll<std::io::Result<()>> {
        if self.failed {
            return Poll::Ready(Err(std::io::Error::other(Error::InvalidArgument("the blob writer failed earlier".into()))));
        }
        if self.reserving.is_none() {
            let Some(sender) = self.sender.clone() else {
                return Poll::Ready(Err(ready!(self.poll_task_error(cx))));
            };
            self.reserving = Some(Box::pin(sender.reserve_owned()));
        }
        let Some(reserving) = self.reserving.as_mut() else { return Poll::Ready(Ok(())) };
        let permit = ready!(reserving.as_mut().poll(cx));
        self.reserving = None;
        match permit {
            Ok(permit) => {
                let msg = msg(self);
                permit.send(msg);
                Poll::Ready(Ok(()))
            }
            // The task is gone: it failed (or its runtime is shutting down).
            Err(_) => Poll::Ready(Err(ready!(self.poll_task_error(cx)))),
        }
    }

    /// Sends the pending bytes, if any.
    fn poll_hand_over(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.pending.is_empty() {
            return Poll::Ready(Ok(()));
        }
        self.poll_send(cx, |w| WriterMsg::Data(std::mem::take(&mut w.pending)))
    }
}

impl AsyncWrite for AsyncBlobWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.pending.len() >= STREAM_CHUNK_BYTES {
            ready!(this.poll_hand_over(cx))?;
        }
        if this.failed {
            return Poll::Ready(Err(std::io::Error::other(Error::InvalidArgument("the blob writer failed earlier".into()))));
        }
        if this.pending.capacity() == 0 {
            this.pending.reserve_exact(STREAM_CHUNK_BYTES);
        }
        let n = data.len().min(STREAM_CHUNK_BYTES - this.pending.len());
        this.pending.extend_from_slice(data.get(..n).unwrap_or_default());
        this.written += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.flush_ack.is_none() {
            ready!(this.poll_hand_over(cx))?;
            let (ack, acked) = oneshot::channel();
            ready!(this.poll_send(cx, move |_| WriterMsg::Flush(ack)))?;
            this.flush_ack = Some(acked);
        }
        let Some(acked) = this.flush_ack.as_mut() else { return Poll::Ready(Ok(())) };
        let answer = ready!(Pin::new(acked).poll(cx));
        this.flush_ack = None;
        match answer {
            Ok(()) => Poll::Ready(Ok(())),
            Err(_) => Poll::Ready(Err(ready!(this.poll_task_error(cx)))),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// A seek the async side asks of the reader task: (generation, offset).
type SeekTo = (u64, u64);
/// A piece the reader task sends: (generation, offset, bytes or error).
type Piece = (u64, u64, Result<Vec<u8>>);

/// The reader task: reads ahead from the current position, piece by piece,
/// until the queue is full or the blob ends, and moves on a seek. Ends when
/// the async side is dropped.
fn serve_reads(mut reader: crate::BlobReader<'_>, control: &std_mpsc::Receiver<SeekTo>, replies: &mpsc::Sender<Piece>) {
    let len = reader.len();
    let (mut generation, mut pos) = (0u64, 0u64);
    // Where the blocking reader is (it seeks only when that differs).
    let mut at = 0u64;
    let mut stalled = false;
    loop {
        loop {
            match control.try_recv() {
                Ok((g, p)) => (generation, pos, stalled) = (g, p, false),
                Err(std_mpsc::TryRecvError::Empty) => break,
                Err(std_mpsc::TryRecvError::Disconnected) => return,
            }
        }
        if pos >= len || stalled {
            // At the end (or after an error): wait for a seek.
            match control.recv() {
                Ok((g, p)) => (generation, pos, stalled) = (g, p, false),
                Err(_) => return,
            }
            continue;
        }
        let want = usize::try_from(len - pos).unwrap_or(usize::MAX).min(STREAM_CHUNK_BYTES);
        let piece = read_piece(&mut reader, &mut at, pos, want);
        match &piece {
            Ok(bytes) => pos += bytes.len() as u64,
            Err(_) => stalled = true,
        }
        if replies.blocking_send((generation, pos_of(&piece, pos), piece)).is_err() {
            return;
        }
    }
}

/// The offset a piece starts at, given the position after it.
fn pos_of(piece: &Result<Vec<u8>>, after: u64) -> u64 {
    match piece {
        Ok(bytes) => after - bytes.len() as u64,
        Err(_) => after,
    }
}

/// Reads `want` bytes at `pos` (fewer only at the blob's end).
fn read_piece(reader: &mut crate::BlobReader<'_>, at: &mut u64, pos: u64, want: usize) -> Result<Vec<u8>> {
    if *at != pos {
        reader.seek(SeekFrom::Start(pos)).map_err(|e| crate::blob::unwrap_io(e, "async blob stream"))?;
        *at = pos;
    }
    let mut bytes = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        let n = reader.read_chunked(bytes.get_mut(filled..).unwrap_or_default())?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    bytes.truncate(filled);
    *at = pos + filled as u64;
    Ok(bytes)
}

/// A blob being read from async code ([`BlobStore::stream_read`]): a
/// snapshot of the blob, read ahead by a blocking [`crate::BlobReader`] on
/// tokio's blocking pool, at most [`STREAM_QUEUE_CHUNKS`] pieces of
/// [`STREAM_CHUNK_BYTES`] ahead. A seek within the piece at hand costs
/// nothing; any other seek drops what was read ahead.
///
/// While it lives, its task holds the store: drop it (or
/// [`AsyncBlobReader::close`] it) before [`AsyncDb::close`].
pub struct AsyncBlobReader {
    len: u64,
    /// The position reads continue from.
    pos: u64,
    /// The piece at hand and the offset of its first byte.
    buf: Vec<u8>,
    buf_at: u64,
    /// Bumped by each seek that leaves the piece at hand; pieces of an older
    /// generation are stale.
    generation: u64,
    /// The task stopped at an error: the next read or seek restarts it.
    broken: bool,
    control: std_mpsc::Sender<SeekTo>,
    replies: mpsc::Receiver<Piece>,
    /// The position a started seek goes to.
    seeking: Option<u64>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for AsyncBlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncBlobReader").field("len", &self.len).field("pos", &self.pos).finish_non_exhaustive()
    }
}

impl AsyncBlobReader {
    /// The blob's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the blob is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The position the next read starts at.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Ends the reader and waits until its task has let go of the store.
    pub async fn close(self) {
        let AsyncBlobReader { control, mut replies, task, .. } = self;
        drop(control);
        // The task ends once it sees the control channel closed (it may be
        // blocked on a full queue first: keep draining).
        while replies.recv().await.is_some() {}
        let _ = task.await;
    }

    /// Moves the task to `target` in a new generation: pieces already queued
    /// become stale.
    fn restart_at(&mut self, target: u64) -> std::io::Result<()> {
        self.generation += 1;
        self.broken = false;
        self.buf.clear();
        self.buf_at = target;
        self.control.send((self.generation, target)).map_err(|_| std::io::Error::other(Error::Internal("the blob reader's task ended".into())))
    }
}

impl AsyncRead for AsyncBlobReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos >= this.len || out.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if this.broken {
                // Read again where the error stopped the task.
                this.restart_at(this.pos)?;
            }
            let end = this.buf_at + this.buf.len() as u64;
            if this.pos >= this.buf_at && this.pos < end {
                let from = usize::try_from(this.pos - this.buf_at).unwrap_or(usize::MAX);
                let avail = this.buf.get(from..).unwrap_or_default();
                let n = avail.len().min(out.remaining());
                out.put_slice(avail.get(..n).unwrap_or_default());
                this.pos += n as u64;
                return Poll::Ready(Ok(()));
            }
            match ready!(this.replies.poll_recv(cx)) {
                None => return Poll::Ready(Err(std::io::Error::other(Error::Internal("the blob reader's task ended".into())))),
                Some((generation, _, _)) if generation != this.generation => {}
                Some((_, at, Ok(bytes))) => {
                    if bytes.is_empty() {
                        // The blob ended early: its records and chunks disagree.
                        return Poll::Ready(Err(std::io::Error::other(Error::Internal(format!("blob ended at {at} of {}", this.len)))));
                    }
                    this.buf = bytes;
                    this.buf_at = at;
                }
                Some((_, _, Err(e))) => {
                    this.broken = true;
                    return Poll::Ready(Err(std::io::Error::other(e)));
                }
            }
        }
    }
}

impl AsyncSeek for AsyncBlobReader {
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> std::io::Result<()> {
        let this = self.get_mut();
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => this.len.checked_add_signed(d),
            SeekFrom::Current(d) => this.pos.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek to a negative or overflowing offset"));
        };
        let end = this.buf_at + this.buf.len() as u64;
        // Within the piece at hand, or where the read-ahead continues from
        // anyway: nothing to tell the task.
        let ahead = target == end && !this.broken;
        let at_hand = target >= this.buf_at && target < end;
        if !at_hand && !ahead {
            this.restart_at(target)?;
        }
        this.seeking = Some(target);
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        let this = self.get_mut();
        if let Some(target) = this.seeking.take() {
            this.pos = target;
        }
        Poll::Ready(Ok(this.pos))
    }
}
