//! The services on the network: the pull-by-sequence protocol, request/response over
//! `madsim::net::Endpoint`, and the async loops of the three service nodes, market data
//! and the matching replica.

pub mod audit;
pub mod market_data;
pub mod node;
pub mod protocol;
pub mod rpc;
#[cfg(not(madsim))]
pub mod tcp;

pub use market_data::run_market_data;
pub use node::{
    Addrs, Directory, NodeEnv, Recovered, RecoveryHook, ReplicaHook, ReplicaReport, Stop, Tracer,
    panic_message, run_matching, run_replica, run_settlement, run_ubscore,
};
pub use protocol::{FollowerId, Request, Response, Status};
