//! OpenAI wire types and SSE framing: what clients send and receive, independent of any provider.

pub mod answer;
pub mod chat;
pub mod chunk;
pub mod embeddings;
pub mod replay;
pub mod sse;
