//! The C ABI of Envoy's dynamic modules (Envoy 1.40.0, ABI `v0.2.0`), as far
//! as this filter uses it, and the only `unsafe` code of the crate.
//!
//! Two directions cross here:
//! - event hooks (`envoy_dynamic_module_on_*`), exported by this library and
//!   called by Envoy: each turns Envoy's raw pointers into the safe handles
//!   below and calls the filter code ([`crate::hooks`]);
//! - callbacks (`envoy_dynamic_module_callback_*`), exported by the Envoy
//!   binary: resolved once by name when Envoy loads the library
//!   ([`on_program_init`]), not linked, so a library loaded into an Envoy
//!   that lacks one refuses to load (naming it) instead of failing on the
//!   first request, and the crate's tests link without Envoy.
//!
//! Signatures follow `source/extensions/dynamic_modules/abi/abi.h` of Envoy's
//! repository; enums are C `int`s (`u32` here), buffers are (pointer,
//! length) pairs passed by value.

use std::ffi::{c_char, c_void, CStr};
use std::sync::{Mutex, OnceLock};

use jwt_auth_core::request::Header;
use jwt_auth_core::worker::Worker;

/// The ABI version this library is built for: what Envoy 1.40.0 reports as
/// matched. Envoy only logs a warning for another value
/// (`dynamic_modules.cc`), so [`on_program_init`]'s callback check is what
/// stops a library built for another Envoy.
pub const ABI_VERSION: &CStr = c"v0.2.0";

/// `envoy_dynamic_module_type_envoy_buffer`: bytes Envoy owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    ptr: *const c_char,
    length: usize,
}

/// `envoy_dynamic_module_type_module_buffer`: bytes this library owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    ptr: *const c_char,
    length: usize,
}

impl ModuleBuffer {
    fn of(bytes: &[u8]) -> Self {
        ModuleBuffer {
            ptr: bytes.as_ptr().cast(),
            length: bytes.len(),
        }
    }

    /// The ABI's null buffer (a header value that removes the header).
    fn null() -> Self {
        ModuleBuffer {
            ptr: std::ptr::null(),
            length: 0,
        }
    }
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleHttpHeader {
    key_ptr: *const c_char,
    key_length: usize,
    value_ptr: *const c_char,
    value_length: usize,
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHttpHeader {
    key_ptr: *const c_char,
    key_length: usize,
    value_ptr: *const c_char,
    value_length: usize,
}

impl EnvoyHttpHeader {
    /// An entry for Envoy to fill.
    const EMPTY: Self = EnvoyHttpHeader {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
}

/// `envoy_dynamic_module_type_http_header_type_RequestHeader`.
const REQUEST_HEADERS: u32 = 0;
/// `..._metrics_result_Success`, `..._http_callout_init_result_Success`,
/// `..._http_callout_result_Success`: the first value of each enum.
const SUCCESS: u32 = 0;

/// What a request-headers hook tells Envoy
/// (`envoy_dynamic_module_type_on_http_filter_request_headers_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum HeadersStatus {
    Continue = 0,
    StopIteration = 1,
}

/// `envoy_dynamic_module_type_log_level`.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum LogLevel {
    Info = 2,
    Warn = 3,
    Error = 4,
}

type EnvoyPtr = *mut c_void;

/// `envoy_dynamic_module_callback_http_filter_config_define_{counter,gauge}`.
type DefineMetric =
    unsafe extern "C" fn(EnvoyPtr, ModuleBuffer, *mut ModuleBuffer, usize, *mut usize) -> u32;

/// `envoy_dynamic_module_callback_http_{set,add}_header`.
type HeaderWriter = unsafe extern "C" fn(EnvoyPtr, u32, ModuleBuffer, ModuleBuffer) -> bool;

/// Every callback this library calls, resolved by name at load.
struct Callbacks {
    log: unsafe extern "C" fn(u32, ModuleBuffer),
    get_headers_size: unsafe extern "C" fn(EnvoyPtr, u32) -> usize,
    get_headers: unsafe extern "C" fn(EnvoyPtr, u32, *mut EnvoyHttpHeader) -> bool,
    set_header: HeaderWriter,
    add_header: HeaderWriter,
    send_response: unsafe extern "C" fn(
        EnvoyPtr,
        u32,
        *mut ModuleHttpHeader,
        usize,
        ModuleBuffer,
        ModuleBuffer,
    ),
    clear_route_cache: unsafe extern "C" fn(EnvoyPtr),
    continue_decoding: unsafe extern "C" fn(EnvoyPtr),
    define_counter: DefineMetric,
    define_gauge: DefineMetric,
    increment_counter: unsafe extern "C" fn(EnvoyPtr, usize, *mut ModuleBuffer, usize, u64) -> u32,
    config_increment_counter:
        unsafe extern "C" fn(EnvoyPtr, usize, *mut ModuleBuffer, usize, u64) -> u32,
    config_set_gauge: unsafe extern "C" fn(EnvoyPtr, usize, *mut ModuleBuffer, usize, u64) -> u32,
    config_scheduler_new: unsafe extern "C" fn(EnvoyPtr) -> *mut c_void,
    config_scheduler_commit: unsafe extern "C" fn(*mut c_void, u64),
    config_scheduler_delete: unsafe extern "C" fn(*mut c_void),
    config_http_callout: unsafe extern "C" fn(
        EnvoyPtr,
        *mut u64,
        ModuleBuffer,
        *mut ModuleHttpHeader,
        usize,
        ModuleBuffer,
        u64,
    ) -> u32,
    filter_scheduler_new: unsafe extern "C" fn(EnvoyPtr) -> *mut c_void,
    filter_scheduler_commit: unsafe extern "C" fn(*mut c_void, u64),
    filter_scheduler_delete: unsafe extern "C" fn(*mut c_void),
    set_filter_state_typed: unsafe extern "C" fn(EnvoyPtr, ModuleBuffer, ModuleBuffer) -> bool,
}

/// The callbacks' names, in the order [`resolve`] reads them; one
/// NUL-separated table (behind a marker, so a test can find it in the
/// built library and rename an entry to stand for an Envoy without it).
pub const CALLBACK_TABLE: &[u8] = b"jwt-auth-callbacks\0\
envoy_dynamic_module_callback_log\0\
envoy_dynamic_module_callback_http_get_headers_size\0\
envoy_dynamic_module_callback_http_get_headers\0\
envoy_dynamic_module_callback_http_set_header\0\
envoy_dynamic_module_callback_http_add_header\0\
envoy_dynamic_module_callback_http_send_response\0\
envoy_dynamic_module_callback_http_clear_route_cache\0\
envoy_dynamic_module_callback_http_filter_continue_decoding\0\
envoy_dynamic_module_callback_http_filter_config_define_counter\0\
envoy_dynamic_module_callback_http_filter_config_define_gauge\0\
envoy_dynamic_module_callback_http_filter_increment_counter\0\
envoy_dynamic_module_callback_http_filter_config_increment_counter\0\
envoy_dynamic_module_callback_http_filter_config_set_gauge\0\
envoy_dynamic_module_callback_http_filter_config_scheduler_new\0\
envoy_dynamic_module_callback_http_filter_config_scheduler_commit\0\
envoy_dynamic_module_callback_http_filter_config_scheduler_delete\0\
envoy_dynamic_module_callback_http_filter_config_http_callout\0\
envoy_dynamic_module_callback_http_filter_scheduler_new\0\
envoy_dynamic_module_callback_http_filter_scheduler_commit\0\
envoy_dynamic_module_callback_http_filter_scheduler_delete\0\
envoy_dynamic_module_callback_http_set_filter_state_typed\0";

/// The callback names of [`CALLBACK_TABLE`].
pub fn callback_names() -> impl Iterator<Item = &'static [u8]> {
    CALLBACK_TABLE
        .split(|&b| b == 0)
        .skip(1)
        .filter(|n| !n.is_empty())
}

static CALLBACKS: OnceLock<Callbacks> = OnceLock::new();

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// The address of a symbol of the process (the Envoy binary exports its
/// callbacks), or null.
fn lookup(name: &[u8]) -> *mut c_void {
    let mut c_name = name.to_vec();
    c_name.push(0);
    // SAFETY: `c_name` is a NUL-terminated string alive for the call;
    // RTLD_DEFAULT (null on glibc) searches the global symbol scope, which
    // holds the executable's exported symbols; dlsym only reads the string.
    unsafe { dlsym(std::ptr::null_mut(), c_name.as_ptr().cast()) }
}

/// Resolves every callback, or names the first one the process lacks.
// Each transmute's target is the type of the field it fills.
#[allow(clippy::missing_transmute_annotations)]
fn resolve() -> Result<Callbacks, String> {
    let mut found = Vec::new();
    for name in callback_names() {
        let address = lookup(name);
        if address.is_null() {
            return Err(String::from_utf8_lossy(name).into_owned());
        }
        found.push(address);
    }
    let mut next = found.into_iter();
    let mut take = || next.next().unwrap_or(std::ptr::null_mut());
    // SAFETY: each address is the non-null symbol of that name, taken in
    // table order; the ABI header declares each of these functions with
    // exactly the signature of the field it fills (a C function pointer
    // has the size and representation of a data pointer on the platforms
    // Envoy runs on).
    unsafe {
        Ok(Callbacks {
            log: std::mem::transmute::<*mut c_void, _>(take()),
            get_headers_size: std::mem::transmute::<*mut c_void, _>(take()),
            get_headers: std::mem::transmute::<*mut c_void, _>(take()),
            set_header: std::mem::transmute::<*mut c_void, _>(take()),
            add_header: std::mem::transmute::<*mut c_void, _>(take()),
            send_response: std::mem::transmute::<*mut c_void, _>(take()),
            clear_route_cache: std::mem::transmute::<*mut c_void, _>(take()),
            continue_decoding: std::mem::transmute::<*mut c_void, _>(take()),
            define_counter: std::mem::transmute::<*mut c_void, _>(take()),
            define_gauge: std::mem::transmute::<*mut c_void, _>(take()),
            increment_counter: std::mem::transmute::<*mut c_void, _>(take()),
            config_increment_counter: std::mem::transmute::<*mut c_void, _>(take()),
            config_set_gauge: std::mem::transmute::<*mut c_void, _>(take()),
            config_scheduler_new: std::mem::transmute::<*mut c_void, _>(take()),
            config_scheduler_commit: std::mem::transmute::<*mut c_void, _>(take()),
            config_scheduler_delete: std::mem::transmute::<*mut c_void, _>(take()),
            config_http_callout: std::mem::transmute::<*mut c_void, _>(take()),
            filter_scheduler_new: std::mem::transmute::<*mut c_void, _>(take()),
            filter_scheduler_commit: std::mem::transmute::<*mut c_void, _>(take()),
            filter_scheduler_delete: std::mem::transmute::<*mut c_void, _>(take()),
            set_filter_state_typed: std::mem::transmute::<*mut c_void, _>(take()),
        })
    }
}

fn callbacks() -> Option<&'static Callbacks> {
    CALLBACKS.get()
}

/// Envoy's log, under its `dynamic_modules` logger.
pub fn log(level: LogLevel, message: &str) {
    if let Some(cb) = callbacks() {
        // SAFETY: the buffer points into `message`, alive for the call;
        // Envoy copies the text before returning.
        unsafe { (cb.log)(level as u32, ModuleBuffer::of(message.as_bytes())) }
    }
}

/// Why [`on_program_init`] refuses: the callback this Envoy lacks.
pub fn load_error(missing: &str) -> String {
    format!(
        "jwt-auth: this Envoy has no dynamic-module callback {missing}; the module is built \
         for Envoy 1.40 (ABI {}): use the module built for this Envoy's version",
        ABI_VERSION.to_string_lossy()
    )
}

/// `envoy_dynamic_module_on_program_init`: the ABI version, or null (Envoy
/// then refuses the module) when a callback is missing.
pub fn on_program_init() -> *const c_char {
    match resolve() {
        Ok(found) => {
            let _ = CALLBACKS.set(found);
            ABI_VERSION.as_ptr()
        }
        Err(missing) => {
            // Envoy's logging callback may be missing too: stderr is what
            // an operator reads when Envoy refuses to start.
            eprintln!("{}", load_error(&missing));
            std::ptr::null()
        }
    }
}

/// Envoy's `DynamicModuleHttpFilterConfig`. Envoy keeps it alive until it
/// has called `on_http_filter_config_destroy`, and so past every use here.
#[derive(Clone, Copy)]
pub struct ConfigHandle(EnvoyPtr);

// SAFETY: the handle is an address Envoy gave us; this library never
// dereferences it, only passes it back to the callbacks. The per-config
// callbacks used from other threads (counter and gauge updates on the
// metrics defined at load, scheduler commits) are documented by the ABI as
// callable outside the request path; callouts are made on the main thread,
// from its scheduler events, only.
unsafe impl Send for ConfigHandle {}
// SAFETY: as for `Send`: shared references only copy the address.
unsafe impl Sync for ConfigHandle {}

/// A metric id from a `define_*` callback.
pub type MetricId = usize;

impl ConfigHandle {
    /// Declares the counter `name` (Envoy adds its `dynamicmodulescustom`
    /// namespace); only while the configuration loads.
    pub fn define_counter(self, name: &str) -> Option<MetricId> {
        self.define(callbacks()?.define_counter, name)
    }

    /// Declares the gauge `name`; only while the configuration loads.
    pub fn define_gauge(self, name: &str) -> Option<MetricId> {
        self.define(callbacks()?.define_gauge, name)
    }

    fn define(self, define: DefineMetric, name: &str) -> Option<MetricId> {
        let mut id: usize = 0;
        // SAFETY: `define` is one of the ABI's define callbacks; the name
        // buffer lives for the call (Envoy copies it); no labels (null,
        // length 0, as the ABI allows); `id` is a live out parameter.
        let result = unsafe {
            define(
                self.0,
                ModuleBuffer::of(name.as_bytes()),
                std::ptr::null_mut(),
                0,
                &mut id,
            )
        };
        (result == SUCCESS).then_some(id)
    }

    /// Adds `n` to a counter declared on this configuration.
    pub fn increment_counter(self, id: MetricId, n: u64) {
        if let Some(cb) = callbacks() {
            // SAFETY: `id` came from `define_counter` on this handle; no labels.
            let _ =
                unsafe { (cb.config_increment_counter)(self.0, id, std::ptr::null_mut(), 0, n) };
        }
    }

    /// Sets a gauge declared on this configuration.
    pub fn set_gauge(self, id: MetricId, value: u64) {
        if let Some(cb) = callbacks() {
            // SAFETY: `id` came from `define_gauge` on this handle; no labels.
            let _ = unsafe { (cb.config_set_gauge)(self.0, id, std::ptr::null_mut(), 0, value) };
        }
    }

    /// Starts a GET-style callout to `cluster` from the main thread; its
    /// answer arrives through `on_http_filter_config_http_callout_done` with
    /// the returned id.
    pub fn http_callout(
        self,
        cluster: &str,
        headers: &[(String, String)],
        timeout_ms: u64,
    ) -> Result<u64, u32> {
        let cb = callbacks().ok_or(u32::MAX)?;
        let mut raw = module_headers(headers);
        let mut id: u64 = 0;
        // SAFETY: every buffer points into `cluster`, `headers` and `raw`,
        // all alive for the call (Envoy copies them into its request); an
        // empty body; `id` is a live out parameter.
        let result = unsafe {
            (cb.config_http_callout)(
                self.0,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                raw.as_mut_ptr(),
                raw.len(),
                ModuleBuffer::null(),
                timeout_ms,
            )
        };
        if result == SUCCESS {
            Ok(id)
        } else {
            Err(result)
        }
    }

    /// A scheduler that runs `on_http_filter_config_scheduled` on the main
    /// thread, committed from any thread.
    pub fn scheduler(self) -> Option<Scheduler> {
        let cb = callbacks()?;
        // SAFETY: the handle is live while the configuration is.
        let raw = unsafe { (cb.config_scheduler_new)(self.0) };
        Scheduler::new(raw, cb.config_scheduler_commit, cb.config_scheduler_delete)
    }
}

/// One of Envoy's schedulers (a configuration's, run on the main thread, or
/// a stream's, run on its worker thread), owned here: deleted on drop.
pub struct Scheduler {
    raw: *mut c_void,
    commit: unsafe extern "C" fn(*mut c_void, u64),
    delete: unsafe extern "C" fn(*mut c_void),
}

// SAFETY: the ABI documents commit as callable from any thread (the
// configuration's: "used to dispatch HTTP filter configuration operations to
// the main thread from any thread"; a stream's: "safe to call from any
// thread and a no-op once the filter has been destroyed"); the pointer is
// only passed back to Envoy.
unsafe impl Send for Scheduler {}
// SAFETY: as for `Send`; commit takes the pointer by value.
unsafe impl Sync for Scheduler {}

impl Scheduler {
    fn new(
        raw: *mut c_void,
        commit: unsafe extern "C" fn(*mut c_void, u64),
        delete: unsafe extern "C" fn(*mut c_void),
    ) -> Option<Scheduler> {
        (!raw.is_null()).then_some(Scheduler {
            raw,
            commit,
            delete,
        })
    }

    pub fn commit(&self, event_id: u64) {
        // SAFETY: the scheduler is live until dropped; `commit` is the
        // commit callback of the kind that made it.
        unsafe { (self.commit)(self.raw, event_id) }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // SAFETY: made by the matching `*_scheduler_new`, deleted once.
        unsafe { (self.delete)(self.raw) }
    }
}

/// Envoy's `DynamicModuleHttpFilter` of one stream, valid during the hook
/// it was handed to (and, for a held request, until the stream completes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FilterHandle(EnvoyPtr);

impl FilterHandle {
    /// A number that names this stream while it lives.
    pub fn id(self) -> usize {
        self.0 as usize
    }

    /// Calls `f` with the request headers, borrowed from Envoy's header map
    /// (no copy). A name that is not UTF-8 (Envoy's codecs refuse such
    /// names) is left out: no configuration can name it.
    pub fn with_request_headers<R>(self, f: impl FnOnce(&[Header<'_>]) -> R) -> R {
        /// Entries read without a heap allocation: more than most requests
        /// carry.
        const ON_STACK: usize = 32;
        let Some(cb) = callbacks() else {
            return f(&[]);
        };
        // SAFETY: the filter pointer is live during the hook.
        let count = unsafe { (cb.get_headers_size)(self.0, REQUEST_HEADERS) };
        let mut stack = [EnvoyHttpHeader::EMPTY; ON_STACK];
        let mut heap = Vec::new();
        let raw: &mut [EnvoyHttpHeader] = if count <= ON_STACK {
            &mut stack[..count]
        } else {
            heap.resize(count, EnvoyHttpHeader::EMPTY);
            &mut heap
        };
        // SAFETY: `raw` holds `count` entries, the size Envoy just reported
        // for this map on this thread.
        let ok = unsafe { (cb.get_headers)(self.0, REQUEST_HEADERS, raw.as_mut_ptr()) };
        if !ok {
            return f(&[]);
        }
        let mut stack_headers: [Header<'_>; ON_STACK] = [("", &[]); ON_STACK];
        let mut heap_headers: Vec<Header<'_>> = Vec::new();
        let headers: &mut [Header<'_>] = if count <= ON_STACK {
            &mut stack_headers[..count]
        } else {
            heap_headers.resize(count, ("", &[]));
            &mut heap_headers
        };
        let mut kept = 0;
        let readable = raw.iter().filter_map(|h| {
            // SAFETY: Envoy filled each entry with buffers of its header
            // map, valid until the end of this hook or until a header of
            // it is set. The borrow ends when `f` returns, and `f` sets
            // no header: this crate's only caller (`hooks::decide`)
            // decides inside `f` and writes headers (`hooks::apply`)
            // after it.
            let (name, value) = unsafe {
                (
                    bytes(h.key_ptr, h.key_length),
                    bytes(h.value_ptr, h.value_length),
                )
            };
            Some((text(name)?, value))
        });
        for (slot, header) in headers.iter_mut().zip(readable) {
            *slot = header;
            kept += 1;
        }
        f(headers.get(..kept).unwrap_or_default())
    }

    /// Removes every value of request header `name`.
    pub fn remove_request_header(self, name: &str) {
        self.write_request_header(name, ModuleBuffer::null());
    }

    /// Sets request header `name` to `value`, replacing every value.
    pub fn set_request_header(self, name: &str, value: &str) {
        self.write_request_header(name, ModuleBuffer::of(value.as_bytes()));
    }

    /// Adds a value of request header `name`, keeping any other: no
    /// search for an existing value, so cheaper than [`Self::set_request_header`]
    /// for a header the request is known not to carry. Envoy 1.40 adds no
    /// empty value, so one goes through the setter as before (which, in
    /// 1.40, removes the header for an empty value).
    pub fn add_request_header(self, name: &str, value: &str) {
        if value.is_empty() {
            return self.set_request_header(name, value);
        }
        self.write_request_header_with(name, ModuleBuffer::of(value.as_bytes()), |cb| {
            cb.add_header
        });
    }

    /// The ABI's one header writer: a null value removes the header.
    fn write_request_header(self, name: &str, value: ModuleBuffer) {
        self.write_request_header_with(name, value, |cb| cb.set_header);
    }

    fn write_request_header_with(
        self,
        name: &str,
        value: ModuleBuffer,
        writer: impl Fn(&Callbacks) -> HeaderWriter,
    ) {
        if let Some(cb) = callbacks() {
            // SAFETY: the name (and a non-null value) point into buffers
            // alive for the call; Envoy copies them.
            let _ = unsafe {
                (writer(cb))(
                    self.0,
                    REQUEST_HEADERS,
                    ModuleBuffer::of(name.as_bytes()),
                    value,
                )
            };
        }
    }

    /// Makes Envoy match the route again (after header changes), as it does
    /// for a wasm filter that changed the request headers.
    pub fn clear_route_cache(self) {
        if let Some(cb) = callbacks() {
            // SAFETY: the filter pointer is live during the hook.
            unsafe { (cb.clear_route_cache)(self.0) }
        }
    }

    /// Answers the request locally.
    pub fn send_response<N: AsRef<str>>(
        self,
        status: u16,
        headers: &[(N, String)],
        body: Option<&str>,
    ) {
        let Some(cb) = callbacks() else { return };
        let mut raw = module_headers(headers);
        let body = body.map_or(ModuleBuffer::null(), |b| ModuleBuffer::of(b.as_bytes()));
        // SAFETY: every buffer points into `headers`, `body` and `raw`,
        // alive for the call; Envoy copies them into the local reply.
        unsafe {
            (cb.send_response)(
                self.0,
                u32::from(status),
                raw.as_mut_ptr(),
                raw.len(),
                body,
                ModuleBuffer::of(b"jwt_auth_denied"),
            )
        }
    }

    /// Resumes a request this filter held.
    pub fn continue_decoding(self) {
        if let Some(cb) = callbacks() {
            // SAFETY: called from the stream's worker thread while the
            // stream lives (its scheduler event).
            unsafe { (cb.continue_decoding)(self.0) }
        }
    }

    /// Adds `n` to a counter declared on this stream's configuration.
    pub fn increment_counter(self, id: MetricId, n: u64) {
        if let Some(cb) = callbacks() {
            // SAFETY: `id` came from `define_counter` on the configuration
            // that made this stream's filter; no labels.
            let _ = unsafe { (cb.increment_counter)(self.0, id, std::ptr::null_mut(), 0, n) };
        }
    }

    /// Writes the filter state object `key` of this stream, built from
    /// `value` by the `StreamInfo::FilterState::ObjectFactory` Envoy has
    /// registered under `key` (for `envoy.string`, the string accessor
    /// every reader of that key expects): the object the wasm host's
    /// `set_envoy_filter_state` builds for the same key and value. False
    /// when Envoy refuses: no factory for the key, a value the factory
    /// cannot parse, or no stream info.
    ///
    /// What Envoy 1.40's ABI does not offer here: a life span or upstream
    /// sharing. `envoy_dynamic_module_callback_http_set_filter_state_typed`
    /// takes (filter, key, value) only (as the Envoy 1.40 binary's own
    /// code reads its arguments, not only as abi.h declares them), and
    /// stores the object with
    /// `LifeSpan::FilterChain` and no sharing with the upstream
    /// connection (`StreamSharingMayImpactPooling::None`), where the wasm
    /// build asks for `LifeSpan::DownstreamRequest`, also without sharing.
    /// The two differ only when Envoy starts a new filter chain for the
    /// same request (an internal redirect): this filter then runs again on
    /// the new chain and writes the objects again from the same token, so
    /// a later filter and the access log see the same value either way,
    /// unless the redirect lands on a route that bypasses verification
    /// (the wasm build's objects stay, these are gone). The ABI's
    /// callback that takes a life span and sharing
    /// (`..._set_filter_state_value`), like `..._set_filter_state_bytes`
    /// that takes neither, stores a `Router::StringAccessorImpl` whatever
    /// the key: the object of `envoy.string`, not the one the factory of
    /// `envoy.hashable_string` builds, so neither can stand in for the
    /// factory.
    pub fn set_filter_state(self, key: &str, value: &str) -> bool {
        let Some(cb) = callbacks() else { return false };
        // SAFETY: the filter pointer is live during the hook (or the
        // scheduler event of a held request); both buffers point into
        // `key` and `value`, alive for the call; Envoy copies the key and
        // parses the value into its own object before returning.
        unsafe {
            (cb.set_filter_state_typed)(
                self.0,
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value.as_bytes()),
            )
        }
    }

    /// A scheduler that runs `on_http_filter_scheduled` for this stream on
    /// its worker thread, committed from any thread.
    pub fn scheduler(self) -> Option<Scheduler> {
        let cb = callbacks()?;
        // SAFETY: the filter pointer is live during the hook.
        let raw = unsafe { (cb.filter_scheduler_new)(self.0) };
        Scheduler::new(raw, cb.filter_scheduler_commit, cb.filter_scheduler_delete)
    }
}

/// One configuration's core [`Worker`], shared by Envoy's threads behind a
/// lock: its loops run on the main thread, its decisions on the workers.
pub struct LockedWorker(Mutex<Worker>);

// SAFETY: `Worker` is not `Send` only because it holds `Rc`s (the
// revocation replica view) and a boxed signature accelerator. Every clone
// of each `Rc` lives inside this one worker: none is handed out, since
// `with` only returns `Send` values (the cached verified tokens a decision
// carries out are `Arc`s of plain data), so no two threads ever touch one
// `Rc`'s refcount; the accelerator this crate boxes
// (`Accelerator<AwsLcCrypto>`, `crate::crypto`) has no thread affinity (its
// parsed keys are behind its own mutex, and AWS-LC's keys are `Send` and
// `Sync`); and the mutex gives one thread at a time the whole worker.
unsafe impl Send for LockedWorker {}
// SAFETY: as for `Send`: shared access goes through the mutex only.
unsafe impl Sync for LockedWorker {}

impl LockedWorker {
    pub fn new(worker: Worker) -> Self {
        LockedWorker(Mutex::new(worker))
    }

    /// Runs `f` with the worker, alone; `None` when a thread panicked
    /// holding it (never expected: the crate does not panic).
    pub fn with<R: Send>(&self, f: impl FnOnce(&Worker) -> R) -> Option<R> {
        self.0.lock().ok().map(|w| f(&w))
    }
}

/// # Safety
/// `ptr` is null with `len` 0, or points to `len` readable bytes that
/// outlive `'a`.
unsafe fn bytes<'a>(ptr: *const c_char, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(ptr.cast(), len) }
    }
}

/// `bytes` as text. Header names are ASCII (HTTP's token characters) in
/// all but hostile requests: those are checked with a plain ASCII scan,
/// cheaper than a full UTF-8 validation on such short names.
fn text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// The ABI's view of (name, value) pairs: pointers into `headers`, which
/// must outlive the call they are passed to.
fn module_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> Vec<ModuleHttpHeader> {
    headers
        .iter()
        .map(|(n, v)| {
            let (n, v) = (n.as_ref(), v.as_ref());
            ModuleHttpHeader {
                key_ptr: n.as_ptr().cast(),
                key_length: n.len(),
                value_ptr: v.as_ptr().cast(),
                value_length: v.len(),
            }
        })
        .collect()
}

/// A callout's answer as Envoy handed it over: status, headers, body.
pub struct CalloutAnswer {
    pub succeeded: bool,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Copies a callout's headers and body chunks out of Envoy's buffers.
///
/// # Safety
/// `headers` points to `headers_size` entries and `chunks` to `chunks_size`
/// buffers (either may be null with size 0), valid for the call.
unsafe fn read_answer(
    result: u32,
    headers: *const EnvoyHttpHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) -> CalloutAnswer {
    let headers: &[EnvoyHttpHeader] = if headers.is_null() {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(headers, headers_size) }
    };
    let chunks: &[EnvoyBuffer] = if chunks.is_null() {
        &[]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(chunks, chunks_size) }
    };
    let headers = headers
        .iter()
        .map(|h| {
            // SAFETY: Envoy's header buffers, valid for the call.
            let (k, v) = unsafe {
                (
                    bytes(h.key_ptr, h.key_length),
                    bytes(h.value_ptr, h.value_length),
                )
            };
            (String::from_utf8_lossy(k).into_owned(), v.to_vec())
        })
        .collect();
    let mut body = Vec::new();
    for c in chunks {
        // SAFETY: Envoy's body slices, valid for the call.
        body.extend_from_slice(unsafe { bytes(c.ptr, c.length) });
    }
    CalloutAnswer {
        succeeded: result == SUCCESS,
        headers,
        body,
    }
}

/// The event hooks Envoy calls. Envoy is their only caller, so raw pointers
/// come in under the ABI's contract (which each `SAFETY` comment cites)
/// rather than behind `unsafe fn`.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
mod event_hooks;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_text_when_they_are_utf8() {
        assert_eq!(text(b"x-user-id"), Some("x-user-id"));
        assert_eq!(text("x-ü".as_bytes()), Some("x-ü"));
        assert_eq!(text(b"x-\xff"), None);
        assert_eq!(text(b""), Some(""));
    }

    #[test]
    fn the_table_names_one_callback_per_field() {
        let names: Vec<&[u8]> = callback_names().collect();
        assert_eq!(names.len(), 21);
        assert!(names
            .iter()
            .all(|n| n.starts_with(b"envoy_dynamic_module_callback_")));
    }

    #[test]
    fn without_envoy_the_module_refuses_to_load_naming_the_callback() {
        // The test binary is not Envoy: the first callback is missing.
        assert!(on_program_init().is_null());
        let missing = resolve().err().unwrap_or_default();
        assert_eq!(missing, "envoy_dynamic_module_callback_log");
        assert!(load_error(&missing).contains("built for Envoy 1.40 (ABI v0.2.0)"));
    }
}
