//! The Redis trigger: one pub/sub connection per distinct address, a literal `SUBSCRIBE` per
//! channel, and for each message a fresh instance of every component mapped to its channel,
//! called with the payload only. Messages from one server are handled strictly in sequence.
//!
//! Where Spin exits when the connection drops, this host logs and reconnects with backoff
//! (issue #2): messages published while disconnected are lost to pub/sub, which is why the
//! services read a durable stream when woken rather than trusting the message itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use wasmtime::Store;

use crate::assembly::Assembly;
use crate::bindings::{RedisHandlerError, RedisTriggerPre};
use crate::instance::{ComponentContext, InstanceState};

pub struct RedisComponent {
    pub pre: RedisTriggerPre<InstanceState>,
    pub context: Arc<ComponentContext>,
}

/// The subscriptions on one Redis server: channel → component ids, in manifest order, each
/// component read from its slot per message (`watch` swaps in rebuilt ones).
pub struct RedisSubscriber {
    pub address: String,
    pub channels: BTreeMap<String, Vec<String>>,
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl RedisSubscriber {
    pub fn describe(&self) -> String {
        let server = self.address.trim_start_matches("redis://");
        let mut text = format!("Active Channels on {server}:");
        for (channel, ids) in &self.channels {
            text.push_str(&format!("\n\t{server}/{channel}: [{}]", ids.join(",")));
        }
        text
    }

    /// Connects and subscribes; the first failure is fatal, as in Spin. Returns once subscribed,
    /// with the task that serves messages and reconnects until it is aborted.
    pub async fn start(self, assembly: Arc<Assembly>) -> Result<tokio::task::JoinHandle<()>> {
        let client = redis::Client::open(self.address.as_str())?;
        let pubsub = self.subscribe(&client).await.map_err(|error| {
            anyhow::anyhow!(
                "Redis trigger failed to connect to {}: {error}",
                self.address
            )
        })?;
        Ok(tokio::spawn(self.run(assembly, client, pubsub)))
    }

    async fn subscribe(&self, client: &redis::Client) -> redis::RedisResult<redis::aio::PubSub> {
        let mut pubsub = client.get_async_pubsub().await?;
        for channel in self.channels.keys() {
            pubsub.subscribe(channel).await?;
        }
        Ok(pubsub)
    }

    async fn run(self, assembly: Arc<Assembly>, client: redis::Client, first: redis::aio::PubSub) {
        let mut connection = Some(first);
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Some(mut pubsub) = connection.take() {
                backoff = Duration::from_millis(100);
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let channel = message.get_channel_name().to_owned();
                    self.dispatch(&assembly, &channel, message.get_payload_bytes().to_vec())
                        .await;
                }
                eprintln!("ERROR disconnected from {}; reconnecting", self.address);
            }
            tokio::time::sleep(backoff).await;
            match self.subscribe(&client).await {
                Ok(pubsub) => {
                    eprintln!("Reconnected to {} and resubscribed", self.address);
                    connection = Some(pubsub);
                }
                Err(error) => {
                    eprintln!(
                        "ERROR reconnecting to {}: {error} (retrying in {backoff:?})",
                        self.address
                    );
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn dispatch(&self, assembly: &Arc<Assembly>, channel: &str, payload: Vec<u8>) {
        let Some(ids) = self.channels.get(channel) else {
            return;
        };
        let started = std::time::Instant::now();
        let payload = &payload;
        let calls = ids.iter().map(|id| async move {
            let outcome = match assembly.component::<RedisComponent>(id).await {
                Ok(component) => handle_message(&component, payload).await,
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                eprintln!("Component {id} handler failed: {error:#}");
            }
        });
        futures::future::join_all(calls).await;
        crate::stats::count_message(started.elapsed());
    }
}

async fn handle_message(component: &RedisComponent, payload: &Vec<u8>) -> Result<()> {
    let stats = &component.context.stats;
    stats.count_instance();
    stats.metered(run_handler(component, payload)).await
}

async fn run_handler(component: &RedisComponent, payload: &Vec<u8>) -> Result<()> {
    let mut store = Store::new(
        component.pre.engine(),
        InstanceState::new(&component.context)?,
    );
    let instance = component.pre.instantiate_async(&mut store).await?;
    match instance
        .fermyon_spin_inbound_redis()
        .call_handle_message(&mut store, payload)
        .await?
    {
        Ok(()) => Ok(()),
        Err(RedisHandlerError::Success) => Ok(()),
        Err(RedisHandlerError::Error) => anyhow::bail!("the handler returned an error"),
    }
}
