//! Table tests for the webhook parsers, from `callconnect-webhook.md`'s examples.

use super::*;
use chrono::DateTime;
use domain::PhoneNumber;
use proptest::prelude::*;

/// Form-encodes pairs the way the phone system does (brackets as `%5B` `%5D`, space as `+`).
fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(char::from(b));
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out.into_bytes()
}

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

/// The doc's answered inbound call, as the phone system posts it.
pub(crate) const FORM_EXAMPLE: &[(&str, &str)] = &[
    ("event", "call_ended"),
    ("contact[id]", "150"),
    ("contact[name]", "電話 太郎"),
    ("contact[number]", "03-5555-0101"),
    ("contact[company]", "株式会社サンプル"),
    ("contact[email]", "taro@example.jp"),
    ("contact[created_at]", "2026-11-20T10:01:02.345+09:00"),
    ("record[id]", "22232"),
    ("record[direction]", "inbound"),
    ("record[number]", "03-5555-0101"),
    ("record[started_at]", "2026-11-25T09:30:00.000+09:00"),
    ("record[answered_at]", "2026-11-25T09:30:07.000+09:00"),
    ("record[ended_at]", "2026-11-25T09:33:19.000+09:00"),
    ("record[duration]", "192"),
    ("record[memo]", "見積の件で折り返し希望"),
    ("record[url]", "https://phone.example.jp/calls/22232"),
    (
        "record[recording_url]",
        "https://phone.example.jp/calls/22232/rec",
    ),
    ("user[id]", "17"),
    ("user[name]", "営業 一郎"),
    ("user[email]", "Ichiro.Eigyo@example.jp"),
];

pub(crate) fn form_example() -> Vec<u8> {
    encode(FORM_EXAMPLE)
}

/// The doc's transcription event, as JSON.
pub(crate) const JSON_EXAMPLE: &str = r#"{"event": "transcription_completed",
 "contact": {"id": "150", "number": "03-5555-0101"},
 "record": {"id": "22232", "direction": "inbound",
            "transcribe_direction": "inbound_operator_right",
            "transcribes": {"RE1a2b": [[0, "お電話ありがとうございます。", 1.2],
                                       [1, "先日の見積の件でお電話しました。", 4.8]],
                            "RE9z8y": [[0, "お待たせいたしました。", 0.6]]}},
 "user": {"id": "17", "email": "ichiro.eigyo@example.jp"}}"#;

fn with(overrides: &[(&str, &str)]) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = FORM_EXAMPLE
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .copied()
        .collect();
    pairs.extend(overrides.iter().filter(|(_, v)| *v != "<absent>").copied());
    encode(&pairs)
}

fn party(raw: &str) -> PartyNumber {
    PartyNumber::Number(PhoneNumber::parse(raw).unwrap())
}

#[test]
fn doc_form_example_parses_to_exact_call_event() {
    let event = parse_form(&form_example()).unwrap();
    let expected = CallEvent {
        call_id: CallId::parse("22232").unwrap(),
        kind: EventKind::CallEnded,
        direction: Some(Direction::Inbound),
        status_code: None,
        party: party("03-5555-0101"),
        contact: ContactInfo {
            external_id: Some("150".into()),
            name: Some("電話 太郎".into()),
            company: Some("株式会社サンプル".into()),
            email: Some("taro@example.jp".into()),
            address: None,
            memo: None,
        },
        member: Some(MemberInfo {
            external_id: Some("17".into()),
            name: Some("営業 一郎".into()),
            email: Some("Ichiro.Eigyo@example.jp".into()),
        }),
        started_at: Some(at("2026-11-25T09:30:00.000+09:00")),
        answered_at: Some(at("2026-11-25T09:30:07.000+09:00")),
        ended_at: Some(at("2026-11-25T09:33:19.000+09:00")),
        duration_secs: Some(192),
        memo: Some("見積の件で折り返し希望".into()),
        call_url: Some("https://phone.example.jp/calls/22232".into()),
        recording_url: Some("https://phone.example.jp/calls/22232/rec".into()),
        transcript: None,
        extra: BTreeMap::from([(
            "contact[created_at]".to_owned(),
            "2026-11-20T10:01:02.345+09:00".to_owned(),
        )]),
    };
    assert_eq!(event, expected);
    // The raw text and the offset survive.
    assert_eq!(event.party.number().unwrap().raw(), "03-5555-0101");
    assert_eq!(event.party.number().unwrap().e164(), "+81355550101");
    assert_eq!(
        event.started_at.unwrap().offset().local_minus_utc(),
        9 * 3600
    );
}

#[test]
fn doc_form_example_parses_with_unencoded_brackets_too() {
    let body = String::from_utf8(form_example())
        .unwrap()
        .replace("%5B", "[")
        .replace("%5D", "]");
    assert_eq!(
        parse_form(body.as_bytes()).unwrap(),
        parse_form(&form_example()).unwrap()
    );
}

#[test]
fn r26_doc_json_transcription_example_parses_to_exact_call_event_in_order() {
    let event = parse_json(JSON_EXAMPLE.as_bytes()).unwrap();
    let u = |channel, text: &str, offset_secs| Utterance {
        channel,
        text: text.to_owned(),
        offset_secs,
    };
    let expected = CallEvent {
        call_id: CallId::parse("22232").unwrap(),
        kind: EventKind::TranscriptionCompleted,
        direction: Some(Direction::Inbound),
        status_code: None,
        party: party("03-5555-0101"),
        contact: ContactInfo {
            external_id: Some("150".into()),
            ..ContactInfo::default()
        },
        member: Some(MemberInfo {
            external_id: Some("17".into()),
            name: None,
            email: Some("ichiro.eigyo@example.jp".into()),
        }),
        started_at: None,
        answered_at: None,
        ended_at: None,
        duration_secs: None,
        memo: None,
        call_url: None,
        recording_url: None,
        transcript: Some(Transcript {
            direction: TranscribeDirection::InboundOperatorRight,
            recordings: vec![
                Recording {
                    key: "RE1a2b".into(),
                    utterances: vec![
                        u(0, "お電話ありがとうございます。", 1.2),
                        u(1, "先日の見積の件でお電話しました。", 4.8),
                    ],
                },
                Recording {
                    key: "RE9z8y".into(),
                    utterances: vec![u(0, "お待たせいたしました。", 0.6)],
                },
            ],
        }),
        extra: BTreeMap::new(),
    };
    assert_eq!(event, expected);
}

#[test]
fn r26_recordings_keep_the_order_given_not_sorted() {
    let body = r#"{"event":"transcription_completed","record":{"id":"1",
        "transcribe_direction":"outbound_operator_left",
        "transcribes":{"REzz":[[1,"最初",0]],"REaa":[[0,"次",0.5]],"REmm":[]}}}"#;
    let t = parse_json(body.as_bytes()).unwrap().transcript.unwrap();
    let keys: Vec<&str> = t.recordings.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["REzz", "REaa", "REmm"]);
    assert!(t.recordings[2].utterances.is_empty());

    // The form format carries the same as JSON text.
    let form = encode(&[
        ("event", "transcription_completed"),
        ("record[id]", "1"),
        ("record[transcribe_direction]", "outbound_operator_left"),
        (
            "record[transcribes]",
            r#"{"REzz":[[1,"最初",0]],"REaa":[["0","次","0.5"]],"REmm":[]}"#,
        ),
    ]);
    assert_eq!(parse_form(&form).unwrap().transcript.unwrap(), t);
}

#[test]
fn transcribes_null_or_absent_is_no_transcript() {
    for v in ["null", ""] {
        let body = with(&[
            ("record[transcribes]", v),
            ("record[transcribe_direction]", "no_direction"),
        ]);
        assert_eq!(parse_form(&body).unwrap().transcript, None, "{v:?}");
    }
    let json = r#"{"event":"call_ended","record":{"id":"9","transcribes":null}}"#;
    assert_eq!(parse_json(json.as_bytes()).unwrap().transcript, None);
}

#[test]
fn json_numbers_may_be_numbers_or_strings() {
    let a =
        r#"{"event":"missed","record":{"id":22232,"duration":0,"status":"100"},"user":{"id":17}}"#;
    let b = r#"{"event":"missed","record":{"id":"22232","duration":"0","status":100},"user":{"id":"17"}}"#;
    let a = parse_json(a.as_bytes()).unwrap();
    assert_eq!(a, parse_json(b.as_bytes()).unwrap());
    assert_eq!(a.call_id.as_str(), "22232");
    assert_eq!(a.duration_secs, Some(0));
    assert_eq!(a.member.unwrap().external_id.as_deref(), Some("17"));
}

#[test]
fn json_and_form_of_the_same_data_are_the_same_event() {
    let json = serde_json::json!({
        "event": "call_ended",
        "contact": {"id": "150", "name": "電話 太郎", "number": "03-5555-0101",
                    "company": "株式会社サンプル", "email": "taro@example.jp",
                    "created_at": "2026-11-20T10:01:02.345+09:00"},
        "record": {"id": "22232", "direction": "inbound", "number": "03-5555-0101",
                   "started_at": "2026-11-25T09:30:00.000+09:00",
                   "answered_at": "2026-11-25T09:30:07.000+09:00",
                   "ended_at": "2026-11-25T09:33:19.000+09:00", "duration": 192,
                   "memo": "見積の件で折り返し希望",
                   "url": "https://phone.example.jp/calls/22232",
                   "recording_url": "https://phone.example.jp/calls/22232/rec"},
        "user": {"id": 17, "name": "営業 一郎", "email": "Ichiro.Eigyo@example.jp"}
    });
    assert_eq!(
        parse_json(json.to_string().as_bytes()).unwrap(),
        parse_form(&form_example()).unwrap()
    );
}

#[test]
fn r27_withheld_number_is_accepted_without_identity() {
    for (record, contact, raw) in [
        ("<absent>", "非通知", "非通知"),
        ("<absent>", "", ""),
        ("<absent>", "<absent>", ""),
        ("", "", ""),
        ("非通知", "<absent>", "非通知"),
        ("anonymous", "<absent>", "anonymous"),
        ("", "非通知", "非通知"),
    ] {
        let body = with(&[
            ("event", "missed"),
            ("record[number]", record),
            ("contact[number]", contact),
            ("record[answered_at]", "<absent>"),
            ("record[duration]", "0"),
        ]);
        let event = parse_form(&body)
            .unwrap_or_else(|e| panic!("record={record:?} contact={contact:?}: {e}"));
        assert_eq!(
            event.party,
            PartyNumber::NoNumber { raw: raw.into() },
            "record={record:?} contact={contact:?}"
        );
        assert_eq!(event.kind, EventKind::Missed);
    }
    let json =
        r#"{"event":"missed","contact":{"number":"非通知"},"record":{"id":"5","number":null}}"#;
    assert_eq!(
        parse_json(json.as_bytes()).unwrap().party,
        PartyNumber::NoNumber {
            raw: "非通知".into()
        }
    );
}

#[test]
fn r27_unusable_number_is_kept_for_display_not_rejected() {
    let event = parse_form(&with(&[("record[number]", "12345")])).unwrap();
    assert_eq!(
        event.party,
        PartyNumber::Unusable {
            raw: "12345".into()
        }
    );
    let long = "9".repeat(1000);
    let event = parse_form(&with(&[("record[number]", &long)])).unwrap();
    assert_eq!(event.party, PartyNumber::Unusable { raw: long });
}

#[test]
fn r13_party_number_falls_back_to_contact_number_and_full_width_digits_classify() {
    let body = with(&[
        ("record[number]", "<absent>"),
        ("contact[number]", "０３−５５５５−０１０１"),
    ]);
    let event = parse_form(&body).unwrap();
    assert_eq!(event.party.number().unwrap().e164(), "+81355550101");
    assert_eq!(
        event.party.number().unwrap().raw(),
        "０３−５５５５−０１０１"
    );
    assert!(!event.extra.contains_key("contact[number]"));
}

#[test]
fn contact_number_differing_from_record_number_is_kept_in_extra() {
    let event = parse_form(&with(&[("contact[number]", "090-1234-5678")])).unwrap();
    assert_eq!(event.party, party("03-5555-0101"));
    assert_eq!(event.extra["contact[number]"], "090-1234-5678");
}

#[test]
fn direction_comes_from_status_code_when_absent() {
    let body = with(&[("record[direction]", "<absent>"), ("record[status]", "200")]);
    let event = parse_form(&body).unwrap();
    assert_eq!(event.direction, Some(Direction::Outbound));
    assert_eq!(event.status_code.as_deref(), Some("200"));

    let body = with(&[("record[direction]", "<absent>")]);
    assert_eq!(parse_form(&body).unwrap().direction, None);

    // An explicit direction wins over the status code.
    let body = with(&[("record[direction]", "inbound"), ("record[status]", "200")]);
    assert_eq!(
        parse_form(&body).unwrap().direction,
        Some(Direction::Inbound)
    );
}

#[test]
fn unknown_status_codes_and_extra_fields_are_kept() {
    let body = with(&[
        ("record[direction]", "<absent>"),
        ("record[status]", "987"),
        ("record[foo]", "bar"),
        ("contact[external_info]", "hubspot|111222"),
        ("tags[]", "a"),
        ("flavour", "ゆず"),
    ]);
    let mut body = body;
    body.extend_from_slice(b"&tags%5B%5D=b");
    let event = parse_form(&body).unwrap();
    assert_eq!(event.status_code.as_deref(), Some("987"));
    assert_eq!(event.direction, None);
    assert_eq!(event.extra["record[foo]"], "bar");
    assert_eq!(event.extra["contact[external_info]"], "hubspot|111222");
    assert_eq!(event.extra["flavour"], "ゆず");
    assert_eq!(event.extra["tags[]"], r#"["a","b"]"#);

    let json = r#"{"event":"voicemail","record":{"id":"7","status":"555","foo":{"x":[1,2]}},
                   "top":true,"contact":{"created_at":"2017-10-06T21:56:12.897+09:00"}}"#;
    let event = parse_json(json.as_bytes()).unwrap();
    assert_eq!(event.status_code.as_deref(), Some("555"));
    assert_eq!(event.extra["record[foo]"], r#"{"x":[1,2]}"#);
    assert_eq!(event.extra["top"], "true");
    assert_eq!(
        event.extra["contact[created_at]"],
        "2017-10-06T21:56:12.897+09:00"
    );
}

#[test]
fn full_width_and_japanese_text_is_kept_intact() {
    let name = "電話　太郎（ﾃﾞﾝﾜ）🎌";
    let memo = "　全角スペースで始まり、改行\nを含む：ＡＢＣ１２３";
    let event = parse_form(&with(&[("contact[name]", name), ("record[memo]", memo)])).unwrap();
    assert_eq!(event.contact.name.as_deref(), Some(name));
    assert_eq!(event.memo.as_deref(), Some(memo));
    let json = serde_json::json!({"event":"memo_saved","record":{"id":"1","memo":memo},
                                  "contact":{"name":name}});
    let event = parse_json(json.to_string().as_bytes()).unwrap();
    assert_eq!(event.memo.as_deref(), Some(memo));
    assert_eq!(event.contact.name.as_deref(), Some(name));
}

#[test]
fn every_event_kind_parses() {
    for kind in EventKind::ALL {
        let event = parse_form(&with(&[("event", kind.as_str())])).unwrap();
        assert_eq!(event.kind, kind);
    }
}

#[test]
fn member_is_none_without_user_fields() {
    let body = with(&[
        ("user[id]", "<absent>"),
        ("user[name]", "<absent>"),
        ("user[email]", ""),
    ]);
    assert_eq!(parse_form(&body).unwrap().member, None);
}

/// One bad value per row → exactly that field is named.
#[test]
fn each_bad_field_is_named() {
    let long = "あ".repeat(MAX_FIELD_CHARS + 1);
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (&[("event", "<absent>")], &["event"]),
        (&[("event", "")], &["event"]),
        (&[("event", "call.ended")], &["event"]),
        (&[("record[id]", "<absent>")], &["record[id]"]),
        (&[("record[id]", "a\u{7}b")], &["record[id]"]),
        (&[("record[direction]", "sideways")], &["record[direction]"]),
        (
            &[("record[started_at]", "2026-11-25 09:30")],
            &["record[started_at]"],
        ),
        (
            &[("record[answered_at]", "2026-11-25T09:30:07")],
            &["record[answered_at]"],
        ),
        (&[("record[ended_at]", "yesterday")], &["record[ended_at]"]),
        (&[("record[duration]", "-1")], &["record[duration]"]),
        (&[("record[duration]", "3.5")], &["record[duration]"]),
        (
            &[("record[duration]", "99999999999")],
            &["record[duration]"],
        ),
        (
            &[("record[transcribe_direction]", "left")],
            &["record[transcribe_direction]"],
        ),
        (
            &[("record[transcribes]", "{not json")],
            &["record[transcribes]"],
        ),
        (
            &[("record[transcribes]", "[1,2]")],
            &["record[transcribes]"],
        ),
        (
            &[("record[transcribes]", r#"{"RE1":[[0,"a",1]]}"#)],
            &["record[transcribe_direction]"],
        ),
        (
            &[
                ("record[transcribe_direction]", "no_direction"),
                (
                    "record[transcribes]",
                    r#"{"RE1":[[0,"a",1],[7,"b"],[0,1,1],[0,"c",-1]],"RE2":5}"#,
                ),
            ],
            &[
                "record[transcribes][RE1][1]",
                "record[transcribes][RE1][2]",
                "record[transcribes][RE1][3]",
                "record[transcribes][RE2]",
            ],
        ),
        (&[("contact[name]", &long)], &["contact[name]"]),
        (&[("record[memo]", &long)], &["record[memo]"]),
        (&[("some[unknown]", &long)], &["some[unknown]"]),
        (
            &[
                ("event", "hangup"),
                ("record[id]", ""),
                ("record[duration]", "x"),
                ("record[started_at]", "x"),
            ],
            &[
                "event",
                "record[id]",
                "record[started_at]",
                "record[duration]",
            ],
        ),
    ];
    for (overrides, fields) in cases {
        let err = parse_form(&with(overrides)).unwrap_err();
        assert_eq!(err.fields(), *fields, "{overrides:?}: {err}");
    }
}

#[test]
fn known_fields_given_twice_are_named() {
    let mut body = form_example();
    body.extend_from_slice(b"&record%5Bid%5D=999");
    assert_eq!(parse_form(&body).unwrap_err().fields(), ["record[id]"]);
    let json = r#"{"event":"missed","record":{"id":"1","id":"2"}}"#;
    assert_eq!(
        parse_json(json.as_bytes()).unwrap_err().fields(),
        ["record[id]"]
    );
}

#[test]
fn json_bad_shapes_are_named() {
    let cases: &[(&str, &[&str])] = &[
        ("", &["body"]),
        ("[]", &["body"]),
        ("\"call_ended\"", &["body"]),
        ("{\"event\":", &["body"]),
        (r#"{"event":"missed","record":"22232"}"#, &["record"]),
        (
            r#"{"event":["missed"],"record":{"id":{"v":1}}}"#,
            &["event", "record[id]"],
        ),
        (
            r#"{"event":"missed","record":{"id":"1","duration":-3,"started_at":12}}"#,
            &["record[started_at]", "record[duration]"],
        ),
        (
            r#"{"event":"missed","record":{"id":"1","transcribes":"{\"RE\":[[0,\"a\"]]}","transcribe_direction":"no_direction"}}"#,
            &["record[transcribes][RE][0]"],
        ),
    ];
    for (body, fields) in cases {
        let err = parse_json(body.as_bytes()).unwrap_err();
        assert_eq!(err.fields(), *fields, "{body}: {err}");
    }
}

#[test]
fn invalid_utf8_is_a_field_error_not_a_panic() {
    let err = parse_form(b"event=missed&record%5Bid%5D=1&contact%5Bname%5D=%E9%9B").unwrap_err();
    assert_eq!(err.fields(), ["contact[name]"]);
    let err = parse_json(b"{\"event\":\"missed\",\"record\":{\"id\":\"\xff\"}}").unwrap_err();
    assert_eq!(err.fields(), ["body"]);
}

#[test]
fn deep_json_is_refused() {
    let deep = format!(
        r#"{{"event":"missed","record":{{"id":"1","x":{}{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let err = parse_json(deep.as_bytes()).unwrap_err();
    assert_eq!(err.fields(), ["body"]);
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let err = parse_form(&with(&[
        ("record[transcribe_direction]", "no_direction"),
        ("record[transcribes]", &deep),
    ]))
    .unwrap_err();
    assert_eq!(err.fields(), ["record[transcribes]"]);
}

#[test]
fn too_many_utterances_are_refused() {
    let one = r#"[0,"a",1],"#.repeat(MAX_UTTERANCES);
    let body = format!(r#"{{"RE":[{one}[0,"a",1]]}}"#);
    let err = parse_form(&with(&[
        ("record[transcribe_direction]", "no_direction"),
        ("record[transcribes]", &body),
    ]))
    .unwrap_err();
    assert_eq!(err.fields(), ["record[transcribes]"]);
}

#[test]
fn long_transcripts_are_not_held_to_the_field_limit() {
    // R26: a transcript may be longer than one field; each utterance is bounded instead.
    let text = "あ".repeat(1000);
    let items: Vec<String> = (0..40).map(|i| format!(r#"[0,"{text}",{i}]"#)).collect();
    let body = format!(r#"{{"RE":[{}]}}"#, items.join(","));
    assert!(body.chars().count() > MAX_FIELD_CHARS);
    let event = parse_form(&with(&[
        ("record[transcribe_direction]", "no_direction"),
        ("record[transcribes]", &body),
    ]))
    .unwrap();
    assert_eq!(event.transcript.unwrap().recordings[0].utterances.len(), 40);
}

#[test]
fn the_problem_list_is_capped() {
    let items = r#"[0,1,1],"#.repeat(500);
    let body = format!(r#"{{"RE":[{items}[0,1,1]]}}"#);
    let err = parse_form(&with(&[
        ("record[transcribe_direction]", "no_direction"),
        ("record[transcribes]", &body),
    ]))
    .unwrap_err();
    assert_eq!(err.0.len(), MAX_PROBLEMS + 1);
    assert_eq!(err.0[MAX_PROBLEMS].field, "body");
}

#[test]
fn too_many_fields_are_refused() {
    let many: String = (0..MAX_FIELDS + 1).map(|i| format!("f{i}=1&")).collect();
    let err = parse_form(many.as_bytes()).unwrap_err();
    assert!(err.fields().contains(&"body"), "{err}");
}

const KEYS: &[&str] = &[
    "event",
    "record[id]",
    "record[number]",
    "contact[number]",
    "record[direction]",
    "record[status]",
    "record[duration]",
    "record[started_at]",
    "record[transcribes]",
    "record[transcribe_direction]",
    "user[email]",
    "contact[name]",
];

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(KEYS).prop_map(str::to_owned),
        ".{0,12}",
    ]
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        proptest::sample::select(&["call_ended", "22232", "非通知", "200", "inbound", "null"][..])
            .prop_map(str::to_owned),
        Just(r#"{"RE":[[0,"あ",1.5]]}"#.to_owned()),
    ]
}

proptest! {
    #[test]
    fn fuzz_parse_form_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_form(&bytes);
    }

    #[test]
    fn fuzz_parse_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_json(&bytes);
    }

    #[test]
    fn fuzz_form_pairs_give_an_event_or_named_field_errors(
        pairs in proptest::collection::vec((key_strategy(), value_strategy()), 0..16)
    ) {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match parse_form(&encode(&refs)) {
            Ok(event) => prop_assert!(!event.call_id.as_str().is_empty()),
            Err(errors) => prop_assert!(!errors.0.is_empty()),
        }
    }

    #[test]
    fn fuzz_json_objects_give_an_event_or_named_field_errors(
        pairs in proptest::collection::vec((key_strategy(), value_strategy()), 0..16),
        numbers in any::<bool>(),
    ) {
        let mut root = serde_json::Map::new();
        for (k, v) in pairs {
            let value = match v.parse::<i64>() {
                Ok(n) if numbers => serde_json::Value::from(n),
                _ => serde_json::Value::from(v),
            };
            match k.split_once('[') {
                Some((group, rest)) if rest.ends_with(']') => {
                    let inner = root
                        .entry(group.to_owned())
                        .or_insert_with(|| serde_json::Value::Object(Default::default()));
                    if let Some(obj) = inner.as_object_mut() {
                        obj.insert(rest.trim_end_matches(']').to_owned(), value);
                    }
                }
                _ => { root.insert(k, value); }
            }
        }
        let body = serde_json::Value::Object(root).to_string();
        match parse_json(body.as_bytes()) {
            Ok(event) => prop_assert!(!event.call_id.as_str().is_empty()),
            Err(errors) => prop_assert!(!errors.0.is_empty()),
        }
    }
}
