//! The golden fixtures pin the wire format: one envelope per subject in `tests/fixtures/`, named
//! after the subject with `:` replaced by `-`. A change to the WIT that changes the JSON of any
//! event fails here until the fixture is updated on purpose.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use events::{Envelope, Event};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_path(subject: &str) -> PathBuf {
    fixtures_dir().join(format!("{}.json", subject.replace(':', "-")))
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

#[test]
fn every_fixture_decodes_and_re_encodes_to_the_same_json() {
    for subject in Event::SUBJECTS {
        let path = fixture_path(subject);
        let bytes = read(&path);

        let envelope = Envelope::from_json(&bytes)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(envelope.subject, *subject, "{}", path.display());
        let event = envelope
            .decode()
            .unwrap_or_else(|error| panic!("{}: {error:?}", path.display()));
        assert_eq!(event.subject(), *subject);

        // Re-encode from the typed event, so every field goes through the generated types.
        let encoded = event
            .to_envelope(&envelope.id, &envelope.occurred_at)
            .to_json();
        let expected: serde_json::Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
        let actual: serde_json::Value = serde_json::from_slice(&encoded).expect("output is JSON");
        assert_eq!(actual, expected, "{}", path.display());
    }
}

#[test]
fn every_subject_has_a_fixture_and_every_fixture_a_subject() {
    let expected: BTreeSet<PathBuf> = Event::SUBJECTS.iter().map(|s| fixture_path(s)).collect();
    let found: BTreeSet<PathBuf> = fs::read_dir(fixtures_dir())
        .expect("the fixtures directory exists")
        .map(|entry| entry.expect("a readable directory entry").path())
        .collect();

    let missing: Vec<_> = expected.difference(&found).collect();
    let unmatched: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && unmatched.is_empty(),
        "subjects without a fixture: {missing:?}; fixtures without a subject: {unmatched:?}"
    );
}

#[test]
fn every_subject_is_unique() {
    let unique: BTreeSet<&str> = Event::SUBJECTS.iter().copied().collect();
    assert_eq!(unique.len(), Event::SUBJECTS.len(), "{:?}", Event::SUBJECTS);
}
