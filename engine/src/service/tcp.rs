//! The real network (the normal build): tagged messages over loopback TCP, with the
//! interface the services use of `madsim::net::Endpoint` (bind, send to an address with a
//! tag, receive on a tag). madsim's own normal-build endpoint panics when a peer is down
//! and keeps a dead connection after the peer restarts, so the services get this one:
//! a connection per peer, made on first use and dropped on any error (the next send
//! reconnects, so a restarted peer is reached again); every connect and write bounded by a
//! timeout; bounded queues per tag; frames bounded in size.
//!
//! A connection starts with the sender's listening address (so a reply can find it: hence
//! loopback, where that address is reachable as it is bound), then
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

type Peers = Arc<tokio::sync::Mutex<BTreeMap<SocketAddr, (u64, OwnedWriteHalf)>>>;

type Queue =
    (mpsc::Sender<(Vec<u8>, SocketAddr)>, Arc<tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>>);

/// A bound endpoint: receives tagged messages from any peer, sends to any address.
pub struct Endpoint {
    addr: SocketAddr,
    queues: Arc<Mutex<BTreeMap<u64, Queue>>>,
    /// Open connections by peer, each with its number (see [`watch`]).
    peers: Peers,
    /// Numbers connections.
    connections: std::sync::atomic::AtomicU64,
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
        let peers = Arc::new(tokio::sync::Mutex::new(BTreeMap::new()));
        Ok(Endpoint { addr, queues, peers, connections: 0.into(), accept })
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
        if let std::collections::btree_map::Entry::Vacant(slot) = peers.entry(dst) {
            slot.insert(self.connect(dst).await?);
        }
        let mut frame = Vec::with_capacity(12 + data.len());
        frame.extend_from_slice(&((data.len() + 8) as u32).to_le_bytes());
        frame.extend_from_slice(&tag.to_le_bytes());
        frame.extend_from_slice(data);
        let (_, write) = peers.get_mut(&dst).expect("connected above");
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

    /// A new connection to `dst`, introduced by this endpoint's address and watched for
    /// the peer closing it; numbered.
    async fn connect(&self, dst: SocketAddr) -> io::Result<(u64, OwnedWriteHalf)> {
        let hello = self.addr.to_string();
        let connected = tokio::time::timeout(IO_TIMEOUT, async {
            let stream = TcpStream::connect(dst).await?;
            stream.set_nodelay(true)?;
            let (read, mut write) = stream.into_split();
            write.write_all(&(hello.len() as u16).to_le_bytes()).await?;
            write.write_all(hello.as_bytes()).await?;
            Ok::<_, io::Error>((read, write))
        });
        let (read, write) =
            connected.await.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let n = self.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(watch(read, self.peers.clone(), dst, n));
        Ok((n, write))
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

/// Forgets connection `n` to `peer` as soon as the peer closes it (it died or restarted):
/// the next send reconnects instead of writing into a dead socket and waiting for a reply
/// that cannot come. Nothing is ever sent back on these connections.
async fn watch(mut read: tokio::net::tcp::OwnedReadHalf, peers: Peers, peer: SocketAddr, n: u64) {
    let mut buf = [0u8; 64];
    while let Ok(len) = read.read(&mut buf).await {
        if len == 0 {
            break;
        }
    }
    let mut peers = peers.lock().await;
    if peers.get(&peer).is_some_and(|(m, _)| *m == n) {
        peers.remove(&peer);
    }
}

/// Accepts connections and reads each in a task of its own. The readers belong to this
/// task: when the endpoint is dropped and this task aborted, they end too, closing their
/// connections (so peers notice, as they would if the process died).
async fn accept_loop(listener: TcpListener, queues: Arc<Mutex<BTreeMap<u64, Queue>>>) {
    let mut readers = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors, say: retry later rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                readers.spawn(read_loop(stream, queues.clone()));
            }
            // Reap finished readers, so the set does not grow with every reconnect.
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: u64 = 1;

    async fn recv(ep: &Endpoint) -> (Vec<u8>, SocketAddr) {
        let got = tokio::time::timeout(Duration::from_secs(5), ep.recv_from(TAG)).await;
        got.expect("a message within 5 s").expect("open")
    }

    /// Messages arrive on their tag with the sender's listening address; a peer that
    /// restarts on the same port is reached again (the dead connection is dropped and the
    /// next send reconnects); unexpected tags are dropped.
    #[tokio::test]
    async fn messages_reach_a_restarted_peer() {
        let local: SocketAddr = ([127, 0, 0, 1], 0).into();
        let a = Endpoint::bind(local, TAG).await.expect("bind a");
        let b = Endpoint::bind(local, TAG).await.expect("bind b");
        let b_addr = b.local_addr();
        a.send_to(b_addr, TAG, b"one").await.expect("send");
        assert_eq!(recv(&b).await, (b"one".to_vec(), a.local_addr()));
        a.send_to(b_addr, 99, b"nobody waits").await.expect("send");
        assert!(b.recv_from(99).await.is_err(), "an unexpected tag has no queue");
        drop(b);
        // The listener closes once its aborted task is dropped by the runtime: retry, bounded.
        let mut rebound = None;
        for _ in 0..100 {
            if let Ok(ep) = Endpoint::bind(b_addr, TAG).await {
                rebound = Some(ep);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let b = rebound.expect("rebind b on its port within 1 s");
        // Bounded: the first sends may go into the dead connection before it is noticed.
        let mut delivered = None;
        for _ in 0..50 {
            let _ = a.send_to(b_addr, TAG, b"two").await;
            if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(100), b.recv_from(TAG)).await {
                delivered = Some(m);
                break;
            }
        }
        assert_eq!(delivered, Some((b"two".to_vec(), a.local_addr())));
    }
}
