//! Batched sending of a WebRTC session's datagrams. str0m hands out one SRTP packet at a time; the
//! session collects every packet of one poll (all the packets of a frame) here and sends them in as few
//! system calls as the kernel allows: consecutive datagrams to the same destination whose sizes are equal
//! (the last may be shorter) go out as one UDP GSO send (`UDP_SEGMENT`, Linux 4.18 and later), so a
//! keyframe of a hundred packets costs two `sendmsg` calls instead of a hundred. quinn-udp does the
//! sending; where the kernel has no GSO it reports one segment per send and each datagram goes alone.
//!
//! Invariants:
//! - Datagrams leave in the order str0m produced them.
//! - Sending never waits: a full socket buffer drops the batch it would have blocked on, as the network
//!   would drop packets (the browser asks again by NACK or PLI, and the next keyframe resumes anyway).

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// A UDP GSO send carries at most this many payload bytes (the IP length field's 64 KiB less headers).
const MAX_BATCH_BYTES: usize = 65_000;

/// One of the session's sockets, with what batching needs to know of it.
pub struct Socket {
    pub udp: Arc<UdpSocket>,
    /// Its bound address: the `source` str0m names in each transmit (read once, not per datagram).
    pub local: SocketAddr,
    state: quinn_udp::UdpSocketState,
}

impl Socket {
    pub fn new(udp: UdpSocket) -> std::io::Result<Socket> {
        let local = udp.local_addr()?;
        let state = quinn_udp::UdpSocketState::new((&udp).into())?;
        Ok(Socket {
            udp: Arc::new(udp),
            local,
            state,
        })
    }
}

struct Datagram {
    socket: usize,
    destination: SocketAddr,
    bytes: Range<usize>,
}

/// Datagrams waiting to be sent, in one buffer.
#[derive(Default)]
pub struct Outbox {
    buf: Vec<u8>,
    datagrams: Vec<Datagram>,
}

/// What one [`Outbox::flush`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub datagrams: usize,
    /// Bytes of the datagrams sent (not of those dropped).
    pub bytes: usize,
    pub sends: usize,
    pub dropped: usize,
}

/// A run of datagrams that goes out in one send.
#[derive(Debug, PartialEq, Eq)]
struct Batch {
    socket: usize,
    destination: SocketAddr,
    bytes: Range<usize>,
    count: usize,
    /// The size of each datagram but the last (which may be shorter), when there are several.
    segment: Option<usize>,
}

impl Outbox {
    /// Queues a datagram from the socket of index `socket`.
    pub fn push(&mut self, socket: usize, destination: SocketAddr, contents: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(contents);
        self.datagrams.push(Datagram {
            socket,
            destination,
            bytes: start..self.buf.len(),
        });
    }

    /// Sends everything queued, never waiting, and empties the outbox; `batch: false` sends each
    /// datagram alone.
    pub fn flush(&mut self, sockets: &[Socket], batch: bool) -> Flushed {
        let mut done = Flushed::default();
        let max_segments = match batch {
            true => sockets.iter().map(|s| s.state.max_gso_segments()).min(),
            false => None,
        };
        let max_segments = max_segments.unwrap_or(1);
        for batch in batches(&self.datagrams, max_segments, MAX_BATCH_BYTES) {
            let Some(socket) = sockets.get(batch.socket) else {
                continue;
            };
            let transmit = quinn_udp::Transmit {
                destination: batch.destination,
                ecn: None,
                contents: &self.buf[batch.bytes.clone()],
                segment_size: batch.segment,
                src_ip: None,
            };
            let sent = socket.udp.try_io(tokio::io::Interest::WRITABLE, || {
                socket.state.send((&*socket.udp).into(), &transmit)
            });
            done.datagrams += batch.count;
            done.sends += 1;
            match sent {
                Ok(()) => done.bytes += transmit.contents.len(),
                Err(_) => done.dropped += batch.count,
            }
        }
        self.buf.clear();
        self.datagrams.clear();
        done
    }
}

/// Splits the queue into sends: a batch grows while the datagrams share socket and destination, each has
/// the first one's size, and the limits allow; a shorter datagram ends its batch as the last segment.
fn batches(datagrams: &[Datagram], max_segments: usize, max_bytes: usize) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    let mut open = false;
    for d in datagrams {
        let len = d.bytes.len();
        if open {
            if let Some(b) = out.last_mut() {
                let size = b.bytes.len() / b.count;
                let fits = b.socket == d.socket
                    && b.destination == d.destination
                    && len <= size
                    && b.count < max_segments
                    && b.bytes.len() + len <= max_bytes;
                if fits {
                    b.bytes.end = d.bytes.end;
                    b.count += 1;
                    b.segment = Some(size);
                    // A shorter datagram can only be the last segment.
                    open = len == size;
                    continue;
                }
            }
        }
        out.push(Batch {
            socket: d.socket,
            destination: d.destination,
            bytes: d.bytes.clone(),
            count: 1,
            segment: None,
        });
        open = len > 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(items: &[(usize, u16, usize)]) -> Vec<Datagram> {
        let mut end = 0;
        items
            .iter()
            .map(|&(socket, port, len)| {
                let d = Datagram {
                    socket,
                    destination: SocketAddr::from(([127, 0, 0, 1], port)),
                    bytes: end..end + len,
                };
                end += len;
                d
            })
            .collect()
    }

    fn shape(b: &[Batch]) -> Vec<(usize, Option<usize>)> {
        b.iter().map(|b| (b.count, b.segment)).collect()
    }

    #[test]
    fn equal_datagrams_to_one_peer_go_in_one_send_with_a_shorter_last() {
        let q = queue(&[
            (0, 1, 1200),
            (0, 1, 1200),
            (0, 1, 1200),
            (0, 1, 300),
            (0, 1, 1200),
        ]);
        assert_eq!(
            shape(&batches(&q, 64, MAX_BATCH_BYTES)),
            vec![(4, Some(1200)), (1, None)]
        );
    }

    #[test]
    fn a_batch_ends_at_another_peer_socket_or_a_longer_datagram() {
        let q = queue(&[
            (0, 1, 100),
            (0, 2, 100),
            (1, 2, 100),
            (1, 2, 200),
            (1, 2, 200),
        ]);
        let b = batches(&q, 64, MAX_BATCH_BYTES);
        assert_eq!(
            shape(&b),
            vec![(1, None), (1, None), (1, None), (2, Some(200))]
        );
        assert_eq!(b[3].bytes, 300..700);
    }

    #[test]
    fn a_batch_keeps_to_the_segment_and_byte_limits() {
        let q = queue(&[(0, 1, 1000); 10]);
        assert_eq!(
            shape(&batches(&q, 4, 100_000)),
            vec![(4, Some(1000)), (4, Some(1000)), (2, Some(1000))]
        );
        assert_eq!(
            shape(&batches(&q, 64, 3_500)),
            vec![(3, Some(1000)), (3, Some(1000)), (3, Some(1000)), (1, None)]
        );
        assert_eq!(shape(&batches(&q, 1, 100_000)), vec![(1, None); 10]);
    }

    #[tokio::test]
    async fn a_flushed_batch_arrives_as_separate_datagrams_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let tx = Socket::new(UdpSocket::bind("127.0.0.1:0").await.unwrap()).unwrap();
        // Sending never waits, so it needs the reactor to have seen the new socket writable once.
        tx.udp.writable().await.unwrap();
        let mut outbox = Outbox::default();
        let sizes = [1200, 1200, 1200, 17, 1200, 900];
        for (i, &n) in sizes.iter().enumerate() {
            outbox.push(0, to, &vec![i as u8; n]);
        }
        let done = outbox.flush(std::slice::from_ref(&tx), true);
        assert_eq!((done.datagrams, done.dropped), (6, 0));
        if tx.state.max_gso_segments() > 1 {
            assert_eq!(done.sends, 2, "GSO: 1200 x3 + 17, then 1200 + 900");
        }
        let mut buf = [0u8; 2048];
        for (i, &n) in sizes.iter().enumerate() {
            let (len, from) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!((len, from), (n, tx.local));
            assert!(buf[..len].iter().all(|&b| b == i as u8));
        }
    }
}
