//! Watching edges: which IPs a network reports as [`Event::Data`], and how many.
//!
//! Reporting is for people looking at a network (a protocol client's edge inspector, a
//! trace), not part of the data flow: it is a sample, never a duty. A watched edge reports its
//! IPs as events, at most a set rate per second (a burst of as many at once, then a steady
//! trickle); the rest, and those that find the event channel full, are counted and dropped,
//! so a network moving millions of IPs costs its watchers a bounded number of events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::edge::{Packet, PacketSender};
use super::events::{EdgeId, Event, EventSender};
use super::metrics::EdgeMetrics;
use super::queue::QueueProbe;
use crate::ip::Ip;

/// Whether IPs on an edge are reported, how many were not, and what the edge carried;
/// shared between the network and the edge's sender.
#[derive(Clone)]
pub(crate) struct Watch(Arc<WatchState>);

struct WatchState {
    on: AtomicBool,
    unreported: AtomicU64,
    /// IPs handed over.
    ips: AtomicU64,
    /// Their payload bytes.
    bytes: AtomicU64,
    /// The receiving inport's queue, to see how full it is.
    queue: QueueProbe<Packet>,
    /// IPs per batch at most.
    batch: usize,
}

impl Watch {
    /// The watch of an edge into `queue`, in batches of at most `batch` IPs; off.
    pub(crate) fn new(queue: &PacketSender, batch: usize) -> Watch {
        Watch(Arc::new(WatchState {
            on: AtomicBool::new(false),
            unreported: AtomicU64::new(0),
            ips: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            queue: queue.probe(),
            batch,
        }))
    }

    /// What the edge `edge` carried so far, and how full its queue is.
    pub(crate) fn metrics(&self, edge: &EdgeId) -> EdgeMetrics {
        let state = &self.0;
        EdgeMetrics {
            edge: edge.clone(),
            ips: state.ips.load(Ordering::Relaxed),
            bytes: state.bytes.load(Ordering::Relaxed),
            queued_batches: state.queue.len(),
            capacity_batches: state.queue.capacity(),
            batch_ips: state.batch,
        }
    }

    pub(crate) fn set(&self, on: bool) {
        self.0.on.store(on, Ordering::Relaxed);
    }

    fn is_on(&self) -> bool {
        self.0.on.load(Ordering::Relaxed)
    }

    /// IPs that passed while watched and were not reported (over the rate, or the event
    /// channel was full).
    pub(crate) fn unreported(&self) -> u64 {
        self.0.unreported.load(Ordering::Relaxed)
    }
}

/// The sending side of a watched edge: reports what its sender hands over.
pub(crate) struct Watcher {
    edge: EdgeId,
    watch: Watch,
    events: EventSender,
    rate: Option<Rate>,
}

impl Watcher {
    /// Reports the IPs on `edge` as events while `watch` is on, at most `per_second` a second
    /// (`None`: every IP).
    pub(crate) fn new(
        edge: EdgeId,
        watch: Watch,
        events: EventSender,
        per_second: Option<u32>,
    ) -> Watcher {
        Watcher {
            edge,
            watch,
            events,
            rate: per_second.map(Rate::new),
        }
    }

    /// The watched edge.
    pub(crate) fn edge(&self) -> &EdgeId {
        &self.edge
    }

    /// Counts `batch` and reports it (as far as the rate allows), just before it is handed
    /// over.
    pub(crate) fn report(&mut self, batch: &[Ip]) {
        let state = &self.watch.0;
        let bytes: usize = batch.iter().map(|ip| ip.payload().len()).sum();
        state.ips.fetch_add(batch.len() as u64, Ordering::Relaxed);
        state.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if batch.is_empty() || !self.watch.is_on() {
            return;
        }
        let shown = match &mut self.rate {
            Some(rate) => rate.take(batch.len()),
            None => batch.len(),
        };
        let mut unreported = batch.len() - shown;
        for ip in &batch[..shown] {
            let sent = self.events.try_send(Event::Data {
                edge: self.edge.clone(),
                ip: ip.clone(),
            });
            if !sent {
                unreported += 1;
            }
        }
        if unreported > 0 {
            self.watch
                .0
                .unreported
                .fetch_add(unreported as u64, Ordering::Relaxed);
        }
    }
}

/// A token bucket: `per_second` tokens a second, holding at most `per_second`.
pub(crate) struct Rate {
    per_second: f64,
    tokens: f64,
    refilled: Instant,
}

impl Rate {
    /// A full bucket of `per_second` tokens.
    pub(crate) fn new(per_second: u32) -> Rate {
        let per_second = f64::from(per_second.max(1));
        Rate {
            per_second,
            tokens: per_second,
            refilled: Instant::now(),
        }
    }

    /// How many of `wanted` may go now; takes their tokens.
    fn take(&mut self, wanted: usize) -> usize {
        self.take_at(wanted, Instant::now())
    }

    /// How many of `wanted` may go at `now`; takes their tokens.
    pub(crate) fn take_at(&mut self, wanted: usize, now: Instant) -> usize {
        let earned = now.saturating_duration_since(self.refilled).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + earned).min(self.per_second);
        self.refilled = now;
        let granted = (self.tokens.floor() as usize).min(wanted);
        self.tokens -= granted as f64;
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_gives_a_burst_then_holds_back() {
        let mut rate = Rate::new(100);
        assert_eq!(rate.take(60), 60);
        assert_eq!(rate.take(60), 40);
        // The clock moves on, but well under a second passes before the next call.
        assert!(rate.take(1_000) < 100);
    }

    #[test]
    fn an_unwatched_edge_reports_nothing_and_counts_nothing() {
        let (events, rx) = EventSender::new(16);
        let (queue, _) = super::super::edge::packet_queue(1);
        let watch = Watch::new(&queue, 16);
        let edge = EdgeId {
            src: crate::graph::PortRef::new("a", "out"),
            tgt: crate::graph::PortRef::new("b", "in"),
        };
        let mut watcher = Watcher::new(edge, watch.clone(), events, Some(2));
        watcher.report(&[Ip::data("x")]);
        assert!(rx.try_recv().is_err());
        assert_eq!(watch.unreported(), 0);

        watch.set(true);
        watcher.report(&[Ip::data("1"), Ip::data("2"), Ip::data("3")]);
        assert_eq!(rx.try_iter().count(), 2);
        assert_eq!(watch.unreported(), 1);
    }
}
