"""Vector indexes (faiss) over gallery embeddings: kinds, and the index folder format."""
