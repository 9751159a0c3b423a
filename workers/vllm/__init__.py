"""vLLM backends: ``worker.VLLMWorker`` (an in-process engine behind the seam, run on its own
loop by ``engine_thread``, built by ``engine``; its engine requests made by ``requests``,
read by ``outputs``, streamed by ``streaming``), the guidance logits processors the engine
loads (``processors``), and ``server.VLLMServer`` (a local ``vllm serve`` for HTTP tests).
Each is imported on its own: vllm itself only loads when an engine starts."""
