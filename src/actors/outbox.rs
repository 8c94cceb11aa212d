//! RouterOutbox: one per HTTP worker, it gathers what the worker's requests tell the router's arbiter without
//! waiting for an answer (lease settlements for the RateLimiterActors, served turns for stickiness) and hands
//! them over as one [`Batch`] once the worker's current round of ready tasks has run. Under load that turns one
//! cross-thread message (and thread wake-up) per settlement into one per round; when idle it delivers at once.
//! It must not decide or hold anything: every message is delivered, in order, within the round.

use actix::prelude::*;

use super::limiter::SettleAt;
use super::router::{Batch, Later, Served};

/// Gathers one worker's messages for the router.
pub struct RouterOutbox {
    router: Recipient<Batch>,
    pending: Vec<Later>,
}

impl RouterOutbox {
    /// An outbox delivering to `router` (the RouterActor).
    pub fn new(router: Recipient<Batch>) -> RouterOutbox {
        RouterOutbox {
            router,
            pending: Vec::new(),
        }
    }

    /// Takes `later` in; the first of a round schedules the delivery for when the worker's ready tasks have run.
    fn take(&mut self, later: Later, ctx: &mut Context<Self>) {
        if self.pending.is_empty() {
            ctx.spawn(
                fut::wrap_future::<_, Self>(tokio::task::yield_now())
                    .map(|(), outbox, _| outbox.deliver()),
            );
        }
        self.pending.push(later);
    }

    fn deliver(&mut self) {
        if !self.pending.is_empty() {
            self.router
                .do_send(Batch(std::mem::take(&mut self.pending)));
        }
    }
}

impl Actor for RouterOutbox {
    type Context = Context<Self>;

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        self.deliver();
        Running::Stop
    }
}

impl Handler<SettleAt> for RouterOutbox {
    type Result = ();

    fn handle(&mut self, msg: SettleAt, ctx: &mut Context<Self>) {
        self.take(Later::Settle(msg), ctx);
    }
}

impl Handler<Served> for RouterOutbox {
    type Result = ();

    fn handle(&mut self, msg: Served, ctx: &mut Context<Self>) {
        self.take(Later::Served(msg), ctx);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::platform::Platform;
    use crate::routing::sticky::named_session;

    /// Stands in for the router: keeps the models of each batch it receives.
    struct Batches(Arc<Mutex<Vec<Vec<String>>>>);

    impl Actor for Batches {
        type Context = Context<Self>;
    }

    impl Handler<Batch> for Batches {
        type Result = ();

        fn handle(&mut self, msg: Batch, _: &mut Context<Self>) {
            let models = msg
                .0
                .into_iter()
                .map(|later| match later {
                    Later::Served(served) => served.model.to_string(),
                    Later::Settle(_) => "settle".to_owned(),
                })
                .collect();
            self.0.lock().unwrap().push(models);
        }
    }

    fn served(model: &str) -> Served {
        Served {
            session: named_session(None, model),
            platform: Platform::Groq,
            model: Arc::from(model),
        }
    }

    #[actix_rt::test]
    async fn one_round_is_one_batch_in_order_and_nothing_waits_for_more() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let router = Batches(seen.clone()).start();
        let outbox = RouterOutbox::new(router.recipient()).start();
        for model in ["a", "b", "c"] {
            outbox.do_send(served(model));
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        outbox.do_send(served("d"));
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(
            *seen.lock().unwrap(),
            vec![vec!["a", "b", "c"], vec!["d"]],
            "three messages sent together arrive as one batch; a later one is delivered on its own"
        );
    }
}
