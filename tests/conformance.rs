//! A plugin written with the SDK round-trips every WIT type with the host.

mod common;

use spar_host::plugins::world_calls::conformance_api::{
    Bundle, Color, Permissions, Scalars, Shape,
};
use spar_host::plugins::{ConformancePlugin, Limits, Message, PluginHost};

fn plugin() -> ConformancePlugin {
    PluginHost::new(Limits::default())
        .unwrap()
        .load(&common::fixture("conformance"))
        .unwrap()
}

fn bundle(name: &str, note: Option<&str>) -> Bundle {
    Bundle {
        name: name.to_string(),
        numbers: Scalars {
            flag: true,
            small: 255,
            signed_small: -32768,
            unsigned: u32::MAX,
            big: i64::MIN,
            huge: u64::MAX,
            single: 1.5e-7,
            double: -2.25e300,
            letter: 'é',
        },
        tags: vec!["α".into(), String::new(), "x".repeat(10_000)],
        note: note.map(str::to_string),
        bytes: (0..=255).collect(),
        messages: vec![Message {
            role: "user".into(),
            content: "Hello, 世界 🌍".into(),
        }],
        pairs: vec![("a".into(), 0), ("b".into(), 42)],
    }
}

/// Records don't derive PartialEq in the generated bindings; their Debug form is exact.
fn same<T: std::fmt::Debug>(a: &T, b: &T) {
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn records_lists_and_nested_types_round_trip() {
    let mut s = plugin().session();
    let value = bundle("full", Some("a note"));
    let back = s
        .with("echo-bundle", |api, st| api.call_echo_bundle(st, &value))
        .unwrap();
    same(&back, &value);
    let values = vec![bundle("one", None), bundle("two", Some(""))];
    let back = s
        .with("echo-list", |api, st| api.call_echo_list(st, &values))
        .unwrap();
    same(&back, &values);
    let empty: Vec<Bundle> = Vec::new();
    let back = s
        .with("echo-list", |api, st| api.call_echo_list(st, &empty))
        .unwrap();
    assert!(back.is_empty());
}

#[test]
fn options_and_results_round_trip() {
    let mut s = plugin().session();
    for value in [None, Some(None), Some(Some("x".to_string()))] {
        let back = s
            .with("echo-option", |api, st| {
                api.call_echo_option(st, value.as_ref().map(|v| v.as_deref()))
            })
            .unwrap();
        assert_eq!(back, value);
    }
    for value in [
        Ok(vec![1u32, 2, u32::MAX]),
        Ok(vec![]),
        Err("bad".to_string()),
    ] {
        let arg = value.as_ref().map(|v| v.as_slice()).map_err(|e| e.as_str());
        let back = s
            .with("echo-result", |api, st| api.call_echo_result(st, arg))
            .unwrap();
        assert_eq!(back, value);
    }
}

#[test]
fn variants_enums_and_flags_round_trip() {
    let mut s = plugin().session();
    let shapes = [
        Shape::Empty,
        Shape::Point((1.0, -2.0)),
        Shape::Polygon(vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]),
        Shape::Labelled(bundle("in a variant", None)),
    ];
    for shape in shapes {
        let back = s
            .with("echo-shape", |api, st| api.call_echo_shape(st, &shape))
            .unwrap();
        same(&back, &shape);
    }
    for color in [Color::Red, Color::Green, Color::Blue] {
        let back = s
            .with("echo-color", |api, st| api.call_echo_color(st, color))
            .unwrap();
        assert_eq!(back, color);
    }
    for flags in [
        Permissions::empty(),
        Permissions::READ,
        Permissions::READ | Permissions::EXECUTE,
        Permissions::all(),
    ] {
        let back = s
            .with("echo-permissions", |api, st| {
                api.call_echo_permissions(st, flags)
            })
            .unwrap();
        assert_eq!(back, flags);
    }
}

#[test]
fn resources_keep_state_and_pass_by_borrow() {
    let mut s = plugin().session();
    let a = s
        .with("[constructor]counter", |api, st| {
            api.counter().call_constructor(st, 40)
        })
        .unwrap();
    let b = s
        .with("[constructor]counter", |api, st| {
            api.counter().call_constructor(st, -5)
        })
        .unwrap();
    assert_eq!(
        s.with("[method]counter.add", |api, st| api
            .counter()
            .call_add(st, a, 2))
            .unwrap(),
        42
    );
    assert_eq!(
        s.with("[method]counter.add", |api, st| api
            .counter()
            .call_add(st, b, 1))
            .unwrap(),
        -4
    );
    assert_eq!(
        s.with("sum-counters", |api, st| api.call_sum_counters(st, a, b))
            .unwrap(),
        38
    );
    assert_eq!(
        s.with("[method]counter.get", |api, st| api
            .counter()
            .call_get(st, a))
            .unwrap(),
        42
    );
    s.with("drop", |_, st| a.resource_drop(st)).unwrap();
    s.with("drop", |_, st| b.resource_drop(st)).unwrap();
}

#[test]
fn info_round_trips() {
    let plugin = plugin();
    let info = plugin.info();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("conformance", "0.1.0")
    );
    assert_eq!(info.description, "Echoes every WIT type");
}
