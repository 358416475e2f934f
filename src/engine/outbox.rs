//! The drainer's outbox: results to announce go to one sender thread, so a slow channel
//! (an SMTP server that takes its time, a webhook up to its timeout) never stalls the drain
//! loop's harvesting, claiming or policing. Announcements keep their order; the drainer
//! waits for the outbox to empty only when it is done ([`Outbox::close`]).

use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use super::Env;
use crate::model::TaskResult;

pub(super) struct Outbox {
    tx: Option<Sender<TaskResult>>,
    sender: Option<JoinHandle<()>>,
}

impl Outbox {
    /// Start the sender thread (announcing inline if no thread can be started).
    pub(super) fn start(env: &Env) -> Outbox {
        let (tx, rx) = channel::<TaskResult>();
        let env = env.clone();
        let sender = std::thread::Builder::new()
            .name("outbox".into())
            .spawn(move || {
                for r in rx {
                    super::announce(&env, &r);
                }
            })
            .ok();
        Outbox {
            tx: sender.as_ref().map(|_| tx),
            sender,
        }
    }

    /// Queue a result for announcing; inline when the sender thread is gone.
    pub(super) fn send(&self, env: &Env, r: &TaskResult) {
        let unsent = match &self.tx {
            Some(tx) => tx.send(r.clone()).err().map(|e| e.0),
            None => Some(r.clone()),
        };
        if let Some(r) = unsent {
            super::announce(env, &r);
        }
    }

    /// Wait until everything queued was announced.
    pub(super) fn close(mut self) {
        drop(self.tx.take());
        if let Some(h) = self.sender.take() {
            let _ = h.join();
        }
    }
}
