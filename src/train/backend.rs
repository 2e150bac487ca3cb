//! Backends a run can train on, chosen per run at run time.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// LibTorch on the CPU (the primary backend).
    #[default]
    Libtorch,
    /// LibTorch on the first CUDA GPU.
    LibtorchCuda,
    /// Burn's pure-Rust CPU backend: needs no system library.
    Flex,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [
        BackendKind::Libtorch,
        BackendKind::LibtorchCuda,
        BackendKind::Flex,
    ];

    /// The name used on the command line and in spec files.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Libtorch => "libtorch",
            BackendKind::LibtorchCuda => "libtorch-cuda",
            BackendKind::Flex => "flex",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Libtorch => "LibTorch CPU",
            BackendKind::LibtorchCuda => "LibTorch CUDA",
            BackendKind::Flex => "Flex (pure Rust)",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether this build and machine can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            BackendKind::Flex => true,
            #[cfg(feature = "libtorch")]
            BackendKind::Libtorch => true,
            #[cfg(feature = "libtorch")]
            BackendKind::LibtorchCuda => tch::Cuda::is_available(),
            #[cfg(not(feature = "libtorch"))]
            BackendKind::Libtorch | BackendKind::LibtorchCuda => false,
        }
    }

    pub fn available() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|b| b.is_available()).collect()
    }

    /// The default for new runs: LibTorch when built in, otherwise Flex.
    pub fn preferred() -> Self {
        if BackendKind::Libtorch.is_available() {
            BackendKind::Libtorch
        } else {
            BackendKind::Flex
        }
    }

    /// The device (without autodiff). Errors when the backend is not available here.
    #[allow(deprecated)] // burn marks its LibTorch backend deprecated; it remains the fastest CPU path here.
    pub fn device(self) -> Result<Device, String> {
        if !self.is_available() {
            return Err(format!(
                "backend {} is not available in this build or on this machine",
                self.name()
            ));
        }
        Ok(match self {
            BackendKind::Flex => Device::flex(),
            #[cfg(feature = "libtorch")]
            BackendKind::Libtorch => Device::libtorch(),
            #[cfg(feature = "libtorch")]
            BackendKind::LibtorchCuda => Device::libtorch_cuda(0),
            #[cfg(not(feature = "libtorch"))]
            _ => unreachable!("checked by is_available"),
        })
    }

    /// Sets the intra-op thread count for work issued from the calling thread. LibTorch keeps
    /// this per thread (OpenMP), so each run worker sets its own.
    pub fn set_threads(self, threads: usize) {
        #[cfg(feature = "libtorch")]
        if matches!(self, BackendKind::Libtorch | BackendKind::LibtorchCuda) {
            tch::set_num_threads(threads.max(1) as i32);
        }
        let _ = threads;
    }
}

/// Threads a run uses by default: all cores but one, so the studio keeps a core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .saturating_sub(1)
        .max(1)
}
