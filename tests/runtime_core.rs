//! The runtime core without a script: the lock word, queues and the
//! registry's deadlock detection, driven by real OS threads through the
//! same calls the evaluator makes.

use conc::diagnostics::kind;
use conc::runtime::locks::{Lock, LockKind};
use conc::runtime::queues::{Order, Queue};
use conc::runtime::value::Value;
use conc::runtime::waits::BlockOn;
use conc::runtime::{Context, ThreadRef};
use conc::session::{Session, SessionOptions};
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn session() -> Session {
    Session::new(SessionOptions {
        deadlock_exits: false,
        ..SessionOptions::default()
    })
}

/// A registered thread record for an OS thread the test starts itself.
fn thread(ctx: &Context, name: &str) -> ThreadRef {
    let t = ctx.registry.new_thread(name.to_string(), false);
    ctx.registry.register(t.clone());
    t
}

fn waits(what: &str) -> impl FnOnce() -> BlockOn + '_ {
    move || BlockOn::new(what, None, None)
}

fn soon(ctx: &Context) -> Option<conc::runtime::engine::Time> {
    Some(ctx.engine().deadline_after(Duration::from_millis(50)))
}

#[test]
fn a_lock_has_one_owner_and_only_the_owner_releases_it() {
    let s = session();
    let ctx = s.context().clone();
    let main = s.main_thread().clone();
    let lock = Lock::new(&ctx, LockKind::Plain, 0);
    assert!(lock.acquire(&ctx, &main, None, None, waits("a")).unwrap());
    assert!(lock.held_by(&main) && lock.locked());
    let other = thread(&ctx, "other");
    let (ctx2, lock2, other2) = (ctx.clone(), lock.clone(), other.clone());
    let timed_out = std::thread::spawn(move || {
        let deadline = soon(&ctx2);
        lock2.acquire(&ctx2, &other2, deadline, None, waits("b"))
    })
    .join()
    .unwrap();
    assert_eq!(timed_out.ok(), Some(false), "a held lock times out");
    let err = lock.release(&ctx, &other).unwrap_err();
    assert!(err.is(kind::LOCK), "{}", err.message);
    assert!(lock.locked(), "a failed release changes nothing");
    lock.release(&ctx, &main).unwrap();
    assert!(!lock.locked());
}

#[test]
fn an_rlock_counts_its_owner_s_entries() {
    let s = session();
    let ctx = s.context().clone();
    let main = s.main_thread().clone();
    let lock = Lock::new(&ctx, LockKind::Reentrant, 0);
    for _ in 0..3 {
        assert!(lock.acquire(&ctx, &main, None, None, waits("r")).unwrap());
    }
    for left in [true, true, false] {
        lock.release(&ctx, &main).unwrap();
        assert_eq!(lock.locked(), left);
    }
}

#[test]
fn a_blocked_acquire_is_handed_the_lock_on_release() {
    let s = session();
    let ctx = s.context().clone();
    let main = s.main_thread().clone();
    let lock = Lock::new(&ctx, LockKind::Plain, 0);
    lock.acquire(&ctx, &main, None, None, waits("a")).unwrap();
    let other = thread(&ctx, "other");
    let (ctx2, lock2, other2) = (ctx.clone(), lock.clone(), other.clone());
    let waiter = std::thread::spawn(move || {
        let got = lock2.acquire(&ctx2, &other2, None, None, waits("b"));
        let mine = lock2.held_by(&other2);
        lock2.release(&ctx2, &other2).unwrap();
        (got.ok(), mine)
    });
    std::thread::sleep(Duration::from_millis(20));
    lock.release(&ctx, &main).unwrap();
    assert_eq!(waiter.join().unwrap(), (Some(true), true));
}

fn ints(values: &[Value]) -> Vec<i64> {
    values
        .iter()
        .map(|v| match v {
            Value::Int(i) => *i,
            _ => panic!("not an int"),
        })
        .collect()
}

#[test]
fn queues_give_items_in_their_order() {
    let s = session();
    let ctx = s.context().clone();
    let main = s.main_thread().clone();
    for (order, want) in [
        (Order::Fifo, [3, 1, 2]),
        (Order::Lifo, [2, 1, 3]),
        (Order::Priority, [1, 2, 3]),
    ] {
        let q = Queue::new(&ctx, order, None);
        for i in [3, 1, 2] {
            assert!(q
                .put(&ctx, &main, Value::Int(i), None, waits("put"))
                .unwrap());
        }
        let got: Vec<Value> = (0..3)
            .map(|_| q.get(&ctx, &main, None, waits("get")).unwrap().unwrap())
            .collect();
        assert_eq!(ints(&got), want);
        assert_eq!(q.size(), 0);
    }
}

#[test]
fn a_bounded_queue_refuses_past_its_capacity_and_a_getter_wakes_on_put() {
    let s = session();
    let ctx = s.context().clone();
    let main = s.main_thread().clone();
    let q = Queue::new(&ctx, Order::Fifo, Some(1));
    assert!(q.put_now(&ctx, Value::Int(1)));
    assert!(!q.put_now(&ctx, Value::Int(2)) && q.is_full());
    q.get(&ctx, &main, None, waits("get")).unwrap();
    let getter = thread(&ctx, "getter");
    let (ctx2, q2) = (ctx.clone(), q.clone());
    let got = std::thread::spawn(move || q2.get(&ctx2, &getter, None, waits("get")).unwrap());
    std::thread::sleep(Duration::from_millis(20));
    assert!(q
        .put(&ctx, &main, Value::Int(7), None, waits("put"))
        .unwrap());
    assert_eq!(ints(&[got.join().unwrap().unwrap()]), [7]);
}

#[test]
fn the_only_thread_waiting_for_ever_is_a_deadlock_and_a_timeout_is_not() {
    let s = session();
    let ctx = s.context().clone();
    let main = s.main_thread().clone();
    let q = Queue::new(&ctx, Order::Fifo, None);
    let timed = q.get(&ctx, &main, None, || {
        BlockOn::new("an item", None, soon(&ctx))
    });
    assert!(matches!(timed, Ok(None)), "a timed get times out");
    let err = q.get(&ctx, &main, None, waits("an item")).unwrap_err();
    assert!(err.is(kind::DEADLOCK), "{}", err.message);
    assert!(err.message.contains("the only thread"), "{}", err.message);
}

#[test]
fn a_lock_cycle_is_found_and_names_both_threads() {
    let s = session();
    let ctx = s.context().clone();
    let (a, b) = (
        Lock::new(&ctx, LockKind::Plain, 0),
        Lock::new(&ctx, LockKind::Plain, 0),
    );
    let both_hold = Arc::new(Barrier::new(2));
    let run = |name: &str, first: Arc<Lock>, second: Arc<Lock>| {
        let (ctx, me, both_hold) = (ctx.clone(), thread(&ctx, name), both_hold.clone());
        std::thread::spawn(move || {
            first
                .acquire(&ctx, &me, None, None, waits("first"))
                .unwrap();
            both_hold.wait();
            let result = second.acquire(&ctx, &me, None, None, waits("second"));
            // The thread that found the cycle gives up its lock, so the
            // other (interrupted, or handed the lock) can end too.
            first.release(&ctx, &me).unwrap();
            let _ = second.release(&ctx, &me);
            result.err().map(|e| {
                let notes: Vec<String> = e.notes.iter().map(|n| n.message.clone()).collect();
                (e.message, notes)
            })
        })
    };
    let one = run("one", a.clone(), b.clone());
    let two = run("two", b, a);
    let reports: Vec<_> = [one, two]
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    let (message, notes) = &reports[0];
    assert!(
        message.contains("wait for each other's locks in a cycle"),
        "{message}"
    );
    let text = notes.join("\n");
    assert!(
        text.contains("thread one holds lock#1") && text.contains("thread two holds lock#2"),
        "{text}"
    );
}
