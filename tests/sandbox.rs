//! The sandbox: every limit and refusal, against fixture plugins built from source, with the
//! exact error each one gives. After every failure the host keeps working.

mod common;

use std::time::{Duration, Instant};

use common::fixture;
use spar_host::plugins::{
    ConformancePlugin, Limit, Limits, PluginError, PluginHost, VerifierPlugin,
};

fn host(limits: Limits) -> PluginHost {
    PluginHost::new(limits).expect("plugin host")
}

fn hostile(limits: Limits) -> VerifierPlugin {
    host(limits)
        .load(&fixture("hostile"))
        .expect("load hostile")
}

/// After a failure the same session must work again, on a fresh instance.
fn assert_recovers(
    session: &mut spar_host::plugins::Session<spar_host::plugins::bindings::verifier::Verifier>,
) {
    assert!(!session.is_live(), "a trapped instance must be dropped");
    let result = session
        .check("ok", "{}", "prompt", "response")
        .expect("fresh instance works");
    assert!(result.strict && result.loose);
    assert!(session.is_live());
}

#[test]
fn an_infinite_loop_is_stopped_within_about_a_second() {
    let plugin = hostile(Limits::default());
    let mut session = plugin.session();
    let started = Instant::now();
    let error = session.check("loop", "{}", "", "").unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        error.to_string(),
        "plugin `hostile` exceeded its time limit of 1000 ms in `check`"
    );
    assert!(matches!(
        error,
        PluginError::LimitExceeded {
            limit: Limit::Time { .. },
            ..
        }
    ));
    assert!(
        elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(2500),
        "stopped after {elapsed:?}"
    );
    assert_recovers(&mut session);
}

#[test]
fn the_time_limit_is_configurable() {
    let plugin = hostile(Limits {
        call_timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let started = Instant::now();
    let error = plugin.session().check("loop", "{}", "", "").unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile` exceeded its time limit of 200 ms in `check`"
    );
    assert!(started.elapsed() < Duration::from_millis(1000));
}

/// Many calls, each under the per-call limit, cannot stall a stage: all of one plugin's calls
/// together get a budget per stage, shared by its sessions, after which every call is refused
/// without running; a new stage starts the count again.
#[test]
fn a_plugin_has_a_time_budget_per_stage() {
    assert_eq!(Limits::default().stage_time, Duration::from_secs(300));
    let plugin = hostile(Limits {
        call_timeout: Duration::from_millis(30),
        stage_time: Duration::from_millis(100),
        ..Limits::default()
    });
    let mut refused = None;
    for call in 1..=10 {
        // A fresh session each time: the budget is the plugin's, not an instance's.
        match plugin.session().check("loop", "{}", "", "") {
            Err(PluginError::LimitExceeded {
                limit: Limit::Time { .. },
                ..
            }) => {}
            Err(error) => {
                refused = Some((call, error));
                break;
            }
            Ok(_) => panic!("`loop` cannot finish"),
        }
    }
    let (call, error) = refused.expect("the budget ends the calls");
    // Each call runs 20-30 ms before the per-call limit stops it (more on a loaded machine).
    assert!((2..=8).contains(&call), "refused at call {call}");
    assert_eq!(
        error.to_string(),
        "plugin `hostile` exceeded its time budget of 0.1 s for one stage (all its calls together) in `check`"
    );
    assert!(plugin.stage_time_spent() >= Duration::from_millis(100));
    // Refused calls do not run: even a cheap one is refused until the next stage.
    assert!(plugin.session().check("ok", "{}", "p", "r").is_err());
    plugin.start_stage();
    assert!(plugin.session().check("ok", "{}", "p", "r").unwrap().strict);
}

/// A recursion deeper than a Rust guest's stack traps as an out-of-bounds access; the error says
/// what that usually means.
#[test]
fn a_stack_overflow_is_named_as_one() {
    let plugin = hostile(Limits::default());
    let mut session = plugin.session();
    let error = session.check("recurse", "{}", "", "").unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile` trapped in `check`: wasm trap: out of bounds memory access (in a plugin \
         built from \
         Rust or C, usually its stack overflowing: recursion too deep for the stack in its \
         linear memory)"
    );
    assert_recovers(&mut session);
}

#[test]
fn unbounded_allocation_is_stopped_at_the_memory_limit() {
    let plugin = hostile(Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    });
    let mut session = plugin.session();
    let error = session.check("alloc", "{}", "", "").unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile` exceeded its memory limit of 32 MiB in `check`"
    );
    assert_recovers(&mut session);
}

#[test]
fn a_panic_traps_with_its_message_and_the_next_call_gets_a_fresh_instance() {
    let plugin = hostile(Limits::default());
    let mut session = plugin.session();
    let error = session.check("panic", "the-args", "", "").unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("plugin `hostile` trapped in `check`: panicked at "),
        "{text}"
    );
    assert!(
        text.contains("hostile/src/lib.rs") && text.contains(": asked to panic with the-args"),
        "{text}"
    );
    assert!(
        text.ends_with("(wasm trap: wasm `unreachable` instruction executed)"),
        "{text}"
    );
    assert_recovers(&mut session);
}

#[test]
fn an_error_returned_by_the_plugin_is_not_a_trap() {
    let plugin = hostile(Limits::default());
    let mut session = plugin.session();
    session.instantiate().unwrap();
    let error = session.check("error", "bad", "", "").unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile` returned an error from `check`: refusing: bad"
    );
    assert!(session.is_live(), "a returned error keeps the instance");
}

#[test]
fn a_plugin_gets_no_files_environment_arguments_or_network() {
    let plugin = hostile(Limits::default());
    let mut session = plugin.session();
    // What std gives a guest with no capability imports: errors and emptiness, never data.
    let probe = |s: &mut spar_host::plugins::Session<_>, id: &str, arg: &str| {
        s.describe(id, arg).expect("probe answers")
    };
    let read = probe(&mut session, "read-file", env!("CARGO_MANIFEST_DIR"));
    assert!(
        read.starts_with("Err(") && read.contains("Unsupported"),
        "{read}"
    );
    let read = probe(&mut session, "read-file", "/etc/hostname");
    assert!(read.starts_with("Err("), "{read}");
    let dir = probe(&mut session, "list-dir", "/");
    assert!(dir.starts_with("Err("), "{dir}");
    // SAFETY: tests in this binary do not read this variable concurrently.
    unsafe { std::env::set_var("SPAR_SECRET", "hunter2") };
    assert_eq!(
        probe(&mut session, "env-var", "SPAR_SECRET"),
        "Err(NotPresent)"
    );
    assert_eq!(probe(&mut session, "env-var", "PATH"), "Err(NotPresent)");
    // Enumerating the environment is not even implemented for a capability-free guest: std
    // panics, the call traps, and the host carries on.
    let error = session.describe("env-count", "").unwrap_err().to_string();
    assert!(
        error.starts_with("plugin `hostile` trapped in `describe`: panicked at ")
            && error.contains("not supported on this platform"),
        "{error}"
    );
    assert_eq!(probe(&mut session, "args-count", ""), "0");
    let connect = probe(&mut session, "connect", "127.0.0.1:9");
    assert!(connect.starts_with("Err("), "{connect}");
    // And structurally: the component can import nothing but the contract's host interface.
    assert_eq!(
        plugin.manifest().imports,
        ["spar:plugins/host@0.1.0", "spar:plugins/types@0.1.0"]
    );
}

#[test]
fn a_plugin_that_imports_a_capability_is_refused_before_compiling() {
    let path = fixture("forbidden-import");
    let error = host(Limits::default())
        .load::<spar_host::plugins::bindings::verifier::Verifier>(&path)
        .err()
        .expect("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: imports `spar:plugins/files@0.1.0`, which spar-host does not provide: plugins get no files, network, environment or clocks, only spar:plugins/host",
            path.display()
        )
    );
}

#[test]
fn an_incompatible_contract_version_is_refused_before_instantiation() {
    let path = fixture("future-contract");
    let host = host(Limits::default());
    // `inspect` compiles nothing: the refusal comes from the binary's export names alone.
    let error = host.inspect(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: built against spar:plugins@0.2.0, but this host implements spar:plugins@0.1.0: rebuild the plugin against spar:plugins@0.1.0 (or upgrade spar-host)",
            path.display()
        )
    );
    let via_load = host.load::<spar_host::plugins::bindings::verifier::Verifier>(&path);
    assert_eq!(via_load.err().unwrap().to_string(), error.to_string());
}

#[test]
fn the_wrong_world_is_refused() {
    let path = fixture("conformance");
    let error = host(Limits::default())
        .load::<spar_host::plugins::bindings::verifier::Verifier>(&path)
        .err()
        .expect("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: implements the `conformance` world, but a `verifier` plugin is needed here",
            path.display()
        )
    );
    let _: ConformancePlugin = host(Limits::default())
        .load(&path)
        .expect("right world loads");
}

#[test]
fn files_that_are_not_components_are_refused_clearly() {
    let dir = common::scratch("not-components");
    let host = host(Limits::default());
    let check = |name: &str, bytes: &[u8], reason: &str| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = host
            .load::<spar_host::plugins::bindings::verifier::Verifier>(&path)
            .err()
            .expect("refused");
        assert_eq!(error.to_string(), format!("{}: {reason}", path.display()));
    };
    check(
        "text.wasm",
        b"this is not webassembly at all",
        "not a WebAssembly file (it does not start with the `\\0asm` magic bytes)",
    );
    check(
        "core.wasm",
        b"\0asm\x01\0\0\0",
        "a core WebAssembly module, not a component: build plugins with spar-plugin-sdk (see the README's plugin guide)",
    );
    let real = std::fs::read(fixture("hostile")).unwrap();
    let path = dir.join("truncated.wasm");
    std::fs::write(&path, &real[..real.len() / 2]).unwrap();
    let error = host
        .load::<spar_host::plugins::bindings::verifier::Verifier>(&path)
        .err()
        .expect("refused");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: malformed or truncated component: ",
            path.display()
        )),
        "{text}"
    );
    let missing = dir.join("missing.wasm");
    let error = host
        .load::<spar_host::plugins::bindings::verifier::Verifier>(&missing)
        .err()
        .expect("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: cannot read plugin: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[test]
fn sessions_are_independent_instances() {
    let plugin: ConformancePlugin = host(Limits::default())
        .load(&fixture("conformance"))
        .unwrap();
    let mut first = plugin.session();
    let mut second = plugin.session();
    let counter = first
        .with("[constructor]counter", |api, s| {
            api.counter().call_constructor(s, 10)
        })
        .unwrap();
    first
        .with("[method]counter.add", |api, s| {
            api.counter().call_add(s, counter, 5)
        })
        .unwrap();
    let other = second
        .with("[constructor]counter", |api, s| {
            api.counter().call_constructor(s, 1)
        })
        .unwrap();
    let total = second
        .with("[method]counter.get", |api, s| {
            api.counter().call_get(s, other)
        })
        .unwrap();
    assert_eq!(total, 1);
    let total = first
        .with("[method]counter.get", |api, s| {
            api.counter().call_get(s, counter)
        })
        .unwrap();
    assert_eq!(total, 15);
}

#[test]
fn a_plugins_error_text_is_bounded_and_cannot_forge_lines_or_colour_the_terminal() {
    let plugin = hostile(Limits::default());
    let mut session = plugin.session();
    let long = session.check("shout", "", "", "").unwrap_err().to_string();
    let prefix = "plugin `hostile` returned an error from `check`: ";
    assert_eq!(
        long,
        format!("{prefix}{}… (1044480 more bytes)", "A".repeat(4096))
    );
    let forged = session.check("forge", "", "", "").unwrap_err().to_string();
    assert_eq!(
        forged,
        format!("{prefix}bad\\u{{1b}}[31m\\nstats eval: {{\"pass_rate\": 1.0}}")
    );
    assert!(!forged.contains('\n') && !forged.contains('\u{1b}'));
}

/// Captures what the host logs while `f` runs.
fn logged(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer(Arc::new(Mutex::new(Vec::new())));
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn a_plugin_that_logs_in_a_loop_gets_a_budget_per_call_then_one_line() {
    let plugin = hostile(Limits::default());
    let mut session = plugin.session();
    let log = logged(|| {
        assert!(session.check("chatty", "", "", "x").unwrap().strict);
    });
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 101, "{}", lines.last().unwrap_or(&""));
    assert!(lines[99].contains("line 99"), "{}", lines[99]);
    assert!(
        lines[100].contains("9900 more log lines from `check` suppressed (at most 100 per call)"),
        "{}",
        lines[100]
    );
    // The budget is per call.
    let again = logged(|| {
        session.check("chatty", "", "", "x").unwrap();
    });
    assert_eq!(again.lines().count(), 101);
}

/// A judge cannot make the host tokenise or store much more than it was given.
#[test]
fn a_judges_prompts_and_refinements_are_bounded_by_their_inputs() {
    let judge: spar_host::plugins::JudgePlugin = PluginHost::new(Limits::default())
        .unwrap()
        .load(&fixture("judge-flood"))
        .unwrap();
    let mut session = judge.session();
    let many = session.judge_prompt("many", "r").unwrap_err().to_string();
    assert!(
        many.starts_with(
            "plugin `judge-flood` returned an error from `judge-prompt`: returned 1000 messages of "
        ) && many.ends_with(
            "bytes; the limit is 64 messages and 65546 bytes (twice the inputs plus 65536)"
        ),
        "{many}"
    );
    let huge = session.judge_prompt("huge", "r").unwrap_err().to_string();
    assert!(
        huge.contains(
            "returned 1 messages of 2097156 bytes; the limit is 64 messages and 65546 bytes"
        ),
        "{huge}"
    );
    assert_eq!(session.judge_prompt("fine", "r").unwrap().len(), 1);
    let grown = session
        .parse_refinement("please grow")
        .unwrap_err()
        .to_string();
    assert_eq!(
        grown,
        "plugin `judge-flood` returned an error from `parse-refinement`: returned 11000 bytes from a text of 11; a refinement is part of the text it is parsed from"
    );
    assert_eq!(
        session.parse_refinement("steady").unwrap().as_deref(),
        Some("steady")
    );
}
