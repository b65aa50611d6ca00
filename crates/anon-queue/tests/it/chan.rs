use anon_queue::{Channel, PopError, PushError, RecvError, SendError, ThreadParker};
use std::sync::Arc;

#[test]
fn try_send_and_try_recv_never_wait() {
    let ch = Channel::new(1, 1);
    assert_eq!(ch.try_recv(), Err(PopError::Empty));
    ch.try_send(1).unwrap();
    assert_eq!(ch.try_send(2), Err(PushError::Full(2)));
    assert_eq!(ch.try_recv(), Ok(1));
    ch.close();
    assert_eq!(ch.try_send(3), Err(PushError::Closed(3)));
    assert_eq!(ch.try_recv(), Err(PopError::Closed));
}

#[test]
fn send_on_a_closed_channel_hands_the_value_back() {
    let ch = Channel::new(1, 1);
    ch.close();
    let park = ThreadParker::current();
    assert_eq!(ch.send(5, &park), Err(SendError::Closed(5)));
    assert_eq!(ch.recv(&park), Err(RecvError::Closed));
}

#[test]
fn a_full_wait_list_answers_again_instead_of_waiting() {
    // No sender may wait: a full channel turns `send` into "try again" at once.
    let ch = Channel::new(1, 0);
    let park = ThreadParker::current();
    ch.send(1, &park).unwrap();
    assert_eq!(ch.send(2, &park), Err(SendError::Again(2)));
    assert_eq!(ch.recv(&park), Ok(1));
    assert_eq!(ch.recv(&park), Err(RecvError::Again));
}

#[test]
fn waiting_senders_and_receivers_pass_every_item() {
    const N: u32 = 2_000;
    let ch = Arc::new(Channel::new(2, 4));
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let ch = Arc::clone(&ch);
            std::thread::spawn(move || {
                let park = ThreadParker::current();
                for i in 0..N {
                    ch.send(p * N + i, &park).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let ch = Arc::clone(&ch);
            std::thread::spawn(move || {
                let park = ThreadParker::current();
                let mut got = Vec::new();
                while let Ok(v) = ch.recv(&park) {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    ch.close();
    let mut all: Vec<u32> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..2 * N).collect::<Vec<_>>());
    assert_eq!((ch.waiting_senders(), ch.waiting_receivers()), (0, 0));
}
