//! The real network (the normal build): tagged messages over loopback or LAN TCP, with the
//! interface the services use of `madsim::net::Endpoint` (bind, send to an address with a
//! tag, receive on a tag). madsim's own normal-build endpoint panics when a peer is down
//! and keeps a dead connection after the peer restarts, so the services get this one:
//! a connection per peer, made on first use and dropped on any error (the next send
//! reconnects, so a restarted peer is reached again); every connect and write bounded by a
//! timeout; bounded queues per tag; frames bounded in size.
//!
//! A connection starts with the sender's listening address (so a reply can find it), then
//! carries frames: length (u32 LE, tag and payload), tag (u64 LE), payload.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Largest frame accepted (tag and payload).
const MAX_FRAME: usize = super::rpc::MAX_MESSAGE + 8;
/// Messages queued per tag before new ones are dropped (the sender times out and retries).
const QUEUE: usize = 1024;
/// How long a connect or a write may take.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

type Queue =
    (mpsc::Sender<(Vec<u8>, SocketAddr)>, Arc<tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>>);

/// A bound endpoint: receives tagged messages from any peer, sends to any address.
pub struct Endpoint {
    addr: SocketAddr,
    queues: Arc<Mutex<BTreeMap<u64, Queue>>>,
    peers: tokio::sync::Mutex<BTreeMap<SocketAddr, OwnedWriteHalf>>,
    accept: tokio::task::JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn queue() -> Queue {
    let (tx, rx) = mpsc::channel(QUEUE);
    (tx, Arc::new(tokio::sync::Mutex::new(rx)))
}

impl Endpoint {
    /// Listens on `addr`; messages on tag `always` are queued even before anyone waits for
    /// them (requests); other tags only while [`Endpoint::expect`] holds them open.
    pub async fn bind(addr: SocketAddr, always: u64) -> io::Result<Endpoint> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let queues = Arc::new(Mutex::new(BTreeMap::from([(always, queue())])));
        let accept = tokio::spawn(accept_loop(listener, queues.clone()));
        Ok(Endpoint { addr, queues, peers: tokio::sync::Mutex::new(BTreeMap::new()), accept })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens tag `tag` for messages (a reply expected on it) until [`Endpoint::forget`].
    pub fn expect(&self, tag: u64) {
        lock(&self.queues).entry(tag).or_insert_with(queue);
    }

    /// Closes tag `tag`: messages on it are dropped from now on.
    pub fn forget(&self, tag: u64) {
        lock(&self.queues).remove(&tag);
    }

    /// Sends `data` on `tag` to `dst`, connecting first if needed. An error drops the
    /// connection (the next send reconnects).
    pub async fn send_to(&self, dst: SocketAddr, tag: u64, data: &[u8]) -> io::Result<()> {
        if data.len() + 8 > MAX_FRAME {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "message too large"));
        }
        let mut peers = self.peers.lock().await;
        if !peers.contains_key(&dst) {
            let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(dst))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            stream.set_nodelay(true)?;
            let (_, mut write) = stream.into_split();
            let hello = self.addr.to_string();
            write.write_all(&(hello.len() as u16).to_le_bytes()).await?;
            write.write_all(hello.as_bytes()).await?;
            peers.insert(dst, write);
        }
        let mut frame = Vec::with_capacity(12 + data.len());
        frame.extend_from_slice(&((data.len() + 8) as u32).to_le_bytes());
        frame.extend_from_slice(&tag.to_le_bytes());
        frame.extend_from_slice(data);
        let write = peers.get_mut(&dst).expect("connected above");
        let sent = tokio::time::timeout(IO_TIMEOUT, write.write_all(&frame)).await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                peers.remove(&dst);
                Err(e)
            }
            Err(_) => {
                peers.remove(&dst);
                Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"))
            }
        }
    }

    /// The next message on `tag` and its sender's listening address.
    pub async fn recv_from(&self, tag: u64) -> io::Result<(Vec<u8>, SocketAddr)> {
        let rx = lock(&self.queues)
            .get(&tag)
            .map(|q| q.1.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "tag not expected"))?;
        let mut rx = rx.lock().await;
        rx.recv().await.ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "endpoint closed"))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, queues: Arc<Mutex<BTreeMap<u64, Queue>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(read_loop(stream, queues.clone()));
    }
}

/// Reads one peer's hello and frames, queueing each on its tag; ends at the first error.
async fn read_loop(mut stream: TcpStream, queues: Arc<Mutex<BTreeMap<u64, Queue>>>) -> io::Result<()> {
    let len = stream.read_u16_le().await? as usize;
    let mut hello = vec![0; len];
    stream.read_exact(&mut hello).await?;
    let from: SocketAddr = String::from_utf8_lossy(&hello)
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad hello"))?;
    loop {
        let len = stream.read_u32_le().await? as usize;
        if !(8..=MAX_FRAME).contains(&len) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad frame length"));
        }
        let tag = stream.read_u64_le().await?;
        let mut payload = vec![0; len - 8];
        stream.read_exact(&mut payload).await?;
        let tx = lock(&queues).get(&tag).map(|q| q.0.clone());
        // A full queue or a tag nobody expects: dropped, as a lost message would be.
        if let Some(tx) = tx {
            let _ = tx.try_send((payload, from));
        }
    }
}
