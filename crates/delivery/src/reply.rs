//! Readers for the flattened replies of the stream commands this crate sends.
//!
//! Every stream entry written here has exactly one field, `event`, so a flat reply reads
//! `id, "event", json, id, "event", json, …` and each entry starts where the previous one's three
//! items end. The readers still accept what others may leave in a stream: an entry whose fields
//! are gone (`id, nil`, or a lone `nil` from `XCLAIM` on older servers) is [`EntryBody::Deleted`],
//! and an entry with other fields is [`EntryBody::Foreign`]. Anything else is a
//! [`DeliveryError::Protocol`], never a panic.

use std::fmt;

use crate::{DeliveryError, RedisValue};

/// The only field of an entry in an event stream; its value is the envelope JSON.
pub const EVENT_FIELD: &str = "event";

/// A stream entry id, `<milliseconds>-<sequence>`; ordered as Redis orders entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    /// The Redis server's clock when the entry was appended, in Unix milliseconds.
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, seq) = text.split_once('-')?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The entry id a reply's item holds, if it is one.
    pub fn of(value: &RedisValue) -> Option<Self> {
        match value {
            RedisValue::Bytes(bytes) => Self::parse(bytes),
            _ => None,
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EntryBody {
    /// The value of the `event` field: an envelope's JSON, not yet checked.
    Event(Vec<u8>),
    /// The entry was trimmed or deleted after it was delivered; only its id is left.
    Deleted,
    /// The entry has fields other than `event` alone (the first one is named); nobody here
    /// wrote it.
    Foreign(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub id: EntryId,
    pub body: EntryBody,
}

/// One line of `XPENDING <stream> <group> IDLE <ms> - + <count>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEntry {
    pub id: EntryId,
    pub idle_ms: u64,
    /// How often the entry has been delivered so far, including the first read.
    pub deliveries: u64,
}

fn protocol(command: &str, what: impl fmt::Display) -> DeliveryError {
    DeliveryError::Protocol(format!("{command} reply: {what}"))
}

fn describe(value: Option<&RedisValue>) -> String {
    match value {
        None => "the end of the reply".to_owned(),
        Some(RedisValue::Nil) => "nil".to_owned(),
        Some(RedisValue::Status(status)) => format!("status {status:?}"),
        Some(RedisValue::Int(int)) => format!("integer {int}"),
        Some(RedisValue::Bytes(bytes)) => {
            let text = String::from_utf8_lossy(bytes);
            let short: String = text.chars().take(40).collect();
            format!("bytes {short:?}")
        }
    }
}

/// `XADD` → `[id]`.
pub fn added_id(reply: &[RedisValue]) -> Result<EntryId, DeliveryError> {
    match reply {
        [RedisValue::Bytes(id)] => {
            EntryId::parse(id).ok_or_else(|| protocol("XADD", "the new id is not an entry id"))
        }
        _ => Err(protocol("XADD", format!("expected one id, got {reply:?}"))),
    }
}

/// `XREADGROUP … STREAMS <stream> >` → `[stream, entries…]`, or `[nil]` (or nothing) when no
/// entry is new.
pub fn read_entries(stream: &str, reply: &[RedisValue]) -> Result<Vec<StreamEntry>, DeliveryError> {
    match reply {
        [] | [RedisValue::Nil] => Ok(Vec::new()),
        [RedisValue::Bytes(name), rest @ ..] if name == stream.as_bytes() => {
            entries("XREADGROUP", rest)
        }
        _ => Err(protocol(
            "XREADGROUP",
            format!(
                "expected the stream name first, got {}",
                describe(reply.first())
            ),
        )),
    }
}

/// `XCLAIM … <ids>` → `[id, "event", json, …]`; an entry deleted meanwhile shows as `nil` on
/// older servers and is left out on newer ones.
pub fn claimed_entries(reply: &[RedisValue]) -> Result<Vec<StreamEntry>, DeliveryError> {
    entries("XCLAIM", reply)
}

fn entries(command: &str, items: &[RedisValue]) -> Result<Vec<StreamEntry>, DeliveryError> {
    let mut entries = Vec::new();
    let mut index = 0;
    while let Some(item) = items.get(index) {
        let id = match item {
            RedisValue::Nil => {
                index += 1;
                continue;
            }
            RedisValue::Bytes(id) => EntryId::parse(id).ok_or_else(|| {
                protocol(
                    command,
                    format!("expected an entry id, got {}", describe(Some(item))),
                )
            })?,
            other => {
                return Err(protocol(
                    command,
                    format!("expected an entry id, got {}", describe(Some(other))),
                ));
            }
        };
        index += 1;
        let body = match items.get(index) {
            Some(RedisValue::Nil) => {
                index += 1;
                EntryBody::Deleted
            }
            Some(RedisValue::Bytes(field)) => {
                let Some(RedisValue::Bytes(value)) = items.get(index + 1) else {
                    return Err(protocol(
                        command,
                        format!(
                            "entry {id} has a field without a value: {}",
                            describe(items.get(index + 1))
                        ),
                    ));
                };
                index += 2;
                let mut body = if field == EVENT_FIELD.as_bytes() {
                    EntryBody::Event(value.clone())
                } else {
                    EntryBody::Foreign(String::from_utf8_lossy(field).into_owned())
                };
                // More field/value pairs before the next entry id: not an entry this crate wrote.
                while let Some(RedisValue::Bytes(next)) = items.get(index) {
                    if EntryId::parse(next).is_some() {
                        break;
                    }
                    if let EntryBody::Event(_) = body {
                        body = EntryBody::Foreign(EVENT_FIELD.to_owned());
                    }
                    index += 2;
                }
                body
            }
            other => {
                return Err(protocol(
                    command,
                    format!("entry {id} has no fields: {}", describe(other)),
                ));
            }
        };
        entries.push(StreamEntry { id, body });
    }
    Ok(entries)
}

/// `XPENDING <stream> <group> IDLE <ms> - + <count>` → `[id, consumer, idle_ms, deliveries, …]`.
pub fn pending_entries(reply: &[RedisValue]) -> Result<Vec<PendingEntry>, DeliveryError> {
    if !reply.len().is_multiple_of(4) {
        return Err(protocol(
            "XPENDING",
            format!("{} items do not make whole entries", reply.len()),
        ));
    }
    reply
        .chunks_exact(4)
        .map(|quad| match quad {
            [
                RedisValue::Bytes(id),
                RedisValue::Bytes(_consumer),
                RedisValue::Int(idle_ms),
                RedisValue::Int(deliveries),
            ] => Ok(PendingEntry {
                id: EntryId::parse(id)
                    .ok_or_else(|| protocol("XPENDING", "an id is not an entry id"))?,
                idle_ms: u64::try_from(*idle_ms)
                    .map_err(|_| protocol("XPENDING", "negative idle time"))?,
                deliveries: u64::try_from(*deliveries)
                    .map_err(|_| protocol("XPENDING", "negative delivery count"))?,
            }),
            _ => Err(protocol(
                "XPENDING",
                format!("expected id, consumer, idle, deliveries; got {quad:?}"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> RedisValue {
        RedisValue::Bytes(text.as_bytes().to_vec())
    }

    fn id(text: &str) -> EntryId {
        EntryId::parse(text.as_bytes()).expect("an entry id")
    }

    fn event(entry: &str, json: &str) -> StreamEntry {
        StreamEntry {
            id: id(entry),
            body: EntryBody::Event(json.as_bytes().to_vec()),
        }
    }

    #[test]
    fn entry_ids_parse_order_and_print_as_redis_writes_them() {
        assert_eq!(id("1700000000000-0").ms, 1_700_000_000_000);
        assert!(id("5-10") > id("5-9"));
        assert!(id("6-0") > id("5-10"));
        assert_eq!(id("1700000000000-12").to_string(), "1700000000000-12");
        for bad in ["", "5", "-1", "5-", "a-1", "1-b", "1-2-3", "event", "+1-2"] {
            assert_eq!(EntryId::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn an_xadd_reply_is_the_new_id() {
        assert_eq!(added_id(&[bytes("7-1")]).expect("an id"), id("7-1"));
        assert!(added_id(&[RedisValue::Nil]).is_err());
        assert!(added_id(&[bytes("7-1"), bytes("8-1")]).is_err());
        assert!(added_id(&[bytes("OK")]).is_err());
    }

    #[test]
    fn an_empty_read_is_nil_or_nothing() {
        assert!(
            read_entries("s", &[RedisValue::Nil])
                .expect("empty")
                .is_empty()
        );
        assert!(read_entries("s", &[]).expect("empty").is_empty());
    }

    #[test]
    fn a_read_lists_each_entry_with_its_event_in_stream_order() {
        let reply = [
            bytes("events:ticket"),
            bytes("1-0"),
            bytes("event"),
            bytes("{\"a\":1}"),
            bytes("1-1"),
            bytes("event"),
            bytes("{\"b\":2}"),
        ];
        assert_eq!(
            read_entries("events:ticket", &reply).expect("parses"),
            [event("1-0", "{\"a\":1}"), event("1-1", "{\"b\":2}")]
        );
    }

    #[test]
    fn a_read_of_another_stream_is_a_protocol_error() {
        let reply = [
            bytes("events:order"),
            bytes("1-0"),
            bytes("event"),
            bytes("{}"),
        ];
        assert!(matches!(
            read_entries("events:ticket", &reply),
            Err(DeliveryError::Protocol(_))
        ));
    }

    #[test]
    fn deleted_entries_keep_their_id_whichever_way_they_are_flattened() {
        // XREADGROUP of pending entries: `[id, nil]`; XCLAIM on older servers: a lone nil.
        let reply = [
            bytes("1-0"),
            RedisValue::Nil,
            RedisValue::Nil,
            bytes("2-0"),
            bytes("event"),
            bytes("{}"),
        ];
        assert_eq!(
            claimed_entries(&reply).expect("parses"),
            [
                StreamEntry {
                    id: id("1-0"),
                    body: EntryBody::Deleted
                },
                event("2-0", "{}"),
            ]
        );
    }

    #[test]
    fn entries_with_other_fields_are_foreign_and_do_not_derail_the_next_entry() {
        let reply = [
            bytes("1-0"),
            bytes("name"),
            bytes("x"),
            bytes("2-0"),
            bytes("event"),
            bytes("{}"),
            bytes("other"),
            bytes("y"),
            bytes("3-0"),
            bytes("event"),
            bytes("{\"c\":3}"),
        ];
        assert_eq!(
            claimed_entries(&reply).expect("parses"),
            [
                StreamEntry {
                    id: id("1-0"),
                    body: EntryBody::Foreign("name".into())
                },
                StreamEntry {
                    id: id("2-0"),
                    body: EntryBody::Foreign("event".into())
                },
                event("3-0", "{\"c\":3}"),
            ]
        );
    }

    #[test]
    fn malformed_entry_lists_are_protocol_errors_not_panics() {
        let cases: Vec<Vec<RedisValue>> = vec![
            vec![bytes("not-an-id")],
            vec![bytes("1-0")],
            vec![bytes("1-0"), bytes("event")],
            vec![bytes("1-0"), bytes("event"), RedisValue::Int(3)],
            vec![RedisValue::Int(1)],
            vec![RedisValue::Status("OK".into())],
            vec![bytes("1-0"), RedisValue::Int(1)],
        ];
        for reply in cases {
            assert!(
                matches!(claimed_entries(&reply), Err(DeliveryError::Protocol(_))),
                "{reply:?}"
            );
        }
    }

    #[test]
    fn pending_entries_come_in_quads() {
        let reply = [
            bytes("1-0"),
            bytes("tickets"),
            RedisValue::Int(300),
            RedisValue::Int(2),
            bytes("1-1"),
            bytes("tickets"),
            RedisValue::Int(5000),
            RedisValue::Int(1),
        ];
        assert_eq!(
            pending_entries(&reply).expect("parses"),
            [
                PendingEntry {
                    id: id("1-0"),
                    idle_ms: 300,
                    deliveries: 2
                },
                PendingEntry {
                    id: id("1-1"),
                    idle_ms: 5000,
                    deliveries: 1
                },
            ]
        );
        assert!(pending_entries(&[]).expect("empty").is_empty());
    }

    #[test]
    fn malformed_pending_replies_are_protocol_errors() {
        let cases: Vec<Vec<RedisValue>> = vec![
            vec![bytes("1-0"), bytes("c"), RedisValue::Int(1)],
            vec![bytes("1-0"), bytes("c"), bytes("1"), RedisValue::Int(1)],
            vec![
                bytes("x"),
                bytes("c"),
                RedisValue::Int(1),
                RedisValue::Int(1),
            ],
            vec![
                bytes("1-0"),
                bytes("c"),
                RedisValue::Int(-1),
                RedisValue::Int(1),
            ],
            vec![
                RedisValue::Nil,
                RedisValue::Nil,
                RedisValue::Nil,
                RedisValue::Nil,
            ],
        ];
        for reply in cases {
            assert!(
                matches!(pending_entries(&reply), Err(DeliveryError::Protocol(_))),
                "{reply:?}"
            );
        }
    }
}
