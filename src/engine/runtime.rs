//! The tasks of the busy-poll thread: a tiny single-threaded executor around the host.
//!
//! A download's orchestration (names, redirects, retries, authentication, `-N`, the
//! addresses of a name in turn) is plain `async` Rust (`engine::fetch`) that never touches
//! the driver. What it awaits is served by the loop in [`run`]:
//!
//! | a task awaits | served by |
//! |---|---|
//! | [`Reactor::exchange`]: an HTTP exchange on a new connection | the host's step; the session's end (or its head, to open the sink) wakes the task |
//! | [`Reactor::sleep_until`]: a retry's pause | the task deadline queue, checked every iteration (never a sleep) |
//! | [`Reactor::resolve`], [`Reactor::open`]: names, routes, neighbours | the lookup thread (`engine::lookup`) once the driver is up; before that, on this thread |
//!
//! A waker is a flag per task that the loop sets; only woken tasks are polled. `--parallel
//! N` is the number of tasks admitted at once; the rest wait in order (wget's default, one
//! after another, is N = 1).
//!
//! One iteration of [`run`]:
//!
//! ```text
//! lookups:  answers from the lookup thread → wake their tasks; new requests → the thread
//! tasks:    admit up to N; poll the woken ones
//! host:     Host::poll(driver, now): rx batch, dispatch, tx batch, kick
//! wake:     tasks whose session ended or wants its sink; tasks whose deadline passed
//! stop:     a signal aborts every connection and wakes every task (each ends Interrupted)
//! idle:     after `idle_before_wait` with nothing done, Driver::wait(next deadline)
//! ```

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Wake;

use super::body::BodyOut;
use super::endpoint::Endpoint;
use super::error::EngineError;
use super::host::deadlines::DeadlineQueue;
use super::host::{Handle, Host};
use super::lookup::{Answer, LookupThread, Question};
use super::network::Network;
use super::progress::Progress;
use super::stats::EngineStats;
use super::transfer::{Transfer, TransferEnd, TransferFailure, TransferOptions};
use crate::driver::Driver;
use crate::http::{BodyPlan, Request, ResponseHead};
use crate::time::Instant;
use crate::wire::EthernetAddress;

/// How the loop idles and stops.
#[derive(Clone, Debug)]
pub struct LoopSettings {
    /// How long the loop spins with nothing to do before it blocks in `Driver::wait`.
    /// Zero in the simulator (waiting is how virtual time moves).
    pub idle_before_wait: Duration,
    /// The longest single blocking wait, so that signals and lookups are noticed.
    pub max_wait: Duration,
    /// Set (by a signal handler) to stop every download.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl LoopSettings {
    /// The loop settings of `options` (the same for every transfer of a run).
    pub fn of(options: &TransferOptions) -> LoopSettings {
        LoopSettings {
            idle_before_wait: options.idle_before_wait,
            max_wait: options.max_wait,
            interrupt: options.interrupt.clone(),
        }
    }
}

/// What tasks share with the loop: the host, the clock, the task timers, the lookups.
pub struct Reactor<'a> {
    host: RefCell<Host<Transfer<'a>>>,
    now: Cell<Instant>,
    timers: RefCell<Timers>,
    /// Tasks waiting for a connection's session to end or to want its sink.
    waiting: RefCell<Vec<(Handle, Waker)>>,
    lookups: RefCell<Lookups>,
    interrupted: Cell<bool>,
    /// Whether a driver is up (before that, sleeps end at once: nothing can be waited for).
    driver_up: Cell<bool>,
    stats: RefCell<EngineStats>,
}

#[derive(Default)]
struct Timers {
    queue: DeadlineQueue<u64>,
    /// Live sleeps: their deadline and waker.
    sleeping: HashMap<u64, (Instant, Waker)>,
    next_id: u64,
}

#[derive(Default)]
struct Lookups {
    next_id: u64,
    /// Asked, not yet handed to the thread (or answered here).
    asked: VecDeque<(u64, Question)>,
    answers: HashMap<u64, Answer>,
    wakers: HashMap<u64, Waker>,
}

impl Default for Reactor<'_> {
    fn default() -> Self {
        Reactor::with_stats(EngineStats::default())
    }
}

impl<'a> Reactor<'a> {
    /// A reactor whose histograms continue `stats`.
    pub fn with_stats(stats: EngineStats) -> Reactor<'a> {
        Reactor {
            // A client host opens no connection passively: its MAC is never used.
            host: RefCell::new(Host::new(EthernetAddress([0; 6]))),
            now: Cell::new(Instant::ZERO),
            timers: RefCell::default(),
            waiting: RefCell::default(),
            lookups: RefCell::default(),
            interrupted: Cell::new(false),
            driver_up: Cell::new(false),
            stats: RefCell::new(stats),
        }
    }

    /// The time of the loop's last step (the driver's clock).
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Whether a stop signal came.
    pub fn interrupted(&self) -> bool {
        self.interrupted.get()
    }

    /// The engine's histograms (steps, and each exchange's connect and first-byte times).
    pub fn take_stats(&self) -> EngineStats {
        self.stats.take()
    }

    /// Lines for `--stats`: one per connection that has gone, with its bytes,
    /// retransmissions and smoothed RTT.
    pub fn connection_lines(&self) -> Vec<String> {
        let host = self.host.borrow();
        host.history()
            .iter()
            .map(|record| {
                let s = &record.stats;
                format!(
                    "connection {} -> {}: {} bytes received, {} out of order, {} duplicate ACKs sent, {} retransmitted by us, srtt {:.2} ms",
                    record.local,
                    record.remote,
                    s.bytes_delivered,
                    s.out_of_order_segments,
                    s.dup_acks_sent,
                    s.retransmits,
                    s.srtt_micros as f64 / 1000.0
                )
            })
            .collect()
    }

    /// Waits until `deadline` on the loop's clock. Err when a stop signal came first.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep<'_, 'a> {
        Sleep {
            reactor: self,
            deadline,
            id: None,
        }
    }

    /// Waits `duration` from now.
    pub fn sleep(&self, duration: Duration) -> Sleep<'_, 'a> {
        self.sleep_until(self.now() + duration)
    }

    /// The addresses of `host`, in the order to try them.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EngineError> {
        match self
            .ask(Question::Resolve {
                host: host.to_string(),
                port,
            })
            .await?
        {
            Answer::Addresses(result) => result,
            Answer::Endpoint(_) => Err(EngineError::Setup("lookup answered out of turn".into())),
        }
    }

    /// The addresses of a new connection to `remote` (route, source, next hop's MAC).
    pub async fn open(&self, remote: SocketAddr) -> Result<Endpoint, EngineError> {
        match self.ask(Question::Open { remote }).await? {
            Answer::Endpoint(result) => result,
            Answer::Addresses(_) => Err(EngineError::Setup("lookup answered out of turn".into())),
        }
    }

    async fn ask(&self, question: Question) -> Result<Answer, EngineError> {
        let id = {
            let mut lookups = self.lookups.borrow_mut();
            let id = lookups.next_id;
            lookups.next_id += 1;
            lookups.asked.push_back((id, question));
            id
        };
        core::future::poll_fn(|cx| {
            let mut lookups = self.lookups.borrow_mut();
            if let Some(answer) = lookups.answers.remove(&id) {
                lookups.wakers.remove(&id);
                return Poll::Ready(Ok(answer));
            }
            if self.interrupted() {
                return Poll::Ready(Err(EngineError::Interrupted));
            }
            lookups.wakers.insert(id, cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Runs `request` on a new connection to `endpoint.remote` on the host, until the
    /// exchange ends. `open_sink` is called once, when the response head says a body
    /// follows, before any body byte is written; it decides where the body goes (and may
    /// refuse with an error, which ends the exchange with a RST).
    pub async fn exchange(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        options: &TransferOptions,
        progress: &'a Progress,
        open_sink: &mut dyn FnMut(&ResponseHead, &BodyPlan) -> Result<BodyOut, EngineError>,
    ) -> Result<TransferEnd, TransferFailure> {
        let handle = self.begin_exchange(endpoint, request, options, progress)?;
        self.follow_exchange(handle, open_sink).await
    }

    /// The first half of [`Reactor::exchange`]: opens the connection and returns its handle
    /// (for [`Reactor::abort_exchange`]); [`Reactor::follow_exchange`] runs the rest.
    pub fn begin_exchange(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        options: &TransferOptions,
        progress: &'a Progress,
    ) -> Result<Handle, TransferFailure> {
        if self.interrupted() {
            return Err(EngineError::Interrupted.into());
        }
        let now = self.now();
        let transfer = Transfer::new(now, *endpoint, request, options, progress)?;
        Ok(self
            .host
            .borrow_mut()
            .connect(now, endpoint, options.tcp.clone(), transfer))
    }

    /// The second half of [`Reactor::exchange`]: waits for the exchange of `handle` to end,
    /// opening its sink when the head asks for one.
    pub async fn follow_exchange(
        &self,
        handle: Handle,
        open_sink: &mut dyn FnMut(&ResponseHead, &BodyPlan) -> Result<BodyOut, EngineError>,
    ) -> Result<TransferEnd, TransferFailure> {
        loop {
            let finished = core::future::poll_fn(|cx| {
                let mut host = self.host.borrow_mut();
                if let Some(transfer) = host.take_finished_of(handle) {
                    return Poll::Ready(Some(transfer));
                }
                if host.session(handle).is_some_and(Transfer::wants_sink) {
                    return Poll::Ready(None);
                }
                // One entry per exchange: a task that follows several (a segmented
                // download) is polled for each of their wakes.
                let mut waiting = self.waiting.borrow_mut();
                match waiting.iter_mut().find(|(h, _)| *h == handle) {
                    Some(entry) => entry.1.clone_from(cx.waker()),
                    None => waiting.push((handle, cx.waker().clone())),
                }
                Poll::Pending
            })
            .await;
            if let Some(transfer) = finished {
                transfer.record(&mut self.stats.borrow_mut());
                return transfer.into_end();
            }
            let mut host = self.host.borrow_mut();
            let Some(transfer) = host.session_mut(handle) else {
                continue;
            };
            let opened = match transfer.head() {
                Some((head, plan)) => open_sink(head, plan),
                None => Err(EngineError::Setup("no response head".into())),
            };
            match opened.and_then(|sink| transfer.start_body(sink)) {
                Ok(()) => host.wake(handle),
                Err(error) => {
                    let sink = host.abort(handle).and_then(|t| t.into_sink());
                    return Err(TransferFailure { error, sink });
                }
            }
        }
    }

    /// Stops the exchange of `handle` from outside, for a caller that no longer follows it
    /// (a connection of a segmented download that is no longer needed): its connection is
    /// reset and its session dropped.
    pub fn discard_exchange(&self, handle: Handle) {
        drop(self.host.borrow_mut().abort(handle));
        self.waiting.borrow_mut().retain(|(h, _)| *h != handle);
    }

    /// Asks for a poll of `handle`'s session (something it reads from outside changed).
    pub fn wake_exchange(&self, handle: Handle) {
        self.host.borrow_mut().wake(handle);
    }

    /// Wakes the tasks whose connection's session ended or wants its sink.
    fn wake_waiting(&self) {
        let host = self.host.borrow();
        self.waiting.borrow_mut().retain(|(handle, waker)| {
            let ready = host.has_finished(*handle)
                || host.session(*handle).is_none_or(Transfer::wants_sink);
            if ready {
                waker.wake_by_ref();
            }
            !ready
        });
    }

    /// Wakes the tasks whose sleep is over (all of them once stopped, or without a driver).
    fn wake_sleepers(&self, now: Instant) {
        let mut timers = self.timers.borrow_mut();
        let Timers {
            queue, sleeping, ..
        } = &mut *timers;
        if self.interrupted() || !self.driver_up.get() {
            for (_, waker) in sleeping.values() {
                waker.wake_by_ref();
            }
            return;
        }
        while let Some(id) = queue.pop_due(now, |id, at| sleeping.get(&id).map(|s| s.0) == Some(at))
        {
            if let Some((_, waker)) = sleeping.get(&id) {
                waker.wake_by_ref();
            }
        }
    }

    /// The earliest task deadline.
    fn next_timer(&self) -> Option<Instant> {
        let mut timers = self.timers.borrow_mut();
        let Timers {
            queue, sleeping, ..
        } = &mut *timers;
        queue.next(|id, at| sleeping.get(&id).map(|s| s.0) == Some(at))
    }

    /// Stops everything: every connection is reset, every task woken to end.
    fn interrupt(&self) {
        self.interrupted.set(true);
        let handles: Vec<Handle> = self.waiting.borrow().iter().map(|(h, _)| *h).collect();
        let mut host = self.host.borrow_mut();
        for handle in handles {
            if let Some(transfer) = host.abort(handle) {
                host.put_finished(handle, transfer);
            }
        }
        drop(host);
        for (_, waker) in self.waiting.take() {
            waker.wake();
        }
        for (_, waker) in self.lookups.borrow_mut().wakers.drain() {
            waker.wake();
        }
        self.wake_sleepers(self.now());
    }
}

/// The future of [`Reactor::sleep_until`].
pub struct Sleep<'r, 'a> {
    reactor: &'r Reactor<'a>,
    deadline: Instant,
    id: Option<u64>,
}

impl Future for Sleep<'_, '_> {
    type Output = Result<(), EngineError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let reactor = self.reactor;
        if reactor.interrupted() {
            return Poll::Ready(Err(EngineError::Interrupted));
        }
        if reactor.now() >= self.deadline || !reactor.driver_up.get() {
            return Poll::Ready(Ok(()));
        }
        let mut timers = reactor.timers.borrow_mut();
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = timers.next_id;
                timers.next_id += 1;
                timers.queue.push(self.deadline, id);
                id
            }
        };
        timers
            .sleeping
            .insert(id, (self.deadline, cx.waker().clone()));
        drop(timers);
        self.id = Some(id);
        Poll::Pending
    }
}

impl Drop for Sleep<'_, '_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.reactor.timers.borrow_mut().sleeping.remove(&id);
        }
    }
}

/// A task's waker: a flag the loop reads.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

type Task<'r> = Pin<Box<dyn Future<Output = ()> + 'r>>;

/// The tasks of a run: admitted in order, at most `parallel` at once.
pub struct Executor<'r> {
    queued: VecDeque<Task<'r>>,
    running: Vec<(Task<'r>, Arc<Flag>)>,
    parallel: usize,
}

impl<'r> Executor<'r> {
    /// At most `parallel` tasks at once (at least one).
    pub fn new(parallel: usize) -> Executor<'r> {
        Executor {
            queued: VecDeque::new(),
            running: Vec::new(),
            parallel: parallel.max(1),
        }
    }

    /// Adds a task; it starts when fewer than `parallel` run.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + 'r) {
        self.queued.push_back(Box::pin(task));
    }

    fn is_done(&self) -> bool {
        self.queued.is_empty() && self.running.is_empty()
    }

    /// Admits queued tasks and polls the woken ones. Returns whether any was polled.
    fn poll_tasks(&mut self) -> bool {
        while self.running.len() < self.parallel
            && let Some(task) = self.queued.pop_front()
        {
            self.running
                .push((task, Arc::new(Flag(AtomicBool::new(true)))));
        }
        let mut polled = false;
        let mut index = 0;
        while index < self.running.len() {
            let (task, flag) = &mut self.running[index];
            if !flag.0.swap(false, Ordering::Relaxed) {
                index += 1;
                continue;
            }
            polled = true;
            let waker = Waker::from(Arc::clone(flag));
            let mut cx = Context::from_waker(&waker);
            if task.as_mut().poll(&mut cx).is_ready() {
                drop(self.running.swap_remove(index));
                // A slot freed: the next queued task starts in this same pass.
                if let Some(task) = self.queued.pop_front() {
                    self.running
                        .push((task, Arc::new(Flag(AtomicBool::new(true)))));
                }
            } else {
                index += 1;
            }
        }
        polled
    }
}

/// Runs the tasks of `executor` to their end over `network`'s driver.
///
/// Errors of the driver stop every task (each ends with `Interrupted`) and are returned.
pub fn run<'a, N: Network>(
    reactor: &Reactor<'a>,
    network: &mut N,
    executor: &mut Executor<'_>,
    settings: &LoopSettings,
) -> Result<(), EngineError> {
    let mut lookup_thread: Option<LookupThread> = None;
    let mut idle_since: Option<Instant> = None;
    let mut failure: Option<EngineError> = None;
    loop {
        let mut busy = serve_lookups(reactor, network, &mut lookup_thread);
        // Tasks see the driver's clock (a connection opened now is timed from now), also
        // right after the look-up that set the driver up.
        if let Some(driver) = network.driver_mut() {
            reactor.now.set(driver.now());
        }
        busy |= executor.poll_tasks();
        if executor.is_done() {
            break;
        }
        // Lookups asked just now are served before the host steps.
        if !reactor.lookups.borrow().asked.is_empty() {
            continue;
        }
        let Some(driver) = network.driver_mut() else {
            // No driver yet: only lookups (on this thread) and sleeps (at once) can progress.
            reactor.wake_sleepers(reactor.now());
            if !busy {
                std::thread::sleep(Duration::from_millis(1));
            }
            continue;
        };
        reactor.driver_up.set(true);
        let now = driver.now();
        reactor.now.set(now);
        let step = reactor.host.borrow_mut().poll(driver, now);
        match step {
            Ok(step) => {
                reactor.stats.borrow_mut().record_step(&step);
                busy |= step.received > 0 || step.sent > 0;
            }
            Err(e) => {
                failure.get_or_insert(e);
                reactor.interrupt();
            }
        }
        reactor.wake_waiting();
        reactor.wake_sleepers(now);
        let stop = settings
            .interrupt
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed));
        if stop && !reactor.interrupted() {
            reactor.interrupt();
            let mut host = reactor.host.borrow_mut();
            let _ = host.flush(driver, now);
        }
        if busy {
            idle_since = None;
            continue;
        }
        let mut stats = reactor.stats.borrow_mut();
        stats.idle_loops += 1;
        let since = *idle_since.get_or_insert(now);
        if now - since < settings.idle_before_wait {
            continue;
        }
        stats.idle_waits += 1;
        drop(stats);
        // Answers of the lookup thread arrive on a channel, not as frames: look again soon.
        let max_wait = if lookup_thread.as_ref().is_some_and(LookupThread::busy) {
            settings.max_wait.min(Duration::from_millis(1))
        } else {
            settings.max_wait
        };
        let deadline = [
            reactor.host.borrow().poll_timeout(),
            reactor.next_timer(),
            Some(now + max_wait),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Err(e) = driver.wait(deadline) {
            failure.get_or_insert(e.into());
            reactor.interrupt();
        }
        idle_since = None;
    }
    failure.map_or(Ok(()), Err)
}

/// Hands new questions to the lookup thread (or answers them here while there is none),
/// and wakes the tasks whose answers came. Returns whether anything happened.
fn serve_lookups<N: Network>(
    reactor: &Reactor<'_>,
    network: &mut N,
    thread: &mut Option<LookupThread>,
) -> bool {
    let mut busy = false;
    loop {
        let asked = reactor.lookups.borrow_mut().asked.pop_front();
        let Some((id, question)) = asked else {
            break;
        };
        busy = true;
        if thread.is_none()
            && let Some(lookups) = network.lookups()
        {
            *thread = LookupThread::spawn(lookups).ok();
        }
        match thread.as_mut() {
            Some(thread) => thread.ask(id, question),
            None => {
                let answer = match question {
                    Question::Resolve { host, port } => {
                        Answer::Addresses(network.resolve(&host, port))
                    }
                    Question::Open { remote } => Answer::Endpoint(network.open(remote)),
                };
                answered(reactor, id, answer);
            }
        }
    }
    if let Some(thread) = thread.as_mut() {
        while let Some((id, answer)) = thread.try_answer() {
            busy = true;
            answered(reactor, id, answer);
        }
    }
    busy
}

fn answered(reactor: &Reactor<'_>, id: u64, answer: Answer) {
    let mut lookups = reactor.lookups.borrow_mut();
    lookups.answers.insert(id, answer);
    if let Some(waker) = lookups.wakers.remove(&id) {
        waker.wake();
    }
}
