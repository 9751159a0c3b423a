"""A model behind an OpenAI-compatible HTTP server: ``worker.OpenAIWorker`` speaks the API,
``responses`` reads its JSON answers into seam types (imported on their own: httpx)."""
