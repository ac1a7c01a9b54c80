//! The madsim plugin: one disk per node; `kill` resolves the disk by the kind of death the
//! world chose (power failure unless told otherwise).

use super::{Disk, FaultConfig, NodeFs};
use madsim::plugin::Simulator;
use madsim::task::NodeId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The simulated filesystem of every node of a simulation.
pub struct SimFs {
    disks: Mutex<BTreeMap<NodeId, Arc<Mutex<Disk>>>>,
    config: Mutex<FaultConfig>,
}

impl Simulator for SimFs {
    fn new(
        _rand: &madsim::rand::GlobalRng,
        _time: &madsim::time::TimeHandle,
        _config: &madsim::Config,
    ) -> Self {
        SimFs { disks: Mutex::new(BTreeMap::new()), config: Mutex::new(FaultConfig::default()) }
    }

    fn reset_node(&self, id: NodeId) {
        let disk = self.disks.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
        if let Some(disk) = disk {
            disk.lock().unwrap_or_else(|e| e.into_inner()).kill();
        }
    }
}

impl SimFs {
    /// The simulation's SimFs (registered with `Runtime::add_simulator`).
    pub fn current() -> Arc<SimFs> {
        madsim::plugin::simulator::<SimFs>()
    }

    /// Sets the fault rates of disks created from now on.
    pub fn set_default_config(&self, config: FaultConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// The disk of `node`, created on first use with its own random stream.
    pub fn disk(&self, node: NodeId) -> Arc<Mutex<Disk>> {
        let mut disks = self.disks.lock().unwrap_or_else(|e| e.into_inner());
        disks
            .entry(node)
            .or_insert_with(|| {
                let seed = madsim::runtime::Handle::current().seed();
                let node_num: u64 = node.to_string().parse().unwrap_or(0);
                let mut rng = crate::seed::rng(seed, crate::seed::Stream::Disk);
                rng.set_word_pos(u128::from(node_num) << 64);
                let config = *self.config.lock().unwrap_or_else(|e| e.into_inner());
                Arc::new(Mutex::new(Disk::new(config, rng)))
            })
            .clone()
    }

    /// A filesystem handle for `node` (kills the node at its crash points).
    pub fn node_fs(&self, node: NodeId) -> NodeFs {
        NodeFs::of_node(self.disk(node), node)
    }
}
