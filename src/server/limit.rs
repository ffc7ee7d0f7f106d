//! A per-connection request rate limit (token bucket).

use std::time::Instant;

/// Allows `rate` requests per second on average and bursts of up to `burst`.
pub(crate) struct RateLimit {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl RateLimit {
    pub(crate) fn new(rate: u32, burst: u32) -> RateLimit {
        let burst = f64::from(burst.max(1));
        RateLimit {
            tokens: burst,
            rate: f64::from(rate.max(1)),
            burst,
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn allow(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rest_is_refused() {
        let mut limit = RateLimit::new(1, 5);
        let allowed = (0..20).filter(|_| limit.allow()).count();
        // Five from the burst, perhaps one more refilled while looping.
        assert!((5..=6).contains(&allowed), "{allowed}");
    }
}
