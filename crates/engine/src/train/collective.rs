//! The collective operations a data-parallel run needs across processes: broadcast the
//! initial weights, sum the gradients and losses, compare weight checksums. The MPI
//! implementation (cargo feature `mpi`, over the system's MPI library as `mpirun` or `srun`
//! launches it) is the one a user runs; [`Solo`] is a world of one.

/// Collective operations over the processes (ranks) of one run, called from the run's worker
/// thread only.
pub trait Collective: Send + Sync {
    /// This process's rank, 0 to `size() - 1`.
    fn rank(&self) -> usize;
    /// How many processes train the run.
    fn size(&self) -> usize;
    /// Replaces `data` on every rank by rank 0's.
    fn broadcast(&self, data: &mut [f32]);
    /// Replaces `data` on every rank by the element-wise sum over ranks.
    fn all_reduce_sum(&self, data: &mut [f32]);
    /// Replaces `data` on every rank by the element-wise maximum over ranks.
    fn all_reduce_max(&self, data: &mut [f64]);
}

/// A world of one process: every operation leaves the data as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn broadcast(&self, _data: &mut [f32]) {}
    fn all_reduce_sum(&self, _data: &mut [f32]) {}
    fn all_reduce_max(&self, _data: &mut [f64]) {}
}

#[cfg(feature = "mpi")]
pub use mpi_world::MpiWorld;

#[cfg(feature = "mpi")]
mod mpi_world {
    use super::Collective;
    use mpi::collective::SystemOperation;
    use mpi::topology::{Communicator, SimpleCommunicator};
    use mpi::traits::{CommunicatorCollectives, Root};

    /// The MPI world communicator. Create it with [`MpiWorld::init`] once per process and keep
    /// it alive until training ends (dropping it finalizes MPI).
    pub struct MpiWorld {
        // Field order: the communicator goes before the universe that finalizes MPI.
        world: SimpleCommunicator,
        _universe: mpi::environment::Universe,
    }

    // MPI is initialised with `Threading::Serialized` and only the run's worker thread calls
    // it, one call at a time.
    #[allow(unsafe_code)]
    unsafe impl Send for MpiWorld {}
    #[allow(unsafe_code)]
    unsafe impl Sync for MpiWorld {}

    impl MpiWorld {
        /// Initialises MPI (serialized threading: the worker thread makes the calls). `None`
        /// when MPI is already initialised or refuses that threading level.
        pub fn init() -> Option<Self> {
            let (universe, threading) = mpi::initialize_with_threading(mpi::Threading::Serialized)?;
            if threading < mpi::Threading::Serialized {
                return None;
            }
            Some(Self {
                world: universe.world(),
                _universe: universe,
            })
        }
    }

    impl Collective for MpiWorld {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }
        fn size(&self) -> usize {
            self.world.size() as usize
        }
        fn broadcast(&self, data: &mut [f32]) {
            self.world.process_at_rank(0).broadcast_into(data);
        }
        fn all_reduce_sum(&self, data: &mut [f32]) {
            let send = data.to_vec();
            self.world
                .all_reduce_into(&send[..], data, SystemOperation::sum());
        }
        fn all_reduce_max(&self, data: &mut [f64]) {
            let send = data.to_vec();
            self.world
                .all_reduce_into(&send[..], data, SystemOperation::max());
        }
    }
}
