//! Subscriptions over graphql-transport-ws with a real WebSocket client, fed
//! by the log, so changes made through another server process arrive.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::*;

/// Long enough for a SQLite server in another process to notice a commit by
/// polling; a wait for a message, not a measurement.
const ARRIVAL: Duration = Duration::from_secs(20);

struct Subscriber(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Subscriber {
    async fn open(app: &TestApp, bearer: Option<&str>, query: &str) -> Subscriber {
        let mut request = format!("{}/graphql/ws", app.url.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        let payload = match bearer {
            Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        socket
            .send(Message::text(
                json!({ "type": "connection_init", "payload": payload }).to_string(),
            ))
            .await
            .unwrap();
        let mut subscriber = Subscriber(socket);
        assert_eq!(subscriber.message().await["type"], "connection_ack");
        subscriber
            .0
            .send(Message::text(
                json!({ "id": "1", "type": "subscribe", "payload": { "query": query } })
                    .to_string(),
            ))
            .await
            .unwrap();
        subscriber
    }

    async fn message(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(ARRIVAL, self.0.next())
                .await
                .expect("a message arrives")
                .expect("the socket stays open")
                .unwrap();
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] != "ping" {
                    return value;
                }
            }
        }
    }
}

const PENDING_CHANGED: &str =
    "subscription { pendingRequestsChanged { state requester { id } organization { id } } }";
const MINE_CHANGED: &str = "subscription { myRequestUpdated { state requester { id } } }";
const REQUEST_STAFF: &str =
    "mutation { requestRole(input: {organizationId: \"practice:123456789\", role: STAFF_USER}) { request { id } } }";

#[tokio::test]
async fn an_open_page_hears_of_requests_and_decisions_made_through_another_server_process() {
    for app in spawn_apps().await {
        app.first_security_official_of_greenville("alice").await;
        let second = ServerProcess::start(&app).await;

        let mut alice = Subscriber::open(&app, Some(&token("alice", &[])), PENDING_CHANGED).await;
        let mut bob = Subscriber::open(&app, Some(&token("bob", &[])), MINE_CHANGED).await;
        let mut mallory =
            Subscriber::open(&app, Some(&token("mallory", &[])), PENDING_CHANGED).await;
        // The subscriptions must be in place before the change they wait for.
        tokio::time::sleep(Duration::from_millis(200)).await;

        let requested = second
            .graphql(Some(&token("bob", &[])), REQUEST_STAFF, json!({}))
            .await;
        let request_id = requested
            .data("requestRole.request.id")
            .as_str()
            .unwrap()
            .to_string();
        let heard = alice.message().await;
        assert_eq!(heard["type"], "next", "{}: {heard}", app.label);
        assert_eq!(
            heard["payload"]["data"]["pendingRequestsChanged"],
            json!({ "state": "PENDING", "requester": { "id": "bob" }, "organization": { "id": GREENVILLE } }),
            "{}",
            app.label
        );
        let own = bob.message().await;
        assert_eq!(
            own["payload"]["data"]["myRequestUpdated"]["state"], "PENDING",
            "{}",
            app.label
        );

        let approve =
            format!("mutation {{ approveRoleRequest(requestId: \"{request_id}\") {{ state }} }}");
        second
            .graphql(Some(&token("alice", &[])), &approve, json!({}))
            .await
            .data("approveRoleRequest");
        let decided = bob.message().await;
        assert_eq!(
            decided["payload"]["data"]["myRequestUpdated"]["state"], "APPROVED",
            "{}",
            app.label
        );

        // Mallory is Security Official of Riverside only: Greenville's requests
        // never reach her; her first message is about her own organization.
        let riverside = json!({ "tin": "345678912", "npi": "1245319599", "ptan": "RF5678" });
        app.request_role(
            "mallory",
            "practice:345678912",
            "SECURITY_OFFICIAL",
            riverside,
        )
        .await;
        second
            .graphql(
                Some(&token("erin", &[])),
                "mutation { requestRole(input: {organizationId: \"practice:345678912\", role: STAFF_USER}) { request { id } } }",
                json!({}),
            )
            .await
            .data("requestRole");
        let first_for_mallory = mallory.message().await;
        assert_eq!(
            first_for_mallory["payload"]["data"]["pendingRequestsChanged"]["requester"]["id"],
            "erin",
            "{}: {first_for_mallory}",
            app.label
        );
    }
}

#[tokio::test]
async fn a_subscription_without_a_token_is_refused() {
    for app in spawn_apps().await {
        let mut anonymous = Subscriber::open(&app, None, MINE_CHANGED).await;
        let refusal = anonymous.message().await;
        assert_eq!(
            refusal["payload"]["data"],
            Value::Null,
            "{}: {refusal}",
            app.label
        );
        assert_eq!(
            refusal["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn mutations_sent_over_the_websocket_are_charged_to_the_senders_budget() {
    for app in spawn_apps().await {
        // The burst is 100 mutations: a document of 101 is refused whole.
        let withdrawals: String = (0..101)
            .map(|n| format!(" w{n}: withdrawRoleRequest(requestId: \"nope\") {{ state }}"))
            .collect();
        let mut sender = Subscriber::open(
            &app,
            Some(&token("greedy", &[])),
            &format!("mutation {{{withdrawals} }}"),
        )
        .await;
        let answer = sender.message().await;
        let errors = answer["payload"]["errors"]
            .as_array()
            .or_else(|| answer["payload"].as_array())
            .cloned()
            .unwrap_or_default();
        let codes: Vec<&str> = errors
            .iter()
            .filter_map(|error| error["extensions"]["code"].as_str())
            .collect();
        assert_eq!(codes, ["RATE_LIMITED"], "{}: {answer}", app.label);
    }
}
