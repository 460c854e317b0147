//! The per-request context: hands the request to the worker.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::vm::VmState;

pub struct FilterHttp {
    id: u32,
    shared: Rc<VmState>,
}

impl FilterHttp {
    pub fn new(id: u32, shared: Rc<VmState>) -> Self {
        FilterHttp { id, shared }
    }
}

impl Context for FilterHttp {}

impl HttpContext for FilterHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        crate::request::handle(&self.shared.worker, &self.shared.host, self.id, None)
    }
}

impl Drop for FilterHttp {
    fn drop(&mut self) {
        // A request that ends while waiting for keys leaves the queue.
        self.shared.worker.forget(self.id);
    }
}
