//! vRouter agent simulator. Owned by the agent owner.

fn main() {
    todo!("agent owner")
}
