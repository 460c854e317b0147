//! What the contexts of one VM share: the root context builds it once the
//! configuration is loaded, and every HTTP context holds it.

use jwt_auth_core::worker::Worker;

use crate::proxy_host::ProxyHost;

pub struct VmState {
    pub worker: Worker,
    pub host: ProxyHost,
}
