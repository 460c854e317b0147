//! proxy-wasm shared data as the core's [`SharedStore`].

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use jwt_auth_core::revocation::store::{SharedStore, StoreError};

pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(_) => Err(StoreError::Unavailable),
        }
    }

    fn remove(&self, key: &str) -> Result<(), StoreError> {
        // Shared data has no delete; an empty value reads as absent.
        hostcalls::set_shared_data(key, None, None).map_err(|_| StoreError::Unavailable)
    }
}
