//! The code generator object's part in an app's deletion (`domain::deletion`):
//! [`AgentCall::Erase`](crate::domain::codegen::agent_call::AgentCall::Erase) stops the run,
//! closes every client and erases the storage (state, files, prompts, events) and the alarm.
//!
//! Invariant: storage is erased only when no driver works in this isolate (a driver still winding
//! down would write its last commit back): until then the answer is a 409 and the plan retries.
//! The object stays retired afterwards, so nothing it still holds in memory is written again.

use super::codegen_do::CodeGeneratorAgent;
use crate::domain::codegen::run::RunState;
use worker::{Response, Result};

impl CodeGeneratorAgent {
    pub(super) async fn erase(&self) -> Result<Response> {
        self.retired.set(true);
        if self.read(RunState::is_active) {
            self.update(RunState::stop);
        }
        if self.running.get() {
            self.cancel.borrow().cancel();
            return Response::error("the generator is still stopping", 409);
        }
        self.close_streams();
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(1001), Some("the app was deleted"));
        }
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        Response::ok("erased")
    }
}
