//! A proxy-wasm HTTP filter that makes `n` host calls of one kind per
//! request, and nothing else, then lets the request through.
//!
//! `make bench-host-calls` (bench/host_calls.py) loads it with several `n`
//! per kind and fits Envoy's CPU time per request against `n`: the slope is
//! what each further call of that kind costs inside Envoy and `n` = 1
//! against `n` = 0 what the first one in a request costs, apart from
//! everything a request costs anyway (the SDK's per-request context,
//! Envoy's calls into the VM), which is the same at every `n`.
//!
//! Plugin configuration (JSON):
//!
//! ```text
//! {"n": 16,
//!  "call": {"kind": "header_get", "name": "x-probe"},
//!  "self_test": [{"label": "rs256-der", "function": "verify_signature",
//!                 "argument_hex": "0a06..."}]}
//! ```
//!
//! `call.kind` is one of `none`, `map_read_raw`, `map_read_sdk`,
//! `header_get {name}`, `header_add {prefix}` (adds `<prefix>-0` ..
//! `<prefix>-<n-1>`), `header_replace {name}`, `header_remove {prefix}`
//! (removes `<prefix>-0` .. `<prefix>-<n-1>`), `time`, `counter`,
//! `property {path}`, `foreign {function, argument_hex, expect_hex}`,
//! `set_effective_context` and `local_reply` (a 403 when `n` > 0, instead
//! of continuing). All header calls act on the request headers.
//!
//! A `foreign` call with `expect_hex` is made once at configuration and must
//! answer exactly those bytes, or the configuration is refused: a benchmark
//! of a call that fails would measure the failure. Each `self_test` entry is
//! a foreign call made once at configuration whose outcome is logged (at
//! warn, `host-probe self-test <label>: ...`), for asking the host what it
//! accepts without measuring it.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType, Status};
use serde::Deserialize;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot::default()) });
}}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    n: usize,
    call: Call,
    #[serde(default)]
    self_test: Vec<SelfTest>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Call {
    None,
    MapReadRaw,
    MapReadSdk,
    HeaderGet {
        name: String,
    },
    HeaderAdd {
        prefix: String,
    },
    HeaderReplace {
        name: String,
    },
    HeaderRemove {
        prefix: String,
    },
    Time,
    Counter,
    Property {
        path: Vec<String>,
    },
    Foreign {
        function: String,
        #[serde(default)]
        argument_hex: String,
        expect_hex: Option<String>,
    },
    SetEffectiveContext,
    LocalReply,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfTest {
    label: String,
    function: String,
    #[serde(default)]
    argument_hex: String,
}

/// What each request does, prepared at configuration so that the request
/// path holds the host calls and nothing that could be done once.
enum Plan {
    Nothing,
    MapReadRaw,
    MapReadSdk,
    HeaderGet(String),
    HeaderAdd(Vec<String>),
    HeaderReplace(String),
    HeaderRemove(Vec<String>),
    Time,
    Counter(u32),
    Property(Vec<String>),
    Foreign { function: String, argument: Vec<u8> },
    SetEffectiveContext,
    LocalReply,
}

struct Probe {
    n: usize,
    plan: Plan,
}

/// The value every added or replaced header gets.
const HEADER_VALUE: &str = "probe-value";

impl Probe {
    fn from_config(bytes: &[u8]) -> Result<Probe, String> {
        let config: Config =
            serde_json::from_slice(bytes).map_err(|e| format!("configuration: {e}"))?;
        for test in &config.self_test {
            let argument = from_hex(&test.argument_hex)
                .ok_or_else(|| format!("self_test {}: argument_hex is not hex", test.label))?;
            warn(&format!(
                "host-probe self-test {}: {}",
                test.label,
                describe(&foreign(&test.function, &argument))
            ));
        }
        let n = config.n;
        let plan = match config.call {
            Call::None => Plan::Nothing,
            Call::MapReadRaw => Plan::MapReadRaw,
            Call::MapReadSdk => Plan::MapReadSdk,
            Call::HeaderGet { name } => Plan::HeaderGet(name),
            Call::HeaderAdd { prefix } => Plan::HeaderAdd(indexed(&prefix, n)),
            Call::HeaderReplace { name } => Plan::HeaderReplace(name),
            Call::HeaderRemove { prefix } => Plan::HeaderRemove(indexed(&prefix, n)),
            Call::Time => Plan::Time,
            // Defined once per VM, as the filter does; only the increment is
            // on the request path.
            Call::Counter => Plan::Counter(
                hostcalls::define_metric(MetricType::Counter, "host_probe.calls")
                    .map_err(|s| format!("define_metric: {s:?}"))?,
            ),
            Call::Property { path } => Plan::Property(path),
            Call::Foreign {
                function,
                argument_hex,
                expect_hex,
            } => {
                let argument = from_hex(&argument_hex)
                    .ok_or_else(|| "foreign: argument_hex is not hex".to_string())?;
                if let Some(expect) = expect_hex {
                    let outcome = foreign(&function, &argument);
                    let got = match &outcome {
                        Ok(reply) => to_hex(reply),
                        Err(_) => String::new(),
                    };
                    if outcome.is_err() || got != expect.to_ascii_lowercase() {
                        return Err(format!(
                            "foreign {function}: answered {}, expected ok {expect}",
                            describe(&outcome)
                        ));
                    }
                }
                Plan::Foreign { function, argument }
            }
            Call::SetEffectiveContext => Plan::SetEffectiveContext,
            Call::LocalReply => Plan::LocalReply,
        };
        Ok(Probe { n, plan })
    }

    /// The `n` calls of one request. Results are dropped: the host call
    /// and freeing what it returned are what is measured.
    fn run(&self, context_id: u32) -> Action {
        let n = self.n;
        let request = MapType::HttpRequestHeaders;
        match &self.plan {
            Plan::Nothing => {}
            Plan::MapReadRaw => {
                for _ in 0..n {
                    let _ = raw_header_map(request);
                }
            }
            // What `HttpContext::get_http_request_headers` does: the same
            // host call, then an owned String pair per header.
            Plan::MapReadSdk => {
                for _ in 0..n {
                    let _ = hostcalls::get_map(request);
                }
            }
            Plan::HeaderGet(name) => {
                for _ in 0..n {
                    let _ = hostcalls::get_map_value_bytes(request, name);
                }
            }
            Plan::HeaderAdd(names) => {
                for name in names {
                    let _ = hostcalls::add_map_value_bytes(request, name, HEADER_VALUE.as_bytes());
                }
            }
            Plan::HeaderReplace(name) => {
                for _ in 0..n {
                    let _ = hostcalls::set_map_value_bytes(
                        request,
                        name,
                        Some(HEADER_VALUE.as_bytes()),
                    );
                }
            }
            Plan::HeaderRemove(names) => {
                for name in names {
                    let _ = hostcalls::set_map_value_bytes(request, name, None);
                }
            }
            Plan::Time => {
                for _ in 0..n {
                    let _ = hostcalls::get_current_time();
                }
            }
            Plan::Counter(id) => {
                for _ in 0..n {
                    let _ = hostcalls::increment_metric(*id, 1);
                }
            }
            Plan::Property(path) => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                for _ in 0..n {
                    // The SDK takes the path by value: one small copy per call.
                    let _ = hostcalls::get_property(path.clone());
                }
            }
            Plan::Foreign { function, argument } => {
                for _ in 0..n {
                    let _ = foreign(function, argument);
                }
            }
            Plan::SetEffectiveContext => {
                for _ in 0..n {
                    let _ = hostcalls::set_effective_context(context_id);
                }
            }
            Plan::LocalReply => {
                if n > 0 {
                    let _ = hostcalls::send_http_response(403, vec![], Some(b"probe\n"));
                    return Action::Pause;
                }
            }
        }
        Action::Continue
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// The serialized header map as the host wrote it: the single ABI call and
/// single buffer the filter's own read makes (src/host/runtime.rs), without
/// the SDK's copy of every header into owned strings. Empty on failure.
fn raw_header_map(map_type: MapType) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host allocates the buffer through the module's
    // `proxy_on_memory_allocate` (the SDK's, a `Vec<u8>` of that capacity)
    // and hands over ownership, as the SDK's own `get_map_bytes` assumes.
    unsafe {
        match proxy_get_header_map_pairs(map_type, &mut data, &mut size) {
            Status::Ok if !data.is_null() && size > 0 => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    }
}

/// A foreign function call; an empty argument is passed as none.
fn foreign(function: &str, argument: &[u8]) -> Result<Vec<u8>, Status> {
    let argument = (!argument.is_empty()).then_some(argument);
    hostcalls::call_foreign_function(function, argument).map(Option::unwrap_or_default)
}

fn describe(outcome: &Result<Vec<u8>, Status>) -> String {
    match outcome {
        Ok(reply) => format!("ok {}", to_hex(reply)),
        Err(status) => format!("{status:?}"),
    }
}

/// `<prefix>-0` .. `<prefix>-<n-1>`: one distinct header name per call.
fn indexed(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn warn(message: &str) {
    let _ = hostcalls::log(LogLevel::Warn, message);
}

#[derive(Default)]
struct ProbeRoot {
    probe: Option<Rc<Probe>>,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match Probe::from_config(&bytes) {
            Ok(probe) => {
                self.probe = Some(Rc::new(probe));
                true
            }
            Err(e) => {
                let _ = hostcalls::log(LogLevel::Error, &format!("host-probe: {e}"));
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeRequest {
            context_id,
            probe: self.probe.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct ProbeRequest {
    context_id: u32,
    probe: Option<Rc<Probe>>,
}

impl Context for ProbeRequest {}

impl HttpContext for ProbeRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match &self.probe {
            Some(probe) => probe.run(self.context_id),
            None => Action::Continue,
        }
    }
}
