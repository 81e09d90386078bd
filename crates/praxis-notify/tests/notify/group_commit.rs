//! The accept group commit: concurrent send requests are written in one transaction, each
//! answered after the commit with its own result, each bus event under its own trace context;
//! one request that fails the transaction fails alone.
//!
//! Every case drives an [`Accepter`] of its own on the harness's platform (the app's accepter
//! is untouched), holds its writers with [`Accepter::hold_writes`] until every request is
//! queued, then lets them go: the batch is exactly the queued requests, with no timing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use praxis_http::Problem;
use praxis_infra::InfraError;
use praxis_infra::bus::Event;
use praxis_infra::trace::{self, TraceContext};
use praxis_notify::NotifySettings;
use praxis_notify::domain::model::{MessageRecord, now_ms};
use praxis_notify::store::Store;
use praxis_notify::store::templates::Templates;
use praxis_notify::workers::accept::{
    ACCEPTED_TOPIC, Accepted, AcceptedEvent, Accepter, BatchStats, Pending, SendRequest, Submission,
};

use crate::support::{DEADLINE, Harness, Kind, eventually, settings, webhook_template};

praxis_testkit::backend_matrix!(crate::group_commit: [
    concurrent_accepts_are_committed_together,
    a_failing_request_does_not_fail_its_batch,
    sends_are_validated_by_the_writer_in_its_batch,
]);

type Answer = Result<Vec<Result<Accepted, Problem>>, InfraError>;

/// A harness without workers (nothing is delivered) and an accepter of the test's own.
async fn start(kind: Kind) -> (Harness, Accepter) {
    let settings = NotifySettings {
        workers: false,
        ..settings()
    };
    let h = Harness::start(kind, settings.clone()).await;
    h.template("t", webhook_template()).await;
    let store = Store::new(h.platform.db.clone());
    let accepter = Accepter::new(
        store.clone(),
        Templates::new(store),
        h.platform.bus.clone(),
        Arc::new(settings),
    );
    (h, accepter)
}

/// A valid message for `body` (merged into a webhook send of template `t`).
async fn message(accepter: &Accepter, body: Value) -> MessageRecord {
    let mut req =
        json!({"to": {"webhook": "http://127.0.0.1:9/h"}, "template": "t", "data": {"n": 1}});
    if let (Some(map), Value::Object(extra)) = (req.as_object_mut(), body) {
        map.extend(extra);
    }
    let req: SendRequest = serde_json::from_value(req).expect("a send request");
    let lookups = accepter.lookups(&[&req]).await.expect("lookups");
    accepter
        .prepare(&lookups, "sender-1", &req, None, now_ms(), "")
        .expect("a valid request")
}

/// Queues one request per entry, in order (each queued before the next is submitted), under
/// its own trace context, while the writers are held; then lets the writers go and returns the
/// answers in the same order.
async fn accept_together(
    accepter: &Accepter,
    requests: Vec<(Vec<MessageRecord>, TraceContext)>,
) -> Vec<Answer> {
    let hold = accepter.hold_writes().await;
    let mut tasks: Vec<JoinHandle<Answer>> = Vec::new();
    for (i, (messages, ctx)) in requests.into_iter().enumerate() {
        let a = accepter.clone();
        tasks.push(tokio::spawn(trace::in_scope(ctx, async move {
            a.accept(&messages).await
        })));
        accepter.wait_queued(i + 1).await;
    }
    drop(hold);
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("accept task"));
    }
    answers
}

/// The one result of a single-message answer.
fn single(answer: &Answer) -> &Result<Accepted, Problem> {
    let results = answer
        .as_ref()
        .expect("the request's transaction committed");
    assert_eq!(results.len(), 1, "one result per message");
    &results[0]
}

/// The trace context of each accepted message's bus event, read by a consumer group of the
/// test's own; waits until every one of `ids` has been seen.
async fn event_traces(h: &Harness, ids: &[String]) -> HashMap<String, Option<TraceContext>> {
    let seen: Arc<Mutex<HashMap<String, Option<TraceContext>>>> = Arc::default();
    let sink = seen.clone();
    h.platform
        .bus
        .subscribe(ACCEPTED_TOPIC, "group-commit-test", move |event: Event| {
            let sink = sink.clone();
            async move {
                let payload: AcceptedEvent =
                    serde_json::from_slice(&event.payload).expect("an accepted event");
                let mut seen = sink.lock().expect("lock");
                for id in payload.messages {
                    seen.insert(id, event.trace);
                }
                Ok(())
            }
        })
        .expect("subscribe");
    eventually(DEADLINE, "every accepted event is consumed", || async {
        let seen = seen.lock().expect("lock");
        ids.iter()
            .all(|id| seen.contains_key(id))
            .then(|| seen.clone())
    })
    .await
}

pub async fn concurrent_accepts_are_committed_together(kind: Kind) {
    let (h, accepter) = start(kind).await;
    let mut requests = Vec::new();
    for n in 0..16 {
        let m = message(&accepter, json!({"data": {"n": n}})).await;
        requests.push((vec![m], TraceContext::new_root(true)));
    }
    // An idempotent retry inside the same batch, and the same key for another message.
    let keyed = message(&accepter, json!({"idempotency_key": "order-7"})).await;
    let retry = message(&accepter, json!({"idempotency_key": "order-7"})).await;
    let reused = message(
        &accepter,
        json!({"idempotency_key": "order-7", "data": {"n": 99}}),
    )
    .await;
    // A dedupe window claimed twice in the batch: one message.
    let window = message(
        &accepter,
        json!({"to": {"webhook": "http://127.0.0.1:9/d"}, "dedupe_window": 300}),
    )
    .await;
    let window_again = message(
        &accepter,
        json!({"to": {"webhook": "http://127.0.0.1:9/d"}, "dedupe_window": 300}),
    )
    .await;
    for m in [keyed, retry, reused, window, window_again] {
        requests.push((vec![m], TraceContext::new_root(true)));
    }
    let contexts: Vec<TraceContext> = requests.iter().map(|(_, ctx)| *ctx).collect();
    let before = accepter.batch_stats();
    assert_eq!(
        before,
        BatchStats {
            batches: 0,
            requests: 0
        }
    );

    let answers = accept_together(&accepter, requests).await;

    assert_eq!(
        accepter.batch_stats(),
        BatchStats {
            batches: 1,
            requests: 21
        },
        "the 21 queued requests are one transaction"
    );
    let mut new = Vec::new();
    for (i, answer) in answers.iter().take(16).enumerate() {
        let a = single(answer).as_ref().expect("accepted");
        assert!(!a.duplicate, "request {i} is a new message");
        new.push((a.id.clone(), contexts[i]));
    }
    let first = single(&answers[16]).as_ref().expect("the keyed send");
    let again = single(&answers[17]).as_ref().expect("its retry");
    assert!(!first.duplicate && again.duplicate);
    assert_eq!(
        first.id, again.id,
        "the retry resolves to the first message"
    );
    new.push((first.id.clone(), contexts[16]));
    let p = single(&answers[18])
        .as_ref()
        .expect_err("the key used for another message");
    assert_eq!(p.status.as_u16(), 422);
    let w = single(&answers[19])
        .as_ref()
        .expect("the first in its window");
    let w2 = single(&answers[20])
        .as_ref()
        .expect("the second in the window");
    assert!(!w.duplicate && w2.duplicate);
    assert_eq!(w.id, w2.id, "one message per dedupe window");
    new.push((w.id.clone(), contexts[19]));

    // Every new message is stored, and each request's event carries its own trace context.
    let ids: Vec<String> = new.iter().map(|(id, _)| id.clone()).collect();
    let store = Store::new(h.platform.db.clone());
    assert_eq!(
        store.messages(&ids).await.expect("messages").len(),
        ids.len(),
        "every new message is stored"
    );
    let traces = event_traces(&h, &ids).await;
    for (id, ctx) in &new {
        assert_eq!(
            traces.get(id).copied().flatten(),
            Some(*ctx),
            "message {id}: its event has the trace context of its own request"
        );
    }
}

pub async fn a_failing_request_does_not_fail_its_batch(kind: Kind) {
    let (h, accepter) = start(kind).await;
    let stored = message(&accepter, json!({"data": {"n": 0}})).await;
    let answer = accepter
        .accept(std::slice::from_ref(&stored))
        .await
        .expect("stored");
    assert!(answer[0].is_ok());
    // A message whose id is taken: its insert fails and aborts the batch's transaction.
    let mut clash = message(&accepter, json!({"data": {"n": 1}})).await;
    clash.id = stored.id.clone();
    let mut requests = Vec::new();
    for n in 2..6 {
        let m = message(&accepter, json!({"data": {"n": n}})).await;
        requests.push((vec![m], TraceContext::new_root(true)));
        if n == 3 {
            requests.push((vec![clash.clone()], TraceContext::new_root(true)));
        }
    }

    let answers = accept_together(&accepter, requests).await;

    assert_eq!(answers.len(), 5);
    assert!(
        answers[2].is_err(),
        "the clashing request fails: {:?}",
        answers[2]
    );
    let store = Store::new(h.platform.db.clone());
    for i in [0, 1, 3, 4] {
        let a = single(&answers[i]).as_ref().expect("accepted");
        assert!(!a.duplicate);
        let m = store.message(&a.id).await.expect("read");
        assert!(m.is_some(), "request {i} is stored");
    }
    // The stored message is the first one, untouched.
    let first = store
        .message(&stored.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(first.data, stored.data);
    // The failed batch was written again one request at a time: 1 + 4 commits.
    assert_eq!(
        accepter.batch_stats(),
        BatchStats {
            batches: 5,
            requests: 5
        }
    );
}

/// A submission of `bodies` (each merged into a webhook send of template `t`), as the send
/// routes make it: nothing validated yet.
fn submission(bodies: Vec<Value>) -> Submission {
    let requests = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut req = json!({"to": {"webhook": "http://127.0.0.1:9/h"}, "template": "t"});
            if let (Some(map), Value::Object(extra)) = (req.as_object_mut(), body) {
                map.extend(extra);
            }
            Pending {
                request: serde_json::from_value(req).expect("a send request"),
                header_key: None,
                prefix: format!("messages[{i}]."),
            }
        })
        .collect();
    Submission {
        sender: "sender-1".to_owned(),
        now_ms: now_ms(),
        requests,
    }
}

pub async fn sends_are_validated_by_the_writer_in_its_batch(kind: Kind) {
    let (h, accepter) = start(kind).await;
    h.subscriber("ann", json!({"webhook_url": "http://127.0.0.1:9/ann"}))
        .await;
    let submissions = vec![
        submission(vec![json!({"data": {"n": 1}})]),
        submission(vec![json!({"to": "ann", "data": {"n": 2}})]),
        submission(vec![json!({"template": "no-such", "data": {"n": 3}})]),
        // A bulk submission: one valid item, one whose data misses the variable.
        submission(vec![json!({"data": {"n": 4}}), json!({"data": {}})]),
        submission(vec![json!({"to": "nobody", "data": {"n": 5}})]),
    ];

    let hold = accepter.hold_writes().await;
    let mut tasks: Vec<JoinHandle<Answer>> = Vec::new();
    for (i, s) in submissions.into_iter().enumerate() {
        let a = accepter.clone();
        tasks.push(tokio::spawn(async move { a.send(s).await }));
        accepter.wait_queued(i + 1).await;
    }
    // A new version while the requests wait: the writer reads the templates in its own
    // transaction, so every request without a version gets this one.
    h.template("t", json!({"webhook": {"text": "v2 {{ n }}"}}))
        .await;
    drop(hold);
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("send task").expect("the batch committed"));
    }

    assert_eq!(
        accepter.batch_stats(),
        BatchStats {
            batches: 1,
            requests: 5
        },
        "the five queued submissions are one transaction"
    );
    let store = Store::new(h.platform.db.clone());
    let mut stored = Vec::new();
    for (i, j) in [(0, 0), (1, 0), (3, 0)] {
        let a = answers[i][j].as_ref().expect("accepted");
        assert!(!a.duplicate);
        let m = store.message(&a.id).await.expect("read").expect("stored");
        assert_eq!(m.template_version, 2, "submission {i}: the latest version");
        stored.push(m);
    }
    assert_eq!(stored[1].subscriber_id.as_deref(), Some("ann"));
    let problem = |i: usize, j: usize| -> (u16, Vec<String>) {
        let p = answers[i][j].as_ref().expect_err("refused");
        (
            p.status.as_u16(),
            p.errors.iter().map(|e| e.field.clone()).collect(),
        )
    };
    assert_eq!(
        problem(2, 0),
        (422, vec!["messages[0].template".to_owned()])
    );
    assert_eq!(problem(3, 1), (422, vec!["messages[1].data.n".to_owned()]));
    assert_eq!(problem(4, 0), (422, vec!["messages[0].to".to_owned()]));
}
