"""Sentence embeddings as arrays, below any model: a corpus encoded once (`encode`), rows kept compact
(`compact`), faiss indexes over them (`ann`) and a pair head's fast top-k over cached rows (`scorers`).
The student's heads build their scorers from here; scoring/ ties stores of these rows to a student."""
