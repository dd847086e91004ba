//! Host-side bindings for the Spin 3.6 interfaces spin-sdk 5.2 components import, and for the
//! Redis trigger's export, generated from the WIT vendored under `wit/spin`.

mod imports {
    wasmtime::component::bindgen!({
        path: "../../wit/spin",
        world: "ticketing:spin-host/spin-imports",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::key_value::OpenStore,
            "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
            "spin:sqlite/sqlite.connection": crate::sqlite::Connection,
            "fermyon:spin/redis.connection": crate::outbound_redis::RedisConnection,
        },
    });
}

mod redis_trigger {
    wasmtime::component::bindgen!({
        path: "../../wit/spin",
        world: "ticketing:spin-host/redis-trigger",
        exports: { default: async },
    });
}

pub use imports::SpinImports;
pub use imports::fermyon::spin2_0_0::{
    key_value, redis as outbound_redis, sqlite as sqlite_v2, variables,
};
pub use imports::spin::sqlite::sqlite as sqlite_v3;
pub use redis_trigger::RedisTriggerPre;
pub use redis_trigger::exports::fermyon::spin::inbound_redis::Error as RedisHandlerError;
