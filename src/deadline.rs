//! One deadline for a whole command: every phase, request and wait of an
//! ADD (or a DEL) takes what is left of it, so the command as a whole is
//! bounded, not each step.

use std::time::{Duration, Instant};

/// A point in time a command must be done by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Instant);

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        // A budget past what Instant can hold is "a century".
        const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);
        let now = Instant::now();
        Deadline(now.checked_add(budget.min(FAR)).unwrap_or(now))
    }

    /// Time left; zero once passed.
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.0
    }

    /// `d`, or what is left when that is shorter.
    pub fn cap(&self, d: Duration) -> Duration {
        d.min(self.remaining())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_shrinks_to_zero() {
        let d = Deadline::after(Duration::from_millis(20));
        assert!(!d.expired());
        assert!(d.remaining() <= Duration::from_millis(20));
        assert!(d.cap(Duration::from_secs(5)) <= Duration::from_millis(20));
        assert!(d.cap(Duration::ZERO).is_zero());
        std::thread::sleep(Duration::from_millis(25));
        assert!(d.expired());
        assert_eq!(d.remaining(), Duration::ZERO);
        assert!(!Deadline::after(Duration::MAX).expired());
    }
}
