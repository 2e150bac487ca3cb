//! Backends a run can train on, chosen per run at run time.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Why a backend or a set of replica devices cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The backend is not built in, or the machine lacks it (no CUDA GPU).
    #[error("backend {} is not available in this build or on this machine", .0.name())]
    Unavailable(BackendKind),
    /// `cpu:N` with N outside 1 to 64.
    #[error("`{devices}`: cpu:N takes N from 1 to 64")]
    ReplicaCount {
        /// The devices as written.
        devices: String,
    },
    /// CPU replicas asked of the CUDA backend.
    #[error("`{devices}` names CPU replicas but the backend is {}", .backend.name())]
    CpuReplicasOnCuda {
        /// The devices as written.
        devices: String,
        /// The run's backend.
        backend: BackendKind,
    },
    /// A part of the list that is neither `cpu:N` nor `cuda:I`.
    #[error("`{part}` in `{devices}`: expected cpu:N or cuda:I,cuda:J,...")]
    DeviceSyntax {
        /// The part that does not read.
        part: String,
        /// The devices as written.
        devices: String,
    },
    /// GPUs asked of a backend other than LibTorch CUDA.
    #[error("`{devices}` names GPUs; train them with the libtorch-cuda backend")]
    GpusWithoutCuda {
        /// The devices as written.
        devices: String,
    },
}

/// Where a run computes; on the command line and in spec files `libtorch`, `libtorch-cuda` and
/// `flex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
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
    /// Whether a training step's backward on this backend keeps each attention head's
    /// context x context matrix: LibTorch's flash kernels keep one log-sum-exp per query
    /// instead; Flex's attention is counted as keeping it (a memory estimate errs high).
    pub fn keeps_attention(self) -> bool {
        self == Self::Flex
    }

    /// Every backend, built in or not, in the order the studio lists them.
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

    /// The name shown in the studio and in a run's device line.
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Libtorch => "LibTorch CPU",
            BackendKind::LibtorchCuda => "LibTorch CUDA",
            BackendKind::Flex => "Flex (pure Rust)",
        }
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

    /// The backends this build and machine can run, in [`BackendKind::ALL`] order.
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
    pub fn device(self) -> Result<Device, BackendError> {
        if !self.is_available() {
            return Err(BackendError::Unavailable(self));
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

    /// The devices of a data-parallel run, one replica each: `""` is the backend's one device,
    /// `cpu:N` N replicas on the CPU (LibTorch or Flex), `cuda:0,cuda:1,...` those GPUs
    /// (LibTorch CUDA).
    #[allow(deprecated)] // as in `device`
    pub fn replica_devices(self, devices: &str) -> Result<Vec<Device>, BackendError> {
        let devices = devices.trim();
        if devices.is_empty() {
            return Ok(vec![self.device()?]);
        }
        if let Some(n) = devices.strip_prefix("cpu:") {
            let n: usize = n
                .parse()
                .ok()
                .filter(|&n| (1..=64).contains(&n))
                .ok_or_else(|| BackendError::ReplicaCount {
                    devices: devices.to_string(),
                })?;
            if self == BackendKind::LibtorchCuda {
                return Err(BackendError::CpuReplicasOnCuda {
                    devices: devices.to_string(),
                    backend: self,
                });
            }
            return Ok(vec![self.device()?; n]);
        }
        let mut out = Vec::new();
        for part in devices.split(',') {
            let index: usize = part
                .trim()
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .ok_or_else(|| BackendError::DeviceSyntax {
                    part: part.to_string(),
                    devices: devices.to_string(),
                })?;
            if self != BackendKind::LibtorchCuda {
                return Err(BackendError::GpusWithoutCuda {
                    devices: devices.to_string(),
                });
            }
            self.device()?;
            #[cfg(feature = "libtorch")]
            out.push(Device::libtorch_cuda(index));
            #[cfg(not(feature = "libtorch"))]
            let _ = index;
        }
        Ok(out)
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

    /// Runs `f` with `threads` intra-op threads: LibTorch's thread count, or for Flex a thread
    /// pool of its own, across which its matrix products and reductions split.
    pub fn with_threads<T: Send>(self, threads: usize, f: impl FnOnce() -> T + Send) -> T {
        self.set_threads(threads);
        if self == BackendKind::Flex
            && let Ok(pool) = rayon::ThreadPoolBuilder::new()
                .num_threads(threads.max(1))
                .build()
        {
            return pool.install(f);
        }
        f()
    }
}

/// The cores this process may use (2 when the system does not say).
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Threads a run uses by default: all cores but one, so the studio keeps a core.
pub fn default_threads() -> usize {
    available_cores().saturating_sub(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn command_line_names_are_the_spec_file_names() {
        for b in BackendKind::ALL {
            let value = b.to_possible_value().expect("no backend is hidden");
            assert_eq!(value.get_name(), b.name());
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.name()));
        }
        assert_eq!(BackendKind::value_variants(), BackendKind::ALL);
    }
}
