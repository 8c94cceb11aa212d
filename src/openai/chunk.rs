//! One OpenAI chat completion chunk as its readers see it: the fields a relayed answer is rebuilt from (its id,
//! model, creation time, the first choice's delta and finish, usage), with text borrowed from the payload unless
//! it had escapes. Shared by everything that reads the pipeline's streamed answers; it only reads.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

/// A piece of text in a chunk, borrowed from it unless it had escapes.
#[derive(Deserialize)]
pub struct Piece<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// A chunk.
#[derive(Deserialize)]
pub struct Chunk<'a> {
    #[serde(borrow)]
    pub id: Option<Piece<'a>>,
    #[serde(borrow)]
    pub model: Option<Piece<'a>>,
    /// As sent (a number, in every upstream seen).
    pub created: Option<Value>,
    #[serde(borrow, default)]
    pub choices: Vec<ChunkChoice<'a>>,
    /// As sent; `null` on most chunks.
    pub usage: Option<Value>,
}

/// One choice of a chunk.
#[derive(Deserialize)]
pub struct ChunkChoice<'a> {
    #[serde(borrow)]
    pub delta: Option<Delta<'a>>,
    #[serde(borrow)]
    pub finish_reason: Option<Piece<'a>>,
}

/// What a choice adds.
#[derive(Deserialize)]
pub struct Delta<'a> {
    #[serde(borrow)]
    pub content: Option<Piece<'a>>,
    #[serde(borrow)]
    pub reasoning_content: Option<Piece<'a>>,
    #[serde(borrow)]
    pub tool_calls: Option<Vec<CallDelta<'a>>>,
}

/// A piece of one tool call.
#[derive(Deserialize)]
pub struct CallDelta<'a> {
    pub index: Option<usize>,
    #[serde(borrow)]
    pub id: Option<Piece<'a>>,
    #[serde(borrow)]
    pub function: Option<FunctionDelta<'a>>,
}

/// A piece of a tool call's function.
#[derive(Deserialize)]
pub struct FunctionDelta<'a> {
    #[serde(borrow)]
    pub name: Option<Piece<'a>>,
    #[serde(borrow)]
    pub arguments: Option<Piece<'a>>,
}
