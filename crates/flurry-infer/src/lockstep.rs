//! Lockstep teams: every thread of a pool runs the same sequence of steps, takes the
//! tasks of each step from a shared counter, and waits for the others at a spinning
//! barrier before the next step.
//!
//! One sequence's decode step is a chain of small products (a few hundred kilobytes of
//! weights each, tens of microseconds of work), each needing all of the previous one's
//! output. Handing each product to a pool as a job of its own puts its idle workers to
//! sleep and wakes them again about five times per layer; on a shared virtual machine a
//! wake-up costs as much as a small product. A team is woken once per token and meets at
//! a barrier that spins. Tasks are claimed one at a time, so a faster core takes more.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Spins before a waiting thread starts yielding its core (a few tens of microseconds).
const SPINS: u32 = 1 << 14;

/// A value on its own cache lines, so that threads polling one counter do not slow the
/// threads updating another.
#[repr(align(128))]
struct Padded<T>(T);

/// The shared state of one team (one per pass; see the module docs).
pub(crate) struct Team {
    threads: usize,
    arrived: Padded<AtomicUsize>,
    generation: Padded<AtomicUsize>,
    /// Tasks taken from each thread's share of the current step.
    taken: Vec<Padded<AtomicUsize>>,
    poisoned: AtomicBool,
}

impl Team {
    /// A team of `threads` threads, at its first step.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            arrived: Padded(AtomicUsize::new(0)),
            generation: Padded(AtomicUsize::new(0)),
            taken: (0..threads.max(1))
                .map(|_| Padded(AtomicUsize::new(0)))
                .collect(),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Whether a team of `threads` threads should run on this machine: more than one, and
    /// no more than its cores (a spinning thread would take a core from a working one).
    pub(crate) fn fits(threads: usize) -> bool {
        static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let cores =
            *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        threads > 1 && threads <= cores
    }

    /// Threads in the team.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// The next unclaimed task of the current step for thread `me`, out of `n`; `None`
    /// once all are taken. Thread `me` takes the tasks of its own share of `0..n` in
    /// order, then helps with the others' shares: each thread streams a contiguous run
    /// of the weights, which the hardware prefetchers follow better than a run that
    /// alternates with other threads', and a faster thread still takes more.
    pub(crate) fn claim(&self, me: usize, n: usize) -> Option<usize> {
        let t = self.threads;
        for k in 0..t {
            let share = (me + k) % t;
            let (lo, hi) = (share * n / t, (share + 1) * n / t);
            let taken = &self.taken[share].0;
            // Nobody takes from a share once it is used up (no wasted increments).
            if taken.load(Ordering::Relaxed) >= hi - lo {
                continue;
            }
            let i = taken.fetch_add(1, Ordering::Relaxed);
            if i < hi - lo {
                return Some(lo + i);
            }
        }
        None
    }

    /// Waits until every thread of the team has called `wait` as often as this one, then
    /// starts the next step (tasks are numbered from 0 again). Everything a thread wrote
    /// before its call is visible to every thread after it.
    ///
    /// # Panics
    ///
    /// If another thread of the team panicked (it would never arrive).
    pub(crate) fn wait(&self) {
        let generation = self.generation.0.load(Ordering::Acquire);
        if self.arrived.0.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // The last to arrive: nobody claims or arrives until the generation moves.
            self.arrived.0.store(0, Ordering::Relaxed);
            for taken in &self.taken {
                taken.0.store(0, Ordering::Relaxed);
            }
            self.generation.0.store(generation + 1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.0.load(Ordering::Acquire) == generation {
            assert!(
                !self.poisoned.load(Ordering::Relaxed),
                "another thread of the team panicked"
            );
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Marks the calling thread as a member until the guard drops: if it drops while its
    /// thread panics, the others stop waiting for it and panic too.
    pub(crate) fn member(&self) -> Member<'_> {
        Member(self)
    }
}

/// See [`Team::member`].
pub(crate) struct Member<'t>(&'t Team);

impl Drop for Member<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

/// A buffer that the threads of a team write in disjoint parts during a step and read
/// after the barrier that ends it.
pub(crate) struct Shared<'a, T> {
    ptr: *mut T,
    len: usize,
    _buf: PhantomData<&'a mut [T]>,
}

// SAFETY: a `Shared` is a `&mut [T]` split by the callers of its unsafe methods, who
// keep the parts that threads use at the same time disjoint.
unsafe impl<T: Send> Send for Shared<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<'_, T> {}

impl<'a, T> Shared<'a, T> {
    /// Shares `buf` for the lifetime of the borrow.
    pub(crate) fn new(buf: &'a mut [T]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _buf: PhantomData,
        }
    }

    /// Length in elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Elements `r`, to write.
    ///
    /// # Safety
    ///
    /// No other thread reads or writes any of `r` until the barrier after this use.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part_mut(&self, r: Range<usize>) -> &mut [T] {
        assert!(r.start <= r.end && r.end <= self.len, "part out of bounds");
        // SAFETY: in bounds (checked); exclusive as the caller promises.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }

    /// Elements `r`, to read.
    ///
    /// # Safety
    ///
    /// No thread writes any of `r` until the barrier after this use.
    pub(crate) unsafe fn part(&self, r: Range<usize>) -> &[T] {
        assert!(r.start <= r.end && r.end <= self.len, "part out of bounds");
        // SAFETY: in bounds (checked); nobody writes, as the caller promises.
        unsafe { std::slice::from_raw_parts(self.ptr.add(r.start), r.end - r.start) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each step's tasks are taken exactly once, and every thread sees the whole previous
    /// step's results after the barrier.
    #[test]
    fn steps_see_each_other() {
        for threads in [2usize, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (n, steps) = (97usize, 50usize);
            let mut buf = vec![0u64; n];
            let team = Team::new(threads);
            let shared = Shared::new(&mut buf);
            let sums = pool.broadcast(|ctx| {
                let mut seen = Vec::new();
                for step in 0..steps as u64 {
                    while let Some(i) = team.claim(ctx.index(), n) {
                        // SAFETY: task i is this thread's alone during the step.
                        let cell = unsafe { shared.part_mut(i..i + 1) };
                        cell[0] += step + i as u64;
                    }
                    team.wait();
                    // SAFETY: nobody writes until the next step, after the barrier below.
                    seen.push(unsafe { shared.part(0..n) }.iter().sum::<u64>());
                    team.wait();
                }
                seen
            });
            let want: Vec<u64> = (0..steps as u64)
                .scan(0u64, |acc, step| {
                    *acc += (0..n as u64).map(|i| step + i).sum::<u64>();
                    Some(*acc)
                })
                .collect();
            for seen in sums {
                assert_eq!(seen, want, "{threads} threads");
            }
        }
    }

    /// A thread that panics releases the others from the barrier instead of hanging them.
    #[test]
    fn a_panic_reaches_the_caller() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let team = Team::new(2);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.broadcast(|ctx| {
                let _member = team.member();
                assert!(ctx.index() != 1, "planted failure");
                team.wait();
            })
        }));
        assert!(result.is_err());
    }
}
