//! The per-request context: hands the request to the runtime.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::runtime::Runtime;
use crate::unix_millis;

pub struct FilterHttp {
    id: u32,
    runtime: Rc<Runtime>,
}

impl FilterHttp {
    pub fn new(id: u32, runtime: Rc<Runtime>) -> Self {
        FilterHttp { id, runtime }
    }
}

impl Context for FilterHttp {}

impl HttpContext for FilterHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let now_ms = unix_millis(self.get_current_time());
        self.runtime.handle(self.id, now_ms, None)
    }
}

impl Drop for FilterHttp {
    fn drop(&mut self) {
        // A request that ends while waiting for keys leaves the queue.
        self.runtime
            .waiting
            .borrow_mut()
            .retain(|(id, _)| *id != self.id);
    }
}
