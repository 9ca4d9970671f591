//! Property test over the network layer (issue 7): random schedules of
//! edits, disconnects, reconnects, connection cuts, partitions and client
//! restarts (reopened from their SQLite stores) on three clients behind
//! fault-injecting proxies. After healing, every replica
//! and the relay hold the same document and no edit is lost.
//!
//! Each case runs real sockets, so the case count is 16 regardless of
//! `PROPTEST_CASES` (which would make it minutes); set
//! `WEFT_CLIENT_PROP_CASES` for a longer soak.

#[path = "client/common.rs"]
mod common;

use common::*;
use proptest::prelude::*;
use std::time::Duration;
use weft_client::Client;
use weft_tests::proxy::Proxy;

const CLIENTS: usize = 3;

#[derive(Clone, Debug)]
enum Step {
    Edit { client: usize, by: u64 },
    Disconnect(usize),
    Reconnect(usize),
    Cut(usize),
    Partition(usize, bool),
    Restart(usize),
    Pause(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let c = 0..CLIENTS;
    prop_oneof![
        6 => (c.clone(), 1..5u64).prop_map(|(client, by)| Step::Edit { client, by }),
        1 => c.clone().prop_map(Step::Disconnect),
        1 => c.clone().prop_map(Step::Reconnect),
        1 => c.clone().prop_map(Step::Cut),
        1 => (c.clone(), any::<bool>()).prop_map(|(i, on)| Step::Partition(i, on)),
        1 => c.prop_map(Step::Restart),
        1 => (0..30u64).prop_map(Step::Pause),
    ]
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let relay = relay().await;
    let mut proxies = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let db = |i: usize| dir.path().join(format!("client{i}.db"));
    let open = |i: usize, url: &str| {
        let client = Client::open_sqlite(db(i)).unwrap();
        let replica = client.replica("prop").unwrap();
        client.connect(config(url)).unwrap();
        (client, replica)
    };
    let mut clients: Vec<(Client, weft_client::Replica)> = Vec::new();
    for i in 0..CLIENTS {
        let proxy = Proxy::start(relay.local_addr()).await.unwrap();
        proxy.set_delay(Duration::from_millis(1));
        clients.push(open(i, &proxy.url()));
        proxies.push(proxy);
    }
    let mut connected = [true; CLIENTS];
    let mut total = 0i128;
    let mut words_written = Vec::new();
    for (k, step) in steps.into_iter().enumerate() {
        match step {
            Step::Edit { client, by } => {
                let word = format!("e{k}");
                words_written.push(word.clone());
                total += i128::from(by);
                clients[client]
                    .1
                    .transact_async(move |tx| {
                        tx.text("t")?.insert(0, &format!("{word} "))?;
                        tx.counter("n")?.increment(by)?;
                        tx.map("m")?.put("last", &word)
                    })
                    .await
                    .unwrap();
            }
            Step::Disconnect(i) => {
                clients[i].0.disconnect().await;
                connected[i] = false;
            }
            Step::Reconnect(i) => {
                clients[i].0.connect(config(&proxies[i].url())).unwrap();
                connected[i] = true;
            }
            Step::Cut(i) => proxies[i].cut_all(),
            Step::Partition(i, on) => proxies[i].partition(on),
            Step::Restart(i) => {
                clients[i].0.disconnect().await;
                clients[i] = open(i, &proxies[i].url()); // drops the old client
                connected[i] = true;
            }
            Step::Pause(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }
    // Heal everything.
    for i in 0..CLIENTS {
        proxies[i].partition(false);
        if !connected[i] {
            clients[i].0.connect(config(&proxies[i].url())).unwrap();
        }
    }
    let replicas: Vec<_> = clients.iter().map(|(_, r)| r).collect();
    prop_assert!(
        converged(&replicas, Duration::from_secs(10)).await,
        "not converged:\n{}",
        describe(&replicas)
    );
    let doc = copy(replicas[0]);
    for r in &replicas[1..] {
        prop_assert!(copy(r) == doc);
    }
    prop_assert_eq!(doc.counter("n").unwrap(), total);
    words_written.sort();
    prop_assert_eq!(words(&doc, "t"), words_written);
    prop_assert!(relay_copy(&url(&relay), "prop").await == doc);
    for (client, _) in &clients {
        client.disconnect().await;
    }
    relay.shutdown().await;
    Ok(())
}

fn cases() -> u32 {
    std::env::var("WEFT_CLIENT_PROP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// Run through a `TestRunner` built here rather than `proptest!`: the macro
/// lets `PROPTEST_CASES` override an explicit case count, and CI sets it to
/// 1,000 for the in-memory property tests (this one then took two minutes).
#[test]
fn random_schedules_of_edits_and_faults_converge() {
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        source_file: Some(file!()),
        test_name: Some("random_schedules_of_edits_and_faults_converge"),
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(step(), 5..40), |steps| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(steps))
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
}
