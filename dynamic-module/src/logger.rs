//! The core logs through the `log` crate (its loops report failures and
//! recoveries there); in a dynamic module those records go to Envoy's log
//! under its `dynamic_modules` logger, as the wasm filter's go under `wasm`.

use crate::abi::{self, LogLevel};

struct EnvoyLog;

impl log::Log for EnvoyLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            _ => LogLevel::Info,
        };
        abi::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

static LOGGER: EnvoyLog = EnvoyLog;

/// Installs the bridge (once per process; later calls change nothing).
/// Info and above, as the wasm filter logs.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
