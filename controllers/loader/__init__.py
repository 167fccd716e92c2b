"""Kaizen's LoRA loader: a small HTTP program beside vLLM in a shared base's predictor pod.

vLLM loads runtime adapters from paths on its own disk; the operator names adapters by storage URI.
The loader answers vLLM's three LoRA routes on its own port, downloads a URI into the volume it shares
with vLLM, and hands vLLM the local path (``controllers.loader.app``). See ``controllers.clients.lora``
for why a loader rather than vLLM's resolver plugins.
"""
