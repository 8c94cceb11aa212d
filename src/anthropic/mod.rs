//! Anthropic Messages API wire types and their pure translation to and from the gateway's OpenAI shape: a
//! `/v1/messages` request becomes a chat request (`request.rs`, `content.rs`), a chat completion becomes a message
//! (`answer.rs`), a chunk stream becomes Anthropic's event stream (`stream.rs`), and errors take Anthropic's shape
//! (`error.rs`). Layer 0: it imports nothing above `openai`, does no IO and knows nothing of routing or HTTP.

pub mod answer;
pub mod content;
pub mod error;
pub mod request;
pub mod stream;
pub mod wire;
