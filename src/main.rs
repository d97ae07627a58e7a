//! The binary kubelet executes. CONTRACT: thin; owned by the CNI-layer owner.

fn main() {
    todo!("cni owner")
}
