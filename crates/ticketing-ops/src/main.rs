//! `ticketing-ops`: what an operator needs to see and mend event delivery, from Redis alone.
//!
//! - `status`: every event stream with its length, and each consumer group on it with its lag
//!   (entries not yet read), pending entries (read, not yet acknowledged) and dead letters;
//! - `dead-letters`: every dead-lettered entry, with its group, deliveries and reason;
//! - `show STREAM ID`: one dead letter, its event pretty-printed;
//! - `refunds`: the refunds Stripe failed (the payments service leaves them in Redis on every
//!   housekeeping tick): money to return to a buyer by hand;
//! - `payouts`: the sellers' payouts waiting for a Transfer (left likewise): sellers who have
//!   not finished onboarding their payout account, or transfers Stripe refused;
//! - `replay STREAM ID`: once the cause is fixed, appends the dead-lettered event to its stream
//!   again and wakes the consumers, then removes the dead letter. Every group whose consumer has
//!   applied the event already skips it by its event id, so it is applied exactly once: by the
//!   group that could not apply it before.
//!
//! Redis is found at `--redis`, `REDIS_URL` or `SPIN_VARIABLE_REDIS_ADDRESS`; on a cluster, with
//! `kubectl -n ticketing port-forward svc/redis 6379` first.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use redis::{Connection, Value};

#[derive(Parser)]
#[command(
    name = "ticketing-ops",
    about = "Consumer groups, dead letters and replays"
)]
struct Cli {
    /// The app's Redis [default: $SPIN_VARIABLE_REDIS_ADDRESS, else redis://127.0.0.1:6379].
    #[arg(long, env = "REDIS_URL")]
    redis: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Streams, consumer groups (lag, pending) and dead-letter counts.
    Status,
    /// Every dead-lettered entry.
    DeadLetters,
    /// One dead letter in full.
    Show { stream: String, id: String },
    /// Puts a dead-lettered event back on its stream, once, and removes the dead letter.
    Replay { stream: String, id: String },
    /// The refunds Stripe failed, to make by hand.
    Refunds,
    /// The payouts waiting for their seller's account (or for a transfer Stripe refused).
    Payouts,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let url = cli
        .redis
        .or_else(|| std::env::var("SPIN_VARIABLE_REDIS_ADDRESS").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let mut redis = redis::Client::open(url.as_str())?
        .get_connection()
        .with_context(|| format!("connecting to {url}"))?;
    match cli.command {
        Command::Status => status(&mut redis),
        Command::DeadLetters => dead_letters(&mut redis),
        Command::Show { stream, id } => show(&mut redis, &stream, &id),
        Command::Replay { stream, id } => replay(&mut redis, &stream, &id),
        Command::Refunds => refunds(&mut redis),
        Command::Payouts => payouts(&mut redis),
    }
}

/// Where the payments service leaves its failed refunds (`payments_service::settlement`).
const FAILED_REFUNDS_KEY: &str = "payments:failed-refunds";

/// Where the payments service leaves the payouts waiting (`payments_service::payouts`).
const WAITING_PAYOUTS_KEY: &str = "payments:waiting-payouts";

/// The JSON list the payments service left under `key`; `None` before its first report.
fn report(redis: &mut Connection, key: &str) -> Result<Option<Vec<serde_json::Value>>> {
    let listing: Option<String> = redis::cmd("GET").arg(key).query(redis)?;
    let Some(listing) = listing else {
        println!("no report yet: the payments service writes one on every housekeeping tick");
        return Ok(None);
    };
    let entries =
        serde_json::from_str(&listing).with_context(|| format!("{key} is not a JSON list"))?;
    Ok(Some(entries))
}

fn payouts(redis: &mut Connection) -> Result<()> {
    let Some(waiting) = report(redis, WAITING_PAYOUTS_KEY)? else {
        return Ok(());
    };
    for payout in &waiting {
        let cents = payout["netCents"].as_u64().unwrap_or(0);
        println!(
            "order {}  seller {}  {}.{:02} {}  waiting since {}",
            payout["orderId"].as_str().unwrap_or("-"),
            payout["sellerId"].as_str().unwrap_or("-"),
            cents / 100,
            cents % 100,
            payout["currency"].as_str().unwrap_or("-"),
            payout["since"].as_str().unwrap_or("-"),
        );
    }
    println!("{} payout(s) waiting", waiting.len());
    Ok(())
}

fn refunds(redis: &mut Connection) -> Result<()> {
    let Some(failed) = report(redis, FAILED_REFUNDS_KEY)? else {
        return Ok(());
    };
    for refund in &failed {
        let cents = refund["amountCents"].as_u64().unwrap_or(0);
        println!(
            "order {}  payment {}  {}.{:02} {}  intent {}  refund {}",
            refund["orderId"].as_str().unwrap_or("-"),
            refund["paymentId"].as_str().unwrap_or("-"),
            cents / 100,
            cents % 100,
            refund["currency"].as_str().unwrap_or("-"),
            refund["paymentIntent"].as_str().unwrap_or("-"),
            refund["refundId"].as_str().unwrap_or("-"),
        );
    }
    println!("{} failed refund(s)", failed.len());
    Ok(())
}

/// A Redis map or flat key-value array as (key, value) pairs.
fn pairs(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Map(entries) => entries
            .iter()
            .map(|(key, value)| (text(key), value))
            .collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [key, value] => Some((text(key), value)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::Int(number) => number.to_string(),
        Value::Nil => "-".to_owned(),
        other => format!("{other:?}"),
    }
}

fn field<'a>(fields: &'a [(String, &'a Value)], name: &str) -> String {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map_or_else(|| "-".to_owned(), |(_, value)| text(value))
}

/// The consumer groups of `stream` as their XINFO GROUPS fields (none if the stream is missing).
fn groups(redis: &mut Connection, stream: &str) -> Result<Vec<Value>> {
    let exists: bool = redis::cmd("EXISTS").arg(stream).query(redis)?;
    if !exists {
        return Ok(Vec::new());
    }
    let reply: Value = redis::cmd("XINFO").arg("GROUPS").arg(stream).query(redis)?;
    Ok(match reply {
        Value::Array(groups) => groups,
        _ => Vec::new(),
    })
}

fn status(redis: &mut Connection) -> Result<()> {
    println!(
        "{:<20} {:>8}  {:<18} {:>6} {:>8} {:>13}",
        "stream", "length", "group", "lag", "pending", "dead letters"
    );
    for stream in delivery::STREAMS {
        let length: u64 = redis::cmd("XLEN").arg(stream).query(redis)?;
        let groups = groups(redis, stream)?;
        if groups.is_empty() {
            println!("{stream:<20} {length:>8}  (no consumer group yet)");
        }
        for group in &groups {
            let fields = pairs(group);
            let name = field(&fields, "name");
            let dead: u64 = redis::cmd("XLEN")
                .arg(delivery::dead_letter_stream(stream, &name))
                .query(redis)?;
            println!(
                "{stream:<20} {length:>8}  {name:<18} {:>6} {:>8} {dead:>13}",
                field(&fields, "lag"),
                field(&fields, "pending"),
            );
        }
    }
    Ok(())
}

/// Every dead-letter stream in Redis, found by name (`<stream>:dead-letter:<group>`).
fn dead_letter_streams(redis: &mut Connection) -> Result<Vec<String>> {
    let mut scan = redis::cmd("SCAN");
    scan.cursor_arg(0)
        .arg("MATCH")
        .arg("events:*:dead-letter:*")
        .arg("COUNT")
        .arg(1000);
    let mut found: Vec<String> = scan.iter(redis)?.collect();
    found.sort();
    found.dedup();
    Ok(found)
}

/// A dead letter: its id and the record the consumer wrote (`group`, `entryId`, `deliveries`,
/// `reason`, `event`).
fn entries(
    redis: &mut Connection,
    stream: &str,
    from: &str,
    to: &str,
) -> Result<Vec<(String, serde_json::Value)>> {
    let reply: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg(from)
        .arg(to)
        .query(redis)?;
    Ok(reply
        .into_iter()
        .map(|(id, fields)| {
            let record = fields
                .into_iter()
                .find(|(name, _)| name == "entry")
                .and_then(|(_, json)| serde_json::from_str(&json).ok())
                .unwrap_or(serde_json::Value::Null);
            (id, record)
        })
        .collect())
}

fn envelope_of(record: &serde_json::Value) -> Option<events::Envelope> {
    events::Envelope::from_json(record["event"].as_str()?.as_bytes()).ok()
}

fn dead_letters(redis: &mut Connection) -> Result<()> {
    let mut total = 0;
    for stream in dead_letter_streams(redis)? {
        for (id, record) in entries(redis, &stream, "-", "+")? {
            total += 1;
            let (subject, event_id) = envelope_of(&record)
                .map_or(("?".to_owned(), "?".to_owned()), |e| (e.subject, e.id));
            println!(
                "{stream} {id}  {subject} {event_id}  after {} deliveries: {}",
                record["deliveries"],
                record["reason"].as_str().unwrap_or("?")
            );
        }
    }
    println!("{total} dead letter(s)");
    Ok(())
}

fn one(redis: &mut Connection, stream: &str, id: &str) -> Result<serde_json::Value> {
    if !stream.contains(":dead-letter:") {
        bail!("{stream} is not a dead-letter stream (<stream>:dead-letter:<group>)");
    }
    match entries(redis, stream, id, id)?.into_iter().next() {
        Some((_, record)) if !record.is_null() => Ok(record),
        Some(_) => bail!("{stream} {id} is not a dead letter this tool wrote"),
        None => bail!("no dead letter {id} in {stream}"),
    }
}

fn show(redis: &mut Connection, stream: &str, id: &str) -> Result<()> {
    let mut record = one(redis, stream, id)?;
    if let Some(envelope) = record["event"]
        .as_str()
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
    {
        record["event"] = envelope;
    }
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}

fn replay(redis: &mut Connection, stream: &str, id: &str) -> Result<()> {
    let record = one(redis, stream, id)?;
    let envelope = envelope_of(&record).context("the dead letter holds no readable event")?;
    let target = delivery::stream_for_subject(&envelope.subject)
        .with_context(|| format!("no stream carries {}", envelope.subject))?;
    let json = envelope.to_json();
    // Append, wake the consumers as the relay does, then drop the dead letter: done in this
    // order, a failure part-way leaves the dead letter to replay again, which is harmless.
    let appended: String = redis::cmd("XADD")
        .arg(target)
        .arg("MAXLEN")
        .arg("~")
        .arg(delivery::STREAM_MAX_LEN)
        .arg("*")
        .arg(delivery::EVENT_FIELD)
        .arg(&json)
        .query(redis)?;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&envelope.subject)
        .arg(&json)
        .query(redis)?;
    let _: i64 = redis::cmd("XDEL").arg(stream).arg(id).query(redis)?;
    println!(
        "replayed {} {} as {target} {appended}; removed {stream} {id}",
        envelope.subject, envelope.id
    );
    Ok(())
}
