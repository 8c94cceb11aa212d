//! Loop detection: every request the gateway sends upstream carries `X-Freellmapi-Hops`, the instance ids of the
//! gateways it passed through with this one last. A request that arrives carrying this instance's id (a key's
//! base URL leads back here, directly or through other gateways) or more hops than any sane chain is refused
//! before it is routed, so a loop costs one extra request instead of recursing without bound. Gateways chained
//! on purpose (one in front of another) still work. This module only decides; it never answers or sends.

use actix_web::http::header::{HeaderName, HeaderValue};

use crate::crypto::random_hex;

/// The header that lists the gateways a request passed through.
pub const HEADER: HeaderName = HeaderName::from_static("x-freellmapi-hops");
/// Most gateways one request may pass through; more means a loop among gateways that restarted mid-way.
pub const MAX_HOPS: usize = 8;

/// This running instance's place in hop lists.
#[derive(Clone, Debug)]
pub struct Hops {
    own: String,
    own_header: HeaderValue,
}

impl Hops {
    /// A new instance id: random, so two gateways (or two runs) never share one.
    pub fn new() -> Hops {
        Hops::with_id(format!("fla-{}", random_hex(8)))
    }

    fn with_id(own: String) -> Hops {
        let own_header = HeaderValue::from_str(&own).unwrap_or(HeaderValue::from_static("fla"));
        Hops { own, own_header }
    }

    /// Whether a request that arrived with this hop list may be served: it never passed through this instance
    /// and passed through fewer than [`MAX_HOPS`] gateways.
    pub fn admits(&self, incoming: Option<&HeaderValue>) -> bool {
        let Some(list) = incoming.and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let mut count = 0;
        for hop in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            if hop == self.own {
                return false;
            }
            count += 1;
        }
        count < MAX_HOPS
    }

    /// The hop list to send upstream for a request that arrived with `incoming`: it, then this instance.
    pub fn outgoing(&self, incoming: Option<&HeaderValue>) -> HeaderValue {
        let earlier = incoming
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        match earlier {
            None => self.own_header.clone(),
            Some(earlier) => HeaderValue::from_str(&format!("{earlier}, {}", self.own))
                .unwrap_or_else(|_| self.own_header.clone()),
        }
    }

    /// The hop list of a request this instance starts itself (key probes).
    pub fn own(&self) -> HeaderValue {
        self.own_header.clone()
    }
}

impl Default for Hops {
    fn default() -> Self {
        Hops::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &'static str) -> HeaderValue {
        HeaderValue::from_static(text)
    }

    #[test]
    fn a_request_that_passed_through_this_instance_is_refused() {
        let hops = Hops::with_id("fla-a".into());
        assert!(hops.admits(None));
        assert!(hops.admits(Some(&list("fla-b"))));
        assert!(!hops.admits(Some(&list("fla-a"))));
        assert!(!hops.admits(Some(&list("fla-b, fla-a, fla-c"))));
        assert!(hops.admits(Some(&list("fla-aa, xfla-a"))));
    }

    #[test]
    fn too_long_a_chain_is_refused() {
        let hops = Hops::with_id("fla-z".into());
        assert!(hops.admits(Some(&list("1, 2, 3, 4, 5, 6, 7"))));
        assert!(!hops.admits(Some(&list("1, 2, 3, 4, 5, 6, 7, 8"))));
    }

    #[test]
    fn the_outgoing_list_ends_with_this_instance() {
        let hops = Hops::with_id("fla-a".into());
        assert_eq!(hops.outgoing(None), "fla-a");
        assert_eq!(hops.outgoing(Some(&list(" "))), "fla-a");
        assert_eq!(hops.outgoing(Some(&list("fla-b"))), "fla-b, fla-a");
        let two = Hops::new();
        assert_ne!(two.own(), Hops::new().own(), "ids are random");
        assert!(!two.admits(Some(&two.outgoing(Some(&list("fla-b"))))));
    }
}
