//! Embeds the LibTorch library folder as an rpath so that `hearth` and its tests run without
//! `LD_LIBRARY_PATH`. torch-sys reports the folder through the `links = "tch"` metadata.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:rustc-env=HEARTH_LIBTORCH_LIB={dir}");
    }
}
