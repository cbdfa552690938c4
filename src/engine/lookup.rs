//! The lookup thread: name resolution, route and neighbour lookups off the busy-poll thread.
//!
//! `getaddrinfo` can take seconds, an RTM_GETROUTE or a neighbour solicitation
//! milliseconds; on the busy-poll thread either would stall every running connection. So
//! once the driver is up, a task's [`Question`] goes over a channel to this thread, named
//! `xdpget-lookup`, and the [`Answer`] comes back on another, which the loop reads without
//! blocking (`try_recv`) once per iteration.

use std::net::SocketAddr;
use std::sync::mpsc;

use super::endpoint::Endpoint;
use super::error::EngineError;

/// What a task asks.
#[derive(Clone, Debug)]
pub enum Question {
    /// The addresses of a name, in the order to try them.
    Resolve { host: String, port: u16 },
    /// The addresses of a new connection to `remote` (route, source, next hop's MAC, port).
    Open { remote: SocketAddr },
}

/// The answer to a [`Question`] of the same kind.
#[derive(Debug)]
pub enum Answer {
    Addresses(Result<Vec<SocketAddr>, EngineError>),
    Endpoint(Result<Endpoint, EngineError>),
}

/// Lookups that may block, done on the lookup thread.
pub trait Lookups: Send {
    fn resolve(&mut self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EngineError>;
    fn open(&mut self, remote: SocketAddr) -> Result<Endpoint, EngineError>;
}

/// The running lookup thread. Dropping it closes its channel; the thread then ends.
pub struct LookupThread {
    questions: mpsc::Sender<(u64, Question)>,
    answers: mpsc::Receiver<(u64, Answer)>,
    outstanding: usize,
}

impl LookupThread {
    /// Starts the thread with `lookups`.
    pub fn spawn(mut lookups: Box<dyn Lookups>) -> std::io::Result<LookupThread> {
        let (questions, asked) = mpsc::channel::<(u64, Question)>();
        let (answer, answers) = mpsc::channel();
        std::thread::Builder::new()
            .name("xdpget-lookup".into())
            .spawn(move || {
                for (id, question) in asked {
                    let reply = match question {
                        Question::Resolve { host, port } => {
                            Answer::Addresses(lookups.resolve(&host, port))
                        }
                        Question::Open { remote } => Answer::Endpoint(lookups.open(remote)),
                    };
                    if answer.send((id, reply)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(LookupThread {
            questions,
            answers,
            outstanding: 0,
        })
    }

    /// Sends a question; its answer comes from [`LookupThread::try_answer`].
    pub fn ask(&mut self, id: u64, question: Question) {
        if self.questions.send((id, question)).is_ok() {
            self.outstanding += 1;
        }
    }

    /// An answer, if one came (never blocks).
    pub fn try_answer(&mut self) -> Option<(u64, Answer)> {
        let answer = self.answers.try_recv().ok()?;
        self.outstanding -= 1;
        Some(answer)
    }

    /// Whether questions are out.
    pub fn busy(&self) -> bool {
        self.outstanding > 0
    }
}
