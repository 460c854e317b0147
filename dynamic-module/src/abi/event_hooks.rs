//! The library's exported event hooks (`envoy_dynamic_module_on_*`): each
//! turns Envoy's raw pointers into the safe handles of [`super`] and calls
//! the filter code ([`crate::hooks`]). They sit above everything else in the
//! crate; the rest of `abi` only calls Envoy.

use super::*;
use crate::filter_config::Config;
use crate::hooks;

/// The configuration object this library made (`Box::into_raw`), or null.
type ConfigPtr = *const c_void;

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    let version = on_program_init();
    if !version.is_null() {
        crate::logger::install();
    }
    version
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: EnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> ConfigPtr {
    // SAFETY: Envoy's name and configuration buffers, valid for the call.
    let (name, config) = unsafe {
        (
            bytes(name.ptr, name.length),
            bytes(config.ptr, config.length),
        )
    };
    match hooks::config_new(ConfigHandle(envoy), name, config) {
        Some(made) => Box::into_raw(made).cast_const().cast(),
        None => std::ptr::null(),
    }
}

/// The configuration behind a pointer this library returned.
///
/// # Safety
/// `ptr` came from `envoy_dynamic_module_on_http_filter_config_new` and
/// Envoy has not destroyed it yet.
unsafe fn config_ref<'a>(ptr: ConfigPtr) -> Option<&'a Config> {
    // SAFETY: the caller's contract: a live `Box<Config>` made above.
    unsafe { ptr.cast::<Config>().as_ref() }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(ptr: ConfigPtr) {
    if !ptr.is_null() {
        // SAFETY: made by `Box::into_raw` in config_new; Envoy destroys a
        // configuration once, after its last filter.
        hooks::config_destroy(unsafe { Box::from_raw(ptr.cast_mut().cast::<Config>()) });
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _envoy: EnvoyPtr,
    ptr: ConfigPtr,
    event_id: u64,
) {
    // SAFETY: Envoy passes the live configuration it got from config_new.
    if let Some(config) = unsafe { config_ref(ptr) } {
        hooks::config_scheduled(config, event_id);
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _envoy: EnvoyPtr,
    ptr: ConfigPtr,
    callout_id: u64,
    result: u32,
    headers: *mut EnvoyHttpHeader,
    headers_size: usize,
    chunks: *mut EnvoyBuffer,
    chunks_size: usize,
) {
    // SAFETY: Envoy passes the live configuration it got from config_new.
    let Some(config) = (unsafe { config_ref(ptr) }) else {
        return;
    };
    // SAFETY: the ABI: headers and body chunks owned by Envoy, valid until
    // the end of this hook, null when empty.
    let answer = unsafe { read_answer(result, headers, headers_size, chunks, chunks_size) };
    hooks::config_callout_done(config, callout_id, answer);
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> ConfigPtr {
    log(
        LogLevel::Error,
        "jwt-auth: per-route configuration is not supported; use the configuration's rules",
    );
    std::ptr::null()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(_ptr: ConfigPtr) {}

/// A stream's filter is its configuration: no allocation per stream.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: ConfigPtr,
    _envoy: EnvoyPtr,
) -> ConfigPtr {
    config
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: EnvoyPtr,
    ptr: ConfigPtr,
    _end_of_stream: bool,
) -> HeadersStatus {
    // SAFETY: the filter pointer is its configuration (on_http_filter_new),
    // which outlives its streams.
    match unsafe { config_ref(ptr) } {
        Some(config) => hooks::request_headers(config, FilterHandle(envoy)),
        None => HeadersStatus::StopIteration,
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    envoy: EnvoyPtr,
    ptr: ConfigPtr,
    event_id: u64,
) {
    // SAFETY: as in request_headers.
    if let Some(config) = unsafe { config_ref(ptr) } {
        hooks::filter_scheduled(config, FilterHandle(envoy), event_id);
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    envoy: EnvoyPtr,
    ptr: ConfigPtr,
) {
    // SAFETY: as in request_headers.
    if let Some(config) = unsafe { config_ref(ptr) } {
        hooks::stream_complete(config, FilterHandle(envoy));
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(_ptr: ConfigPtr) {}

// The hooks below are required by Envoy but have nothing to do here.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _end_of_stream: bool,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _end_of_stream: bool,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _end_of_stream: bool,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _response_code: u32,
    _details: EnvoyBuffer,
    _reset_imminent: bool,
) -> u32 {
    0
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _callout_id: u64,
    _result: u32,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _chunks: *mut EnvoyBuffer,
    _chunks_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _stream_id: u64,
    _headers: *mut EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _stream_id: u64,
    _trailers: *mut EnvoyHttpHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
    _stream_id: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: EnvoyPtr,
    _ptr: ConfigPtr,
) {
}
