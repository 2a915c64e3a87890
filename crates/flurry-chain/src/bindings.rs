//! Typed bindings of the three contracts, generated at compile time from the artifacts
//! that `contracts/export-artifacts.cjs` copies out of forge's build (ABI and bytecode).
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TicketBroker,
    "artifacts/TicketBroker.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    ProviderRegistry,
    "artifacts/ProviderRegistry.json"
);

sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    ModelRegistry,
    "artifacts/ModelRegistry.json"
);
