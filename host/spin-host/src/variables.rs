//! `fermyon:spin/variables@2.0.0`: values are resolved on every `get`, as in Spin.

use spin_app::variables::VariableError;

use crate::bindings::variables::{Error, Host};
use crate::instance::InstanceState;

impl Host for InstanceState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        let component = &self.component;
        Ok(component
            .variables
            .component_get(&component.spec, &name)
            .map_err(|error| match error {
                VariableError::InvalidName(message) => Error::InvalidName(message),
                VariableError::Undefined(message) => Error::Undefined(message),
                VariableError::Provider(message) => Error::Provider(message),
            }))
    }
}
