//! Pure routing decisions: which candidates to try in which order, whether a budget admits a request, how long a
//! failure benches a key, and how many tokens a request will cost. No actix, no IO: actors call these.

pub mod budget;
pub mod candidates;
pub mod client_quota;
pub mod estimate;
pub mod failover;
pub mod learned;
pub mod needs;
pub mod probes;
pub mod repeats;
pub mod resume;
pub mod sticky;
pub mod window;
