//! Durable Objects: each a thin shell over domain logic, one per file.

pub mod codegen_do;
pub mod rate_limit_do;
pub mod sandbox_do;

/// The stub of the object named `name` in namespace `binding` (one object per name).
pub fn stub(env: &worker::Env, binding: &str, name: &str) -> worker::Result<worker::Stub> {
    env.durable_object(binding)?.id_from_name(name)?.get_stub()
}

/// Schedules a Durable Object's alarm at an absolute time (epoch ms). workers-rs reads a bare
/// integer as an offset from now, so absolute times go through here.
pub async fn set_alarm_at(storage: &worker::Storage, epoch_ms: i64) -> worker::Result<()> {
    let offset = (epoch_ms - js_sys::Date::now() as i64).max(0);
    storage
        .set_alarm(std::time::Duration::from_millis(offset as u64))
        .await
}
