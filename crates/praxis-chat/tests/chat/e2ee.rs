//! End-to-end encryption: two clients built on vodozemac (the Matrix Olm/Megolm library)
//! register their keys, claim each other's prekeys and exchange messages through praxis, over
//! REST and the WebSocket. praxis stores and relays ciphertext it never reads: the case checks
//! the rows hold no plain text.

use std::collections::BTreeSet;

use axum::http::Method;
use praxis_testkit::Kind;
use serde_json::{Value, json};
use sqlx::Row;
use vodozemac::megolm::{
    GroupSession, InboundGroupSession, MegolmMessage, SessionConfig as GroupConfig, SessionKey,
};
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};

use crate::support::Harness;
use crate::ws::{Ws, serve};

const OLM: &str = "m.olm.v1.curve25519-aes-sha2";
const MEGOLM: &str = "m.megolm.v1.aes-sha2";
const CONVERSATIONS: &str = "/api/v1/chat/conversations";

/// One device of one account: its Olm account, the keys it published.
struct Device {
    user: &'static str,
    id: &'static str,
    olm: Account,
}

impl Device {
    fn new(user: &'static str, id: &'static str) -> Self {
        Self {
            user,
            id,
            olm: Account::new(),
        }
    }

    fn curve25519(&self) -> String {
        self.olm.identity_keys().curve25519.to_base64()
    }

    /// The upload body: identity keys, a signed prekey (the fallback key) and `n` signed
    /// one-time prekeys.
    fn upload_body(&mut self, n: usize) -> Value {
        self.olm.generate_one_time_keys(n);
        self.olm.generate_fallback_key();
        let keys = self.olm.identity_keys();
        let one_time: Vec<Value> = self
            .olm
            .one_time_keys()
            .iter()
            .map(|(id, key)| {
                let key = key.to_base64();
                json!({"key_id": id.to_base64(), "signature": self.olm.sign(&key).to_base64(), "key": key})
            })
            .collect();
        let (fallback_id, fallback) = self
            .olm
            .fallback_key()
            .into_iter()
            .next()
            .expect("a fallback key");
        let fallback = fallback.to_base64();
        self.olm.mark_keys_as_published();
        json!({
            "identity_key": keys.curve25519.to_base64(),
            "signing_key": keys.ed25519.to_base64(),
            "signed_prekey": {"key_id": fallback_id.to_base64(),
                              "signature": self.olm.sign(&fallback).to_base64(), "key": fallback},
            "one_time_prekeys": one_time,
        })
    }

    async fn upload(&mut self, h: &Harness, n: usize) -> Value {
        let body = self.upload_body(n);
        h.as_user(
            self.user,
            Method::PUT,
            &format!("/api/v1/chat/devices/{}/keys", self.id),
            Some(body),
        )
        .await
        .ok(200)
    }
}

/// Checks a signature the way a client does, with the signer's Ed25519 key.
fn verify(signing_key: &Value, key: &Value, signature: &Value) {
    let signer = Ed25519PublicKey::from_base64(signing_key.as_str().unwrap()).unwrap();
    let signature = Ed25519Signature::from_base64(signature.as_str().unwrap()).unwrap();
    signer
        .verify(key.as_str().unwrap().as_bytes(), &signature)
        .expect("the prekey is signed by the device's signing key");
}

/// `claimer` claims one prekey of `user`'s device; returns the claimed entries.
async fn claim(h: &Harness, claimer: &str, user: &str, device: &str) -> Vec<Value> {
    h.as_user(
        claimer,
        Method::POST,
        "/api/v1/chat/keys/claim",
        Some(json!({"devices": [{"account": user, "device_id": device}]})),
    )
    .await
    .ok(200)["claimed"]
        .as_array()
        .unwrap()
        .clone()
}

/// An Olm envelope from `from` to one recipient device.
fn olm_envelope(from: &Device, to_curve: &str, message: &OlmMessage) -> Value {
    json!({"algorithm": OLM, "sender_device": from.id,
           "ciphertext": {to_curve: serde_json::to_value(message).unwrap()}})
}

/// The Olm message for `me` in an envelope.
fn olm_part(envelope: &Value, me: &Device) -> OlmMessage {
    assert_eq!(envelope["algorithm"], OLM, "{envelope}");
    serde_json::from_value(envelope["ciphertext"][me.curve25519()].clone()).unwrap()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

pub async fn e2ee_olm_and_megolm_clients_talk_through_praxis_and_rows_hold_ciphertext(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let mut alice = Device::new("alice", "ALICEPHONE");
    let mut bob = Device::new("bob", "BOBLAPTOP");
    let mine = alice.upload(&h, 3).await;
    assert_eq!(mine["one_time_prekeys"], 3, "{mine}");
    bob.upload(&h, 3).await;

    // Strangers see no keys and claim nothing.
    h.as_user(
        "alice",
        Method::GET,
        "/api/v1/chat/accounts/bob/devices",
        None,
    )
    .await
    .problem(404);
    assert!(claim(&h, "alice", "bob", bob.id).await.is_empty());

    let c = h
        .as_user(
            "alice",
            Method::POST,
            CONVERSATIONS,
            Some(json!({"kind": "direct", "with": "bob", "encrypted": true})),
        )
        .await
        .ok(201);
    assert_eq!(c["encrypted"], true);
    let c = c["id"].as_str().unwrap().to_owned();
    let mut alice_ws = Ws::connect(addr, "alice").await;
    let mut bob_ws = Ws::connect(addr, "bob").await;
    alice_ws.subscribe(&c, None).await;
    bob_ws.subscribe(&c, None).await;

    // Alice reads Bob's directory entry and checks his signed prekey herself.
    let listed = h
        .as_user(
            "alice",
            Method::GET,
            "/api/v1/chat/accounts/bob/devices",
            None,
        )
        .await
        .ok(200);
    let entry = &listed["devices"][0];
    assert_eq!(entry["device_id"], bob.id);
    assert!(
        entry.get("one_time_prekeys").is_none(),
        "only the owner sees the count: {entry}"
    );
    verify(
        &entry["signing_key"],
        &entry["signed_prekey"]["key"],
        &entry["signed_prekey"]["signature"],
    );

    // She claims a one-time prekey, checks it and opens an Olm session.
    let claimed = claim(&h, "alice", "bob", bob.id).await;
    assert_eq!(claimed.len(), 1);
    let otk = &claimed[0]["one_time_prekey"];
    verify(&claimed[0]["signing_key"], &otk["key"], &otk["signature"]);
    let bob_identity =
        Curve25519PublicKey::from_base64(claimed[0]["identity_key"].as_str().unwrap()).unwrap();
    let mut to_bob: Session = alice
        .olm
        .create_outbound_session(
            SessionConfig::version_1(),
            bob_identity,
            Curve25519PublicKey::from_base64(otk["key"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
    let secret1 = "secret-plaintext: the launch code is 0000";
    let sealed = to_bob.encrypt(secret1).unwrap();
    let sent = h
        .as_user(
            "alice",
            Method::POST,
            &format!("{CONVERSATIONS}/{c}/messages"),
            Some(json!({"client_id": "m1", "encrypted": olm_envelope(&alice, &bob.curve25519(), &sealed)})),
        )
        .await
        .ok(201);
    assert!(sent.get("body").is_none(), "{sent}");

    // Bob gets it live, finds Alice's identity key in the directory, and decrypts.
    let got = bob_ws.messages(1).await.remove(0);
    assert_eq!(got["sender"], "alice");
    assert!(got.get("body").is_none(), "{got}");
    let envelope = &got["encrypted"];
    assert_eq!(envelope["sender_device"], alice.id);
    let alice_dir = h
        .as_user(
            "bob",
            Method::GET,
            "/api/v1/chat/accounts/alice/devices",
            None,
        )
        .await
        .ok(200);
    let alice_identity =
        Curve25519PublicKey::from_base64(alice_dir["devices"][0]["identity_key"].as_str().unwrap())
            .unwrap();
    let OlmMessage::PreKey(prekey) = olm_part(envelope, &bob) else {
        panic!("the first message of a session is a pre-key message");
    };
    let inbound = bob
        .olm
        .create_inbound_session(SessionConfig::version_1(), alice_identity, &prekey)
        .unwrap();
    assert_eq!(text(inbound.plaintext), secret1);
    let mut to_alice = inbound.session;
    assert_eq!(alice_ws.messages(1).await[0]["seq"], 1, "the sender's copy");

    // Bob answers over the WebSocket; Alice decrypts with her session.
    let secret2 = "secret-plaintext: received, burn after reading";
    let reply = to_alice.encrypt(secret2).unwrap();
    bob_ws
        .send(
            json!({"type": "send", "conversation_id": c, "client_id": "r1",
                     "encrypted": olm_envelope(&bob, &alice.curve25519(), &reply)}),
        )
        .await;
    let got = alice_ws.messages(1).await.remove(0);
    assert_eq!(got["seq"], 2);
    assert_eq!(
        text(
            to_bob
                .decrypt(&olm_part(&got["encrypted"], &alice))
                .unwrap()
        ),
        secret2
    );
    bob_ws.messages(1).await;

    // A group: Alice shares a Megolm session key over the Olm session, then sends to the
    // group; Bob reads it from history.
    let group = h
        .as_user(
            "alice",
            Method::POST,
            CONVERSATIONS,
            Some(json!({"kind": "group", "title": "ops", "members": ["bob"], "encrypted": true})),
        )
        .await
        .ok(201);
    let g = group["id"].as_str().unwrap().to_owned();
    let mut outbound = GroupSession::new(GroupConfig::version_1());
    let room_key = json!({"group": g, "session_id": outbound.session_id(),
                          "session_key": outbound.session_key().to_base64()});
    let shared = to_bob.encrypt(room_key.to_string()).unwrap();
    h.as_user(
        "alice",
        Method::POST,
        &format!("{CONVERSATIONS}/{c}/messages"),
        Some(json!({"client_id": "key1", "encrypted": olm_envelope(&alice, &bob.curve25519(), &shared)})),
    )
    .await
    .ok(201);
    let secret3 = "secret-plaintext: the group meets at noon";
    let sealed = outbound.encrypt(secret3);
    h.as_user(
        "alice",
        Method::POST,
        &format!("{CONVERSATIONS}/{g}/messages"),
        Some(
            json!({"client_id": "g1", "encrypted": {"algorithm": MEGOLM, "sender_device": alice.id,
                     "session_id": outbound.session_id(), "ciphertext": sealed.to_base64()}}),
        ),
    )
    .await
    .ok(201);
    let key_msg = bob_ws.messages(1).await.remove(0);
    let room_key: Value = serde_json::from_str(&text(
        to_alice
            .decrypt(&olm_part(&key_msg["encrypted"], &bob))
            .unwrap(),
    ))
    .unwrap();
    let mut inbound_group = InboundGroupSession::new(
        &SessionKey::from_base64(room_key["session_key"].as_str().unwrap()).unwrap(),
        GroupConfig::version_1(),
    );
    let page = h.history("bob", &g, "after=0").await;
    let m = &page["messages"][0];
    assert_eq!(m["encrypted"]["session_id"], room_key["session_id"]);
    let megolm =
        MegolmMessage::from_base64(m["encrypted"]["ciphertext"].as_str().unwrap()).unwrap();
    assert_eq!(
        text(inbound_group.decrypt(&megolm).unwrap().plaintext),
        secret3
    );

    // The rows hold ciphertext only: no body, and none of the plain texts anywhere.
    let rows = sqlx::query("SELECT body, encrypted FROM chat_messages")
        .fetch_all(h.backend.platform.db.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let body: Option<String> = row.try_get("body").unwrap();
        let stored: String = row.try_get("encrypted").unwrap();
        assert_eq!(body, None);
        for secret in [secret1, secret2, secret3, "secret-plaintext", "session_key"] {
            assert!(!stored.contains(secret), "plain text in a row: {stored}");
        }
    }
}

pub async fn e2ee_one_time_prekeys_are_claimed_at_most_once(kind: Kind) {
    let h = Harness::start(kind).await;
    let mut bob = Device::new("bob", "BOB1");
    let uploaded = bob.upload_body(4);
    let stored = h
        .as_user(
            "bob",
            Method::PUT,
            "/api/v1/chat/devices/BOB1/keys",
            Some(uploaded.clone()),
        )
        .await
        .ok(200);
    assert_eq!(stored["one_time_prekeys"], 4);
    h.group("bob", &["alice", "carol", "dave", "erin"]).await;
    // Four contacts claim at once: four different keys.
    let (a, b, c, d) = tokio::join!(
        claim(&h, "alice", "bob", "BOB1"),
        claim(&h, "carol", "bob", "BOB1"),
        claim(&h, "dave", "bob", "BOB1"),
        claim(&h, "erin", "bob", "BOB1"),
    );
    let ids: BTreeSet<String> = [a, b, c, d]
        .iter()
        .map(|got| {
            got[0]["one_time_prekey"]["key_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 4, "every claim took its own key: {ids:?}");
    // None left: a claim gives the signed prekey only.
    let last = claim(&h, "alice", "bob", "BOB1").await;
    assert!(last[0].get("one_time_prekey").is_none(), "{last:?}");
    assert_eq!(last[0]["signed_prekey"], uploaded["signed_prekey"]);
    // Uploading the claimed keys again does not hand them out again.
    let again = h
        .as_user(
            "bob",
            Method::PUT,
            "/api/v1/chat/devices/BOB1/keys",
            Some(json!({"one_time_prekeys": uploaded["one_time_prekeys"]})),
        )
        .await
        .ok(200);
    assert_eq!(again["one_time_prekeys"], 0, "{again}");
    assert!(
        claim(&h, "carol", "bob", "BOB1").await[0]
            .get("one_time_prekey")
            .is_none()
    );
    // Bob sees his device with its count; deleting it empties the directory.
    let own = h
        .as_user(
            "bob",
            Method::GET,
            "/api/v1/chat/accounts/bob/devices",
            None,
        )
        .await
        .ok(200);
    assert_eq!(own["devices"][0]["one_time_prekeys"], 0);
    h.as_user("bob", Method::DELETE, "/api/v1/chat/devices/BOB1", None)
        .await
        .ok(204);
    h.as_user("bob", Method::DELETE, "/api/v1/chat/devices/BOB1", None)
        .await
        .problem(404);
    assert!(claim(&h, "alice", "bob", "BOB1").await.is_empty());
}

pub async fn e2ee_bad_keys_and_wrong_content_are_named_problems(kind: Kind) {
    let h = Harness::start(kind).await;
    let addr = serve(h.app.clone()).await;
    let mut alice = Device::new("alice", "A1");
    let good = alice.upload_body(1);
    let put = |body: Value| {
        let h = &h;
        async move {
            h.as_user(
                "alice",
                Method::PUT,
                "/api/v1/chat/devices/A1/keys",
                Some(body),
            )
            .await
        }
    };
    let field = |p: &Value| {
        p["errors"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // A first upload needs identity keys (409: the device's state), keys must be base64 of 32
    // bytes (400).
    let p = put(json!({"one_time_prekeys": good["one_time_prekeys"]}))
        .await
        .problem(409);
    assert_eq!(field(&p), "identity_key", "{p}");
    let mut bad = good.clone();
    bad["identity_key"] = json!("AAAA");
    assert_eq!(field(&put(bad).await.problem(400)), "identity_key");
    let mut bad = good.clone();
    bad["signed_prekey"]["signature"] = json!(good["identity_key"]);
    assert_eq!(
        field(&put(bad).await.problem(400)),
        "signed_prekey.signature"
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"key_id": format!("k{i}"), "key": good["identity_key"]}))
        .collect();
    let mut bad = good.clone();
    bad["one_time_prekeys"] = json!(many);
    assert_eq!(field(&put(bad).await.problem(400)), "one_time_prekeys");
    h.as_user(
        "alice",
        Method::PUT,
        "/api/v1/chat/devices/bad%20id/keys",
        Some(good.clone()),
    )
    .await
    .problem(400);
    put(good.clone()).await.ok(200);
    // Identity keys never change.
    let other = Device::new("alice", "A1").upload_body(0);
    let p = put(other).await.problem(409);
    assert!(
        p["detail"].as_str().unwrap().contains("delete the device"),
        "{p}"
    );

    // Content must match the conversation.
    let plain = h.direct("alice", "bob").await;
    let secret = h
        .as_user(
            "alice",
            Method::POST,
            CONVERSATIONS,
            Some(json!({"kind": "group", "title": "s", "members": ["bob"], "encrypted": true})),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let envelope = json!({"algorithm": MEGOLM, "sender_device": "A1", "ciphertext": "AwgAEhAB"});
    let send = |c: &str, body: Value| {
        let h = &h;
        let path = format!("{CONVERSATIONS}/{c}/messages");
        async move { h.as_user("alice", Method::POST, &path, Some(body)).await }
    };
    // The wrong content for the conversation's mode: 409 (the conversation's state) naming it.
    let p = send(&secret, json!({"client_id": "x1", "body": "plain"}))
        .await
        .problem(409);
    assert_eq!(field(&p), "body", "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("encrypted")
    );
    let p = send(&plain, json!({"client_id": "x2", "encrypted": envelope}))
        .await
        .problem(409);
    assert_eq!(field(&p), "encrypted", "{p}");
    let p = send(
        &secret,
        json!({"client_id": "x3", "body": "b", "encrypted": envelope}),
    )
    .await
    .problem(400);
    assert_eq!(field(&p), "encrypted", "{p}");
    let mut stranger = envelope.clone();
    stranger["sender_device"] = json!("NOT-MINE");
    let p = send(&secret, json!({"client_id": "x4", "encrypted": stranger}))
        .await
        .problem(409);
    assert_eq!(field(&p), "encrypted.sender_device", "{p}");
    let mut number = envelope.clone();
    number["ciphertext"] = json!(42);
    let p = send(&secret, json!({"client_id": "x5", "encrypted": number}))
        .await
        .problem(400);
    assert_eq!(field(&p), "encrypted.ciphertext", "{p}");
    let mut huge = envelope.clone();
    huge["ciphertext"] = json!("A".repeat(20_000));
    let p = send(&secret, json!({"client_id": "x6", "encrypted": huge}))
        .await
        .problem(400);
    assert_eq!(field(&p), "encrypted", "{p}");
    let p = send(&secret, json!({"client_id": "x7"})).await.problem(400);
    assert_eq!(field(&p), "body", "{p}");
    // A well-formed envelope is stored, and an edit must stay ciphertext.
    let m = send(&secret, json!({"client_id": "x8", "encrypted": envelope}))
        .await
        .ok(201);
    assert_eq!(m["encrypted"], envelope);
    let path = format!("{CONVERSATIONS}/{secret}/messages/1");
    h.as_user(
        "alice",
        Method::PATCH,
        &path,
        Some(json!({"body": "plain"})),
    )
    .await
    .problem(409);
    let mut edited = envelope.clone();
    edited["ciphertext"] = json!("AwgBEhAC");
    let e = h
        .as_user(
            "alice",
            Method::PATCH,
            &path,
            Some(json!({"encrypted": edited})),
        )
        .await
        .ok(200);
    assert_eq!(e["encrypted"], edited);
    // The direct conversation is one per pair: asking for the other mode is a conflict.
    h.as_user(
        "bob",
        Method::POST,
        CONVERSATIONS,
        Some(json!({"kind": "direct", "with": "alice", "encrypted": true})),
    )
    .await
    .problem(409);
    // Over the WebSocket, the same mistakes are error frames naming the field.
    let mut ws = Ws::connect(addr, "alice").await;
    ws.send(json!({"type": "send", "conversation_id": secret, "client_id": "w1", "body": "plain"}))
        .await;
    let frame = ws.expect("error").await;
    assert!(frame.to_string().contains("body"), "{frame}");
    // Claims are checked too.
    let p = h
        .as_user(
            "alice",
            Method::POST,
            "/api/v1/chat/keys/claim",
            Some(json!({"devices": []})),
        )
        .await
        .problem(400);
    assert_eq!(field(&p), "devices", "{p}");
}
