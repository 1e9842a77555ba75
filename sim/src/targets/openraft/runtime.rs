//! openraft's `AsyncRuntime` on madsim: tasks, timers, instants and randomness all come from the
//! simulation (see docs/facts.md, "openraft 0.9"). openraft's default `TokioRuntime` would panic here:
//! there is no tokio runtime inside a simulation.

use openraft::async_runtime::TokioOneShotSender;
use openraft::AsyncRuntime;
use std::future::Future;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Runs openraft on madsim.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MadsimRuntime;

/// madsim's (virtual) `Instant`; a newtype because openraft's `Instant` trait and std's `Instant`
/// are both foreign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SimInstant(pub madsim::time::Instant);

impl Add<Duration> for SimInstant {
    type Output = SimInstant;
    fn add(self, rhs: Duration) -> SimInstant {
        SimInstant(self.0 + rhs)
    }
}

impl AddAssign<Duration> for SimInstant {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 += rhs;
    }
}

impl Sub<Duration> for SimInstant {
    type Output = SimInstant;
    fn sub(self, rhs: Duration) -> SimInstant {
        SimInstant(self.0 - rhs)
    }
}

impl Sub<SimInstant> for SimInstant {
    type Output = Duration;
    fn sub(self, rhs: SimInstant) -> Duration {
        self.0.saturating_duration_since(rhs.0)
    }
}

impl SubAssign<Duration> for SimInstant {
    fn sub_assign(&mut self, rhs: Duration) {
        self.0 -= rhs;
    }
}

impl openraft::Instant for SimInstant {
    fn now() -> SimInstant {
        SimInstant(madsim::time::Instant::now())
    }
}

/// A future with a deadline: polls the future first (like `select_biased!`), then the timer.
pub struct SimTimeout<T> {
    future: Pin<Box<T>>,
    sleep: madsim::time::Sleep,
}

impl<T: Future> Future for SimTimeout<T> {
    type Output = Result<T::Output, madsim::time::error::Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(madsim::time::error::Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRuntime for MadsimRuntime {
    type JoinError = madsim::task::JoinError;
    type JoinHandle<T: Send + 'static> = madsim::task::JoinHandle<T>;
    type Sleep = madsim::time::Sleep;
    type Instant = SimInstant;
    type TimeoutError = madsim::time::error::Elapsed;
    type Timeout<R, T: Future<Output = R> + Send> = SimTimeout<T>;
    type ThreadLocalRng = madsim::rand::GlobalRng;
    type OneshotSender<T: Send> = TokioOneShotSender<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;
    type OneshotReceiver<T: Send> = tokio::sync::oneshot::Receiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + Send + 'static,
        T::Output: Send + 'static,
    {
        madsim::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        madsim::time::sleep(duration)
    }

    fn sleep_until(deadline: SimInstant) -> Self::Sleep {
        madsim::time::sleep_until(deadline.0)
    }

    fn timeout<R, F: Future<Output = R> + Send>(duration: Duration, future: F) -> SimTimeout<F> {
        SimTimeout {
            future: Box::pin(future),
            sleep: madsim::time::sleep(duration),
        }
    }

    fn timeout_at<R, F: Future<Output = R> + Send>(
        deadline: SimInstant,
        future: F,
    ) -> SimTimeout<F> {
        SimTimeout {
            future: Box::pin(future),
            sleep: madsim::time::sleep_until(deadline.0),
        }
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        madsim::rand::thread_rng()
    }

    fn oneshot<T: Send>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (TokioOneShotSender(tx), rx)
    }
}
