"""Embeds through the gateway with the official openai SDK and with LangChain's OpenAIEmbeddings, the setups the
README documents, and prints what each client got back as one JSON line.

Usage: embeddings.py BASE_URL API_KEY MODEL
"""

import json
import sys

import openai
from langchain_openai import OpenAIEmbeddings


def main() -> None:
    base_url, api_key, model = sys.argv[1:4]
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    # The SDK asks for base64 unless told otherwise and decodes it itself.
    packed = client.embeddings.create(model=model, input=["alpha", "beta"])
    floats = client.embeddings.create(model=model, input="gamma", encoding_format="float")
    langchain = OpenAIEmbeddings(
        model=model,
        base_url=base_url,
        api_key=api_key,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    documents = langchain.embed_documents(["one", "two", "three"])
    query = langchain.embed_query("four")
    try:
        client.embeddings.create(model="auto", input="x")
        refused = None
    except openai.BadRequestError as error:
        refused = error.status_code
    print(
        json.dumps(
            {
                "sdk_base64": [item.embedding for item in packed.data],
                "sdk_float": floats.data[0].embedding,
                "sdk_usage": packed.usage.prompt_tokens,
                "langchain_documents": documents,
                "langchain_query": query,
                "auto_refused": refused,
            }
        )
    )


if __name__ == "__main__":
    main()
